package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// busDuplicates reads, from the admin status endpoint, how many copies of
// messages already delivered the bus dropped on their way to each
// destination network (the test has one link): a copy dropped there
// reached the plugin a second time.
func busDuplicates(t testing.TB, n *testhost.Node, admin *model.User) map[string]int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "/api/v1/status", http.NoBody)
	res := n.ServeHTTP(admin.Id, req)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status: %d", res.StatusCode)
	}
	var r statusReport
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, n := range r.Networks {
		if n.Network == bridge.NetworkMattermost {
			out[string(n.Network)] = n.Dropped[bridge.ToMattermost][bridge.ReasonDuplicate]
		} else {
			out[string(n.Network)] = n.Dropped[bridge.FromMattermost][bridge.ReasonDuplicate]
		}
	}
	return out
}

// occupantsSeenBy lists the nicks c last saw available in room.
func occupantsSeenBy(c *prosodytest.Client, room jid.JID) []string {
	in := map[string]bool{}
	for _, p := range c.Presences() {
		if p.From.Bare().Equal(room) && p.From.Resourcepart() != "" {
			in[p.From.Resourcepart()] = p.Type != "unavailable"
		}
	}
	var out []string
	for nick, here := range in {
		if here {
			out = append(out, nick)
		}
	}
	slices.Sort(out)
	return out
}

// eveSaysEach has eve say each text in the room, then a marker, and waits
// until all reached the channel and the Matrix room once. Each destination's
// queue is in order and a copy of a message reaches the plugin right behind
// it, so once the marker is through, every copy of the texts before it has
// been dropped and counted.
func eveSaysEach(t *testing.T, h *matrixHarness, eve *prosodytest.Client, xroom jid.JID, texts ...string) {
	t.Helper()
	marker := "marker after " + texts[len(texts)-1]
	for _, text := range append(slices.Clone(texts), marker) {
		if _, err := eve.Say(h.ctx, xroom, text); err != nil {
			t.Fatal(err)
		}
	}
	h.remotePost(marker, func(p *model.Post) bool { return p.Message == marker })
	h.dave.waitEvent(h.room, marker, bodyIs(marker))
	for _, text := range texts {
		if n := len(filterExact(remotePosts(h.s, h.ch), text)); n != 1 {
			t.Fatalf("%q is in the channel %d times", text, n)
		}
	}
}

