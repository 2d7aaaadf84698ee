package slacktest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

// These tests drive the server with slack-go, the client the bridge uses,
// so what they check is what the bridge will see.

func client(s *slacktest.Server, token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(s.APIURL()))
}

func slackErr(t *testing.T, err error, code string) slack.SlackErrorResponse {
	t.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != code {
		t.Fatalf("error = %v, want Slack error %q", err, code)
	}
	return se
}

// fixture: a person and a channel with the bot in it.
type fixture struct {
	srv   *slacktest.Server
	api   *slack.Client
	alice slacktest.User
	ch    slacktest.Channel
}

func newFixture(t *testing.T, opts slacktest.Options) fixture {
	srv := slacktest.Start(t, opts)
	alice := srv.AddUser(slacktest.User{Name: "alice", RealName: "Alice Liddell", Image72: "https://avatars.example/alice.png"})
	ch := srv.AddChannel(slacktest.Channel{Name: "general", Members: []string{alice.ID, srv.BotUserID()}})
	return fixture{srv: srv, api: client(srv, srv.BotToken()), alice: alice, ch: ch}
}

func TestAuthTestAndTokens(t *testing.T) {
	f := newFixture(t, slacktest.Options{})
	ctx := context.Background()

	resp, err := f.api.AuthTestContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	team := f.srv.Team()
	if resp.TeamID != team.ID || resp.UserID != f.srv.BotUserID() || resp.BotID != f.srv.BotID() ||
		resp.URL != "https://slacktest.slack.com/" || resp.User != "bridge" || resp.Team != "Slack Test" {
		t.Errorf("auth.test = %+v", resp)
	}
	if got := resp.Header.Get("X-OAuth-Scopes"); !strings.Contains(got, "chat:write") {
		t.Errorf("x-oauth-scopes = %q", got)
	}

	_, err = client(f.srv, "").AuthTestContext(ctx)
	slackErr(t, err, "not_authed")
	_, err = client(f.srv, "xoxb-1-2-nope").AuthTestContext(ctx)
	slackErr(t, err, "invalid_auth")

	// Each token calls what its type may call.
	_, _, err = client(f.srv, f.srv.AppToken()).PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("hi", false))
	slackErr(t, err, "not_allowed_token_type")
	_, _, err = slack.New(f.srv.BotToken(), slack.OptionAPIURL(f.srv.APIURL()), slack.OptionAppLevelToken(f.srv.BotToken())).StartSocketModeContext(ctx)
	slackErr(t, err, "not_allowed_token_type")

	f.srv.DeactivateToken(f.srv.BotToken())
	_, err = f.api.AuthTestContext(ctx)
	slackErr(t, err, "account_inactive")
}

func TestMissingScopeNamesNeededAndProvided(t *testing.T) {
	f := newFixture(t, slacktest.Options{BotScopes: []string{"channels:read", "users:read"}})
	_, _, err := f.api.PostMessageContext(context.Background(), f.ch.ID, slack.MsgOptionText("hi", false))
	se := slackErr(t, err, "missing_scope")
	if se.Needed != "chat:write" || se.Provided != "channels:read,users:read" {
		t.Errorf("needed %q provided %q", se.Needed, se.Provided)
	}
	// A channel-typed method asks for the scope of the channel's type.
	_, err = f.api.GetConversationHistoryContext(context.Background(), &slack.GetConversationHistoryParameters{ChannelID: f.ch.ID})
	if se := slackErr(t, err, "missing_scope"); se.Needed != "channels:history" {
		t.Errorf("needed %q", se.Needed)
	}
}

