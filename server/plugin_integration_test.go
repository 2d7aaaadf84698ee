package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/bridgetest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// These tests run the plugin under Mattermost's own plugin runtime
// (plugin.Environment, the supervisor and the go-plugin RPC boundary) on
// the in-memory test host. Tests that need test-only networks run the
// plugin in-process; the bundle tests load the real executable.

// The plugin runs against read replicas that lag 50 ms behind the writes
// (BRIDGE_TEST_REPLICA_LAG overrides it, 0 for none), as on a server with
// SqlSettings.DataSourceReplicas: it must be right whichever reads lag.
// Benchmarks run without the lag unless the variable asks for it: they
// compare the bridge with a server's own figure, and a simulated replica
// would add its 50 ms to every message the bridge reads back.
func TestMain(m *testing.M) {
	flag.Parse()
	lag := 50 * time.Millisecond
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		lag = 0
	}
	testhost.SetDefaultOptions(testhost.WithReplicaLag(testhost.ReplicaLagFromEnv(lag)))
	testhost.Main(m)
}

const wait = 15 * time.Second

// testNetwork plugs an in-memory network into the plugin the way a real
// network is plugged in. It has no settings, so reconfiguration never
// restarts it.
func testNetwork(n *bridgetest.Network) connector.Descriptor {
	return connector.Descriptor{
		Command:   commandSpec(string(n.Network())),
		Configure: func(map[string]any, connector.Shared) (connector.Config, error) { return alwaysOn{}, nil },
		Build:     func(connector.Env, connector.Config) (bridge.Bridge, error) { return n, nil },
	}
}

// alwaysOn is the settings of a test network: on, with no secrets.
type alwaysOn struct{}

func (alwaysOn) Enabled() bool     { return true }
func (alwaysOn) Secrets() []string { return nil }

func commandSpec(name string) command.Spec {
	return command.Spec{
		Trigger: name + "bridge", Network: bridge.Network(name), Title: name, RoomArg: "room", RoomExample: "lobby",
		ParseRoom: func(s string) (string, error) {
			if s == "" || strings.ContainsAny(s, "/!") {
				return "", errors.New("test rooms have no / or ! in them")
			}
			return s, nil
		},
	}
}

type harness struct {
	t          *testing.T
	s          *testhost.Server
	n          *testhost.Node
	net, net2  *bridgetest.Network
	newPlugin  func() any
	admin      *model.User
	alice, bob *model.User
	ch         *model.Channel
	ctx        context.Context
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

func newHarnessWith(t *testing.T, settings map[string]any, opts ...testhost.Option) *harness {
	t.Helper()
	h := &harness{t: t, net: bridgetest.New("testnet"), net2: bridgetest.New("othernet")}
	h.s = testhost.NewServer(t, append([]testhost.Option{testhost.WithPluginID(manifest.Id), testhost.WithPluginSettings(settings)}, opts...)...)
	h.n = h.s.Node(0)
	h.newPlugin = func() any {
		return &Plugin{networks: append(defaultNetworks(), testNetwork(h.net), testNetwork(h.net2))}
	}
	h.activate()
	team := h.s.DefaultTeam()
	h.admin = h.s.CreateUser("admin", true)
	h.alice = h.s.CreateUser("alice", false)
	h.bob = h.s.CreateUser("bob", false)
	h.ch = h.s.CreateChannel(team.Id, "bridged")
	for _, u := range []*model.User{h.admin, h.alice, h.bob} {
		h.s.AddToTeam(u.Id, team.Id)
		h.s.AddToChannel(u.Id, h.ch.Id)
	}
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	h.command("/testnetbridge map lobby", "Linked this channel")
	return h
}

func (h *harness) activate() {
	h.t.Helper()
	if err := h.n.ActivateInProcess(testhost.RepoManifest(h.t), h.newPlugin); err != nil {
		h.t.Fatalf("activate: %v", err)
	}
}

func (h *harness) command(cmd, want string) string {
	h.t.Helper()
	return runCommand(h.t, h.n, h.admin, h.ch, cmd, want)
}

func (h *harness) post(user *model.User, text, rootID string, fileIDs ...string) *model.Post {
	h.t.Helper()
	return postAs(h.t, h.n, user, h.ch, text, rootID, fileIDs...)
}

// delivered waits for a delivery on network n matching kind and pred.
func (h *harness) delivered(n *bridgetest.Network, kind bridge.Kind, pred func(bridgetest.Delivered) bool) bridgetest.Delivered {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, wait)
	defer cancel()
	d, err := n.WaitFor(ctx, func(d bridgetest.Delivered) bool { return d.Kind == kind && pred(d) })
	if err != nil {
		h.t.Fatalf("waiting for a %s on %s: %v", kind, n.Network(), err)
	}
	return d
}

