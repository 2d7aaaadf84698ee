package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/history"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/homeservertest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// hsProxy stands between the plugin's nodes and the homeserver and counts
// what passes, from outside the plugin: which node's process sent each
// request (the owner of the connection's socket) and how many of the bot's
// /sync requests (the redaction poll's long-polls) were open at once.
type hsProxy struct {
	url   string
	nodes []*testhost.Node
	rp    *httputil.ReverseProxy

	// trap, when set, catches the first request whose body it matches:
	// the proxy passes it to the homeserver and, once the homeserver
	// acted, calls then with the sender's node instead of answering.
	trap atomic.Pointer[proxyTrap]

	mu       sync.Mutex
	byNode   map[string]int // node ID ("" when no node's process owns the socket) -> requests
	syncsBy  map[string]int // node ID -> /sync requests
	open     int            // /sync requests open now
	lastSync time.Time      // when the last /sync request ended
	mostOpen int            // the most ever open at once
}

type proxyConnKey struct{}

type proxyTrap struct {
	match func(r *http.Request, body []byte) bool
	then  func(node string)
}

func startHSProxy(t testing.TB, target string, nodes []*testhost.Node) *hsProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hsProxy{url: "http://" + ln.Addr().String(), nodes: nodes, rp: httputil.NewSingleHostReverseProxy(u),
		byNode: map[string]int{}, syncsBy: map[string]int{}}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, proxyConnKey{}, p.owner(c))
		}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

