package main

import (
	"fmt"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

// Two quick edits of a Slack message, the second back to the text before
// the first: the Mattermost post ends with the last. GetPost reads a
// replica, which may not have the first edit yet when the second comes
// (the tests run with the replica lag on), so the post must not be judged
// unchanged from that read.
func TestSlackQuickEditsEndWithTheLast(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)
	h := newSlackHarness(t, slack, nil)
	h.command("/slackbridge map "+sch.ID, "Linked this channel")
	ts := slack.Post(sam.ID, sch.ID, "first")
	p := waitPost(t, h.s, h.ch, "sam's message", func(p *model.Post) bool { return p.Message == "first" })
	for round := range 3 {
		slack.Edit(sam.ID, sch.ID, ts, "second")
		slack.Edit(sam.ID, sch.ID, ts, "first")
		// The channel's events are handed on in order: once the marker
		// is in, both edits were applied.
		marker := fmt.Sprintf("marker %d", round)
		slack.Post(sam.ID, sch.ID, marker)
		waitPost(t, h.s, h.ch, marker, func(q *model.Post) bool { return q.Message == marker })
		h.s.WaitHooks(wait)
		if got := h.s.Post(p.Id).Message; got != "first" {
			t.Fatalf("round %d: the post says %q, want %q", round, got, "first")
		}
	}
}