// channelPost waits for a post in the linked channel matching pred.
func (h *harness) channelPost(what string, pred func(*model.Post) bool) *model.Post {
	h.t.Helper()
	return waitPost(h.t, h.s, h.ch, what, pred)
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

func countDeliveries(n *bridgetest.Network, pred func(bridgetest.Delivered) bool) int {
	c := 0
	for _, d := range n.Delivered() {
		if pred(d) {
			c++
		}
	}
	return c
}

var carol = bridgetest.Person{ID: "carol-id", Username: "Carol", DisplayName: "Carol Remote"}

// Check 1: the bundle make dist built (or a fresh build of ./server) loads,
// activates, registers its commands and answers admins only.
func TestBundleActivatesAndAnswersHelp(t *testing.T) {
	bundle := testhost.PluginDir(t)
	s := testhost.NewServer(t, testhost.WithBundle(bundle))
	n := s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	team := s.DefaultTeam()
	admin, user := s.CreateUser("admin", true), s.CreateUser("regular", false)
	ch := s.CreateChannel(team.Id, "general-chat")
	for _, u := range []*model.User{admin, user} {
		s.AddToTeam(u.Id, team.Id)
		s.AddToChannel(u.Id, ch.Id)
	}
	var triggers []string
	for _, c := range n.Commands(team.Id) {
		triggers = append(triggers, c.Trigger)
	}
	if got := strings.Join(triggers, ","); !strings.Contains(got, "xmppbridge") || !strings.Contains(got, "matrixbridge") || !strings.Contains(got, "slackbridge") {
		t.Fatalf("registered commands: %s", got)
	}
	resp, appErr := n.ExecuteCommand(admin.Id, ch.Id, team.Id, "/xmppbridge help")
	if appErr != nil || !strings.Contains(resp.Text, "/xmppbridge map <room-jid>") {
		t.Fatalf("admin help: %+v %v", resp, appErr)
	}
	resp, appErr = n.ExecuteCommand(user.Id, ch.Id, team.Id, "/xmppbridge help")
	if appErr != nil || !strings.Contains(resp.Text, "Only system admins") {
		t.Fatalf("regular user's help: %+v %v", resp, appErr)
	}
	resp, _ = n.ExecuteCommand(admin.Id, ch.Id, team.Id, "/xmppbridge map room@conference.example.com")
	if !strings.Contains(resp.Text, "not configured") || !strings.Contains(resp.Text, "Nothing was changed") {
		t.Fatalf("map without XMPP: %q", resp.Text)
	}
	// One shared-channels remote per network, for the Connected Workspaces page.
	if got := len(s.RemoteClusters()); got != 3 {
		t.Fatalf("registered %d shared-channels remotes, want 3", got)
	}
	// The status endpoint is for system admins only.
	req, _ := http.NewRequest(http.MethodGet, "/api/v1/status", http.NoBody)
	if res := n.ServeHTTP(user.Id, req); res.StatusCode != http.StatusForbidden {
		t.Fatalf("status for a regular user: %d", res.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, "/api/v1/status", http.NoBody)
	if res := n.ServeHTTP(admin.Id, req); res.StatusCode != http.StatusOK {
		t.Fatalf("status for an admin: %d", res.StatusCode)
	}
}

// Check 2: invalid settings are refused with an error naming the setting,
// the running configuration stays, and no secret reaches any log line.
func TestInvalidConfigurationIsRefusedAndSecretsStayOutOfLogs(t *testing.T) {
	const password, hsToken = "hunter2-Very-Secret", "hs-0123456789abcdef-secret"
	bundle := testhost.PluginDir(t)
	s := testhost.NewServer(t, testhost.WithBundle(bundle))
	n := s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	err := s.SetPluginSettings(map[string]any{
		"XMPPEnabled": true, "XMPPMode": "client", "XMPPJID": "not a jid@@", "XMPPPassword": password,
		"MatrixEnabled": true, "MatrixHomeserverURL": "https://matrix.example.com", "MatrixServerName": "example.com",
		"MatrixASToken": "short", "MatrixHSToken": hsToken,
	})
	if err == nil {
		t.Fatal("invalid settings were accepted")
	}
	for _, setting := range []string{"XMPPJID", "MatrixASToken"} {
		if !strings.Contains(err.Error(), setting) {
			t.Errorf("error %q does not name %s", err, setting)
		}
	}
	// Valid settings with secrets: an unreachable server shows in the status.
	if err = s.SetPluginSettings(map[string]any{
		"XMPPEnabled": true, "XMPPMode": "client", "XMPPJID": "bridge@example.com", "XMPPPassword": password,
		"XMPPServerAddress": "127.0.0.1:1",
	}); err != nil {
		t.Fatalf("valid settings refused: %v", err)
	}
	team := s.DefaultTeam()
	admin := s.CreateUser("admin", true)
	ch := s.CreateChannel(team.Id, "cfg")
	s.AddToTeam(admin.Id, team.Id)
	s.AddToChannel(admin.Id, ch.Id)
	testhost.WaitFor(t, wait, func() bool {
		resp, _ := n.ExecuteCommand(admin.Id, ch.Id, team.Id, "/xmppbridge status")
		return strings.Contains(resp.Text, "XMPP bridge: error") && strings.Contains(resp.Text, "127.0.0.1:1")
	}, "the XMPP status to show the connection error")
	// Invalid settings at activation stop the plugin with the same clear error.
	n.Deactivate()
	s.UpdateConfig(func(c *model.Config) {
		c.PluginSettings.Plugins[manifest.Id] = map[string]any{"QueueSize": 3, "XMPPPassword": password}
	})
	if err = n.Activate(); err == nil || !strings.Contains(err.Error(), "QueueSize") {
		t.Fatalf("activation with invalid settings: %v", err)
	}
	s.WaitHooks(wait)
	for _, line := range s.Logs() {
		for _, secret := range []string{password, hsToken} {
			if strings.Contains(line, secret) {
				t.Fatalf("a log line holds a secret: %s", line)
			}
		}
	}
}

// Check 3: every message kind round-trips between a linked channel and the
// test network, and nothing echoes back.
func TestEveryMessageKindBothWays(t *testing.T) {
	h := newHarness(t)

	// Mattermost -> network: a post, by alice.
	hello := h.post(h.alice, "hello **network**", "")
	out := h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Origin.ID == hello.Id })
	if out.Room != "lobby" || out.Text != "hello **network**" || out.Sender.Username != "alice" || out.Sender.Network != bridge.NetworkMattermost {
		t.Fatalf("delivery = %+v", out.Delivery)
	}

	// Network -> Mattermost: carol speaks; a remote user stands for her.
	carolMsg, err := h.net.Say(h.ctx, "lobby", carol, "hi from the network", "")
	h.must(err)
	in := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "hi from the network" })
	cu := h.s.User(in.UserId)
	if cu == nil || cu.Username != "carol:testnet" || cu.RemoteId == nil || *cu.RemoteId == "" || cu.Nickname != "Carol Remote (testnet)" {
		t.Fatalf("remote user = %+v", cu)
	}
	if !model.IsValidUsernameAllowRemote(cu.Username) {
		t.Fatalf("username %q fails the server's rules", cu.Username)
	}
	var registered bool
	for _, rc := range h.s.RemoteClusters() {
		registered = registered || rc.RemoteId == *cu.RemoteId
	}
	if !registered {
		t.Fatal("the remote user's RemoteId is not a registered shared-channels remote")
	}
	if members := strings.Join(h.s.ChannelMembers(h.ch.Id), ","); !strings.Contains(members, cu.Id) {
		t.Fatal("the remote user was not added to the channel")
	}

	// Edits both ways.
	_, appErr := h.n.PatchPost(h.alice.Id, hello.Id, "hello, edited")
	if appErr != nil {
		t.Fatal(appErr)
	}
	h.delivered(h.net, bridge.KindEdit, func(d bridgetest.Delivered) bool { return d.TargetID == out.NativeID && d.Text == "hello, edited" })
	h.must(h.net.Edit(h.ctx, "lobby", carol, carolMsg, "hi, edited on the network"))
	testhost.WaitFor(t, wait, func() bool { return h.s.Post(in.Id).Message == "hi, edited on the network" }, "carol's edit")

	// Reactions both ways, added and removed.
	_, appErr = h.n.React(h.bob.Id, in.Id, "thumbsup")
	if appErr != nil {
		t.Fatal(appErr)
	}
	h.delivered(h.net, bridge.KindReactionAdd, func(d bridgetest.Delivered) bool {
		return d.TargetID == carolMsg && d.Emoji == "thumbsup" && d.Sender.Username == "bob"
	})
	h.must(appErrOrNil(h.n.RemoveReaction(&model.Reaction{UserId: h.bob.Id, PostId: in.Id, EmojiName: "thumbsup"})))
	h.delivered(h.net, bridge.KindReactionRemove, func(d bridgetest.Delivered) bool { return d.TargetID == carolMsg })
	h.must(h.net.React(h.ctx, "lobby", carol, out.NativeID, "🎉", true))
	testhost.WaitFor(t, wait, func() bool {
		rs := h.s.Reactions(hello.Id)
		return len(rs) == 1 && rs[0].EmojiName == "tada" && rs[0].UserId == cu.Id
	}, "carol's reaction")
	h.must(h.net.React(h.ctx, "lobby", carol, out.NativeID, "🎉", false))
	testhost.WaitFor(t, wait, func() bool { return len(h.s.Reactions(hello.Id)) == 0 }, "carol's reaction removed")

	// Thread replies both ways.
	reply := h.post(h.bob, "a reply in carol's thread", in.Id)
	h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Origin.ID == reply.Id && d.ParentID == carolMsg })
	_, err = h.net.Say(h.ctx, "lobby", carol, "answering alice", out.NativeID)
	h.must(err)
	h.channelPost("carol's reply", func(p *model.Post) bool { return p.Message == "answering alice" && p.RootId == hello.Id })

	// Files both ways.
	info := h.s.UploadFile(h.alice.Id, h.ch.Id, "notes.txt", []byte("file from mattermost"))
	withFile := h.post(h.alice, "see attached", "", info.Id)
	got := h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Origin.ID == withFile.Id })
	if string(got.Files["notes.txt"]) != "file from mattermost" {
		t.Fatalf("file on the network = %q", got.Files)
	}
	_, err = h.net.SendFile(h.ctx, "lobby", carol, "a picture", "pic.png", "image/png", []byte("\x89PNG fake image"))
	h.must(err)
	fp := h.channelPost("carol's file", func(p *model.Post) bool { return p.Message == "a picture" })
	if len(fp.FileIds) != 1 || string(h.s.FileData(fp.FileIds[0])) != "\x89PNG fake image" || h.s.FileInfo(fp.FileIds[0]).Name != "pic.png" {
		t.Fatalf("attached files = %v", fp.FileIds)
	}

	// @channel from outside does not notify the whole channel.
	_, err = h.net.Say(h.ctx, "lobby", carol, "@channel look at this", "")
	h.must(err)
	loud := h.channelPost("carol's @channel", func(p *model.Post) bool { return strings.Contains(p.Message, "look at this") })
	if strings.Contains(loud.Message, "@channel") || loud.GetProp(model.PostPropsMentionHighlightDisabled) != true {
		t.Fatalf("@channel went through: %q props=%v", loud.Message, loud.GetProps())
	}

	// Deletes both ways.
	h.must(appErrOrNil(h.n.DeletePost(h.alice.Id, hello.Id)))
	h.delivered(h.net, bridge.KindDelete, func(d bridgetest.Delivered) bool { return d.TargetID == out.NativeID })
	h.must(h.net.Delete(h.ctx, "lobby", carol, carolMsg))
	testhost.WaitFor(t, wait, func() bool { p := h.s.Post(in.Id); return p == nil || p.DeleteAt > 0 }, "carol's delete")

	// Nothing echoed: every delivery to the network came from Mattermost
	// people, and the network's messages became exactly one post each.
	h.s.WaitHooks(wait)
	time.Sleep(200 * time.Millisecond) // let any stray echo surface before counting
	for _, d := range h.net.Delivered() {
		if d.Sender.Network != bridge.NetworkMattermost || d.Sender.ID == cu.Id {
			t.Fatalf("echo delivered to the network: %+v", d.Delivery)
		}
	}
	if c := countDeliveries(h.net, func(d bridgetest.Delivered) bool { return d.Kind == bridge.KindMessage }); c != 3 {
		t.Fatalf("%d messages reached the network, want 3", c)
	}
	byCarol := 0
	for _, p := range h.s.ChannelPosts(h.ch.Id) {
		if p.UserId == cu.Id {
			byCarol++
		}
	}
	if byCarol != 3 { // her reply, picture and @channel; her first message was deleted
		t.Fatalf("%d posts by carol's remote user, want 3", byCarol)
	}
}