// Issue 9 item 9: after a component-mode session in which Matrix and
// Mattermost people spoke (so their ghosts joined the XMPP room), a
// restart of the plugin leaves no ghost behind in the room, and no XMPP
// message reaches the plugin twice, before or after the restart.
func TestXMPPComponentRestartLeavesNoDoubles(t *testing.T) {
	h, eve, xroom := newMatrixAndXMPPHarness(t, dendrite, "component")
	ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
	defer cancel()

	// A Matrix person and a Mattermost person speak: their ghosts join.
	h.carol.say(h.room, "from matrix")
	h.post(h.alice, "from mattermost", "")
	for _, text := range []string{"from matrix", "from mattermost"} {
		if _, err := eve.WaitMessage(ctx, func(m prosodytest.Message) bool { return m.Type == "groupchat" && m.Body == text }); err != nil {
			t.Fatalf("waiting for %q in the XMPP room: %v", text, err)
		}
	}
	if got := occupantsSeenBy(eve, xroom); !slices.Equal(got, []string{"Alice Liddell", "Carol Jones", "Eve", "Mattermost"}) {
		t.Fatalf("before the restart the room has %q", got)
	}
	before := busDuplicates(t, h.n, h.admin)
	eveSaysEach(t, h, eve, xroom, "x before 1", "x before 2")
	if after := busDuplicates(t, h.n, h.admin); after["mattermost"] != before["mattermost"] || after["matrix"] != before["matrix"] {
		t.Fatalf("with ghosts in the room, eve's messages reached the plugin more than once: duplicates dropped went from %v to %v", before, after)
	}

	// The restart leaves nobody of the old session in the room: the bot
	// comes back, and a ghost only when its person speaks again (alice).
	// While the plugin is off eve talks, and alice posts: on activation
	// the bridge catches up from the room's archive while alice's post goes
	// out to the room.
	h.s.WaitHooks(10 * time.Second)
	h.n.Deactivate()
	for _, text := range []string{"x while off 1", "x while off 2"} {
		if _, err := eve.Say(h.ctx, xroom, text); err != nil {
			t.Fatal(err)
		}
	}
	h.post(h.alice, "mm while off", "")
	h.activate()
	waitConnected(t, h.n, h.admin, h.ch, "xmppbridge", "XMPP")
	if _, err := eve.WaitMessage(ctx, func(m prosodytest.Message) bool { return m.Type == "groupchat" && m.Body == "mm while off" }); err != nil {
		t.Fatalf("waiting for alice's post made while the plugin was off: %v", err)
	}
	want := []string{"Alice Liddell", "Eve", "Mattermost"}
	var in []string
	for deadline := time.Now().Add(wait); !slices.Equal(in, want); time.Sleep(50 * time.Millisecond) {
		if in = occupantsSeenBy(eve, xroom); time.Now().After(deadline) {
			t.Fatalf("after the restart the room has %q, want %q", in, want)
		}
	}

	// Since the activation (the bus counts from zero again), nothing from
	// XMPP reached the plugin twice: not what the catch-up found, not what
	// eve says now. Counted on the way to Mattermost, where only what comes
	// from XMPP and Matrix goes: the copies dropped on the way to XMPP and
	// Matrix also count Mattermost posts replayed from their cursor on
	// activation, which is how a restart is meant to work.
	eveSaysEach(t, h, eve, xroom, "x after 1", "x after 2", "x after 3")
	if after := busDuplicates(t, h.n, h.admin); after["mattermost"] != 0 {
		t.Fatalf("after the restart, messages reached the plugin more than once: %d copies dropped on their way to Mattermost since the activation (all: %v)", after["mattermost"], after)
	}
	expectExactlyOnceInOrder(t, "eve's messages in the channel", func() []string { return startingWith(remotePosts(h.s, h.ch), "x ") },
		[]string{"x before 1", "x before 2", "x while off 1", "x while off 2", "x after 1", "x after 2", "x after 3"})

	// The ghosts come back when their people speak, and still nothing doubles.
	h.carol.say(h.room, "matrix again")
	h.post(h.alice, "mattermost again", "")
	for _, text := range []string{"matrix again", "mattermost again"} {
		if _, err := eve.WaitMessage(ctx, func(m prosodytest.Message) bool { return m.Type == "groupchat" && m.Body == text }); err != nil {
			t.Fatalf("waiting for %q in the XMPP room: %v", text, err)
		}
	}
	before = busDuplicates(t, h.n, h.admin)
	eveSaysEach(t, h, eve, xroom, "x last")
	if after := busDuplicates(t, h.n, h.admin); after["mattermost"] != before["mattermost"] || after["matrix"] != before["matrix"] {
		t.Fatalf("with the ghosts back, eve's messages reached the plugin more than once: duplicates dropped went from %v to %v", before, after)
	}
	h.expectNoDuplicatePosts("x ")
}

// startingWith keeps the texts of list that start with prefix.
func startingWith(list []string, prefix string) []string {
	var out []string
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// expectNoDuplicatePosts fails if a remote post containing prefix is in the
// channel twice.
func (h *matrixHarness) expectNoDuplicatePosts(prefix string) {
	h.t.Helper()
	seen := map[string]bool{}
	for _, m := range startingWith(remotePosts(h.s, h.ch), prefix) {
		if seen[m] {
			h.t.Fatalf("%q is in the channel twice", m)
		}
		seen[m] = true
	}
}
