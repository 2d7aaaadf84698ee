package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
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
	calls := func() map[string]int64 { return h.n.APICalls() }
	perMessage := func(before map[string]int64) (float64, string) {
		after := calls()
		var total int64
		var by []string
		for _, m := range slices.Sorted(maps.Keys(after)) {
			if d := after[m] - before[m]; d > 0 {
				total += d
				by = append(by, fmt.Sprintf("%s %.2f", m, float64(d)/n))
			}
		}
		return float64(total) / n, strings.Join(by, ", ")
	}

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

	before := calls()
	for i := range n {
		say(fmt.Sprintf("in %d", i))
	}
	if got, by := perMessage(before); got > callsPerMessageIn {
		t.Errorf("a message from the remote room made %.2f plugin API calls (budget %d): %s", got, callsPerMessageIn, by)
	} else {
		t.Logf("in: %.2f calls per message: %s", got, by)
	}

	before = calls()
	for i := range n {
		post(fmt.Sprintf("out %d", i))
	}
	if got, by := perMessage(before); got > callsPerMessageOut {
		t.Errorf("a post bridged to the remote room made %.2f plugin API calls (budget %d): %s", got, callsPerMessageOut, by)
	} else {
		t.Logf("out: %.2f calls per message: %s", got, by)
	}
}