// Issue 8 item 2: only the author edits or deletes a message. A remote
// person cannot change carol's message nor a Mattermost user's post; a
// Mattermost admin's delete of carol's post reaches the network as a
// moderation, and the plugin's own removals never travel back.
func TestOnlyAuthorsEditOrDeleteAndAdminDeletesModerate(t *testing.T) {
	h := newHarness(t)
	mallory := bridgetest.Person{ID: "mallory-id", Username: "mallory", DisplayName: "Mallory"}
	carolMsg, err := h.net.Say(h.ctx, "lobby", carol, "carol's words", "")
	h.must(err)
	in := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "carol's words" })
	hello := h.post(h.alice, "alice's words", "")
	out := h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Origin.ID == hello.Id })

	h.must(h.net.Edit(h.ctx, "lobby", mallory, carolMsg, "carol's words, forged"))
	h.must(h.net.Delete(h.ctx, "lobby", mallory, carolMsg))
	h.must(h.net.Edit(h.ctx, "lobby", mallory, out.NativeID, "alice's words, forged"))
	h.must(h.net.Delete(h.ctx, "lobby", mallory, out.NativeID))
	h.must(h.net.Delete(h.ctx, "lobby", carol, out.NativeID)) // an author, but not of this one
	// The network's own later message shows the refused ones were handled.
	_, err = h.net.Say(h.ctx, "lobby", carol, "after the forgeries", "")
	h.must(err)
	h.channelPost("carol's later message", func(p *model.Post) bool { return p.Message == "after the forgeries" })
	h.s.WaitHooks(wait)
	if p := h.s.Post(in.Id); p == nil || p.DeleteAt != 0 || p.Message != "carol's words" {
		t.Fatalf("carol's post after mallory's edit and delete: %+v", p)
	}
	if p := h.s.Post(hello.Id); p == nil || p.DeleteAt != 0 || p.Message != "alice's words" {
		t.Fatalf("alice's post after remote edits and deletes: %+v", p)
	}
	if n := h.statusLine("testnetbridge", "not_author"); n == "" {
		t.Fatal("status does not count the refused edits and deletes under not_author")
	}

	// The admin removes carol's post: the network is asked to moderate.
	h.must(appErrOrNil(h.n.DeletePost(h.admin.Id, in.Id)))
	del := h.delivered(h.net, bridge.KindDelete, func(d bridgetest.Delivered) bool { return d.TargetID == carolMsg })
	if !del.Moderate || !del.Moderated || del.Sender.ID != h.admin.Id {
		t.Fatalf("the admin's delete reached the network as %+v", del.Delivery)
	}

	// carol removes her own message: the plugin deletes its post, and that
	// removal is not sent back.
	second, err := h.net.Say(h.ctx, "lobby", carol, "soon gone", "")
	h.must(err)
	gone := h.channelPost("carol's second message", func(p *model.Post) bool { return p.Message == "soon gone" })
	h.must(h.net.Delete(h.ctx, "lobby", carol, second))
	testhost.WaitFor(t, wait, func() bool { p := h.s.Post(gone.Id); return p == nil || p.DeleteAt > 0 }, "carol's delete")
	h.s.WaitHooks(wait)
	time.Sleep(200 * time.Millisecond) // let a stray echo surface
	if n := countDeliveries(h.net, func(d bridgetest.Delivered) bool { return d.Kind == bridge.KindDelete }); n != 1 {
		t.Fatalf("%d deletes reached the network, want only the admin's", n)
	}
}

