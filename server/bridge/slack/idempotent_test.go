package slack

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

// deliverAgain delivers d as the bus would: again after a transient
// failure, until it is accepted or refused for good.
func (h *harness) deliverAgain(t *testing.T, d *bridge.Delivery) (string, int) {
	t.Helper()
	ctx := ctxT(t)
	for failures := 0; ; failures++ {
		id, err := h.b.Deliver(ctx, d)
		if err == nil {
			return id, failures
		}
		if bridge.IsPermanent(err) || failures > 3 {
			t.Fatalf("delivery of %q: %v", d.Text, err)
		}
	}
}

// TestLostAnswerPostsOnce: chat.postMessage did its work but the answer
// was lost (a reset connection, an HTTP 500). The retry finds the message
// by the origin in its metadata instead of posting it twice, and later
// edits and deletes reach that one message; a bridge started afresh
// between the two attempts finds it too.
func TestLostAnswerPostsOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		loss    slacktest.Loss
		thread  bool
		restart bool
	}{
		{name: "reset", loss: slacktest.LossReset},
		{name: "500", loss: slacktest.Loss500},
		{name: "reply in a thread", loss: slacktest.LossReset, thread: true},
		{name: "restart between attempts", loss: slacktest.Loss500, restart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, slacktest.Options{NoRateLimits: true})
			s, ctx := h.srv, ctxT(t)
			var parent string
			if tc.thread {
				var err error
				if parent, err = h.b.Deliver(ctx, h.delivery(bridge.KindMessage, "the parent")); err != nil {
					t.Fatal(err)
				}
			}
			before := len(s.Messages(h.ch.ID))
			d := h.delivery(bridge.KindMessage, "only once")
			d.ParentID = parent
			s.LoseNextAnswer("chat.postMessage", tc.loss)
			if _, err := h.b.Deliver(ctx, d); err == nil || bridge.IsPermanent(err) {
				t.Fatalf("a lost answer should be retried: %v", err)
			}
			if tc.restart {
				h.stop(t, h.b)
				h.start(t)
			}
			id, _ := h.deliverAgain(t, d)
			msgs := s.Messages(h.ch.ID)
			if len(msgs) != before+1 {
				t.Fatalf("%d messages after the retry, want %d: %+v", len(msgs), before+1, msgs)
			}
			if last := msgs[len(msgs)-1]; last.TS != id || last.Text != "only once" || last.ThreadTS != parent {
				t.Fatalf("the retry answered %q; the message is %+v", id, last)
			}

			e := h.delivery(bridge.KindEdit, "edited once")
			e.TargetID = id
			if _, err := h.b.Deliver(ctx, e); err != nil {
				t.Fatal(err)
			}
			if m, _ := s.Message(h.ch.ID, id); m.Text != "edited once" {
				t.Errorf("after the edit: %+v", m)
			}
			del := h.delivery(bridge.KindDelete, "")
			del.TargetID = id
			if _, err := h.b.Deliver(ctx, del); err != nil {
				t.Fatal(err)
			}
			if got := len(s.Messages(h.ch.ID)); got != before {
				t.Errorf("%d messages after the delete, want %d", got, before)
			}
		})
	}
}

// TestLostUploadAnswerSharesOnce: files.completeUploadExternal shared the
// file but its answer was lost; the retry finds the shared message rather
// than uploading and sharing the file again.
func TestLostUploadAnswerSharesOnce(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	s, ctx := h.srv, ctxT(t)
	d := h.delivery(bridge.KindMessage, "the plan")
	d.Attachments = []bridge.Attachment{{Name: "plan.txt", MIMEType: "text/plain", Size: 4, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader([]byte("plan"))), nil
	}}}
	s.LoseNextAnswer("files.completeUploadExternal", slacktest.LossReset)
	if _, err := h.b.Deliver(ctx, d); err == nil || bridge.IsPermanent(err) {
		t.Fatalf("a lost answer should be retried: %v", err)
	}
	id, _ := h.deliverAgain(t, d)
	msgs := s.Messages(h.ch.ID)
	if len(msgs) != 1 || msgs[0].TS != id || len(msgs[0].Files) != 1 {
		t.Fatalf("the retry answered %q; the channel has %+v", id, msgs)
	}
}

