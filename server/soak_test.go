//go:build soak

package main

// The soak (issue 12), `make soak`: four channels, each linked with an
// XMPP room, a Matrix room (Dendrite) and a Slack channel (the test
// server), on a two-node cluster running the plugin bundle; messages from
// every side, paced, while the XMPP server and the homeserver restart, the
// node holding the bridge is killed and Slack's sockets drop. It prints
// and writes per path (one side to another): sent, received, lost,
// duplicated, reordered and p50/p99 delivery latency.
//
// What is counted comes from each side's own record at the end (the
// Mattermost channel, the room's archive, the Matrix room's timeline, the
// Slack channel), so a watcher that missed something during an outage
// cannot make a loss; latency comes from the watchers, which see most
// messages as they arrive.
//
// Knobs: SOAK_MESSAGES (10000, split over the XMPP servers), SOAK_RATE
// (messages a second, 12), SOAK_XMPP (prosody,ejabberd), SOAK_OUT
// (soak-results). The plugin is built here with the slackunpaced tag: the
// Slack test server runs without Slack's one message a second per
// channel, which would make 10,000 messages take hours, and the bridge
// must not keep to it either.

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/homeservertest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/internal/servertest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

const (
	sideMattermost = "mattermost"
	sideXMPP       = "xmpp"
	sideMatrix     = "matrix"
	sideSlack      = "slack"
	soakChannels   = 4
)

var soakSides = []string{sideMattermost, sideXMPP, sideMatrix, sideSlack}

// soakTagRE finds a soak message's tag in any side's rendering of it.
var soakTagRE = regexp.MustCompile(`soak-[a-z]+-c\d-[a-z]+-\d+`)