// Issue 9 item 5: the real server answers DeletePost of a post already
// deleted with 400. A delete that arrives twice is done, quietly: nothing
// dropped.
func TestDoubleDeleteIsQuiet(t *testing.T) {
	h := newHarness(t)
	id, err := h.net.Say(h.ctx, "lobby", carol, "said twice, deleted twice", "")
	h.must(err)
	p := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "said twice, deleted twice" })
	h.must(h.net.Delete(h.ctx, "lobby", carol, id))
	h.must(h.net.Delete(h.ctx, "lobby", carol, id))
	_, err = h.net.Say(h.ctx, "lobby", carol, "after the deletes", "")
	h.must(err)
	h.channelPost("carol's later message", func(p *model.Post) bool { return p.Message == "after the deletes" })
	if got := h.s.Post(p.Id); got == nil || got.DeleteAt == 0 {
		t.Fatal("carol's post was not deleted")
	}
	for _, n := range h.status().Networks {
		for dir, reasons := range n.Dropped {
			if len(reasons) != 0 {
				t.Fatalf("%s %s dropped %v", n.Network, dir, reasons)
			}
		}
	}
}

// statusLine runs /<trigger> status and returns the line that mentions what.
func (h *harness) statusLine(trigger, what string) string {
	for _, line := range strings.Split(h.command("/"+trigger+" status", ""), "\n") {
		if strings.Contains(line, what) {
			return line
		}
	}
	return ""
}

