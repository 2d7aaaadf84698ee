package slack

import (
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

// waitArchived waits until the bridge says, for the room, whether it is
// archived, and returns its note.
func waitArchived(t *testing.T, h *harness, room string, want bool) string {
	t.Helper()
	var note string
	eventually(t, "the channel's archived state to be "+map[bool]string{true: "archived", false: "active"}[want], func() bool {
		note = h.b.DescribeRoom(ctxT(t), room).Describe(bridge.NetworkSlack)
		return strings.Contains(note, "archived") == want
	})
	return note
}

// deliverDropped delivers a message and expects it dropped as archived,
// with nothing sent to Slack.
func deliverDropped(t *testing.T, h *harness, room, text string) {
	t.Helper()
	before := h.srv.CallCount("chat.postMessage")
	d := h.delivery(bridge.KindMessage, text)
	d.Room = room
	_, err := h.b.Deliver(ctxT(t), d)
	if bridge.DropCode(err) != bridge.ReasonArchived || !strings.Contains(err.Error(), "archived") {
		t.Fatalf("delivering to an archived channel: %v (drop code %q), want a drop as %q", err, bridge.DropCode(err), bridge.ReasonArchived)
	}
	if n := h.srv.CallCount("chat.postMessage"); n != before {
		t.Errorf("chat.postMessage was called %d times for an archived channel", n-before)
	}
}

// Issue 11 check 8 (archive): channel_archive makes the link read-only
// (nothing is sent to Slack; what comes meanwhile is dropped as
// "archived", once, not retried), status says so, and channel_unarchive
// resumes it. A private channel's group_archive does the same.
func TestArchivedChannelIsReadOnly(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	priv := h.srv.AddChannel(slacktest.Channel{Name: "secret", Private: true, Members: []string{h.alice.ID, h.srv.BotUserID()}})
	h.link(t, "secretlink0000000000000000", priv.ID)
	for _, ch := range []slacktest.Channel{h.ch, priv} {
		h.srv.Archive(h.alice.ID, ch.ID)
		note := waitArchived(t, h, ch.ID, true)
		if !strings.Contains(note, ch.Name) {
			t.Errorf("the note on %s does not name it: %q", ch.ID, note)
		}
		if hl := h.b.Health(); !strings.Contains(hl.Detail, "archived") || !strings.Contains(hl.Detail, ch.ID) {
			t.Errorf("health does not tell %s is archived: %q", ch.ID, hl.Detail)
		}
		deliverDropped(t, h, ch.ID, "said while archived")

		h.srv.Unarchive(h.alice.ID, ch.ID)
		waitArchived(t, h, ch.ID, false)
		d := h.delivery(bridge.KindMessage, "said after the unarchive")
		d.Room = ch.ID
		ts, err := h.b.Deliver(ctxT(t), d)
		if err != nil {
			t.Fatalf("after the unarchive: %v", err)
		}
		if m, ok := h.srv.Message(ch.ID, ts); !ok || m.Text != "said after the unarchive" {
			t.Errorf("in Slack after the unarchive: %+v", m)
		}
		for _, m := range h.srv.Messages(ch.ID) {
			if strings.Contains(m.Text, "while archived") {
				t.Errorf("what was said while archived reached Slack: %q", m.Text)
			}
		}
	}
}

// The archived state survives a restart, and a channel archived or
// unarchived while the plugin was off is known once it is back
// (conversations.info at the start), before anything is sent.
func TestArchivedStateSurvivesRestart(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	h.srv.Archive(h.alice.ID, h.ch.ID)
	waitArchived(t, h, h.ch.ID, true)
	h.stop(t, h.b)

	// Known from the store at once, before Slack was asked.
	h.start(t)
	if note := h.b.DescribeRoom(ctxT(t), h.ch.ID).Describe(bridge.NetworkSlack); !strings.Contains(note, "archived") {
		t.Errorf("after a restart the channel is not known archived: %q", note)
	}
	deliverDropped(t, h, h.ch.ID, "said while archived, after a restart")

	// Unarchived while the plugin was off.
	h.stop(t, h.b)
	h.srv.Unarchive(h.alice.ID, h.ch.ID)
	h.start(t)
	waitArchived(t, h, h.ch.ID, false)
	if _, err := h.b.Deliver(ctxT(t), h.delivery(bridge.KindMessage, "back")); err != nil {
		t.Fatalf("after an unarchive while off: %v", err)
	}

	// Archived while the plugin was off.
	h.stop(t, h.b)
	h.srv.Archive(h.alice.ID, h.ch.ID)
	h.start(t)
	waitArchived(t, h, h.ch.ID, true)
	deliverDropped(t, h, h.ch.ID, "said after an archive while off")
}

// A channel archived without the bridge hearing of it (the event lost):
// Slack's is_archived answer makes the link read-only too, and the
// delivery is dropped as archived rather than retried.
func TestIsArchivedAnswerMarksChannelArchived(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	// The start's catch-up asks conversations.info, which still says the
	// channel is active: wait for it, so it does not undo what follows.
	eventually(t, "the start's catch-up", func() bool { return h.b.catchUps.Load() > 0 })
	h.srv.FailNext("chat.postMessage", "is_archived")
	d := h.delivery(bridge.KindMessage, "refused")
	if _, err := h.b.Deliver(ctxT(t), d); bridge.DropCode(err) != bridge.ReasonArchived {
		t.Fatalf("an is_archived answer: %v (drop code %q)", err, bridge.DropCode(err))
	}
	waitArchived(t, h, h.ch.ID, true)
	deliverDropped(t, h, h.ch.ID, "and nothing after it")
}