func TestChatMethodsAndErrors(t *testing.T) {
	f := newFixture(t, slacktest.Options{NoRateLimits: true})
	ctx := context.Background()
	md := slack.SlackMetadata{EventType: "bridge_post", EventPayload: map[string]any{"mm_post_id": "p1"}}

	_, ts, err := f.api.PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("hello *world*", false),
		slack.MsgOptionUsername("Mattermost Bob"), slack.MsgOptionIconURL("https://mm.example/bob.png"),
		slack.MsgOptionMetadata(md))
	if err != nil {
		t.Fatal(err)
	}
	_, replyTS, err := f.api.PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("a reply", false), slack.MsgOptionTS(ts), slack.MsgOptionBroadcast())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.api.UpdateMessageContext(ctx, f.ch.ID, ts, slack.MsgOptionText("hello again", false)); err != nil {
		t.Fatal(err)
	}
	if err := f.api.AddReactionContext(ctx, "thumbsup", slack.ItemRef{Channel: f.ch.ID, Timestamp: ts}); err != nil {
		t.Fatal(err)
	}
	err = f.api.AddReactionContext(ctx, "thumbsup", slack.ItemRef{Channel: f.ch.ID, Timestamp: ts})
	slackErr(t, err, "already_reacted")
	err = f.api.RemoveReactionContext(ctx, "heart", slack.ItemRef{Channel: f.ch.ID, Timestamp: ts})
	slackErr(t, err, "no_reaction")

	m, ok := f.srv.Message(f.ch.ID, ts)
	if !ok || m.Text != "hello again" || m.Username != "Mattermost Bob" || m.IconURL != "https://mm.example/bob.png" ||
		m.BotID != f.srv.BotID() || m.Subtype != "bot_message" || m.Edited == nil || len(m.Reactions) != 1 ||
		!strings.Contains(string(m.Metadata), "mm_post_id") {
		t.Errorf("posted message = %+v", m)
	}
	thread := f.srv.Thread(f.ch.ID, ts)
	if len(thread) != 2 || thread[1].TS != replyTS || thread[1].Subtype != "thread_broadcast" {
		t.Errorf("thread = %+v", thread)
	}

	// Others' messages are not the bot's to change.
	userTS := f.srv.Post(f.alice.ID, f.ch.ID, "mine")
	_, _, _, err = f.api.UpdateMessageContext(ctx, f.ch.ID, userTS, slack.MsgOptionText("x", false))
	slackErr(t, err, "cant_update_message")
	_, _, err = f.api.DeleteMessageContext(ctx, f.ch.ID, userTS)
	slackErr(t, err, "cant_delete_message")
	_, _, err = f.api.DeleteMessageContext(ctx, f.ch.ID, "1.000001")
	slackErr(t, err, "message_not_found")

	if _, _, err := f.api.DeleteMessageContext(ctx, f.ch.ID, replyTS); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.srv.Message(f.ch.ID, replyTS); ok {
		t.Error("deleted reply still there")
	}

	// Channels the bot is not in, or that are gone or archived.
	outside := f.srv.AddChannel(slacktest.Channel{Name: "outside", Members: []string{f.alice.ID}})
	secret := f.srv.AddChannel(slacktest.Channel{Name: "secret", Private: true, Members: []string{f.alice.ID}})
	_, _, err = f.api.PostMessageContext(ctx, outside.ID, slack.MsgOptionText("x", false))
	slackErr(t, err, "not_in_channel")
	_, _, err = f.api.PostMessageContext(ctx, secret.ID, slack.MsgOptionText("x", false))
	slackErr(t, err, "channel_not_found")
	_, _, err = f.api.PostMessageContext(ctx, f.ch.ID)
	slackErr(t, err, "no_text")
	f.srv.Archive(f.alice.ID, f.ch.ID)
	_, _, err = f.api.PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("x", false))
	slackErr(t, err, "is_archived")

	// A public channel's info is readable from outside; a private one's is not.
	info, err := f.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: outside.ID, IncludeNumMembers: true})
	if err != nil || info.Name != "outside" || info.IsMember || info.NumMembers != 1 {
		t.Errorf("info = %+v, %v", info, err)
	}
	_, err = f.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: secret.ID})
	slackErr(t, err, "channel_not_found")
}

func TestCustomisationNeedsItsScope(t *testing.T) {
	scopes := []string{"chat:write", "channels:history", "channels:read"}
	f := newFixture(t, slacktest.Options{BotScopes: scopes})
	_, ts, err := f.api.PostMessageContext(context.Background(), f.ch.ID, slack.MsgOptionText("hi", false), slack.MsgOptionUsername("Bob"))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := f.srv.Message(f.ch.ID, ts); m.Username != "" || m.User != f.srv.BotUserID() || m.Subtype != "" {
		t.Errorf("without chat:write.customize the post should be the app's own: %+v", m)
	}
}

