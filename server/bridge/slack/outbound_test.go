package slack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

func TestMattermostEventsReachSlack(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	s, ctx := h.srv, ctxT(t)

	d := h.delivery(bridge.KindMessage, "hi @alice, **bold** [docs](https://example.com/docs)")
	d.Mentions = []bridge.Mention{{Text: "@alice", Person: bridge.Sender{Network: bridge.NetworkSlack, ID: s.Team().ID + "/" + h.alice.ID}}}
	root, err := h.b.Deliver(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := s.Message(h.ch.ID, root)
	if !ok {
		t.Fatalf("no message %s", root)
	}
	if m.Username != "Bob Builder" || m.BotID != s.BotID() || !strings.Contains(m.Text, "<@"+h.alice.ID+">") ||
		!strings.Contains(m.Text, "<https://example.com/docs|docs>") || !strings.Contains(string(m.Metadata), metadataType) {
		t.Errorf("posted %+v", m)
	}

	r := h.delivery(bridge.KindMessage, "a reply")
	r.ParentID = root
	reply, err := h.b.Deliver(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if th := s.Thread(h.ch.ID, root); len(th) != 2 || th[1].TS != reply {
		t.Errorf("thread = %+v", th)
	}

	e := h.delivery(bridge.KindEdit, "edited")
	e.TargetID = root
	if _, err := h.b.Deliver(ctx, e); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(h.ch.ID, root); m.Text != "edited" || m.Edited == nil {
		t.Errorf("after the edit: %+v", m)
	}

	// Two Mattermost people react alike: Slack shows the bot's one
	// reaction until both took theirs back.
	react := func(kind bridge.Kind, who string) {
		t.Helper()
		x := h.delivery(kind, "")
		x.TargetID, x.Emoji, x.Sender.ID = root, "+1", who
		if _, err := h.b.Deliver(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	reactions := func() string {
		m, _ := s.Message(h.ch.ID, root)
		return fmt.Sprint(m.Reactions)
	}
	react(bridge.KindReactionAdd, "mm-bob")
	react(bridge.KindReactionAdd, "mm-dan")
	if got := reactions(); got != "[{+1 ["+s.BotUserID()+"]}]" {
		t.Errorf("reactions = %s", got)
	}
	react(bridge.KindReactionRemove, "mm-bob")
	if got := reactions(); got == "[]" {
		t.Errorf("the reaction went while dan still has it")
	}
	react(bridge.KindReactionRemove, "mm-dan")
	if got := reactions(); got != "[]" {
		t.Errorf("reactions after both removed = %s", got)
	}

	f := h.delivery(bridge.KindMessage, "the plan")
	f.ParentID = root
	f.Attachments = []bridge.Attachment{{Name: "plan.txt", MIMEType: "text/plain", Size: 4, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader([]byte("plan"))), nil
	}}}
	fileMsg, err := h.b.Deliver(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	fm, ok := s.Message(h.ch.ID, fileMsg)
	if !ok || len(fm.Files) != 1 || string(fm.Files[0].Content) != "plan" || fm.ThreadTS != root || !strings.Contains(fm.Text, "Bob Builder") {
		t.Errorf("file message %q = %+v", fileMsg, fm)
	}

	del := h.delivery(bridge.KindDelete, "")
	del.TargetID = reply
	if _, err := h.b.Deliver(ctx, del); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Message(h.ch.ID, reply); ok {
		t.Error("the reply is still there")
	}

	// A Slack person's message is not the bot's to delete.
	theirs := s.Post(h.alice.ID, h.ch.ID, "mine")
	mod := h.delivery(bridge.KindDelete, "")
	mod.TargetID, mod.Moderate = theirs, true
	_, err = h.b.Deliver(ctx, mod)
	if bridge.DropCode(err) != bridge.ReasonNoRights {
		t.Errorf("moderated delete: %v", err)
	}
	mod.Moderate = false
	_, err = h.b.Deliver(ctx, mod)
	if bridge.DropCode(err) != bridge.ReasonNoRights {
		t.Errorf("delete of a person's message: %v", err)
	}
	if _, ok := s.Message(h.ch.ID, theirs); !ok {
		t.Error("alice's message was deleted")
	}
}

// TestRateLimitedPostsKeepOrder runs 200 deliveries through the core's bus
// against a chat.postMessage that answers 429 on every third call: each
// refused one is retried where it stood, and all arrive once, in order.
func TestRateLimitedPostsKeepOrder(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	h.srv.ForceRateLimit("chat.postMessage", 3, 0)
	bus := bridge.NewBus(bridge.BusOptions{InitialBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), failsafe)
		defer cancel()
		bus.Close(ctx)
	})
	const n = 200
	key := bridge.QueueKey{Link: h.linkID, Dest: "slack|" + h.ch.ID}
	dropped := make(chan string, n)
	for i := range n {
		d := h.delivery(bridge.KindMessage, fmt.Sprintf("message %03d", i))
		err := bus.Enqueue(key, bridge.Item{
			Label: "message",
			Task:  func(ctx context.Context) error { _, err := h.b.Deliver(ctx, d); return err },
			Done: func(reason string, err error) {
				if reason != "" {
					dropped <- fmt.Sprintf("%s: %s: %v", d.Text, reason, err)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := h.srv.WaitMessages(ctxT(t), h.ch.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-dropped:
		t.Fatalf("dropped %s", d)
	default:
	}
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("message %03d", i); m.Text != want {
			t.Fatalf("message %d is %q, want %q", i, m.Text, want)
		}
	}
	limited := 0
	for _, c := range h.srv.Calls() {
		if c.Method == "chat.postMessage" && c.Status == 429 {
			limited++
		}
	}
	if limited < n/3 {
		t.Errorf("only %d calls were rate limited", limited)
	}
}

func TestDeliveryErrorsAreClear(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	s, ctx := h.srv, ctxT(t)
	outside := s.AddChannel(slacktest.Channel{Name: "outside", Members: []string{h.alice.ID}})
	d := h.delivery(bridge.KindMessage, "hello")
	d.Room = outside.ID
	_, err := h.b.Deliver(ctx, d)
	if bridge.DropCode(err) != "not_in_channel" || !strings.Contains(err.Error(), "/invite") {
		t.Errorf("delivery to a channel without the bot: %v", err)
	}
	d.Room = "C0NOSUCHONE"
	if _, err = h.b.Deliver(ctx, d); bridge.DropCode(err) != "channel_not_found" {
		t.Errorf("delivery to a missing channel: %v", err)
	}
	s.Archive(h.alice.ID, h.ch.ID)
	d.Room = h.ch.ID
	// Whether channel_archive or Slack's is_archived answer comes first,
	// the delivery is dropped as archived (see archive_test.go).
	if _, err = h.b.Deliver(ctx, d); bridge.DropCode(err) != bridge.ReasonArchived {
		t.Errorf("delivery to an archived channel: %v", err)
	}
	s.Unarchive(h.alice.ID, h.ch.ID)
	waitArchived(t, h, h.ch.ID, false)
	s.FailNext("chat.postMessage", "internal_error")
	if _, err = h.b.Deliver(ctx, d); err == nil || bridge.IsPermanent(err) {
		t.Errorf("a server error should be retried: %v", err)
	}
	if _, err = h.b.Deliver(ctx, d); err != nil {
		t.Errorf("after the server error: %v", err)
	}
	h.assertNoSecrets(t, fmt.Sprint(err), h.b.Health().LastError, h.b.Health().Detail)

	// The checks /slackbridge map runs.
	if _, err := h.b.CheckRoom(ctx, outside.ID); err == nil || !strings.Contains(err.Error(), "/invite @bridge") {
		t.Errorf("CheckRoom of a channel without the bot: %v", err)
	}
	secret := s.AddChannel(slacktest.Channel{Name: "secret", Private: true, Members: []string{h.alice.ID}})
	if _, err := h.b.CheckRoom(ctx, secret.ID); err == nil || !strings.Contains(err.Error(), "/invite @bridge") {
		t.Errorf("CheckRoom of a private channel without the bot: %v", err)
	}
	s.InviteBot(h.alice.ID, secret.ID)
	if got, err := h.b.CheckRoom(ctx, strings.ToLower(secret.ID)); err != nil || got != secret.ID {
		t.Errorf("CheckRoom of a private channel with the bot = %q, %v", got, err)
	}
	if name := h.b.RoomName(ctx, secret.ID); name != "secret" {
		t.Errorf("RoomName = %q", name)
	}
}

func TestMissingScopesAreNamed(t *testing.T) {
	var scopes []string
	for _, sc := range slacktest.DefaultBotScopes {
		if sc != "reactions:write" {
			scopes = append(scopes, sc)
		}
	}
	h := newHarness(t, slacktest.Options{BotScopes: scopes})
	if hl := h.b.Health(); !strings.Contains(hl.Detail, "missing scopes: reactions:write") {
		t.Errorf("health detail = %q", hl.Detail)
	}
	root, err := h.b.Deliver(ctxT(t), h.delivery(bridge.KindMessage, "x"))
	if err != nil {
		t.Fatal(err)
	}
	r := h.delivery(bridge.KindReactionAdd, "")
	r.TargetID, r.Emoji = root, "smile"
	_, err = h.b.Deliver(ctxT(t), r)
	if bridge.DropCode(err) != "missing_scope" || !strings.Contains(err.Error(), "reactions:write") {
		t.Errorf("reaction without the scope: %v", err)
	}
}