// Check 4: links and message maps live in the KV store: after a restart an
// edit still finds its counterpart.
func TestLinksAndMessageMapsSurviveRestart(t *testing.T) {
	h := newHarness(t)
	p := h.post(h.alice, "before the restart", "")
	first := h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Origin.ID == p.Id })
	carolMsg, err := h.net.Say(h.ctx, "lobby", carol, "carol before the restart", "")
	h.must(err)
	in := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "carol before the restart" })

	h.must(h.n.Restart())

	h.command("/testnetbridge status", "lobby")
	_, appErr := h.n.PatchPost(h.alice.Id, p.Id, "after the restart")
	if appErr != nil {
		t.Fatal(appErr)
	}
	h.delivered(h.net, bridge.KindEdit, func(d bridgetest.Delivered) bool {
		return d.TargetID == first.NativeID && d.Text == "after the restart"
	})
	h.must(h.net.Edit(h.ctx, "lobby", carol, carolMsg, "carol after the restart"))
	testhost.WaitFor(t, wait, func() bool { return h.s.Post(in.Id).Message == "carol after the restart" }, "carol's edit after restart")
	// The same remote user still stands for carol.
	_, err = h.net.Say(h.ctx, "lobby", carol, "carol again", "")
	h.must(err)
	again := h.channelPost("carol again", func(p *model.Post) bool { return p.Message == "carol again" })
	if again.UserId != in.UserId {
		t.Fatal("a second remote user was created for carol after the restart")
	}
	if c := countDeliveries(h.net, func(d bridgetest.Delivered) bool { return d.Kind == bridge.KindMessage }); c != 1 {
		t.Fatalf("%d messages on the network after the restart, want 1", c)
	}
}

