package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// haHarness is an xmppHarness on a cluster: every node runs the plugin
// bundle (so a node can be killed), the bridge in client mode.
type haHarness struct {
	*xmppHarness
	nodes []*testhost.Node
}

func newHAHarness(t *testing.T, nodes int, extra map[string]any) *haHarness {
	t.Helper()
	x := &xmppHarness{channelHarness: channelHarness{t: t}}
	var cancel context.CancelFunc
	x.ctx, cancel = context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	x.xmpp = startXMPPServer(t, testservers.Prosody, testservers.Options{})
	x.xmpp.CreateUser(t, "bridge", bridgePassword)
	x.xmpp.CreateUser(t, "carol", "carol-pw")
	x.room = x.xmpp.RoomJID(t, "dev")
	x.occupant = x.xmpp.Client(t, "carol", "carol-pw")
	if err := x.occupant.JoinRoom(x.ctx, x.room, "Carol"); err != nil {
		t.Fatal(err)
	}
	x.s = testhost.NewServer(t, testhost.WithBundle(testhost.PluginDir(t)), testhost.WithNodes(nodes),
		testhost.WithPluginSettings(mergeSettings(xmppSettings(x.xmpp, "client"), extra)))
	h := &haHarness{xmppHarness: x, nodes: x.s.Nodes()}
	h.start("xmpp-dev")
	waitConnected(t, x.n, x.admin, x.ch, "xmppbridge", "XMPP")
	x.command("/xmppbridge map "+x.room.String(), "Linked this channel")
	return h
}

// start activates the bundle on every node and makes the people and the
// channel. Commands go through a node that does not hold the bridge,
// which hands them to the holder.
func (h *haHarness) start(channel string) {
	h.t.Helper()
	for _, n := range h.nodes {
		if err := n.Activate(); err != nil {
			h.t.Fatal(err)
		}
	}
	h.admin, h.alice, h.bob = createPeople(h.s)
	h.ch = channelOf(h.s, channel, h.admin, h.alice, h.bob)
	h.n = h.follower(h.holder(nil))
}

// holder waits for the node that holds the bridge (not old, a node that
// held it before) and returns it: the one whose log says it took the lease
// the KV store shows.
func (h *haHarness) holder(old *testhost.Node) *testhost.Node {
	h.t.Helper()
	var found *testhost.Node
	testhost.WaitFor(h.t, 60*time.Second, func() bool {
		raw, appErr := h.s.KV().KVGet("lease:" + bridgeLease)
		if appErr != nil || raw == nil {
			return false
		}
		var l struct {
			Holder string `json:"holder"`
		}
		if json.Unmarshal(raw, &l) != nil {
			return false
		}
		for _, n := range h.nodes {
			if n == old || !n.IsActive() {
				continue
			}
			for _, line := range n.Logs() {
				if strings.Contains(line, "holds the bridge's connections") && strings.Contains(line, l.Holder) {
					found = n
					return true
				}
			}
		}
		return false
	}, "a node to hold the bridge")
	return found
}

// follower is an active node other than holder.
func (h *haHarness) follower(holder *testhost.Node) *testhost.Node {
	for _, n := range h.nodes {
		if n != holder && n.IsActive() {
			return n
		}
	}
	h.t.Fatal("no follower node")
	return nil
}

// tcpClients counts the established TCP connections to a local port, from
// any process: the XMPP server's client sessions.
func tcpClients(t *testing.T, addr string) int {
	t.Helper()
	_, portText, _ := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	want := fmt.Sprintf(":%04X", port)
	count := 0
	eachTCPSocket(func(fields []string) bool {
		// local_address rem_address st: a client's socket has the
		// server's port as its remote end; 01 is ESTABLISHED.
		if len(fields) > 3 && strings.HasSuffix(fields[2], want) && fields[3] == "01" {
			count++
		}
		return true
	})
	return count
}

// eachTCPSocket calls f with the fields of each line of the kernel's
// TCP socket tables, while it returns true.
func eachTCPSocket(f func(fields []string) bool) {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			if !f(strings.Fields(sc.Text())) {
				file.Close()
				return
			}
		}
		file.Close()
	}
}

