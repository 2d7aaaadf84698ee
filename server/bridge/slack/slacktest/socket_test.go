package slacktest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

// socketClient runs slack-go's socketmode client against the server, as
// the bridge will, and hands the test the Events API events it receives.
// ack decides per event whether to acknowledge it.
type socketClient struct {
	sm     *socketmode.Client
	events chan socketmode.Event
	hellos chan socketmode.Event
	other  chan socketmode.Event
}

func runSocket(t *testing.T, srv *slacktest.Server, ack func(socketmode.Event) bool) *socketClient {
	t.Helper()
	api := slack.New(srv.BotToken(), slack.OptionAPIURL(srv.APIURL()), slack.OptionAppLevelToken(srv.AppToken()))
	c := &socketClient{
		sm:     socketmode.New(api),
		events: make(chan socketmode.Event, 100),
		hellos: make(chan socketmode.Event, 10),
		other:  make(chan socketmode.Event, 100),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.sm.RunContext(ctx)
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-c.sm.Events:
				switch ev.Type {
				case socketmode.EventTypeEventsAPI:
					if ack == nil || ack(ev) {
						_ = c.sm.Ack(*ev.Request)
					}
					c.events <- ev
				case socketmode.EventTypeHello:
					c.hellos <- ev
				case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage:
					c.other <- ev
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

func wait[T any](t *testing.T, ch chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

func innerEvent(t *testing.T, ev socketmode.Event) any {
	t.Helper()
	api, ok := ev.Data.(slackevents.EventsAPIEvent)
	if !ok {
		t.Fatalf("not an Events API event: %#v", ev.Data)
	}
	return api.InnerEvent.Data
}

func TestSocketModeHelloEventsAndAcks(t *testing.T) {
	f := newFixture(t, slacktest.Options{})
	c := runSocket(t, f.srv, nil)
	hello := wait(t, c.hellos, "hello")
	if hello.Request.NumConnections != 1 || hello.Request.ConnectionInfo.AppID != f.srv.AppID() {
		t.Errorf("hello = %+v", hello.Request)
	}

	ts := f.srv.Post(f.alice.ID, f.ch.ID, "hi from Slack")
	ev := wait(t, c.events, "message event")
	msg, ok := innerEvent(t, ev).(*slackevents.MessageEvent)
	if !ok || msg.User != f.alice.ID || msg.Text != "hi from Slack" || msg.TimeStamp != ts || msg.Channel != f.ch.ID || msg.ChannelType != "channel" {
		t.Fatalf("message event = %+v", innerEvent(t, ev))
	}
	outer := ev.Data.(slackevents.EventsAPIEvent).Data.(*slackevents.EventsAPICallbackEvent)
	if outer.TeamID != f.srv.Team().ID || outer.APIAppID != f.srv.AppID() || outer.EventID == "" ||
		len(outer.Authorizations) != 1 || outer.Authorizations[0].UserID != f.srv.BotUserID() {
		t.Errorf("callback = %+v", outer)
	}
	if ev.Request.RetryAttempt != 0 || ev.Request.EnvelopeID == "" {
		t.Errorf("envelope = %+v", ev.Request)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}

	// The app's own posts come back, marked with its bot and app IDs.
	if _, _, err := f.api.PostMessageContext(ctx, f.ch.ID, slack.MsgOptionText("from the bridge", false)); err != nil {
		t.Fatal(err)
	}
	echo, _ := innerEvent(t, wait(t, c.events, "echo")).(*slackevents.MessageEvent)
	if echo == nil || echo.BotID != f.srv.BotID() || echo.Message.BotProfile == nil || echo.Message.BotProfile.AppID != f.srv.AppID() {
		t.Errorf("echo = %+v", echo)
	}
}

func TestUnacknowledgedEnvelopeIsRedelivered(t *testing.T) {
	f := newFixture(t, slacktest.Options{AckTimeout: 200 * time.Millisecond})
	seen := 0
	c := runSocket(t, f.srv, func(socketmode.Event) bool {
		seen++
		return seen > 1 // the first delivery goes unacknowledged
	})
	wait(t, c.hellos, "hello")
	f.srv.Post(f.alice.ID, f.ch.ID, "are you there?")
	first := wait(t, c.events, "first delivery")
	second := wait(t, c.events, "redelivery")
	if second.Request.RetryAttempt != 1 || second.Request.RetryReason != "timeout" || second.Request.EnvelopeID == first.Request.EnvelopeID {
		t.Errorf("redelivery = %+v (first %+v)", second.Request, first.Request)
	}
	id := func(ev socketmode.Event) string {
		return ev.Data.(slackevents.EventsAPIEvent).Data.(*slackevents.EventsAPICallbackEvent).EventID
	}
	if id(first) != id(second) {
		t.Errorf("event IDs differ: %s %s", id(first), id(second))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}
	d := f.srv.Deliveries()
	if len(d) != 1 || len(d[0].Envelopes) != 2 || !d[0].Acked {
		t.Errorf("deliveries = %+v", d)
	}

	// A test may also deliver an event again after its ack.
	if !f.srv.Redeliver(d[0].EventID) {
		t.Fatal("no such event")
	}
	third := wait(t, c.events, "forced redelivery")
	if third.Request.RetryAttempt != 2 || id(third) != id(first) {
		t.Errorf("forced redelivery = %+v", third.Request)
	}
}

func TestRetriesGiveUp(t *testing.T) {
	f := newFixture(t, slacktest.Options{AckTimeout: 50 * time.Millisecond, MaxRetries: 2})
	c := runSocket(t, f.srv, func(socketmode.Event) bool { return false })
	wait(t, c.hellos, "hello")
	f.srv.Post(f.alice.ID, f.ch.ID, "nobody acks")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := f.srv.WaitFor(ctx, "the event to fail", func() bool {
		d := f.srv.Deliveries()
		return len(d) == 1 && d[0].Failed
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.srv.Deliveries()[0].Envelopes); n != 3 {
		t.Errorf("%d attempts, want 1 + 2 retries", n)
	}
}

func TestDisconnectAndDropReconnect(t *testing.T) {
	f := newFixture(t, slacktest.Options{NoRateLimits: true, DisconnectGrace: 5 * time.Second})
	c := runSocket(t, f.srv, nil)
	wait(t, c.hellos, "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	f.srv.RequestRefresh()
	// slack-go closes its socket on disconnect, then opens a new one.
	wait(t, c.hellos, "hello after refresh")
	if err := f.srv.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.srv.Post(f.alice.ID, f.ch.ID, "after refresh")
	if m, _ := innerEvent(t, wait(t, c.events, "event after refresh")).(*slackevents.MessageEvent); m == nil || m.Text != "after refresh" {
		t.Errorf("event = %+v", m)
	}

	f.srv.DropConnections()
	wait(t, c.hellos, "hello after drop")
	f.srv.Post(f.alice.ID, f.ch.ID, "after drop")
	if m, _ := innerEvent(t, wait(t, c.events, "event after drop")).(*slackevents.MessageEvent); m == nil || m.Text != "after drop" {
		t.Errorf("event = %+v", m)
	}
	if n := f.srv.ConnectionsOpened(); n != 3 {
		t.Errorf("%d connections opened, want 3", n)
	}

	// A malformed envelope is reported and the socket stays.
	f.srv.SendRaw(`{"type":"events_api","envelope_id":"x","payload":"not an object"}`)
	wait(t, c.other, "error for the malformed envelope")
	f.srv.Post(f.alice.ID, f.ch.ID, "still here")
	wait(t, c.events, "event after the malformed envelope")
	if n := f.srv.ConnectionsOpened(); n != 3 {
		t.Errorf("%d connections opened after the malformed envelope", n)
	}
}

func TestInvalidAppTokenStopsSocketMode(t *testing.T) {
	f := newFixture(t, slacktest.Options{})
	f.srv.RevokeToken(f.srv.AppToken())
	api := slack.New(f.srv.BotToken(), slack.OptionAPIURL(f.srv.APIURL()), slack.OptionAppLevelToken(f.srv.AppToken()))
	sm := socketmode.New(api)
	go func() {
		for range sm.Events { //nolint:revive // drain
		}
	}()
	err := sm.RunContext(context.Background())
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "token_revoked" {
		t.Errorf("Run = %v", err)
	}
}

func TestEventsFromPeopleAndBots(t *testing.T) {
	f := newFixture(t, slacktest.Options{})
	c := runSocket(t, f.srv, nil)
	wait(t, c.hellos, "hello")
	next := func(what string) any { return innerEvent(t, wait(t, c.events, what)) }

	ts := f.srv.Post(f.alice.ID, f.ch.ID, "first")
	next("post")
	reply := f.srv.Reply(f.alice.ID, f.ch.ID, ts, "in thread")
	if m := next("reply").(*slackevents.MessageEvent); m.ThreadTimeStamp != ts || m.TimeStamp != reply {
		t.Errorf("reply = %+v", m)
	}
	f.srv.Edit(f.alice.ID, f.ch.ID, ts, "first, edited")
	if m := next("edit").(*slackevents.MessageEvent); m.SubType != "message_changed" || m.Message.Text != "first, edited" ||
		m.PreviousMessage.Text != "first" || m.Message.Edited == nil {
		t.Errorf("edit = %+v", m)
	}
	f.srv.Delete(f.alice.ID, f.ch.ID, reply)
	if m := next("delete").(*slackevents.MessageEvent); m.SubType != "message_deleted" || m.DeletedTimeStamp != reply || m.PreviousMessage.Text != "in thread" {
		t.Errorf("delete = %+v", m)
	}
	f.srv.MeMessage(f.alice.ID, f.ch.ID, "waves")
	if m := next("me").(*slackevents.MessageEvent); m.SubType != "me_message" {
		t.Errorf("me = %+v", m)
	}
	_, fileID := f.srv.ShareFile(slacktest.FileShare{User: f.alice.ID, Channel: f.ch.ID, Name: "a.txt", Content: []byte("abc"), Text: "a file"})
	if m := next("file").(*slackevents.MessageEvent); m.SubType != "file_share" || len(m.Message.Files) != 1 ||
		m.Message.Files[0].ID != fileID || m.Message.Files[0].URLPrivate == "" {
		t.Errorf("file = %+v", m)
	}
	other := f.srv.AddBot("GitHub")
	f.srv.BotPost(other.ID, f.ch.ID, "build passed", "github")
	if m := next("bot").(*slackevents.MessageEvent); m.SubType != "bot_message" || m.BotID != other.ID || m.Username != "github" {
		t.Errorf("bot = %+v", m)
	}
	f.srv.React(f.alice.ID, f.ch.ID, ts, "tada")
	if r := next("reaction").(*slackevents.ReactionAddedEvent); r.Reaction != "tada" || r.Item.Timestamp != ts || r.User != f.alice.ID {
		t.Errorf("reaction = %+v", r)
	}
	f.srv.Unreact(f.alice.ID, f.ch.ID, ts, "tada")
	if _, ok := next("unreaction").(*slackevents.ReactionRemovedEvent); !ok {
		t.Error("no reaction_removed")
	}
	other2 := f.srv.AddChannel(slacktest.Channel{Name: "new", Members: []string{f.alice.ID}})
	f.srv.Post(f.alice.ID, other2.ID, "not seen: the bot is not in this channel")
	f.srv.InviteBot(f.alice.ID, other2.ID)
	if j := next("join").(*slackevents.MemberJoinedChannelEvent); j.User != f.srv.BotUserID() || j.Inviter != f.alice.ID || j.Channel != other2.ID {
		t.Errorf("join = %+v", j)
	}
	f.srv.Archive(f.alice.ID, other2.ID)
	if a := next("archive").(*slackevents.ChannelArchiveEvent); a.Channel != other2.ID {
		t.Errorf("archive = %+v", a)
	}
	f.srv.Unarchive(f.alice.ID, other2.ID)
	if _, ok := next("unarchive").(*slackevents.ChannelUnarchiveEvent); !ok {
		t.Error("no channel_unarchive")
	}
	// A private channel's are group_archive and group_unarchive, for its
	// members only.
	secret := f.srv.AddChannel(slacktest.Channel{Name: "secret", Private: true, Members: []string{f.alice.ID, f.srv.BotUserID()}})
	f.srv.Archive(f.alice.ID, secret.ID)
	if a := next("group archive").(*slackevents.GroupArchiveEvent); a.Channel != secret.ID {
		t.Errorf("group archive = %+v", a)
	}
	f.srv.Unarchive(f.alice.ID, secret.ID)
	if a, ok := next("group unarchive").(*slackevents.GroupUnarchiveEvent); !ok || a.Channel != secret.ID {
		t.Errorf("group unarchive = %+v", a)
	}
	f.srv.UpdateUser(f.alice.ID, func(u *slacktest.User) { u.RealName = "Alice L." })
	if u := next("user_change").(*slackevents.UserChangeEvent); u.User.RealName != "Alice L." || u.User.ID != f.alice.ID {
		t.Errorf("user_change = %+v", u)
	}
}