// Check 5: posts made while the plugin was deactivated are relayed after
// activation, once, in order.
func TestPostsWhileDeactivatedAreRelayedOnce(t *testing.T) {
	h := newHarness(t)
	h.post(h.alice, "live 1", "")
	h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Text == "live 1" })

	h.n.Deactivate()
	var missed []string
	for i := range 5 {
		text := fmt.Sprintf("missed %d", i)
		h.post(h.bob, text, "")
		missed = append(missed, text)
	}
	h.activate()
	h.post(h.alice, "live 2", "")
	h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Text == "live 2" })

	// A second restart must not replay them again.
	h.must(h.n.Restart())
	h.post(h.alice, "live 3", "")
	h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Text == "live 3" })

	var texts []string
	for _, d := range h.net.Delivered() {
		if d.Kind == bridge.KindMessage {
			texts = append(texts, d.Text)
		}
	}
	want := append(append([]string{"live 1"}, missed...), "live 2", "live 3")
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("the network got\n%q\nwant\n%q", texts, want)
	}
}

// Issue 9 item 4: a backlog larger than one GetPostsSince page (the
// server's 1,000 posts, in no defined order) is relayed whole, once and in
// order.
func TestBacklogLargerThanOnePageIsRelayedOnce(t *testing.T) {
	h := newHarness(t)
	h.n.Deactivate()
	const n = 2500
	want := make([]string, 0, n+1)
	for i := range n {
		text := fmt.Sprintf("backlog %04d", i)
		h.post(h.bob, text, "")
		want = append(want, text)
	}
	h.activate()
	h.post(h.alice, "after the backlog", "")
	want = append(want, "after the backlog")
	// 2,500 relays take a while on a loaded machine with the replica lag
	// on (each first lookup is proven on the primary): this is a failsafe.
	testhost.WaitFor(t, 100*time.Second, func() bool {
		return countDeliveries(h.net, func(d bridgetest.Delivered) bool { return d.Kind == bridge.KindMessage }) >= len(want)
	}, "the whole backlog")
	var texts []string
	for _, d := range h.net.Delivered() {
		if d.Kind == bridge.KindMessage {
			texts = append(texts, d.Text)
		}
	}
	if !slices.Equal(texts, want) {
		t.Fatalf("the network got %d messages, want %d once and in order; first differences: %v", len(texts), len(want), firstDifferences(texts, want, 5))
	}
}

func firstDifferences(got, want []string, n int) []string {
	var out []string
	for i := 0; i < max(len(got), len(want)) && len(out) < n; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			out = append(out, fmt.Sprintf("#%d got %q want %q", i, g, w))
		}
	}
	return out
}

// Issue 9 item 5: the server refuses an image above MaxImageResolution.
// The message still arrives with its text and its other files, and says
// which file could not be attached.
func TestOversizedImageKeepsTheMessage(t *testing.T) {
	h := newHarness(t)
	small := pngOf(t, 4, 4)
	huge := pngOf(t, 8000, 5000) // 40 Mpx, over the default 7680x4320
	file := func(name string, data []byte) bridge.Attachment {
		return bridge.Attachment{Name: name, MIMEType: "image/png", Size: int64(len(data)),
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	}
	h.must(h.net.Send(h.ctx, bridge.Event{
		Kind: bridge.KindMessage, Origin: bridge.Ref{Network: "testnet", Room: "lobby", ID: "pics"},
		Sender: bridge.Sender{Network: "testnet", ID: carol.ID, Username: carol.Username, DisplayName: carol.DisplayName},
		Text:   "two pictures", Attachments: []bridge.Attachment{file("small.png", small), file("huge.png", huge)},
	}))
	p := h.channelPost("carol's pictures", func(p *model.Post) bool { return strings.HasPrefix(p.Message, "two pictures") })
	if len(p.FileIds) != 1 || h.s.FileInfo(p.FileIds[0]).Name != "small.png" {
		t.Fatalf("attached %v, want small.png alone", p.FileIds)
	}
	if !strings.Contains(p.Message, "huge.png") {
		t.Fatalf("the message does not say which file is missing: %q", p.Message)
	}
}

// pngOf encodes a w x h image; a big one compresses to little.
func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Issue 9 item 5: a team at MaxUsersPerTeam cannot take a new remote user.
// The person's message still appears, posted by the bridge's bot with
// their name and network, the room does not stall, and status names the
// setting.
func TestFullTeamStillHearsRemotePeople(t *testing.T) {
	testRefusedTeamStillHearsRemotePeople(t, "MaxUsersPerTeam", func(h *harness) {
		members := len(h.s.TeamMembers(h.ch.TeamId))
		h.must(h.s.UpdateConfig(func(c *model.Config) { c.TeamSettings.MaxUsersPerTeam = model.NewPointer(members) }))
	})
}

// Issue 9 item 5: the same when the server or the team limits email
// domains: the server refuses to create the remote user, or to add them
// to the team.
func TestEmailDomainLimitsStillHearRemotePeople(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		testRefusedTeamStillHearsRemotePeople(t, "RestrictCreationToDomains", func(h *harness) {
			h.must(h.s.UpdateConfig(func(c *model.Config) { c.TeamSettings.RestrictCreationToDomains = model.NewPointer("example.com") }))
		})
	})
	t.Run("team", func(t *testing.T) {
		testRefusedTeamStillHearsRemotePeople(t, "allowed email domains", func(h *harness) {
			h.s.UpdateTeamAllowedDomains(h.ch.TeamId, "example.com")
		})
	})
}