func (p *hsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	node, _ := r.Context().Value(proxyConnKey{}).(string)
	isSync := strings.HasSuffix(r.URL.Path, "/sync")
	p.mu.Lock()
	p.byNode[node]++
	if isSync {
		p.syncsBy[node]++
		p.open++
		p.mostOpen = max(p.mostOpen, p.open)
	}
	p.mu.Unlock()
	if isSync {
		defer func() {
			p.mu.Lock()
			p.open--
			p.lastSync = time.Now()
			p.mu.Unlock()
		}()
	}
	if trap := p.trap.Load(); trap != nil {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if trap.match(r, body) && p.trap.CompareAndSwap(trap, nil) {
			p.rp.ServeHTTP(httptest.NewRecorder(), r)
			trap.then(node)
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

// counts returns the requests per node, the /sync requests per node and
// the most /sync requests ever open at once.
func (p *hsProxy) counts() (byNode, syncs map[string]int, mostOpen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.byNode), maps.Clone(p.syncsBy), p.mostOpen
}

// quietSync waits (up to d) for a moment when no /sync request is open and
// none comes for a while: the redaction poll pauses 2 s after each answer,
// and the wait ends in the first second of the pause. A node killed while
// its /sync is mid-query leaves Dendrite on SQLite with its database
// locked for good (the sync's snapshot transaction is never ended; every
// write then fails with SQLITE_BUSY, and the roomserver panics), which no
// plugin can prevent from a dying process. The bot's poll is woken by the
// very events a test kills a node after, so a kill that must not also be
// that one waits for the poll's answer first.
func (p *hsProxy) quietSync(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		quiet := p.open == 0 && !p.lastSync.IsZero() && time.Since(p.lastSync) < time.Second
		p.mu.Unlock()
		if quiet {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// owner is the ID of the node whose plugin process holds the client end of
// c, or "" when none does.
func (p *hsProxy) owner(c net.Conn) string {
	client, ok1 := c.RemoteAddr().(*net.TCPAddr)
	server, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return ""
	}
	inode := socketInode(client.Port, server.Port)
	if inode == "" {
		return ""
	}
	link := "socket:[" + inode + "]"
	for _, n := range p.nodes {
		for _, pid := range n.PluginProcesses() {
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err != nil {
				continue
			}
			for _, fd := range fds {
				if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && target == link {
					return n.ID()
				}
			}
		}
	}
	return ""
}

// socketInode finds the inode of the local TCP socket from port local to
// port remote.
func socketInode(local, remote int) string {
	want := fmt.Sprintf(":%04X", local)
	peer := fmt.Sprintf(":%04X", remote)
	inode := ""
	eachTCPSocket(func(fields []string) bool {
		if len(fields) > 9 && strings.HasSuffix(fields[1], want) && strings.HasSuffix(fields[2], peer) {
			inode = fields[9]
			return false
		}
		return true
	})
	return inode
}

// servedTxn is an application-service transaction the homeserver pushed,
// the node it reached and that node's answer.
type servedTxn struct {
	node string
	body string
	code int
}

type txnTrap struct {
	text string
	node *testhost.Node
	// killed receives the time of the kill once the node is gone.
	killed chan time.Time
}

// haMatrixHarness is a three-party channel (XMPP room, Matrix room,
// Mattermost) on a cluster of nodes that each run the plugin bundle. The
// homeserver reaches the plugin through a balancer that spreads its
// requests over the active nodes, and the plugin reaches the homeserver
// through a counting proxy.
type haMatrixHarness struct {
	*haHarness                // the cluster; eve (h.occupant) talks in the XMPP room
	mx         *matrixHarness // carol talks in the Matrix room, dave watches
	proxy      *hsProxy

	// avoid is a node the balancer sends nothing to (the holder, to make
	// followers take the homeserver's requests).
	avoid atomic.Pointer[testhost.Node]
	// trap, when set, catches the first transaction carrying its text:
	// it goes to its node, which is killed while it handles it.
	trap atomic.Pointer[txnTrap]
	mu   sync.Mutex
	next int
	txns []servedTxn
}

func newHAMatrixHarness(t *testing.T, nodes int) *haMatrixHarness {
	t.Helper()
	x := &xmppHarness{channelHarness: channelHarness{t: t}}
	var cancel context.CancelFunc
	x.ctx, cancel = context.WithTimeout(context.Background(), 8*time.Minute) // a failsafe
	t.Cleanup(cancel)
	x.xmpp = startXMPPServer(t, testservers.Prosody, testservers.Options{})
	x.xmpp.CreateUser(t, "bridge", bridgePassword)
	x.xmpp.CreateUser(t, "eve", "eve-password")
	x.room = x.xmpp.RoomJID(t, "dev")
	x.occupant = x.xmpp.Client(t, "eve", "eve-password")
	if err := x.occupant.JoinRoom(x.ctx, x.room, "Eve"); err != nil {
		t.Fatal(err)
	}
	x.s = testhost.NewServer(t, testhost.WithBundle(testhost.PluginDir(t)), testhost.WithNodes(nodes))
	h := &haMatrixHarness{haHarness: &haHarness{xmppHarness: x, nodes: x.s.Nodes()}}
	mx := &matrixHarness{ctx: x.ctx, kind: dendrite}
	var err error
	if mx.web, err = x.s.ListenHTTP(); err != nil {
		t.Fatal(err)
	}
	mx.web.SetIntercept(h.balance)
	mx.cfg = newMatrixConfig()
	mx.hs = dendrite.start(t, homeservertest.Options{ServerName: mx.cfg.ServerName, AppService: appServiceFor(mx.cfg, mx.web.PluginURL())})
	h.proxy = startHSProxy(t, mx.hs.BaseURL(), h.nodes)
	mx.cfg.HomeserverURL = h.proxy.url
	if err := x.s.SetPluginSettings(mergeSettings(xmppSettings(x.xmpp, "client"), matrixPluginSettings(mx.cfg))); err != nil {
		t.Fatal(err)
	}
	h.start("ha-dev")
	mx.channelHarness = x.channelHarness
	mx.carol = newMatrixUser(x.ctx, t, mx.hs, "carol", "Carol Jones")
	mx.dave = newMatrixUser(x.ctx, t, mx.hs, "dave", "Dave Observer")
	mx.room = mx.carol.createRoom("dev")
	mx.dave.join(mx.room)
	h.mx = mx
	waitConnected(t, x.n, x.admin, x.ch, "xmppbridge", "XMPP")
	waitConnected(t, x.n, x.admin, x.ch, "matrixbridge", "Matrix")
	x.command("/xmppbridge map "+x.room.String(), "Linked this channel")
	x.command("/matrixbridge map "+string(mx.room), "Linked this channel")
	return h
}

// balance is the homeserver's way in: like a load balancer before a
// cluster, it hands each request to the next active node in turn (but
// avoid), and keeps the transactions and their answers.
func (h *haMatrixHarness) balance(w http.ResponseWriter, r *http.Request, _ func() *http.Response) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return true
	}
	var active []*testhost.Node
	for _, n := range h.nodes {
		if n.IsActive() && n != h.avoid.Load() {
			active = append(active, n)
		}
	}
	if len(active) == 0 {
		http.NotFound(w, r)
		return true
	}
	h.mu.Lock()
	node := active[h.next%len(active)]
	h.next++
	h.mu.Unlock()
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	var resp *http.Response
	if trap := h.trap.Load(); trap != nil && strings.Contains(string(body), trap.text) && h.trap.CompareAndSwap(trap, nil) {
		// The node dies at some point of its work on the transaction
		// (it takes a few milliseconds): before, while or after it hands
		// the events on.
		node = trap.node
		if !h.proxy.quietSync(15 * time.Second) {
			h.t.Error("the redaction poll's /sync stayed open")
		}
		answered := make(chan *http.Response, 1)
		go func() { answered <- node.ServeHTTP("", req) }()
		time.Sleep(rand.N(5 * time.Millisecond))
		at := time.Now()
		if err := node.Kill(); err != nil {
			h.t.Error(err)
		}
		trap.killed <- at
		if resp = <-answered; resp.StatusCode == http.StatusOK {
			// It answered before it died, but the answer died with it
			// on the way (the balancer says 502, as a proxy does when
			// its upstream drops): the homeserver sends the transaction
			// again in any case.
			resp.Body.Close()
			rec := httptest.NewRecorder()
			http.Error(rec, "the node went away", http.StatusBadGateway)
			resp = rec.Result()
		}
	} else {
		resp = node.ServeHTTP("", req)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if strings.Contains(r.URL.Path, "/transactions/") {
		h.mu.Lock()
		h.txns = append(h.txns, servedTxn{node: node.ID(), body: string(body), code: resp.StatusCode})
		h.mu.Unlock()
	}
	maps.Copy(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
	return true
}

// served returns the transactions that carried text, as served.
func (h *haMatrixHarness) served(text string) []servedTxn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []servedTxn
	for _, s := range h.txns {
		if strings.Contains(s.body, text) {
			out = append(out, s)
		}
	}
	return out
}

// xmppBodies are the bodies in the XMPP room's archive that start with
// prefix, oldest first.
func (h *haMatrixHarness) xmppBodies(prefix string) []string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
	defer cancel()
	msgs, _, err := h.occupant.FetchHistory(ctx, h.room, history.Query{Limit: 1000})
	if err != nil {
		h.t.Logf("reading the room archive: %v", err)
		return nil
	}
	var out []string
	for _, m := range msgs {
		if strings.HasPrefix(m.Body, prefix) {
			out = append(out, m.Body)
		}
	}
	return out
}

// channelPosts are the remote posts in the channel that start with prefix.
func (h *haMatrixHarness) channelPosts(prefix string) []string {
	var out []string
	for _, m := range remotePosts(h.s, h.ch) {
		if strings.HasPrefix(m, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// Issue 12 check 1 (Matrix part): on three nodes with Matrix and XMPP,
// only the holder talks to the homeserver, one redaction poll runs (never
// two /sync requests open at once, all from the holder's process), the
// transactions the homeserver pushes to followers are handled, and a post
// made through any node reaches the Matrix room once.
func TestClusterRunsMatrixOnOneNode(t *testing.T) {
	h := newHAMatrixHarness(t, 3)
	holder := h.holder(nil)
	h.avoid.Store(holder) // the homeserver's requests all reach followers

	var fromMM, fromMatrix []string
	for i, n := range h.nodes {
		text := fmt.Sprintf("mm via node %d", i)
		postAs(t, n, h.alice, h.ch, text, "")
		fromMM = append(fromMM, text)
		mx := fmt.Sprintf("mx via a follower %d", i)
		h.mx.carol.say(h.mx.room, mx)
		fromMatrix = append(fromMatrix, mx)
	}
	expectExactlyOnceInOrder(t, "the Matrix room", func() []string { return h.mx.roomBodies("mm via") }, fromMM)
	expectExactlyOnceInOrder(t, "the XMPP room", func() []string { return h.xmppBodies("mm via") }, fromMM)
	expectExactlyOnceInOrder(t, "the channel", func() []string { return h.channelPosts("mx via") }, fromMatrix)
	for _, text := range fromMatrix {
		for _, s := range h.served(text) {
			if s.node == holder.ID() {
				t.Errorf("the holder was sent the transaction carrying %q", text)
			}
		}
		if got := h.served(text); len(got) == 0 || got[len(got)-1].code != http.StatusOK {
			t.Errorf("the transactions carrying %q were answered %v", text, got)
		}
	}

	// The poll runs through a few long-polls: were there a poll per node,
	// their requests would be open at the same time.
	testhost.WaitFor(t, time.Minute, func() bool {
		_, syncs, _ := h.proxy.counts()
		return syncs[holder.ID()] >= 4
	}, "the redaction poll to run a few times")
	byNode, syncs, mostOpen := h.proxy.counts()
	t.Logf("requests to the homeserver by node: %v; /sync by node: %v; most open at once: %d (holder %s)", byNode, syncs, mostOpen, holder.ID())
	if mostOpen != 1 {
		t.Errorf("%d /sync requests were open at once, want 1 (one redaction poll)", mostOpen)
	}
	for node, n := range byNode {
		if node != holder.ID() {
			t.Errorf("%d requests reached the homeserver from %q, not the holder %s", n, node, holder.ID())
		}
	}
	if again := h.holder(nil); again != holder {
		t.Errorf("the bridge moved from %s to %s while all nodes ran", holder.ID(), again.ID())
	}
}

// waitArrived waits until what was sent so far arrived everywhere, at
// least once (the test checks for exactly once at its end).
func (h *haMatrixHarness) waitArrived(fromXMPP, fromMatrix, fromMM []string) {
	h.t.Helper()
	testhost.WaitFor(h.t, time.Minute, func() bool {
		return len(h.channelPosts("x ")) >= len(fromXMPP) && len(h.channelPosts("mx ")) >= len(fromMatrix) &&
			len(h.mx.roomBodies("x ")) >= len(fromXMPP) && len(h.mx.roomBodies("mm ")) >= len(fromMM) &&
			len(h.xmppBodies("mm ")) >= len(fromMM)
	}, "the messages sent so far to arrive everywhere")
}

// logTime reads the time a log line was written.
var logTime = regexp.MustCompile(`\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) Z\]`)

// takeover is how long after killed a node of the cluster said it holds
// the bridge, by the time its log gives; false when none did.
func (h *haMatrixHarness) takeover(killed time.Time) (time.Duration, bool) {
	var first time.Time
	for _, n := range h.nodes {
		for _, line := range n.Logs() {
			m := logTime.FindStringSubmatch(line)
			if m == nil || !strings.Contains(line, "holds the bridge's connections") {
				continue
			}
			at, err := time.ParseInLocation("2006-01-02 15:04:05.000", m[1], time.UTC)
			if err == nil && at.After(killed) && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
	}
	return first.Sub(killed), !first.IsZero()
}

// Issue 12 check 2 (Matrix part): the holder dies while messages flow
// between the XMPP room (eve), the Matrix room (carol) and Mattermost
// (alice, through the other nodes), and the homeserver pushes to every
// node; twice, at the two moments the brief names. First the holder dies
// right after the homeserver stored a message it sent to the Matrix room,
// before it learnt the event's ID (so it recorded nothing): the next
// holder's replay must find that event, not send it again. Then the next
// holder dies while it handles a transaction: unanswered, the homeserver
// sends it again, to another node, and its events land once. Carol
// redacts a message while no node holds the bridge: the next holder's
// redaction poll goes on from where the old one stopped. Every message
// arrives exactly once, in order, on every other side; each takeover is
// measured.
func TestHolderDiesWhileMatrixMessagesFlow(t *testing.T) {
	h := newHAMatrixHarness(t, 3)
	holder := h.holder(nil)
	const total = 24
	const sendKill, txnKill, regret = 8, 16, 3
	var fromXMPP, fromMM, fromMatrix []string
	var regretted id.EventID
	var kills []time.Time
	for i := 1; i <= total; i++ {
		var outboundKilled chan string
		var killedAt time.Time
		if i == sendKill {
			// alice's message reaches Matrix from the holder, which dies
			// as the homeserver answers.
			outboundKilled = make(chan string, 1)
			text := fmt.Sprintf(`"mm %d"`, i)
			h.proxy.trap.Store(&proxyTrap{
				match: func(r *http.Request, body []byte) bool {
					return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/send/") && bytes.Contains(body, []byte(text))
				},
				then: func(node string) {
					if !h.proxy.quietSync(15 * time.Second) {
						t.Error("the redaction poll's /sync stayed open")
					}
					killedAt = time.Now()
					for _, n := range h.nodes {
						if n.ID() == node {
							if err := n.Kill(); err != nil {
								t.Error(err)
							}
						}
					}
					outboundKilled <- node
				},
			})
		}
		var txnKilled chan time.Time
		if i == txnKill {
			// The next holder has caught up before it dies in turn: a
			// node that dies amid its start-up is another story.
			h.waitArrived(fromXMPP, fromMatrix, fromMM)
			txnKilled = make(chan time.Time, 1)
			h.trap.Store(&txnTrap{text: fmt.Sprintf(`"mx %d"`, i), node: holder, killed: txnKilled})
		}
		x := fmt.Sprintf("x %d", i)
		if _, err := h.occupant.Say(h.ctx, h.room, x); err != nil {
			t.Fatal(err)
		}
		fromXMPP = append(fromXMPP, x)
		mx := fmt.Sprintf("mx %d", i)
		evt := h.mx.carol.say(h.mx.room, mx)
		if i == regret {
			regretted = evt
		} else {
			fromMatrix = append(fromMatrix, mx)
		}
		mm := fmt.Sprintf("mm %d", i)
		via := holder
		for _, n := range h.nodes {
			if n != holder && n.IsActive() {
				via = n
				break
			}
		}
		postAs(t, via, h.alice, h.ch, mm, "")
		fromMM = append(fromMM, mm)

		var killed *testhost.Node
		switch {
		case outboundKilled != nil:
			select {
			case node := <-outboundKilled:
				if node != holder.ID() {
					t.Fatalf("%q sent alice's message to Matrix, not the holder %s", node, holder.ID())
				}
				killed = holder
			case <-time.After(30 * time.Second):
				t.Fatal("the holder did not send alice's message to Matrix")
			}
		case txnKilled != nil:
			select {
			case killedAt = <-txnKilled:
				killed = holder
			case <-time.After(30 * time.Second):
				t.Fatal("the homeserver did not push carol's message")
			}
		}
		if killed != nil {
			kills = append(kills, killedAt)
			holder = nil
		}
		if i == sendKill+1 {
			// No node holds the bridge now.
			if _, err := h.mx.carol.cli.RedactEvent(h.ctx, h.mx.room, regretted); err != nil {
				t.Fatal(err)
			}
		}
		if holder == nil && (i == txnKill-1 || i == total) {
			holder = h.holder(nil)
		}
		time.Sleep(200 * time.Millisecond)
	}
	withPrefix := func(prefix string, list []string) []string {
		var out []string
		for _, s := range list {
			out = append(out, prefix+s)
		}
		return out
	}
	expectExactlyOnceInOrder(t, "XMPP in the channel", func() []string { return h.channelPosts("x ") }, fromXMPP)
	expectExactlyOnceInOrder(t, "Matrix in the channel", func() []string { return h.channelPosts("mx ") }, fromMatrix)
	expectExactlyOnceInOrder(t, "XMPP in the Matrix room", func() []string { return h.mx.roomBodies("x ") }, fromXMPP)
	expectExactlyOnceInOrder(t, "Mattermost in the Matrix room", func() []string { return h.mx.roomBodies("mm ") }, fromMM)
	expectExactlyOnceInOrder(t, "Mattermost in the XMPP room", func() []string { return h.xmppBodies("mm ") }, fromMM)
	// Carol's redacted message reached XMPP before she redacted it.
	allMatrix := make([]string, 0, total)
	for i := 1; i <= total; i++ {
		allMatrix = append(allMatrix, "mx "+strconv.Itoa(i))
	}
	expectExactlyOnceInOrder(t, "Matrix in the XMPP room", func() []string { return h.xmppBodies("<Carol Jones> mx ") }, withPrefix("<Carol Jones> ", allMatrix))
	// The transaction carrying mx 16 was cut off on the dying holder, or
	// handled there with the answer lost; the homeserver sent it again,
	// and it landed once (above).
	got := h.served(fmt.Sprintf(`"mx %d"`, txnKill))
	var codes []string
	for _, s := range got {
		codes = append(codes, fmt.Sprintf("%d by %s", s.code, s.node))
	}
	t.Logf("the transactions carrying mx %d were answered %s", txnKill, strings.Join(codes, ", "))
	if len(got) < 2 || got[len(got)-1].code != http.StatusOK || got[len(got)-1].node == got[0].node {
		t.Errorf("the transaction carrying mx %d was not sent again and handled by another node", txnKill)
	}
	for k, killed := range kills {
		d, ok := h.takeover(killed)
		if !ok {
			t.Fatalf("no node took over after kill %d", k+1)
		}
		t.Logf("takeover %d: another node held the bridge %v after the holder was killed", k+1, d.Round(10*time.Millisecond))
		if d > 15*time.Second {
			t.Errorf("takeover %d took %v, more than 15 s", k+1, d)
		}
	}
}
