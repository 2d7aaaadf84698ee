package slack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

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
// The bridge's own pacing is off, so that the 429s are what it meets
// (TestFloodKeepsToSlacksPostingRate keeps it on).
func TestRateLimitedPostsKeepOrder(t *testing.T) {
	h := newTunedHarness(t, slacktest.Options{NoRateLimits: true}, func(b *Bridge) {
		b.postPace = newChannelPacers(0, 1)
	})
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

// TestFloodKeepsToSlacksPostingRate sends 200 Mattermost posts into one
// channel through the core's bus against the test server's real limit
// (one message a second per channel after a burst of three): they arrive
// in order and without a 429, and a post to another channel meanwhile is
// not held behind the flood. It waits out Slack's rate, over three
// minutes, so it runs beside the other tests.
func TestFloodKeepsToSlacksPostingRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slacktest.Options{})
	s := h.srv
	const n = 200
	// n messages at Slack's rate come on top of the usual failsafe.
	ctx, cancel := context.WithTimeout(context.Background(), n*time.Second+failsafe)
	defer cancel()
	other := s.AddChannel(slacktest.Channel{Name: "other", Members: []string{h.alice.ID, s.BotUserID()}})
	otherLink := model.NewId()
	h.link(t, otherLink, other.ID)

	bus := bridge.NewBus(bridge.BusOptions{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), failsafe)
		defer cancel()
		bus.Close(ctx)
	})
	dropped := make(chan string, n+1)
	enqueue := func(link string, d *bridge.Delivery) {
		t.Helper()
		err := bus.Enqueue(bridge.QueueKey{Link: link, Dest: "slack|" + d.Room}, bridge.Item{
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
	start := time.Now()
	for i := range n {
		enqueue(h.linkID, h.delivery(bridge.KindMessage, fmt.Sprintf("flood %03d", i)))
	}
	// Once the burst is spent and the flood goes at Slack's pace, a post
	// to another channel goes out at once, not after the flood.
	if _, err := s.WaitMessages(ctx, h.ch.ID, 5); err != nil {
		t.Fatal(err)
	}
	d := h.delivery(bridge.KindMessage, "elsewhere")
	d.Room = other.ID
	enqueue(otherLink, d)
	if _, err := s.WaitMessages(ctx, other.ID, 1); err != nil {
		t.Fatal(err)
	}
	if got := len(s.Messages(h.ch.ID)); got >= 50 {
		t.Errorf("the other channel's post waited for %d of the flood's messages", got)
	}

	msgs, err := s.WaitMessages(ctx, h.ch.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d posts into one channel took %s", n, time.Since(start).Round(time.Millisecond))
	select {
	case d := <-dropped:
		t.Fatalf("dropped %s", d)
	default:
	}
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("flood %03d", i); m.Text != want {
			t.Fatalf("message %d is %q, want %q", i, m.Text, want)
		}
	}
	if limited := s.RateLimited("chat.postMessage"); limited != 0 {
		t.Errorf("chat.postMessage was answered 429 %d times", limited)
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