func TestHistoryAndRepliesPaginate(t *testing.T) {
	f := newFixture(t, slacktest.Options{})
	ctx := context.Background()
	var ts []string
	for i := range 25 {
		ts = append(ts, f.srv.Post(f.alice.ID, f.ch.ID, strings.Repeat("x", i+1)))
	}
	for range 3 {
		f.srv.Reply(f.alice.ID, f.ch.ID, ts[0], "reply")
	}

	var got []string
	cursor := ""
	pages := 0
	for {
		resp, err := f.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: f.ch.ID, Limit: 10, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range resp.Messages {
			got = append(got, m.Timestamp)
		}
		if !resp.HasMore {
			break
		}
		cursor = resp.ResponseMetaData.NextCursor
	}
	if pages != 3 || len(got) != 25 || got[0] != ts[24] || got[24] != ts[0] {
		t.Fatalf("pages %d, %d messages, newest first? %v", pages, len(got), got[:2])
	}

	// oldest is exclusive unless inclusive is set.
	resp, err := f.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: f.ch.ID, Oldest: ts[20]})
	if err != nil || len(resp.Messages) != 4 {
		t.Fatalf("after ts[20]: %d messages, %v", len(resp.Messages), err)
	}
	resp, err = f.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: f.ch.ID, Oldest: ts[20], Latest: ts[22], Inclusive: true})
	if err != nil || len(resp.Messages) != 3 {
		t.Fatalf("ts[20]..ts[22] inclusive: %d messages, %v", len(resp.Messages), err)
	}
	if parent := resp.Messages[len(resp.Messages)-1]; parent.Timestamp != ts[20] {
		t.Errorf("oldest last: %s", parent.Timestamp)
	}

	msgs, hasMore, next, err := f.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: f.ch.ID, Timestamp: ts[0], Limit: 2})
	if err != nil || len(msgs) != 2 || !hasMore || msgs[0].Timestamp != ts[0] || msgs[0].ReplyCount != 3 {
		t.Fatalf("replies page 1: %d %v %v %+v", len(msgs), hasMore, err, msgs)
	}
	msgs, hasMore, _, err = f.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: f.ch.ID, Timestamp: ts[0], Cursor: next})
	if err != nil || len(msgs) != 2 || hasMore {
		t.Fatalf("replies page 2: %d %v %v", len(msgs), hasMore, err)
	}

	members, _, err := f.api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: f.ch.ID})
	if err != nil || len(members) != 2 {
		t.Errorf("members %v %v", members, err)
	}
	u, err := f.api.GetUserInfoContext(ctx, f.alice.ID)
	if err != nil || u.RealName != "Alice Liddell" || u.Profile.Image72 != "https://avatars.example/alice.png" {
		t.Errorf("users.info %+v %v", u, err)
	}
	_, err = f.api.GetUserInfoContext(ctx, "U404")
	slackErr(t, err, "user_not_found")
	bot, err := f.api.GetBotInfoContext(ctx, slack.GetBotInfoParameters{Bot: f.srv.BotID()})
	if err != nil || bot.AppID != f.srv.AppID() || bot.UserID != f.srv.BotUserID() {
		t.Errorf("bots.info %+v %v", bot, err)
	}

	outside := f.srv.AddChannel(slacktest.Channel{Name: "outside", Members: []string{f.alice.ID}})
	_, err = f.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: outside.ID})
	slackErr(t, err, "not_in_channel")
}

func TestFilesUploadShareAndDownload(t *testing.T) {
	f := newFixture(t, slacktest.Options{})
	ctx := context.Background()
	parent := f.srv.Post(f.alice.ID, f.ch.ID, "send me the file")
	content := "hello file\n"
	sum, err := f.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Filename: "note.txt", FileSize: len(content), Content: content,
		Channel: f.ch.ID, ThreadTimestamp: parent, InitialComment: "here it is", Title: "A note",
	})
	if err != nil {
		t.Fatal(err)
	}
	thread := f.srv.Thread(f.ch.ID, parent)
	if len(thread) != 2 || thread[1].Text != "here it is" || len(thread[1].Files) != 1 ||
		string(thread[1].Files[0].Content) != content || thread[1].Files[0].Title != "A note" {
		t.Fatalf("thread after upload: %+v", thread)
	}

	file, _, _, err := f.api.GetFileInfoContext(ctx, sum.ID, 0, 0)
	if err != nil || file.Name != "note.txt" || file.Size != len(content) || file.Mimetype != "text/plain" {
		t.Fatalf("files.info %+v %v", file, err)
	}
	var buf bytes.Buffer
	if err := f.api.GetFileContext(ctx, file.URLPrivate, &buf); err != nil || buf.String() != content {
		t.Fatalf("download %q %v", buf.String(), err)
	}
	// Without the token Slack redirects to the sign-in page, which slack-go reports.
	buf.Reset()
	if err := client(f.srv, "xoxb-wrong").GetFileContext(ctx, file.URLPrivate, &buf); err == nil {
		t.Errorf("download without a valid token succeeded: %q", buf.String())
	}

	// A person's upload arrives with the bytes behind url_private.
	_, fileID := f.srv.ShareFile(slacktest.FileShare{User: f.alice.ID, Channel: f.ch.ID, Name: "cat.png", Content: []byte("\x89PNG...")})
	file, _, _, err = f.api.GetFileInfoContext(ctx, fileID, 0, 0)
	if err != nil || file.Mimetype != "image/png" {
		t.Fatalf("files.info %+v %v", file, err)
	}
	buf.Reset()
	if err := f.api.GetFileContext(ctx, file.URLPrivate, &buf); err != nil || buf.String() != "\x89PNG..." {
		t.Fatalf("download %q %v", buf.String(), err)
	}
}