// Issue 12 check 1 (XMPP and Slack): on three nodes exactly one XMPP
// session and one Slack socket of the bridge exist, and a post made
// through any node reaches the room once.
func TestClusterHoldsOneConnectionPerNetwork(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	h := newHAHarness(t, 3, slackSettings(slack))
	holder := h.holder(nil)
	// carol's session and the bridge's, and no other: the followers try
	// the lease every second and never connect.
	time.Sleep(3 * time.Second)
	if n := tcpClients(t, h.xmpp.C2SAddr()); n != 2 {
		t.Errorf("%d client sessions on the XMPP server, want 2 (carol and one bridge)", n)
	}
	if n := slack.OpenConnections(); n != 1 {
		t.Errorf("%d Slack sockets open, want 1", n)
	}
	var want []string
	for i, n := range h.nodes {
		text := fmt.Sprintf("mm via node %d", i)
		postAs(t, n, h.alice, h.ch, text, "")
		want = append(want, "Alice Liddell: "+text)
	}
	h.expectExactlyOnceInOrder("the room", func() []string { return filterPrefix(h.roomBodies(h.occupant), "Alice Liddell: mm ") }, want)
	if _, err := h.occupant.Say(h.ctx, h.room, "x from carol"); err != nil {
		t.Fatal(err)
	}
	h.expectExactlyOnceInOrder("the channel", func() []string { return filterPrefix(h.remotePosts(), "x ") }, []string{"x from carol"})
	if again := h.holder(nil); again != holder {
		t.Errorf("the bridge moved from %s to %s while all nodes ran", holder.ID(), again.ID())
	}
}

// Issue 12 check 2 (XMPP part): the node holding the bridge dies while
// messages flow both ways (carol in the room, Mattermost people on the
// surviving nodes); another node takes over, and every message arrives
// exactly once, in order.
func TestHolderDiesWhileMessagesFlow(t *testing.T) {
	h := newHAHarness(t, 3, nil)
	old := h.holder(nil)
	var survivors []*testhost.Node
	for _, n := range h.nodes {
		if n != old {
			survivors = append(survivors, n)
		}
	}
	const total = 20
	var fromXMPP, fromMM []string
	var killedAt time.Time
	for i := 1; i <= total; i++ {
		x := fmt.Sprintf("x %d", i)
		if _, err := h.occupant.Say(h.ctx, h.room, x); err != nil {
			t.Fatal(err)
		}
		fromXMPP = append(fromXMPP, x)
		mm := fmt.Sprintf("mm %d", i)
		postAs(t, survivors[i%len(survivors)], h.alice, h.ch, mm, "")
		fromMM = append(fromMM, "Alice Liddell: "+mm)
		if i == total/2 {
			if err := old.Kill(); err != nil {
				t.Fatal(err)
			}
			killedAt = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	next := h.holder(old)
	t.Logf("%s took over from %s %v after the kill", next.ID(), old.ID(), time.Since(killedAt).Round(100*time.Millisecond))
	h.expectExactlyOnceInOrder("the channel", func() []string { return filterPrefix(h.remotePosts(), "x ") }, fromXMPP)
	h.expectExactlyOnceInOrder("the room", func() []string { return filterPrefix(h.roomBodies(h.occupant), "Alice Liddell: mm ") }, fromMM)
}

// Issue 12 check 3: the same Matrix transaction delivered to two nodes at
// the same instant makes one post, every time (the follower hands it to
// the holder, which handles both copies at once).
func TestSameMatrixTransactionOnTwoNodesAtOnce(t *testing.T) {
	h := newMatrixHarness(t, dendrite)
	n1 := h.s.AddNode()
	if err := n1.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, n1, h.admin, h.ch, "matrixbridge", "Matrix")
	const rounds = 20
	for i := range rounds {
		body := fmt.Sprintf(`{"events":[{"type":"m.room.message","room_id":%q,"event_id":"$race-%d","sender":%q,"origin_server_ts":%d,"content":{"msgtype":"m.text","body":"race %d"}}]}`,
			h.room, i, h.carol.ID, i+1, i)
		start := make(chan struct{})
		codes := make(chan int, 2)
		for _, node := range []*testhost.Node{h.n, n1} {
			go func() {
				req := httptest.NewRequest(http.MethodPut, fmt.Sprintf("/_matrix/app/v1/transactions/race-%d", i), strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+h.cfg.HSToken)
				<-start
				codes <- node.ServeHTTP("", req).StatusCode
			}()
		}
		close(start)
		for range 2 {
			if code := <-codes; code != http.StatusOK {
				t.Fatalf("round %d: a node answered %d", i, code)
			}
		}
	}
	h.remotePost("the last round", func(p *model.Post) bool { return p.Message == fmt.Sprintf("race %d", rounds-1) })
	h.s.WaitHooks(5 * time.Second)
	for i := range rounds {
		if n := len(filterExact(remotePosts(h.s, h.ch), fmt.Sprintf("race %d", i))); n != 1 {
			t.Errorf("race %d is in the channel %d times", i, n)
		}
	}
}

// Issue 12 check 4: the shared-channels ping of a network's remote reads
// offline while the network is down and online once it is back, on the
// node holding the bridge and on a follower, which asks the holder.
func TestPingFollowsTheNetwork(t *testing.T) {
	h := newXMPPHarnessOn(t, testservers.Prosody, "client")
	follower := h.s.AddNode()
	if err := follower.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
		t.Fatal(err)
	}
	remoteID, appErr := h.n.API(manifest.Id).RegisterPluginForSharedChannels(model.RegisterPluginOpts{
		Displayname: "XMPP", PluginID: manifest.Id, CreatorID: h.admin.Id, SiteURL: "xmpp://" + manifest.Id,
	})
	if appErr != nil {
		t.Fatal(appErr)
	}
	pings := func(want bool) func() bool {
		return func() bool {
			for _, n := range []*testhost.Node{h.n, follower} {
				hooks, err := n.Hooks()
				if err != nil || hooks.OnSharedChannelsPing(&model.RemoteCluster{RemoteId: remoteID}) != want {
					return false
				}
			}
			return true
		}
	}
	testhost.WaitFor(t, wait, pings(true), "both nodes to read the XMPP remote online")
	if err := h.xmpp.Kill(); err != nil {
		t.Fatal(err)
	}
	testhost.WaitFor(t, pingGrace+time.Minute, pings(false), "both nodes to read it offline once the server is gone")
	h.xmpp.Restart(t)
	testhost.WaitFor(t, time.Minute, pings(true), "both nodes to read it online after the restart")
}