func TestSoak(t *testing.T) {
	total := envInt(t, "SOAK_MESSAGES", 10000)
	rate := envInt(t, "SOAK_RATE", 12)
	names := strings.Split(cmpOr(os.Getenv("SOAK_XMPP"), "prosody,ejabberd"), ",")
	// Relative to the repository, as make soak reads it (go test runs in
	// ./server).
	out := cmpOr(os.Getenv("SOAK_OUT"), "soak-results")
	if !filepath.IsAbs(out) {
		out = filepath.Join(testhost.RepoRoot(t), out)
	}
	results := map[string]soakResult{}
	for _, name := range names {
		kind, ok := map[string]testservers.Kind{"prosody": testservers.Prosody, "ejabberd": testservers.Ejabberd}[name]
		if !ok {
			t.Fatalf("SOAK_XMPP names %q: want prosody and/or ejabberd", name)
		}
		t.Run(name, func(t *testing.T) {
			r := runSoak(t, kind, name, total/len(names), rate, out)
			results[name] = r
			for _, p := range r.Paths {
				if p.Failures() > 0 {
					t.Errorf("%s -> %s: %d lost, %d duplicated, %d reordered, %d out of their thread; %d edits, %d reactions and %d deletes not carried out",
						p.From, p.To, p.Lost, p.Duplicated, p.Reordered, p.Misplaced, p.EditsMissed, p.ReactionsMissed, p.DeletesMissed)
				}
			}
		})
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	for _, name := range names {
		if r, ok := results[name]; ok {
			md.WriteString(r.table() + "\n")
			for _, m := range r.Misses {
				md.WriteString("- " + m + "\n")
			}
		}
	}
	for file, data := range map[string][]byte{"soak.json": append(b, '\n'), "soak.md": []byte(md.String())} {
		if err := os.WriteFile(filepath.Join(out, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// soakResult is one XMPP server's run.
type soakResult struct {
	XMPPServer  string           `json:"xmpp_server"`
	Messages    int              `json:"messages"`
	RatePerSec  int              `json:"rate_per_second"`
	Seconds     float64          `json:"seconds"`
	Disruptions []string         `json:"disruptions"`
	Paths       []soakPathReport `json:"paths"`
	// Misses names some of the messages behind each failure, with their
	// native IDs, to look up in the logs (soak-results/<server>-node*.log).
	Misses []string `json:"misses,omitempty"`
}

func (r soakResult) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d messages at %d/s in %.0f s; disruptions: %s\n", r.XMPPServer, r.Messages, r.RatePerSec, r.Seconds, strings.Join(r.Disruptions, "; "))
	fmt.Fprintf(&b, "| path | sent | received | lost | duplicated | reordered | p50 ms | p99 ms | replies (misplaced) | edits (missed) | reactions (missed) | deletes (missed) |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range r.Paths {
		fmt.Fprintf(&b, "| %s -> %s | %d | %d | %d | %d | %d | %.1f | %.1f | %d (%d) | %d (%d) | %d (%d) | %d (%d) |\n", p.From, p.To, p.Sent, p.Received,
			p.Lost, p.Duplicated, p.Reordered, p.P50Ms, p.P99Ms, p.Replies, p.Misplaced, p.Edits, p.EditsMissed, p.Reactions, p.ReactionsMissed, p.Deletes, p.DeletesMissed)
	}
	return b.String()
}

// soakRig is everything one run talks to.
type soakRig struct {
	t     *testing.T
	ctx   context.Context
	tag   string
	s     *testhost.Server
	nodes []*testhost.Node

	xmpp    xmppServer
	eveMu   sync.Mutex
	eve     *xmpptest.Client
	rooms   [soakChannels]jid.JID
	hs      homeservertest.Server
	carol   *matrixUser // speaks in the Matrix rooms
	mrooms  [soakChannels]id.RoomID
	slack   *slacktest.Server
	sam     slacktest.User
	schs    [soakChannels]slacktest.Channel
	admin   *model.User
	authors [2]*model.User
	chs     [soakChannels]*model.Channel

	// paused sides send nothing while their server restarts.
	paused sync.Map // side -> bool
	// stanzaIDs are the room's stanza-ids of eve's messages, by the
	// origin-id she gave them: XMPP replies and reactions name those.
	stanzaIDs sync.Map
	next      atomic.Int64
	ledger    *soakLedger
	// natives are the soak's messages' IDs on their own side, by tag.
	natives map[string]string
	// hsMu serialises the homeserver's planned restarts and the
	// watchdog's; crashes are what the watchdog found.
	hsMu    sync.Mutex
	crashMu sync.Mutex
	crashes []string
}

func newSoakRig(t *testing.T, kind testservers.Kind, name string) *soakRig {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &soakRig{t: t, ctx: ctx, tag: name, ledger: newSoakLedger(), natives: map[string]string{}}

	// eve says hundreds of messages a minute: above ejabberd's default
	// client shaper, which is for people, not for a load test.
	r.xmpp = startXMPPServer(t, kind, testservers.Options{NoClientShaper: true})
	r.xmpp.CreateUser(t, "bridge", bridgePassword)
	r.xmpp.CreateUser(t, "eve", "eve-password")
	for c := range soakChannels {
		r.rooms[c] = r.xmpp.RoomJID(t, fmt.Sprintf("soak%d", c))
	}
	r.connectEve()
	// eve made the rooms; she makes the bridge a room admin, as status
	// asks an admin to: the bridge then knows authors by address, which
	// outlives ejabberd's restarts (its occupant-ids do not).
	for _, room := range r.rooms {
		iq := fmt.Sprintf(`<iq type='set' to='%s' id='aff-bridge'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='bridge@%s'/></query></iq>`, room, r.xmpp.Domain)
		if err := r.eveClient().SendRaw(ctx, iq); err != nil {
			t.Fatal(err)
		}
	}

	r.slack = slacktest.Start(t, slacktest.Options{NoRateLimits: true})
	r.sam = r.slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	for c := range soakChannels {
		r.schs[c] = r.slack.AddChannel(slacktest.Channel{Name: fmt.Sprintf("soak%d", c), Members: []string{r.sam.ID}})
		r.slack.InviteBot(r.sam.ID, r.schs[c].ID)
	}

	noRace := false
	bundle := testhost.Build(t, testhost.BuildOptions{ModuleDir: testhost.RepoRoot(t), Tags: []string{"slackunpaced"}, Race: &noRace})
	r.s = testhost.NewServer(t, testhost.WithBundle(bundle), testhost.WithNodes(2))
	r.nodes = r.s.Nodes()
	web, err := r.s.ListenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	web.SetIntercept(r.balance)
	cfg := matrix.Config{
		ServerName: "localhost", ASToken: servertest.RandomString(), HSToken: servertest.RandomString(),
		UserPrefix: "mm_", BotLocalpart: "mattermostbridge",
	}
	r.hs = dendrite.start(t, homeservertest.Options{ServerName: cfg.ServerName, AppService: appServiceFor(cfg, web.PluginURL())})
	cfg.HomeserverURL = r.hs.BaseURL()
	settings := mergeSettings(mergeSettings(xmppSettings(r.xmpp, "client"), matrixPluginSettings(cfg)), slackSettings(r.slack))
	if err := r.s.SetPluginSettings(settings); err != nil {
		t.Fatal(err)
	}
	for _, n := range r.nodes {
		if err := n.Activate(); err != nil {
			t.Fatal(err)
		}
	}
	var alice, bob *model.User
	r.admin, alice, bob = createPeople(r.s)
	r.authors = [2]*model.User{alice, bob}
	r.carol = newMatrixUser(ctx, t, r.hs, "carol", "Carol Jones")
	n := r.node()
	for c := range soakChannels {
		r.chs[c] = channelOf(r.s, fmt.Sprintf("soak%d", c), r.admin, alice, bob)
		r.mrooms[c] = r.carol.createRoom(fmt.Sprintf("soak%d", c))
	}
	waitConnected(t, n, r.admin, r.chs[0], "xmppbridge", "XMPP")
	waitConnected(t, n, r.admin, r.chs[0], "matrixbridge", "Matrix")
	waitConnected(t, n, r.admin, r.chs[0], "slackbridge", "Slack")
	for c := range soakChannels {
		runCommand(t, n, r.admin, r.chs[c], "/xmppbridge map "+r.rooms[c].String(), "Linked this channel")
		runCommand(t, n, r.admin, r.chs[c], "/matrixbridge map "+string(r.mrooms[c]), "Linked this channel")
		runCommand(t, n, r.admin, r.chs[c], "/slackbridge map "+r.schs[c].ID, "Linked this channel")
	}
	return r
}

// balance is the homeserver's way into the cluster, as a load balancer's:
// each request goes to the next active node.
func (r *soakRig) balance(w http.ResponseWriter, req *http.Request, _ func() *http.Response) bool {
	var active []*testhost.Node
	for _, n := range r.nodes {
		if n.IsActive() {
			active = append(active, n)
		}
	}
	if len(active) == 0 {
		http.Error(w, "no node is up", http.StatusBadGateway)
		return true
	}
	n := active[int(r.next.Add(1))%len(active)]
	resp := n.ServeHTTP("", req.Clone(context.Background()))
	defer resp.Body.Close()
	maps.Copy(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true
}

// node is an active node to post and run commands through.
func (r *soakRig) node() *testhost.Node {
	for {
		for _, n := range r.nodes {
			if n.IsActive() {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connectEve (re)connects eve, the XMPP side's speaker and watcher, and
// joins her to the rooms.
func (r *soakRig) connectEve() {
	r.t.Helper()
	c := r.xmpp.Client(r.t, "eve", "eve-password")
	for _, room := range r.rooms {
		if err := c.JoinRoom(r.ctx, room, "Eve"); err != nil {
			r.t.Fatal(err)
		}
	}
	r.eveMu.Lock()
	old := r.eve
	r.eve = c
	r.eveMu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (r *soakRig) eveClient() *xmpptest.Client {
	r.eveMu.Lock()
	defer r.eveMu.Unlock()
	return r.eve
}

// saveLogs writes each node's log (the plugin's included) beside the
// results, as prefix-node<i>.log.
func (r *soakRig) saveLogs(prefix string) {
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		r.t.Error(err)
		return
	}
	for i, n := range r.nodes {
		if err := os.WriteFile(fmt.Sprintf("%s-node%d.log", prefix, i), []byte(strings.Join(n.Logs(), "\n")+"\n"), 0o644); err != nil {
			r.t.Error(err)
		}
	}
}

// soakMsg is a message the soak sent, as its side knows it.
type soakMsg struct {
	tag, side string
	channel   int
	native    string // the post ID, origin-id, event ID or ts
	author    *model.User
	parent    *soakMsg // the message it replies to
}

// say sends message m (its text is its tag's) and records its native ID.
func (r *soakRig) say(m *soakMsg) error {
	text := m.tag + " says hello"
	c := m.channel
	switch m.side {
	case sideMattermost:
		post := &model.Post{UserId: m.author.Id, ChannelId: r.chs[c].Id, Message: text}
		if m.parent != nil {
			post.RootId = m.parent.native
		}
		p, appErr := r.node().CreatePost(post)
		if appErr != nil {
			return appErr
		}
		m.native = p.Id
	case sideXMPP:
		if m.parent == nil {
			origin, err := r.eveClient().Say(r.ctx, r.rooms[c], text)
			if err != nil {
				return err
			}
			m.native = origin
			return r.confirmXMPP(c, m.native, m.tag)
		}
		// XEP-0461 names the parent by the room's stanza-id.
		sid, err := r.stanzaID(m.parent)
		if err != nil {
			return err
		}
		m.native = "reply-" + m.tag
		if err := r.eveClient().SendRaw(r.ctx, fmt.Sprintf(
			`<message to='%s' type='groupchat' id='%s'><body>%s</body><reply xmlns='urn:xmpp:reply:0' id='%s' to='%s/Eve'/><origin-id xmlns='urn:xmpp:sid:0' id='%s'/></message>`,
			r.rooms[c], m.native, text, sid, r.rooms[c], m.native)); err != nil {
			return err
		}
		return r.confirmXMPP(c, m.native, m.tag)
	case sideMatrix:
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
		if m.parent != nil {
			parent := id.EventID(m.parent.native)
			content.RelatesTo = &event.RelatesTo{Type: event.RelThread, EventID: parent, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: parent}}
		}
		// The tag is the transaction ID: a retry after a lost answer is
		// one event, as for any client.
		resp, err := r.carol.cli.SendMessageEvent(r.ctx, r.mrooms[c], event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: m.tag})
		if err != nil {
			return err
		}
		m.native = string(resp.EventID)
	case sideSlack:
		if m.parent != nil {
			m.native = r.slack.Reply(r.sam.ID, r.schs[c].ID, m.parent.native, text)
		} else {
			m.native = r.slack.Post(r.sam.ID, r.schs[c].ID, text)
		}
	}
	return nil
}

// confirmXMPP waits for the room to echo eve's message m, as a careful
// client does before it counts a message sent: one sent as the server
// shuts down never reaches the room, and is sent again (the soak counts
// what people said, and the bridge cannot relay what the room never had).
// A message the room has but eve's echo missed (she was reconnecting) is
// found in the room's latest archive.
// The same goes for corrections and reactions (sent with an id of their
// own, which the room echoes): key is the origin-id or that id.
func (r *soakRig) confirmXMPP(c int, key, what string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := r.stanzaIDs.Load(key); ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	msgs, _, err := r.eveClient().FetchHistory(ctx, r.rooms[c], history.Query{Last: true, Limit: 100})
	if err != nil {
		return fmt.Errorf("no echo of %s, and the archive cannot tell: %w", what, err)
	}
	for _, a := range msgs {
		if a.OriginID == key || a.ID == key {
			// In a MUC archive the result's id is the room's stanza-id.
			r.stanzaIDs.Store(key, cmpOr(a.StanzaID, a.ArchiveID))
			return nil
		}
	}
	return fmt.Errorf("the room never got %s: sending it again", what)
}

// stanzaID is the room's stanza-id of one of eve's messages, once her
// copy came back.
func (r *soakRig) stanzaID(m *soakMsg) (string, error) {
	if v, ok := r.stanzaIDs.Load(m.native); ok {
		return v.(string), nil
	}
	return "", fmt.Errorf("the room has not echoed %s yet", m.tag)
}

// reactTo reacts to m on its side, as its sender.
func (r *soakRig) reactTo(m *soakMsg) error {
	c := m.channel
	switch m.side {
	case sideMattermost:
		_, appErr := r.node().AddReaction(&model.Reaction{UserId: m.author.Id, PostId: m.native, EmojiName: "+1"})
		if appErr != nil {
			return appErr
		}
	case sideXMPP:
		sid, err := r.stanzaID(m)
		if err != nil {
			return err
		}
		if err := r.eveClient().SendRaw(r.ctx, fmt.Sprintf(
			`<message to='%s' type='groupchat' id='react-%s'><reactions xmlns='urn:xmpp:reactions:0' id='%s'><reaction>👍</reaction></reactions><store xmlns='urn:xmpp:hints'/></message>`,
			r.rooms[c], m.tag, sid)); err != nil {
			return err
		}
		return r.confirmXMPP(c, "react-"+m.tag, "the reaction to "+m.tag)
	case sideMatrix:
		_, err := r.carol.cli.SendReaction(r.ctx, r.mrooms[c], id.EventID(m.native), "👍")
		return err
	case sideSlack:
		r.slack.React(r.sam.ID, r.schs[c].ID, m.native, "+1")
	}
	return nil
}

// editedText is what an edit makes of a message; every side shows the
// mark once the edit reached it.
func editedText(tag string) string { return tag + " says hello (edited)" }

// editMsg edits m on its side, as its sender.
func (r *soakRig) editMsg(m *soakMsg) error {
	text := editedText(m.tag)
	c := m.channel
	switch m.side {
	case sideMattermost:
		_, appErr := r.node().PatchPost(m.author.Id, m.native, text)
		if appErr != nil {
			return appErr
		}
	case sideXMPP:
		// XEP-0308: the correction names the message by the id eve gave it.
		if err := r.eveClient().SendRaw(r.ctx, fmt.Sprintf(
			`<message to='%s' type='groupchat' id='edit-%s'><body>%s</body><replace xmlns='urn:xmpp:message-correct:0' id='%s'/></message>`,
			r.rooms[c], m.tag, text, m.native)); err != nil {
			return err
		}
		return r.confirmXMPP(c, "edit-"+m.tag, "the edit of "+m.tag)
	case sideMatrix:
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: "* " + text,
			NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: text}}
		content.SetEdit(id.EventID(m.native))
		_, err := r.carol.cli.SendMessageEvent(r.ctx, r.mrooms[c], event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: "edit-" + m.tag})
		return err
	case sideSlack:
		r.slack.Edit(r.sam.ID, r.schs[c].ID, m.native, text)
	}
	return nil
}

// deleteMsg deletes m on its side, as its sender. (XMPP people do not
// delete here: a retraction of one's own message is a client feature the
// soak leaves to the XMPP tests.)
func (r *soakRig) deleteMsg(m *soakMsg) error {
	c := m.channel
	switch m.side {
	case sideMattermost:
		if appErr := r.node().DeletePost(m.author.Id, m.native); appErr != nil {
			return appErr
		}
	case sideMatrix:
		_, err := r.carol.cli.RedactEvent(r.ctx, r.mrooms[c], id.EventID(m.native), mautrix.ReqRedact{TxnID: "delete-" + m.tag})
		return err
	case sideSlack:
		r.slack.Delete(r.sam.ID, r.schs[c].ID, m.native)
	default:
		return fmt.Errorf("the soak does not delete on %s", m.side)
	}
	return nil
}

// retry runs an action until its side takes it.
func (r *soakRig) retry(what string, do func() error) {
	for attempt := 0; ; attempt++ {
		err := do()
		if err == nil {
			return
		}
		if attempt == 150 {
			r.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func runSoak(t *testing.T, kind testservers.Kind, name string, total, rate int, out string) soakResult {
	r := newSoakRig(t, kind, name)
	watchCtx, stopWatching := context.WithCancel(r.ctx)
	var wg sync.WaitGroup
	for _, w := range []func(context.Context){r.watchMattermost, r.watchXMPP, r.watchMatrix, r.watchSlack, r.watchHomeserver} {
		wg.Add(1)
		go func() { defer wg.Done(); w(watchCtx) }()
	}

	res := soakResult{XMPPServer: r.xmpp.srv.Program(), Messages: total, RatePerSec: rate}
	disrupt := map[int]func() string{
		total * 1 / 5: r.restartXMPP,
		total * 2 / 5: r.restartHomeserver,
		total * 3 / 5: r.killHolder,
		total * 4 / 5: r.dropSlack,
	}
	var disrupted sync.WaitGroup   // the disruptions run beside the traffic
	var mu sync.Mutex              // guards res.Disruptions
	seq := map[[2]int]int{}        // (side, channel) -> next seq
	roots := map[[2]int]*soakMsg{} // (side, channel) -> the latest message to reply to
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	// Every tenth message is a reply in the thread of its sender's last
	// message in the channel; some are edited, reacted to or deleted by
	// their senders a few seconds after they were sent: every tenth
	// edited, every tenth reacted to, every twenty-fifth deleted (XMPP's
	// aside, see deleteMsg).
	const opDelay = 20
	ops := map[int][]func(){}
	later := func(at int, op func()) { ops[at] = append(ops[at], op) }
	now := 0 // the message the loop is at
	for i := range total {
		now = i
		for _, op := range ops[i] {
			op()
		}
		if d := disrupt[i]; d != nil && i > 0 {
			disrupted.Add(1)
			go func() {
				defer disrupted.Done()
				what := d()
				mu.Lock()
				res.Disruptions = append(res.Disruptions, what)
				mu.Unlock()
			}()
		}
		<-tick.C
		c := i % soakChannels
		side := r.pick(i)
		si := indexOf(soakSides, side)
		k := [2]int{si, c}
		n := seq[k]
		seq[k]++
		tag := fmt.Sprintf("soak-%s-c%d-%s-%d", r.tag, c, side, n)
		to := make([]string, 0, len(soakSides)-1)
		for _, s := range soakSides {
			if s != side {
				to = append(to, s)
			}
		}
		m := &soakMsg{tag: tag, side: side, channel: c, author: r.authors[i%2]}
		r.ledger.send(tag, side, c, n, time.Now(), to)
		if i%10 == 6 {
			m.parent = roots[k]
		}
		if m.parent != nil {
			r.ledger.reply(tag, m.parent.tag)
		}
		r.retry(side+" sending "+tag, func() error { return r.say(m) })
		r.natives[tag] = m.native
		deleted := i%25 == 7 && side != sideXMPP
		if m.parent == nil && !deleted {
			roots[k] = m
		}
		var op func()
		switch {
		case i%10 == 8:
			op = func() {
				r.ledger.react(tag)
				r.retry(side+" reacting to "+tag, func() error { return r.reactTo(m) })
			}
		case i%10 == 3:
			op = func() {
				r.ledger.edit(tag)
				r.retry(side+" editing "+tag, func() error { return r.editMsg(m) })
			}
		case deleted:
			op = func() {
				r.ledger.remove(tag)
				r.retry(side+" deleting "+tag, func() error { return r.deleteMsg(m) })
			}
		}
		if op != nil {
			// An edit or delete waits while its side's server restarts.
			var run func()
			run = func() {
				if paused, _ := r.paused.Load(side); paused == true && now+1 < total {
					later(now+1, run)
					return
				}
				op()
			}
			later(i+opDelay, run)
		}
	}
	// The edits and deletes due after the last message, once every
	// server is back.
	disrupted.Wait()
	for at := total; at <= total+opDelay; at++ {
		for _, op := range ops[at] {
			op()
		}
	}
	// Each side's record is read again until every message is in it
	// everywhere (or the failsafe ends the wait, and the report tells).
	deadline := time.Now().Add(4 * time.Minute)
	for r.countRecords(); !r.ledger.complete() && time.Now().Before(deadline); r.countRecords() {
		time.Sleep(10 * time.Second)
	}
	res.Seconds = time.Since(start).Seconds()
	stopWatching()
	wg.Wait()
	disrupted.Wait()
	res.Disruptions = append(res.Disruptions, r.crashes...)
	res.Paths = r.ledger.report()
	for _, m := range r.ledger.misses(5) {
		tag := m[strings.LastIndex(m, " ")+1:]
		res.Misses = append(res.Misses, m+" ("+r.natives[tag]+")")
	}
	r.saveLogs(filepath.Join(out, name))
	return res
}

// pick chooses the side that says message i: each in turn, skipping a
// side whose server is restarting.
func (r *soakRig) pick(i int) string {
	for k := range soakSides {
		side := soakSides[(i/soakChannels+k)%len(soakSides)]
		if paused, _ := r.paused.Load(side); paused != true {
			return side
		}
	}
	return sideMattermost
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func (r *soakRig) restartXMPP() string {
	r.paused.Store(sideXMPP, true)
	defer r.paused.Store(sideXMPP, false)
	at := time.Now()
	r.xmpp.srv.Restart(r.t)
	r.connectEve()
	return fmt.Sprintf("XMPP server restarted (%.1f s)", time.Since(at).Seconds())
}

func (r *soakRig) restartHomeserver() string {
	r.paused.Store(sideMatrix, true)
	defer r.paused.Store(sideMatrix, false)
	r.hsMu.Lock()
	defer r.hsMu.Unlock()
	at := time.Now()
	r.hs.Restart(r.t)
	return fmt.Sprintf("homeserver restarted (%.1f s)", time.Since(at).Seconds())
}

// watchHomeserver restarts the homeserver when it dies on its own, as its
// service manager would, and reports why it died. Dendrite on SQLite does:
// a client cut off in a /sync (the killed node's) can leave its sync
// database locked, and the next event's write panics with SQLITE_BUSY.
// The bridge must carry every message across that as across a restart.
func (r *soakRig) watchHomeserver(ctx context.Context) {
	for ctx.Err() == nil {
		sleepCtx(ctx, time.Second)
		r.hsMu.Lock()
		if ctx.Err() == nil && !r.hs.Running() {
			why := "exited"
			for _, line := range strings.Split(r.hs.LogTail(200), "\n") {
				if strings.Contains(line, "level=panic") || strings.HasPrefix(line, "panic:") {
					why = line
					break
				}
			}
			if len(why) > 200 {
				why = why[:200] + "..."
			}
			r.crashMu.Lock()
			r.crashes = append(r.crashes, "homeserver crashed ("+why+"), restarted")
			r.crashMu.Unlock()
			r.hs.Restart(r.t)
		}
		r.hsMu.Unlock()
	}
}

func (r *soakRig) killHolder() string {
	h := &haHarness{xmppHarness: &xmppHarness{channelHarness: channelHarness{t: r.t, s: r.s}}, nodes: r.nodes}
	holder := h.holder(nil)
	if err := holder.Kill(); err != nil {
		r.t.Error(err)
		return "kill failed: " + err.Error()
	}
	time.Sleep(20 * time.Second)
	if err := holder.Activate(); err != nil {
		r.t.Error(err)
	}
	return "the node holding the bridge killed, back after 20 s"
}

func (r *soakRig) dropSlack() string {
	r.slack.DropConnections()
	return "Slack sockets dropped"
}

// --- watchers: first sight of each copy, for latency -----------------------

func (r *soakRig) seeAll(side, text string, at time.Time) {
	if tag := soakTag(text); tag != "" {
		r.ledger.arrived(tag, side, at)
	}
}

// soakTag is the tag of a message's text: the first outside quoted lines,
// which a reply's fallback may fill with its parent's text.
func soakTag(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), ">") {
			continue
		}
		if tag := soakTagRE.FindString(line); tag != "" {
			return tag
		}
	}
	return ""
}

func (r *soakRig) watchMattermost(ctx context.Context) {
	linked := map[string]bool{}
	for _, ch := range r.chs {
		linked[ch.Id] = true
	}
	n := 0
	for ctx.Err() == nil {
		var posts []*model.Post
		posts, n = r.s.PostsStoredAfter(n)
		now := time.Now()
		for _, p := range posts {
			if linked[p.ChannelId] {
				r.seeAll(sideMattermost, p.Message, now)
			}
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

func (r *soakRig) watchXMPP(ctx context.Context) {
	var c *xmpptest.Client
	scanned := 0
	for ctx.Err() == nil {
		if cur := r.eveClient(); cur != c {
			c, scanned = cur, 0
		}
		var msgs []xmpptest.Message
		msgs, scanned = c.MessagesAfter(scanned)
		for _, m := range msgs {
			if m.Type != "groupchat" {
				continue
			}
			if m.OriginID != "" && m.StanzaID != "" {
				r.stanzaIDs.Store(m.OriginID, m.StanzaID)
			}
			if m.ID != "" && m.StanzaID != "" && m.ID != m.OriginID {
				r.stanzaIDs.Store(m.ID, m.StanzaID) // corrections and reactions, by their id
			}
			if !m.Delayed {
				r.seeAll(sideXMPP, m.Body, time.Now())
			}
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

func (r *soakRig) watchMatrix(ctx context.Context) {
	since := ""
	for ctx.Err() == nil {
		resp, err := r.carol.cli.SyncRequest(ctx, 5000, since, syncFilter, false, event.PresenceOffline)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		now := time.Now()
		for _, room := range resp.Rooms.Join {
			for _, e := range room.Timeline.Events {
				if e.Type != event.EventMessage {
					continue
				}
				_ = e.Content.ParseRaw(e.Type)
				if since != "" {
					r.seeAll(sideMatrix, message(e).Body, now)
				}
			}
		}
		since = resp.NextBatch
	}
}

func (r *soakRig) watchSlack(ctx context.Context) {
	read := make([]int, len(r.schs))
	for ctx.Err() == nil {
		for i, ch := range r.schs {
			var msgs []slacktest.Message
			msgs, read[i] = r.slack.MessagesAfter(ch.ID, read[i])
			now := time.Now()
			for _, m := range msgs {
				r.seeAll(sideSlack, m.Text, now)
			}
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// --- the count: each side's own record --------------------------------------

// countRecords hands the ledger each side's record: the copies, their
// order, threads, edits, reactions and deletes come from there.
func (r *soakRig) countRecords() {
	var mm, xs, mx, sl []soakCopy
	for c := range soakChannels {
		mm = append(mm, r.postCopies(r.chs[c].Id)...)
		xs = append(xs, r.archiveCopies(r.rooms[c])...)
		mx = append(mx, r.timelineCopies(r.mrooms[c])...)
		sl = append(sl, r.slackCopies(r.schs[c].ID)...)
	}
	r.ledger.recount(sideMattermost, mm)
	r.ledger.recount(sideXMPP, xs)
	r.ledger.recount(sideMatrix, mx)
	r.ledger.recount(sideSlack, sl)
}

// edited reports whether a text shows tag's edit: sides that edit in
// place show it in the text itself.
func edited(text, tag string) bool { return strings.Contains(text, editedText(tag)) }

func (r *soakRig) postCopies(channelID string) []soakCopy {
	posts := r.s.ChannelPosts(channelID)
	tagOf := map[string]string{}
	for _, p := range posts {
		tagOf[p.Id] = soakTag(p.Message)
	}
	var out []soakCopy
	for _, p := range posts {
		if tag := tagOf[p.Id]; tag != "" {
			out = append(out, soakCopy{Tag: tag, Edited: edited(p.Message, tag), Parent: tagOf[p.RootId], Reacted: len(r.s.Reactions(p.Id)) > 0})
		}
	}
	return out
}

func (r *soakRig) slackCopies(channel string) []soakCopy {
	msgs := r.slack.Messages(channel)
	tagOf := map[string]string{}
	for _, m := range msgs {
		tagOf[m.TS] = soakTag(m.Text)
	}
	var out []soakCopy
	for _, m := range msgs {
		tag := tagOf[m.TS]
		if tag == "" {
			continue
		}
		c := soakCopy{Tag: tag, Edited: edited(m.Text, tag), Reacted: len(m.Reactions) > 0}
		if m.ThreadTS != "" && m.ThreadTS != m.TS {
			c.Parent = tagOf[m.ThreadTS]
		}
		out = append(out, c)
	}
	return out
}

// archiveCopies reads a room's archive, where corrections, retractions and
// reactions are messages of their own naming the message they are about
// (XEP-0308 by its id or origin-id; XEP-0424, XEP-0444 and XEP-0461 by
// the room's stanza-id, which is the archive's id of the message, or the
// older retraction by the origin-id).
func (r *soakRig) archiveCopies(room jid.JID) []soakCopy {
	var originals []xmpptest.Message
	edits, retracted, reacted := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, m := range r.archive(room) {
		switch {
		case xmlAttr(m.Raw, "replace", "id") != "":
			if strings.Contains(m.Body, "(edited)") {
				edits[xmlAttr(m.Raw, "replace", "id")] = true
			}
		case xmlAttr(m.Raw, "retract", "id") != "" || xmlAttr(m.Raw, "apply-to", "id") != "":
			retracted[xmlAttr(m.Raw, "retract", "id")] = true
			retracted[xmlAttr(m.Raw, "apply-to", "id")] = true
		case xmlAttr(m.Raw, "reactions", "id") != "":
			if strings.Contains(m.Raw, "<reaction") {
				reacted[xmlAttr(m.Raw, "reactions", "id")] = true
			}
		case soakTag(m.Body) != "":
			originals = append(originals, m)
		}
	}
	named := func(set map[string]bool, m xmpptest.Message) bool {
		for _, id := range []string{m.ID, m.OriginID, m.StanzaID, m.ArchiveID} {
			if id != "" && set[id] {
				return true
			}
		}
		return false
	}
	tagOf := map[string]string{}
	for _, m := range originals {
		for _, id := range []string{m.ID, m.OriginID, m.StanzaID, m.ArchiveID} {
			if id != "" {
				tagOf[id] = soakTag(m.Body)
			}
		}
	}
	var out []soakCopy
	for _, m := range originals {
		tag := soakTag(m.Body)
		out = append(out, soakCopy{Tag: tag, Edited: named(edits, m), Gone: named(retracted, m), Reacted: named(reacted, m),
			Parent: tagOf[xmlAttr(m.Raw, "reply", "id")]})
	}
	return out
}

// xmlAttr is the attribute attr of the first element called local in raw
// XML, "" if there is none.
func xmlAttr(raw, local, attr string) string {
	d := xml.NewDecoder(strings.NewReader(raw))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == local {
			for _, a := range se.Attr {
				if a.Name.Local == attr {
					return a.Value
				}
			}
			return ""
		}
	}
}

// timelineCopies reads a Matrix room: edits (m.replace) and reactions
// are events of their own naming the event they are about; a redacted
// event has lost its body, and with it its tag.
func (r *soakRig) timelineCopies(room id.RoomID) []soakCopy {
	var originals []*event.Event
	edits, reacted := map[id.EventID]bool{}, map[id.EventID]bool{}
	tagOf := map[id.EventID]string{}
	for _, e := range r.timeline(room) {
		if e.Type == event.EventReaction {
			if rel := e.Content.AsReaction().RelatesTo; rel.Type == event.RelAnnotation {
				reacted[rel.EventID] = true
			}
			continue
		}
		c := message(e)
		if c.RelatesTo != nil && c.RelatesTo.Type == event.RelReplace {
			if c.NewContent != nil && strings.Contains(c.NewContent.Body, "(edited)") {
				edits[c.RelatesTo.EventID] = true
			}
			continue
		}
		if tag := soakTag(c.Body); tag != "" {
			tagOf[e.ID] = tag
			originals = append(originals, e)
		}
	}
	var out []soakCopy
	for _, e := range originals {
		c := soakCopy{Tag: tagOf[e.ID], Edited: edits[e.ID], Reacted: reacted[e.ID]}
		if rel := message(e).RelatesTo; rel != nil {
			switch {
			case rel.Type == event.RelThread:
				c.Parent = tagOf[rel.EventID]
			case rel.InReplyTo != nil:
				c.Parent = tagOf[rel.InReplyTo.EventID]
			}
		}
		out = append(out, c)
	}
	return out
}

// archive is every message in room's archive, oldest first.
func (r *soakRig) archive(room jid.JID) []xmpptest.Message {
	r.t.Helper()
	c := r.eveClient()
	var out []xmpptest.Message
	after := ""
	for {
		ctx, cancel := context.WithTimeout(r.ctx, 60*time.Second)
		msgs, res, err := c.FetchHistory(ctx, room, history.Query{PageID: after, Limit: 500})
		cancel()
		if err != nil {
			r.t.Fatalf("reading %s's archive: %v", room, err)
		}
		out = append(out, msgs...)
		if res.Complete || len(msgs) == 0 {
			return out
		}
		after = res.Set.Last
	}
}

// timeline is every message and reaction event in a Matrix room, oldest
// first.
func (r *soakRig) timeline(room id.RoomID) []*event.Event {
	r.t.Helper()
	var out []*event.Event
	from := ""
	for {
		resp, err := r.carol.cli.Messages(r.ctx, room, from, "", mautrix.DirectionBackward, nil, 1000)
		if err != nil {
			r.t.Fatalf("reading %s's timeline: %v", room, err)
		}
		for _, e := range resp.Chunk {
			if e.Type != event.EventMessage && e.Type != event.EventReaction {
				continue
			}
			_ = e.Content.ParseRaw(e.Type)
			out = append(out, e)
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