func testRefusedTeamStillHearsRemotePeople(t *testing.T, setting string, refuse func(h *harness)) {
	h := newHarness(t)
	refuse(h)
	_, err := h.net.Say(h.ctx, "lobby", carol, "can you hear me", "")
	h.must(err)
	p := h.channelPost("carol's message", func(p *model.Post) bool { return strings.Contains(p.Message, "can you hear me") })
	if u := h.s.User(p.UserId); u == nil || !u.IsBot || !strings.Contains(p.Message, "Carol Remote (testnet)") {
		t.Fatalf("carol's message is %q by %+v, want the bot's with her name and network", p.Message, u)
	}
	if p.GetProp(model.PostPropsMentionHighlightDisabled) != true {
		t.Fatal("the bot's post for carol may notify the channel")
	}
	_, err = h.net.Say(h.ctx, "lobby", carol, "and again", "")
	h.must(err)
	h.channelPost("carol's next message", func(p *model.Post) bool { return strings.Contains(p.Message, "and again") })
	if line := h.statusLine("testnetbridge", setting); line == "" {
		t.Fatalf("status does not name %s", setting)
	}
}

// Check 6: a destination that hangs or fails does not delay another
// destination of the same link.
func TestStuckDestinationDoesNotDelayOthers(t *testing.T) {
	h := newHarness(t)
	h.command("/othernetbridge map hall", "Linked this channel")
	release := h.net.Hang("lobby")
	defer release()
	h.net2.Fail("nowhere", errors.New("unused")) // failures elsewhere are not this link's business

	for i := range 3 {
		h.post(h.alice, fmt.Sprintf("while lobby hangs %d", i), "")
	}
	for i := range 3 {
		text := fmt.Sprintf("while lobby hangs %d", i)
		h.delivered(h.net2, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Text == text })
	}
	if c := countDeliveries(h.net, func(bridgetest.Delivered) bool { return true }); c != 0 {
		t.Fatalf("the hung destination got %d deliveries", c)
	}
	// Status shows what waits for the hung room, and since when.
	if line := h.statusLine("testnetbridge", "Waiting for testnet lobby"); !strings.Contains(line, "3 events, the oldest queued") {
		t.Fatalf("status about the hung room: %q", line)
	}
	// A message from the other network reaches Mattermost and, through the
	// bus, the still-hung network later.
	_, err := h.net2.Say(h.ctx, "hall", carol, "from the other network", "")
	h.must(err)
	h.channelPost("other network's message", func(p *model.Post) bool { return p.Message == "from the other network" })

	// A transient failure is retried; order is kept.
	h.net2.Fail("hall", errors.New("temporarily down"))
	h.post(h.alice, "retried", "")
	time.Sleep(300 * time.Millisecond)
	h.net2.Fail("hall", nil)
	h.delivered(h.net2, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Text == "retried" })

	release()
	h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Text == "retried" })
	var order []string
	for _, d := range h.net.Delivered() {
		order = append(order, d.Text)
	}
	want := "while lobby hangs 0|while lobby hangs 1|while lobby hangs 2|from the other network|retried"
	if strings.Join(order, "|") != want {
		t.Fatalf("order on the hung network: %q", order)
	}
}

// Check 7: malformed input gets clear errors and changes nothing.
func TestMalformedInputGetsClearErrors(t *testing.T) {
	h := newHarness(t)
	for cmd, want := range map[string]string{
		"/xmppbridge map not-a-jid":                        "not a valid XMPP room",
		"/xmppbridge map room@conference.example.com/nick": "no /resource",
		"/matrixbridge map room":                           "not a valid Matrix room",
		"/slackbridge map #general":                        "not a valid Slack room",
		"/testnetbridge teleport":                          "Unknown subcommand",
		"/testnetbridge map":                               "Usage",
		"/othernetbridge unmap":                            "not linked",
	} {
		h.command(cmd, want)
	}
	keys, appErr := h.s.KV().KVList(0, 1000)
	h.must(appErrOrNil(appErr))
	before := strings.Join(keys, ",")

	// Events a network cannot have sent are refused with ErrInvalidEvent.
	for _, ev := range []bridge.Event{
		{Kind: bridge.KindMessage, Origin: bridge.Ref{Network: "testnet", Room: "lobby", ID: "x1"}, Sender: bridge.Sender{Network: "testnet", ID: "x"}},
		{Kind: "teleport", Origin: bridge.Ref{Network: "testnet", Room: "lobby", ID: "x2"}, Text: "?"},
		{Kind: bridge.KindEdit, Origin: bridge.Ref{Network: "testnet", Room: "lobby", ID: "x3"}, Text: "no target"},
	} {
		if err := h.net.Send(h.ctx, ev); !errors.Is(err, bridge.ErrInvalidEvent) {
			t.Errorf("event %+v: %v", ev, err)
		}
	}
	// A message from an unlinked room is refused.
	if _, err := h.net.Say(h.ctx, "elsewhere", carol, "hello?", ""); !errors.Is(err, bridge.ErrNotLinked) {
		t.Errorf("unlinked room: %v", err)
	}
	after, appErr := h.s.KV().KVList(0, 1000)
	h.must(appErrOrNil(appErr))
	if strings.Join(after, ",") != before {
		t.Fatalf("bad input changed the store:\nbefore %s\nafter  %s", before, strings.Join(after, ","))
	}

	// An oversized message is split into posts Mattermost accepts, in order.
	long := strings.Repeat("word ", 7000) // 35,000 bytes, over the 16,383-rune limit
	_, err := h.net.Say(h.ctx, "lobby", carol, long, "")
	h.must(err)
	testhost.WaitFor(t, wait, func() bool {
		var total int
		for _, p := range h.s.ChannelPosts(h.ch.Id) {
			if strings.HasPrefix(p.Message, "word") {
				total += len(p.Message)
			}
		}
		return total >= len(strings.TrimSpace(long))-5
	}, "the long message in parts")
}