func TestRateLimitsAnswer429WithRetryAfter(t *testing.T) {
	f := newFixture(t, slacktest.Options{})
	ctx := context.Background()

	// A forced limit: every third chat.postMessage is refused.
	f.srv.ForceRateLimit("chat.postMessage", 3, 2)
	f.srv.SetRateLimit("chat.postMessage", 6000, 100)
	var limited int
	for i := range 9 {
		_, _, err := f.api.PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("m", false))
		var rl *slack.RateLimitedError
		switch {
		case errors.As(err, &rl):
			limited++
			if rl.RetryAfter != 2*time.Second || (i+1)%3 != 0 {
				t.Errorf("call %d: %v", i+1, rl)
			}
		case err != nil:
			t.Fatal(err)
		}
	}
	if limited != 3 || f.srv.CallCount("chat.postMessage") != 9 || len(f.srv.History(f.ch.ID)) != 6 {
		t.Errorf("limited %d, calls %d, posted %d", limited, f.srv.CallCount("chat.postMessage"), len(f.srv.History(f.ch.ID)))
	}

	// The documented limit: apps.connections.open is Tier 1, one a minute.
	app := slack.New("", slack.OptionAPIURL(f.srv.APIURL()), slack.OptionAppLevelToken(f.srv.AppToken()))
	if _, _, err := app.StartSocketModeContext(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err := app.StartSocketModeContext(ctx)
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter < 50*time.Second {
		t.Errorf("second apps.connections.open: %v", err)
	}

	// chat.postMessage: one a second per channel after a short burst.
	g := newFixture(t, slacktest.Options{})
	var errs int
	for range 5 {
		if _, _, err := g.api.PostMessageContext(ctx, g.ch.ID, slack.MsgOptionText("m", false)); errors.As(err, &rl) {
			errs++
		}
	}
	if errs != 2 {
		t.Errorf("%d of 5 immediate posts limited, want 2 (burst of 3)", errs)
	}
}

func TestJSONBodiesAndFormTokens(t *testing.T) {
	f := newFixture(t, slacktest.Options{})
	post := func(ctype, auth, body string) string {
		req, _ := http.NewRequest(http.MethodPost, f.srv.APIURL()+"chat.postMessage", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	got := post("application/json; charset=utf-8", f.srv.BotToken(), `{"channel":"`+f.ch.ID+`","text":"json","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"json"}}]}`)
	if !strings.Contains(got, `"ok":true`) {
		t.Fatalf("json post: %s", got)
	}
	// Slack does not read a token from a JSON body.
	got = post("application/json", "", `{"token":"`+f.srv.BotToken()+`","channel":"`+f.ch.ID+`","text":"x"}`)
	if !strings.Contains(got, `"error":"not_authed"`) {
		t.Errorf("token in JSON body: %s", got)
	}
	got = post("application/json", f.srv.BotToken(), `{"channel":"`+f.ch.ID+`","text":"x","blocks":"not blocks"}`)
	if !strings.Contains(got, `"error":"invalid_blocks"`) {
		t.Errorf("bad blocks: %s", got)
	}
	hist := f.srv.History(f.ch.ID)
	if len(hist) != 1 || !strings.Contains(string(hist[0].Blocks), "mrkdwn") {
		t.Errorf("history %+v", hist)
	}
}

func TestLostAnswersAreCarriedOut(t *testing.T) {
	f := newFixture(t, slacktest.Options{NoRateLimits: true})
	ctx := context.Background()
	f.srv.LoseNextAnswer("chat.postMessage", slacktest.LossReset)
	f.srv.LoseNextAnswer("chat.postMessage", slacktest.Loss500)
	if _, _, err := f.api.PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("reset", false)); err == nil {
		t.Error("a reset connection answered")
	}
	var sc slack.StatusCodeError
	if _, _, err := f.api.PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("500", false)); !errors.As(err, &sc) || sc.Code != http.StatusInternalServerError {
		t.Errorf("error = %v, want HTTP 500", err)
	}
	if _, _, err := f.api.PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("answered", false)); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range f.srv.History(f.ch.ID) {
		texts = append(texts, m.Text)
	}
	if strings.Join(texts, ",") != "reset,500,answered" {
		t.Errorf("history = %q", texts)
	}
	lost := 0
	for _, c := range f.srv.Calls() {
		if c.Lost {
			lost++
		}
	}
	if lost != 2 {
		t.Errorf("%d calls marked lost", lost)
	}
}