// Hooks that fire while no node holds the bridge (the takeover after the
// holder died) are handed on once a node does: an edit and a reaction
// made through a surviving node in that gap reach Slack. The new holder's
// catch-up reads new posts, not edits and reactions of posts it has
// already seen, so a hook lost in the gap is lost for good.
func TestHooksDuringATakeoverReachTheNewHolder(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)
	h := newHAHarness(t, 2, slackSettings(slack))
	waitConnected(t, h.n, h.admin, h.ch, "slackbridge", "Slack")
	h.command("/slackbridge map "+sch.ID, "Linked this channel")
	old := h.holder(nil)
	survivor := h.follower(old)
	post := postAs(t, survivor, h.alice, h.ch, "said before the takeover", "")
	if _, err := slack.WaitMessage(h.ctx, sch.ID, func(m slacktest.Message) bool { return m.Text == "said before the takeover" }); err != nil {
		t.Fatal(err)
	}

	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, appErr := survivor.PatchPost(h.alice.Id, post.Id, "edited during the takeover"); appErr != nil {
		t.Fatal(appErr)
	}
	if _, appErr := survivor.AddReaction(&model.Reaction{UserId: h.bob.Id, PostId: post.Id, EmojiName: "tada"}); appErr != nil {
		t.Fatal(appErr)
	}
	if h.holder(old) != survivor {
		t.Fatal("the survivor did not take over")
	}
	ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
	defer cancel()
	if _, err := slack.WaitMessage(ctx, sch.ID, func(m slacktest.Message) bool {
		return m.Text == "edited during the takeover" && len(m.Reactions) == 1 && m.Reactions[0].Name == "tada"
	}); err != nil {
		t.Fatalf("the edit and the reaction made during the takeover: %v; Slack has %+v", err, slack.Messages(sch.ID))
	}
}