// TestRetriesOfEditsAndReactionsAreIdempotent: chat.update, chat.delete,
// reactions.add and reactions.remove did their work but the answer was
// lost; the retry finds the work done (Slack answers already_reacted,
// no_reaction, message_not_found, or updates to the same text) and counts
// it a success, and what the bridge remembers matches Slack.
func TestRetriesOfEditsAndReactionsAreIdempotent(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	s, ctx := h.srv, ctxT(t)
	root, err := h.b.Deliver(ctx, h.delivery(bridge.KindMessage, "first"))
	if err != nil {
		t.Fatal(err)
	}
	// The retry's answer says the work was done already (or, for an
	// edit, does it again).
	lostThenRetried := func(method string, d *bridge.Delivery, retryAnswer string) {
		t.Helper()
		s.LoseNextAnswer(method, slacktest.LossReset)
		if id, failures := h.deliverAgain(t, d); failures != 1 || id != root {
			t.Fatalf("%s: %d failures, answered %q", method, failures, id)
		}
		calls := s.Calls()
		if last := calls[len(calls)-1]; last.Method != method || last.Error != retryAnswer {
			t.Errorf("the retry of %s: %s answered %q, want %q", method, last.Method, last.Error, retryAnswer)
		}
	}
	reactions := func() string {
		m, _ := s.Message(h.ch.ID, root)
		var out []string
		for _, r := range m.Reactions {
			out = append(out, r.Name+":"+strings.Join(r.Users, ","))
		}
		return strings.Join(out, " ")
	}

	e := h.delivery(bridge.KindEdit, "second")
	e.TargetID = root
	lostThenRetried("chat.update", e, "")
	if m, _ := s.Message(h.ch.ID, root); m.Text != "second" {
		t.Errorf("after the edit: %+v", m)
	}

	add := h.delivery(bridge.KindReactionAdd, "")
	add.TargetID, add.Emoji = root, "tada"
	lostThenRetried("reactions.add", add, "already_reacted")
	if got := reactions(); got != "tada:"+s.BotUserID() {
		t.Errorf("reactions after the add = %q", got)
	}
	// The add's retry recorded bob: dan's reaction and bob's taking his
	// back leave the bot's reaction, dan's taking his back removes it.
	dan := h.delivery(bridge.KindReactionAdd, "")
	dan.TargetID, dan.Emoji, dan.Sender.ID = root, "tada", "mm-dan"
	if _, err := h.b.Deliver(ctx, dan); err != nil {
		t.Fatal(err)
	}
	rm := h.delivery(bridge.KindReactionRemove, "")
	rm.TargetID, rm.Emoji = root, "tada"
	if _, err := h.b.Deliver(ctx, rm); err != nil {
		t.Fatal(err)
	}
	if got := reactions(); got != "tada:"+s.BotUserID() {
		t.Errorf("reactions after bob took his back = %q", got)
	}
	danRm := h.delivery(bridge.KindReactionRemove, "")
	danRm.TargetID, danRm.Emoji, danRm.Sender.ID = root, "tada", "mm-dan"
	lostThenRetried("reactions.remove", danRm, "no_reaction")
	if got := reactions(); got != "" {
		t.Errorf("reactions after both took theirs back = %q", got)
	}
	if who, err := h.b.reactors(h.ch.ID + "|" + root + "|tada"); err != nil || len(who) != 0 {
		t.Errorf("the bridge still counts %v reacting (%v)", who, err)
	}

	del := h.delivery(bridge.KindDelete, "")
	del.TargetID = root
	lostThenRetried("chat.delete", del, "message_not_found")
	if _, ok := s.Message(h.ch.ID, root); ok {
		t.Error("the message is still there")
	}
}

// TestDeliveryOfADeadBridgeIsNotRepeated: a bridge posted (or shared an
// upload) and stopped before the core recorded it, as a node of a cluster
// that dies right after the answer; the next bridge is handed the same
// delivery again. It finds the message by its origin (or the upload by its
// files) instead of posting it a second time, and a part of a split message
// is not taken for the first.
func TestDeliveryOfADeadBridgeIsNotRepeated(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files bool
	}{{name: "post"}, {name: "upload", files: true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, slacktest.Options{NoRateLimits: true})
			s, ctx := h.srv, ctxT(t)
			d := h.delivery(bridge.KindMessage, "sent, then the bridge died")
			if tc.files {
				d.Attachments = []bridge.Attachment{{Name: "plan.txt", MIMEType: "text/plain", Size: 4, Open: func(context.Context) (io.ReadCloser, error) {
					return io.NopCloser(bytes.NewReader([]byte("plan"))), nil
				}}}
			}
			first, err := h.b.Deliver(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			before := len(s.Messages(h.ch.ID))
			h.stop(t, h.b)
			h.start(t)
			again, err := h.b.Deliver(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(s.Messages(h.ch.ID)); got != before || again != first {
				t.Fatalf("the next bridge answered %q (first %q) and the channel has %d messages, want %d: %+v", again, first, got, before, s.Messages(h.ch.ID))
			}
			if tc.files {
				return
			}
			part := *d
			part.Part, part.Text = 1, "the second part"
			if _, err := h.b.Deliver(ctx, &part); err != nil {
				t.Fatal(err)
			}
			if msgs := s.Messages(h.ch.ID); len(msgs) != before+1 || msgs[len(msgs)-1].Text != "the second part" {
				t.Fatalf("the second part of the message: %+v", msgs)
			}
		})
	}
}