func appErrOrNil(e *model.AppError) error {
	if e == nil {
		return nil
	}
	return e
}

// Remote users get names that pass the server's rules, distinct names for
// distinct people, and profiles that follow the remote side.
func TestRemoteUsersNamesAndProfiles(t *testing.T) {
	h := newHarness(t)
	picture := pngImage(t, 2)
	twin := bridgetest.Person{ID: "carol-2-id", Username: "Carol", DisplayName: "Another Carol", Avatar: picture, AvatarHash: "v1"}
	long := bridgetest.Person{ID: "long-id", Username: strings.Repeat("Ünïcode Name ", 10), DisplayName: "Long"}
	for _, p := range []bridgetest.Person{carol, twin, long} {
		_, err := h.net.Say(h.ctx, "lobby", p, "I am "+p.ID, "")
		h.must(err)
	}
	users := map[string]*model.User{}
	for _, p := range []bridgetest.Person{carol, twin, long} {
		post := h.channelPost(p.ID, func(x *model.Post) bool { return x.Message == "I am "+p.ID })
		users[p.ID] = h.s.User(post.UserId)
	}
	if users[carol.ID].Id == users[twin.ID].Id {
		t.Fatal("two people with one username share a Mattermost user")
	}
	for id, u := range users {
		if !model.IsValidUsernameAllowRemote(u.Username) || !strings.HasSuffix(u.Username, ":testnet") {
			t.Errorf("%s got username %q", id, u.Username)
		}
	}
	if users[twin.ID].Username != "carol-2:testnet" {
		t.Errorf("the second Carol is %q", users[twin.ID].Username)
	}
	if img, ok := h.s.ProfileImage(users[twin.ID].Id); !ok || !bytes.Equal(img, picture) {
		t.Fatalf("profile image = %q", img)
	}
	// A new display name and picture reach the same user.
	twin.DisplayName, twin.Avatar, twin.AvatarHash = "Carol the Second", pngImage(t, 3), "v2"
	_, err := h.net.Say(h.ctx, "lobby", twin, "renamed", "")
	h.must(err)
	post := h.channelPost("renamed", func(x *model.Post) bool { return x.Message == "renamed" })
	if post.UserId != users[twin.ID].Id {
		t.Fatal("a profile change created a new user")
	}
	testhost.WaitFor(t, wait, func() bool {
		img, _ := h.s.ProfileImage(post.UserId)
		return h.s.User(post.UserId).Nickname == "Carol the Second (testnet)" && string(img) == string(twin.Avatar)
	}, "updated profile")
}

// pngImage makes a real picture: the server decodes profile images.
func pngImage(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	img.Set(0, 0, color.RGBA{R: 200, A: 255})
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A destination whose queue is full makes the Mattermost side wait and
// retry: a burst larger than QueueSize still arrives whole and in order.
func TestBurstOverQueueSizeArrivesWhole(t *testing.T) {
	h := newHarnessWith(t, map[string]any{"QueueSize": 10})
	release := h.net.Hang("lobby")
	var want []string
	for i := range 40 {
		text := fmt.Sprintf("burst %02d", i)
		h.post(h.alice, text, "")
		want = append(want, text)
	}
	h.s.WaitHooks(wait)
	release()
	testhost.WaitFor(t, 30*time.Second, func() bool {
		return countDeliveries(h.net, func(d bridgetest.Delivered) bool { return d.Kind == bridge.KindMessage }) >= len(want)
	}, "the whole burst")
	time.Sleep(500 * time.Millisecond)
	var got []string
	for _, d := range h.net.Delivered() {
		got = append(got, d.Text)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("delivered %d messages:\n%q", len(got), got)
	}
}
