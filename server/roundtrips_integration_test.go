package main

import (
	"fmt"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/bridgetest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Every plugin API call is a round trip over the RPC boundary, and the
// calls a message makes are most of the plugin's CPU time per message (see
// make bench). This keeps the count from creeping back up: a message from
// a remote room and one from Mattermost may make at most this many calls,
// on a server without read replicas (with them, proving that a message is
// not bridged yet costs two more). A change that needs more must say why
// here.
const (
	callsPerMessageIn  = 8 // remote room -> Mattermost
	callsPerMessageOut = 9 // Mattermost -> remote room
)

func TestPluginAPICallsPerMessageStayWithinBudget(t *testing.T) {
	h := newHarnessWith(t, nil, testhost.WithReplicaLag(0))
	const n = 20
	// The first message of each way makes the remote user, the members
	// and the maps' first records; the budget is for the ones after.
	say := func(text string) {
		t.Helper()
		if _, err := h.net.Say(h.ctx, "lobby", carol, text, ""); err != nil {
			t.Fatal(err)
		}
		h.channelPost(text, func(p *model.Post) bool { return p.Message == text })
	}
	post := func(text string) {
		t.Helper()
		h.post(h.alice, text, "")
		h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Text == text })
	}
	say("warming up in")
	post("warming up out")

	for _, way := range []struct {
		name   string
		send   func(text string)
		budget int
	}{
		{"a message from the remote room", say, callsPerMessageIn},
		{"a post bridged to the remote room", post, callsPerMessageOut},
	} {
		before := h.n.APICalls()
		for i := range n {
			way.send(fmt.Sprintf("%s %d", way.name, i))
		}
		got, by := callsPerMessage(before, h.n.APICalls(), n)
		if got > float64(way.budget) {
			t.Errorf("%s made %.2f plugin API calls (budget %d): %s", way.name, got, way.budget, by)
		} else {
			t.Logf("%s: %.2f calls: %s", way.name, got, by)
		}
	}
}
