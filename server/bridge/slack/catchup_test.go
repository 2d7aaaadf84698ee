package slack

import (
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

// An edit made while the bridge was away is caught up once: from the
// history when Slack gave up on its event (an outage longer than Slack's
// retries), and not a second time when the event comes too. Of two edits
// made meanwhile the history tells only the last; an event of the first
// coming after it must not put the older text back.
func TestEditWhileAwayIsCaughtUpOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lost  bool
		edits []string
	}{
		{"Slack gave up on the event", true, []string{"fixed"}},
		{"Slack delivers the event too", false, []string{"fixed"}},
		{"two edits, Slack delivers the events too", false, []string{"fixed", "fixed again"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, slacktest.Options{NoRateLimits: true})
			s := h.srv
			old := s.Post(h.alice.ID, h.ch.ID, "typo")
			last := s.Post(h.alice.ID, h.ch.ID, "last before")
			h.rec.wait(t, 2)
			eventually(t, "the cursor saved", func() bool {
				v, ok, _ := h.st.GetCursor(h.linkID, cursorKey(h.ch.ID))
				return ok && v == last
			})
			h.stop(t, h.b)
			// What Slack sends meanwhile waits for the next socket, and
			// comes on it before the live message below.
			if err := s.WaitConnections(ctxT(t), 0); err != nil {
				t.Fatal(err)
			}

			s.Post(h.alice.ID, h.ch.ID, "missed 1")
			for _, text := range tc.edits {
				s.Edit(h.alice.ID, h.ch.ID, old, text)
			}
			s.Post(h.alice.ID, h.ch.ID, "missed 2")
			if tc.lost && s.GiveUpUnacked() == 0 {
				t.Fatal("no event was left to give up on")
			}
			h.start(t)
			// A live message behind: once it is in, so is what came
			// before it, and any copy of it.
			s.Post(h.alice.ID, h.ch.ID, "live")
			var evs []bridge.Event
			for n := 1; len(evs) == 0 || evs[len(evs)-1].Text != "live"; n = len(evs) + 1 {
				evs = h.rec.wait(t, n)
			}
			if len(evs) != 4 || evs[0].Text != "missed 1" || evs[2].Text != "missed 2" {
				t.Fatalf("events: %s", describe(evs))
			}
			if e := evs[1]; e.Kind != bridge.KindEdit || e.Target != old || e.Text != tc.edits[len(tc.edits)-1] {
				t.Errorf("the edit is %+v", e)
			}
		})
	}
}
