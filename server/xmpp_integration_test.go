package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

// xmppHarness is a Mattermost test host with the plugin, a real XMPP
// server (Prosody or ejabberd), a channel linked with a room, and a person
// in that room on a second client.
type xmppHarness struct {
	channelHarness
	ctx      context.Context
	xmpp     xmppServer
	room     jid.JID
	occupant *xmpptest.Client
}

const bridgePassword = "bridge-Secret-pw-1"

// newXMPPHarness is newXMPPHarnessOn Prosody, for the checks that run on
// one server.
func newXMPPHarness(t *testing.T, mode string) *xmppHarness {
	t.Helper()
	return newXMPPHarnessOn(t, testservers.Prosody, mode)
}

// newXMPPHarnessOn starts a server of kind, the plugin in mode linked with
// a room there, and carol in the room.
func newXMPPHarnessOn(t *testing.T, kind testservers.Kind, mode string, opts ...testservers.Options) *xmppHarness {
	t.Helper()
	h := &xmppHarness{channelHarness: channelHarness{t: t}}
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	var o testservers.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	h.xmpp = startXMPPServer(t, kind, o)
	h.xmpp.CreateUser(t, "bridge", bridgePassword)
	h.xmpp.CreateUser(t, "carol", "carol-pw")
	h.room = h.xmpp.RoomJID(t, "dev")
	h.occupant = h.xmpp.Client(t, "carol", "carol-pw")
	if err := h.occupant.JoinRoom(h.ctx, h.room, "Carol"); err != nil {
		t.Fatal(err)
	}

	h.s = testhost.NewServer(t, testhost.WithPluginID(manifest.Id), testhost.WithPluginSettings(xmppSettings(h.xmpp, mode)))
	h.n = h.s.Node(0)
	if err := h.n.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
		t.Fatal(err)
	}
	h.admin, h.alice, h.bob = createPeople(h.s)
	h.ch = channelOf(h.s, "xmpp-dev", h.admin, h.alice, h.bob)
	waitConnected(t, h.n, h.admin, h.ch, "xmppbridge", "XMPP")
	h.command("/xmppbridge map "+h.room.String(), "Linked this channel")
	return h
}

// xmppSettings are the plugin settings that connect the bridge to srv in
// mode.
func xmppSettings(srv reachable, mode string) map[string]any {
	p := srv.Reach()
	settings := map[string]any{
		"XMPPEnabled": true, "XMPPMode": mode, "XMPPTLSMode": "starttls",
		"XMPPCACertificate": p.CACertPEM, "XMPPPostSubjects": true,
	}
	if mode == "component" {
		// XEP-0114 has no STARTTLS: components use the direct-TLS port.
		settings["XMPPTLSMode"] = "tls"
		settings["XMPPServerAddress"] = p.ComponentTLSAddr()
		settings["XMPPComponentDomain"] = p.ComponentDomain
		settings["XMPPComponentSecret"] = p.ComponentSecret
	} else {
		settings["XMPPServerAddress"] = p.C2SAddr()
		settings["XMPPJID"] = "bridge@" + p.Domain
		settings["XMPPPassword"] = bridgePassword
	}
	return settings
}

// roomMessage waits until the occupant sees a groupchat message matching.
func (h *xmppHarness) roomMessage(what string, match func(xmpptest.Message) bool) xmpptest.Message {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
	defer cancel()
	m, err := h.occupant.WaitMessage(ctx, func(m xmpptest.Message) bool {
		return m.Type == "groupchat" && m.Forwarded == nil && match(m)
	})
	if err != nil {
		h.t.Fatalf("waiting for %s in the room: %v", what, err)
	}
	return m
}

func (h *xmppHarness) channelPost(what string, pred func(*model.Post) bool) *model.Post {
	h.t.Helper()
	return waitPost(h.t, h.s, h.ch, what, pred)
}

func (h *xmppHarness) raw(format string, args ...any) {
	h.t.Helper()
	if err := h.occupant.SendRaw(h.ctx, fmt.Sprintf(format, args...)); err != nil {
		h.t.Fatal(err)
	}
}

// XMPP check 1 and 2: text and every message kind both ways, client mode.
func TestXMPPClientModeEveryKindBothWays(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newXMPPHarnessOn(t, kind, "client")

		// Mattermost -> XMPP.
		hello := h.post(h.alice, "hello **xmpp** room", "")
		out := h.roomMessage("alice's message", func(m xmpptest.Message) bool { return strings.Contains(m.Body, "hello *xmpp* room") })
		// Alice speaks through her own account, registered with XEP-0077.
		if out.From.Resourcepart() != "Alice Liddell" || out.Body != "hello *xmpp* room" || out.StanzaID == "" {
			t.Fatalf("room got %q from %s (stanza-id %q)", out.Body, out.From, out.StanzaID)
		}

		// XMPP -> Mattermost.
		carolID, err := h.occupant.Say(h.ctx, h.room, "hi from *xmpp*")
		if err != nil {
			t.Fatal(err)
		}
		in := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "hi from **xmpp**" })
		cu := h.s.User(in.UserId)
		if cu == nil || cu.RemoteId == nil || !strings.HasSuffix(cu.Username, ":xmpp") || cu.Nickname != "Carol (XMPP)" {
			t.Fatalf("remote user = %+v", cu)
		}
		carolMsg := h.roomMessage("carol's own message back", func(m xmpptest.Message) bool { return m.ID == carolID || m.OriginID == carolID })

		// Edits both ways.
		if _, appErr := h.n.PatchPost(h.alice.Id, hello.Id, "hello, edited"); appErr != nil {
			t.Fatal(appErr)
		}
		h.roomMessage("alice's correction", func(m xmpptest.Message) bool {
			return strings.Contains(m.Raw, "urn:xmpp:message-correct:0") && strings.Contains(m.Body, "hello, edited")
		})
		h.raw(`<message to='%s' type='groupchat' id='edit1'><body>hi, corrected</body><replace xmlns='urn:xmpp:message-correct:0' id='%s'/></message>`, h.room, carolID)
		testhost.WaitFor(t, 20*time.Second, func() bool { return h.s.Post(in.Id).Message == "hi, corrected" }, "carol's correction")

		// Reactions both ways.
		if _, appErr := h.n.React(h.bob.Id, in.Id, "thumbsup"); appErr != nil {
			t.Fatal(appErr)
		}
		h.roomMessage("bob's reaction", func(m xmpptest.Message) bool {
			return strings.Contains(m.Raw, "urn:xmpp:reactions:0") && strings.Contains(m.Raw, carolMsg.StanzaID) && strings.Contains(m.Raw, "👍")
		})
		h.raw(`<message to='%s' type='groupchat' id='react1'><reactions xmlns='urn:xmpp:reactions:0' id='%s'><reaction>🎉</reaction></reactions><store xmlns='urn:xmpp:hints'/></message>`, h.room, out.StanzaID)
		testhost.WaitFor(t, 20*time.Second, func() bool {
			rs := h.s.Reactions(hello.Id)
			return len(rs) == 1 && rs[0].EmojiName == "tada" && rs[0].UserId == cu.Id
		}, "carol's reaction")
		h.raw(`<message to='%s' type='groupchat' id='react2'><reactions xmlns='urn:xmpp:reactions:0' id='%s'/><store xmlns='urn:xmpp:hints'/></message>`, h.room, out.StanzaID)
		testhost.WaitFor(t, 20*time.Second, func() bool { return len(h.s.Reactions(hello.Id)) == 0 }, "carol's reaction removed")

		// Replies both ways.
		h.post(h.bob, "replying to carol", in.Id)
		h.roomMessage("bob's reply", func(m xmpptest.Message) bool {
			return strings.Contains(m.Raw, "urn:xmpp:reply:0") && strings.Contains(m.Raw, carolMsg.StanzaID) && strings.Contains(m.Body, "replying to carol")
		})
		h.raw(`<message to='%s' type='groupchat' id='reply1'><body>answering alice</body><reply xmlns='urn:xmpp:reply:0' id='%s'/></message>`, h.room, out.StanzaID)
		h.channelPost("carol's reply", func(p *model.Post) bool { return p.Message == "answering alice" && p.RootId == hello.Id })

		// A subject change is posted (XMPPPostSubjects).
		h.raw(`<message to='%s' type='groupchat' id='subj1'><subject>Release *planning*</subject></message>`, h.room)
		h.channelPost("the subject change", func(p *model.Post) bool {
			return p.Message == "_changed the room subject to: Release **planning**_" && p.UserId == cu.Id
		})

		// Files both ways: out through the server's upload service with an
		// out-of-band link, in by fetching the link.
		info := h.s.UploadFile(h.alice.Id, h.ch.Id, "notes.txt", []byte("file from mattermost"))
		if _, appErr := h.n.CreatePost(&model.Post{UserId: h.alice.Id, ChannelId: h.ch.Id, Message: "see attached", FileIds: []string{info.Id}}); appErr != nil {
			t.Fatal(appErr)
		}
		withFile := h.roomMessage("alice's file", func(m xmpptest.Message) bool {
			return strings.HasPrefix(m.Body, "see attached") && strings.Contains(m.Raw, "jabber:x:oob")
		})
		fileURL := strings.TrimSpace(strings.TrimPrefix(withFile.Body, "see attached"))
		got, err := (&httpfile.Fetcher{AllowPrivate: true}).Fetch(h.ctx, fileURL, 1<<20)
		if err != nil || string(got.Data) != "file from mattermost" {
			t.Fatalf("fetching %q from the room: %q, %v", fileURL, got.Data, err)
		}
		svc, err := httpfile.Discover(h.ctx, h.occupant.Session(), h.xmpp.JID(t, ""))
		if err != nil {
			t.Fatal(err)
		}
		pic := pngImage(t, 4)
		picURL, err := svc.Upload(h.ctx, h.occupant.Session(), "pic.png", "image/png", int64(len(pic)), bytes.NewReader(pic), (&httpfile.Fetcher{AllowPrivate: true}).Client())
		if err != nil {
			t.Fatal(err)
		}
		h.raw(`<message to='%s' type='groupchat' id='file1'><body>%s</body><x xmlns='jabber:x:oob'><url>%s</url></x></message>`, h.room, picURL, picURL)
		fp := h.channelPost("carol's picture", func(p *model.Post) bool { return len(p.FileIds) == 1 && p.UserId == cu.Id })
		if !bytes.Equal(h.s.FileData(fp.FileIds[0]), pic) || h.s.FileInfo(fp.FileIds[0]).Name != "pic.png" || strings.Contains(fp.Message, "http") {
			t.Fatalf("carol's file arrived as %q (%q)", h.s.FileInfo(fp.FileIds[0]).Name, fp.Message)
		}

		// Retractions both ways.
		if appErr := h.n.DeletePost(h.alice.Id, hello.Id); appErr != nil {
			t.Fatal(appErr)
		}
		h.roomMessage("alice's retraction", func(m xmpptest.Message) bool {
			return strings.Contains(m.Raw, "urn:xmpp:message-retract:1") && strings.Contains(m.Raw, out.StanzaID)
		})
		h.raw(`<message to='%s' type='groupchat' id='retract1'><retract xmlns='urn:xmpp:message-retract:1' id='%s'/><body>retracted</body></message>`, h.room, carolMsg.StanzaID)
		testhost.WaitFor(t, 20*time.Second, func() bool { p := h.s.Post(in.Id); return p == nil || p.DeleteAt > 0 }, "carol's retraction")

		// Nothing echoed back into Mattermost: every post by a remote user is
		// carol's.
		h.s.WaitHooks(10 * time.Second)
		for _, p := range h.s.ChannelPosts(h.ch.Id) {
			if u := h.s.User(p.UserId); u.RemoteId != nil && *u.RemoteId != "" && p.UserId != cu.Id {
				t.Fatalf("an echo became a post: %q by %s", p.Message, u.Username)
			}
			if strings.Contains(p.Message, "hello") && p.UserId != h.alice.Id {
				t.Fatalf("the bridge's own message came back: %q", p.Message)
			}
		}
	})
}

// XMPP check 3: each Mattermost user is their own occupant (a ghost under
// the component's domain, or an account registered with XEP-0077 in client
// mode), and nothing they say comes back.
func TestXMPPComponentModeGhosts(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) { testGhosts(t, kind, "component") })
}

func TestXMPPClientModeGhosts(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) { testGhosts(t, kind, "client") })
}

// Without in-band registration, client mode falls back to the bridge
// account with the sender's name in front.
func TestXMPPClientModeWithoutRegistration(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newXMPPHarnessOn(t, kind, "client", testservers.Options{NoRegistration: true})
		h.post(h.alice, "no ghosts here", "")
		m := h.roomMessage("alice's message", func(m xmpptest.Message) bool { return strings.HasSuffix(m.Body, "no ghosts here") })
		if m.Body != "<Alice Liddell> no ghosts here" || m.From.Resourcepart() != "Mattermost" {
			t.Fatalf("room got %q from %s", m.Body, m.From)
		}
	})
}

func testGhosts(t *testing.T, kind testservers.Kind, mode string) {
	// Each Mattermost user gets an account of their own here: ejabberd's
	// limit of one registration per address per 600 s would make the
	// second one speak through the bridge account (as
	// TestXMPPFirstPostersUnderTheRegistrationLimit checks).
	h := newXMPPHarnessOn(t, kind, mode, testservers.Options{UnlimitedRegistration: true})
	h.post(h.alice, "alice speaking", "")
	h.post(h.bob, "bob speaking", "")
	a := h.roomMessage("alice's message", func(m xmpptest.Message) bool { return m.Body == "alice speaking" })
	b := h.roomMessage("bob's message", func(m xmpptest.Message) bool { return m.Body == "bob speaking" })
	if a.From.Resourcepart() != "Alice Liddell" || b.From.Resourcepart() != "Bob Builder" {
		t.Fatalf("occupants: %q and %q", a.From, b.From)
	}
	if _, err := h.occupant.Say(h.ctx, h.room, "carol answers"); err != nil {
		t.Fatal(err)
	}
	answer := h.channelPost("carol's answer", func(p *model.Post) bool { return p.Message == "carol answers" })

	// A ghost's file goes through the server's upload service.
	info := h.s.UploadFile(h.bob.Id, h.ch.Id, "plan.txt", []byte("bob's plan"))
	if _, appErr := h.n.CreatePost(&model.Post{UserId: h.bob.Id, ChannelId: h.ch.Id, Message: "the plan", FileIds: []string{info.Id}}); appErr != nil {
		t.Fatal(appErr)
	}
	plan := h.roomMessage("bob's file", func(m xmpptest.Message) bool {
		return strings.HasPrefix(m.Body, "the plan") && strings.Contains(m.Raw, "jabber:x:oob")
	})
	if plan.From.Resourcepart() != "Bob Builder" {
		t.Fatalf("bob's file came from %s", plan.From)
	}
	f, err := (&httpfile.Fetcher{AllowPrivate: true}).Fetch(h.ctx, strings.TrimSpace(strings.TrimPrefix(plan.Body, "the plan")), 1<<20)
	if err != nil || string(f.Data) != "bob's plan" {
		t.Fatalf("bob's file: %q, %v", f.Data, err)
	}

	// Mentions both ways: @names become nicks in the room, and the nicks of
	// Mattermost people in the room become @mentions.
	carolName := h.s.User(answer.UserId).Username
	h.post(h.alice, "@bob and @"+carolName+", look", "")
	h.roomMessage("alice's mentions", func(m xmpptest.Message) bool { return m.Body == "Bob Builder and Carol, look" })
	if _, err := h.occupant.Say(h.ctx, h.room, "Alice Liddell: seen it"); err != nil {
		t.Fatal(err)
	}
	h.channelPost("carol's mention of alice", func(p *model.Post) bool { return p.Message == "@alice: seen it" })

	h.s.WaitHooks(10 * time.Second)
	time.Sleep(500 * time.Millisecond)
	for _, p := range h.s.ChannelPosts(h.ch.Id) {
		if (strings.Contains(p.Message, "speaking") || strings.Contains(p.Message, "look")) && p.UserId != h.alice.Id && p.UserId != h.bob.Id {
			t.Fatalf("a ghost's message came back as %q by %s", p.Message, h.s.User(p.UserId).Username)
		}
	}
}

// roomBodies reads the room's whole archive, oldest first.
func (h *xmppHarness) roomBodies(c *xmpptest.Client) []string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
	defer cancel()
	msgs, _, err := c.FetchHistory(ctx, h.room, history.Query{Limit: 1000})
	if err != nil {
		h.t.Fatalf("reading the room archive: %v", err)
	}
	var out []string
	for _, m := range msgs {
		if m.Body != "" {
			out = append(out, m.From.Resourcepart()+": "+m.Body)
		}
	}
	return out
}

// carolPosts returns the texts of posts in the channel by remote users.
func (h *xmppHarness) remotePosts() []string { return remotePosts(h.s, h.ch) }

func filterPrefix(list []string, substr string) []string {
	var out []string
	for _, s := range list {
		if strings.Contains(s, substr) {
			out = append(out, s)
		}
	}
	return out
}

func (h *xmppHarness) expectExactlyOnceInOrder(what string, got func() []string, want []string) {
	h.t.Helper()
	expectExactlyOnceInOrder(h.t, what, got, want)
}

// exchangeFirstMessages has alice say "mm 1" and carol "x 1", and waits
// until each reached the other side: the link is live both ways.
func (h *xmppHarness) exchangeFirstMessages() {
	h.t.Helper()
	h.post(h.alice, "mm 1", "")
	h.roomMessage("mm 1", func(m xmpptest.Message) bool { return strings.HasSuffix(m.Body, "mm 1") })
	if _, err := h.occupant.Say(h.ctx, h.room, "x 1"); err != nil {
		h.t.Fatal(err)
	}
	h.channelPost("x 1", func(p *model.Post) bool { return p.Message == "x 1" })
}

// XMPP check 4a: the XMPP server dies while messages flow both ways and
// comes back: every message arrives once, in order.
func TestXMPPSurvivesServerRestart(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		// alice and bob each get an account, and alice may need hers again
		// (ejabberd loses a registration made just before it is killed):
		// ejabberd's one registration per address per 600 s would send
		// them through the bridge account, which
		// TestXMPPFirstPostersUnderTheRegistrationLimit checks.
		h := newXMPPHarnessOn(t, kind, "client", testservers.Options{UnlimitedRegistration: true})
		h.exchangeFirstMessages()

		if err := h.xmpp.Kill(); err != nil {
			t.Fatal(err)
		}
		h.post(h.alice, "mm 2", "")
		h.post(h.bob, "mm 3", "")
		time.Sleep(time.Second)
		h.xmpp.Restart(t)

		carol := h.xmpp.Client(t, "carol", "carol-pw")
		if err := carol.JoinRoom(h.ctx, h.room, "Carol"); err != nil {
			t.Fatal(err)
		}
		h.occupant = carol
		for _, text := range []string{"x 2", "x 3"} {
			if _, err := carol.Say(h.ctx, h.room, text); err != nil {
				t.Fatal(err)
			}
		}
		h.post(h.alice, "mm 4", "")

		h.expectExactlyOnceInOrder("the channel", func() []string { return filterPrefix(h.remotePosts(), "x ") }, []string{"x 1", "x 2", "x 3"})
		h.expectExactlyOnceInOrder("the room", func() []string { return filterPrefix(h.roomBodies(carol), "mm ") },
			[]string{"Alice Liddell: mm 1", "Alice Liddell: mm 2", "Bob Builder: mm 3", "Alice Liddell: mm 4"})
	})
}

// XMPP check 4b: the plugin is deactivated while both sides keep talking;
// after activation every message arrives once, in order.
func TestXMPPCatchesUpAfterDeactivation(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		// alice and bob each get an account (see TestXMPPSurvivesServerRestart).
		h := newXMPPHarnessOn(t, kind, "client", testservers.Options{UnlimitedRegistration: true})
		h.exchangeFirstMessages()

		h.n.Deactivate()
		for _, text := range []string{"x 2", "x 3"} {
			if _, err := h.occupant.Say(h.ctx, h.room, text); err != nil {
				t.Fatal(err)
			}
		}
		h.post(h.bob, "mm 2", "")
		h.post(h.alice, "mm 3", "")
		if err := h.n.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
			t.Fatal(err)
		}
		if _, err := h.occupant.Say(h.ctx, h.room, "x 4"); err != nil {
			t.Fatal(err)
		}
		h.post(h.alice, "mm 4", "")

		h.expectExactlyOnceInOrder("the channel", func() []string { return filterPrefix(h.remotePosts(), "x ") }, []string{"x 1", "x 2", "x 3", "x 4"})
		h.expectExactlyOnceInOrder("the room", func() []string { return filterPrefix(h.roomBodies(h.occupant), "mm ") },
			[]string{"Alice Liddell: mm 1", "Bob Builder: mm 2", "Alice Liddell: mm 3", "Alice Liddell: mm 4"})
	})
}

func (h *xmppHarness) statusSays(want ...string) {
	h.t.Helper()
	var text string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, appErr := h.n.ExecuteCommand(h.admin.Id, h.ch.Id, h.ch.TeamId, "/xmppbridge status")
		if resp == nil {
			text = fmt.Sprint(appErr)
			continue
		}
		text = resp.Text
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(text, w)
		}
		if !missing {
			return
		}
	}
	h.t.Fatalf("status does not say %q; last status:\n%s", want, text)
}

// newBareHarness starts a server of kind and the plugin with the given XMPP
// settings, without linking anything.
func newBareHarness(t *testing.T, kind testservers.Kind, opts testservers.Options, settings func(p xmppServer) map[string]any) *xmppHarness {
	t.Helper()
	h := &xmppHarness{channelHarness: channelHarness{t: t}}
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	h.xmpp = startXMPPServer(t, kind, opts)
	h.xmpp.CreateUser(t, "bridge", bridgePassword)
	h.s = testhost.NewServer(t, testhost.WithPluginID(manifest.Id), testhost.WithPluginSettings(settings(h.xmpp)))
	h.n = h.s.Node(0)
	if err := h.n.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
		t.Fatal(err)
	}
	team := h.s.DefaultTeam()
	h.admin = h.s.CreateUser("admin", true)
	h.ch = h.s.CreateChannel(team.Id, "xmpp-dev")
	h.s.AddToTeam(h.admin.Id, team.Id)
	h.s.AddToChannel(h.admin.Id, h.ch.Id)
	return h
}

func clientSettings(srv reachable, password, ca string) map[string]any {
	p := srv.Reach()
	return map[string]any{
		"XMPPEnabled": true, "XMPPMode": "client", "XMPPTLSMode": "starttls",
		"XMPPServerAddress": p.C2SAddr(), "XMPPJID": "bridge@" + p.Domain, "XMPPPassword": password,
		"XMPPCACertificate": ca,
	}
}

// XMPP check 5: a certificate the bridge cannot verify is refused with a
// clear error; giving the CA fixes it; skipping verification says so.
func TestXMPPTLSVerification(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newBareHarness(t, kind, testservers.Options{}, func(p xmppServer) map[string]any {
			return clientSettings(p, bridgePassword, "")
		})
		h.statusSays("XMPP bridge: error", "not trusted", "XMPPCACertificate")

		h.Must(h.s.SetPluginSettings(clientSettings(h.xmpp, bridgePassword, h.xmpp.CACertPEM)))
		h.statusSays("XMPP bridge: connected")

		// Direct TLS (XEP-0368 style port) verifies the same way.
		direct := clientSettings(h.xmpp, bridgePassword, h.xmpp.CACertPEM)
		direct["XMPPTLSMode"], direct["XMPPServerAddress"] = "tls", h.xmpp.DirectTLSAddr()
		h.Must(h.s.SetPluginSettings(direct))
		h.statusSays("XMPP bridge: connected")
		direct["XMPPCACertificate"] = ""
		h.Must(h.s.SetPluginSettings(direct))
		h.statusSays("XMPP bridge: error", "not trusted")

		insecure := clientSettings(h.xmpp, bridgePassword, "")
		insecure["XMPPInsecureSkipVerify"] = true
		h.Must(h.s.SetPluginSettings(insecure))
		h.statusSays("XMPP bridge: connected", "verification is DISABLED")
	})
}

func (h *xmppHarness) Must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// XMPP check 6: bad input gets clear errors and the bridge keeps running.
func TestXMPPBadInput(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		t.Run("wrong password", func(t *testing.T) {
			h := newBareHarness(t, kind, testservers.Options{}, func(p xmppServer) map[string]any {
				return clientSettings(p, "not-the-password", p.CACertPEM)
			})
			h.statusSays("XMPP bridge: error", "refused the credentials")
			for _, line := range h.s.Logs() {
				if strings.Contains(line, "not-the-password") {
					t.Fatalf("the password reached a log line: %s", line)
				}
			}
		})

		// The server must let the oversized stanza through for the bridge to
		// see it; through ejabberd's default client shaper (3000 B/s) carol's
		// 300 KiB would take 100 s to send.
		h := newXMPPHarnessOn(t, kind, "client", testservers.Options{StanzaSizeLimit: 1 << 20, NoClientShaper: true})
		h.command("/xmppbridge map not@a@jid", "not a valid XMPP room")
		h.command("/xmppbridge map nosuchroom@"+h.xmpp.MUCDomain, "does not exist")
		h.command("/xmppbridge map "+h.xmpp.Domain, "not a valid XMPP room")

		// Malformed references, unknown targets and junk reactions: ignored.
		for _, raw := range []string{
			`<message to='%s' type='groupchat' id='m1'><replace xmlns='urn:xmpp:message-correct:0'/><body>no id</body></message>`,
			`<message to='%s' type='groupchat' id='m2'><retract xmlns='urn:xmpp:message-retract:1' id='never-seen'/></message>`,
			`<message to='%s' type='groupchat' id='m3'><reactions xmlns='urn:xmpp:reactions:0' id='never-seen'><reaction>not an emoji</reaction></reactions></message>`,
			`<message to='%s' type='groupchat' id='m4'><body></body></message>`,
			`<message to='%s' type='groupchat' id='m5'><body>` + strings.Repeat("x", 300<<10) + `</body></message>`,
		} {
			h.raw(raw, h.room)
		}
		// The bridge is still there: the next message goes through.
		if _, err := h.occupant.Say(h.ctx, h.room, "still alive?"); err != nil {
			t.Fatal(err)
		}
		h.channelPost("the message after the junk", func(p *model.Post) bool { return p.Message == "still alive?" })
		for _, p := range h.s.ChannelPosts(h.ch.Id) {
			if strings.Contains(p.Message, "xxxxxxxx") || strings.Contains(p.Message, "no id") {
				t.Fatalf("junk became a post: %.60q", p.Message)
			}
		}
		h.statusSays("XMPP bridge: connected")
	})
}

// Issue 8 item 2, XMPP side, in both modes. Another occupant cannot
// correct or retract carol's message, nor a Mattermost user's; the room's
// moderation (XEP-0425, sent by the room for its moderator) of dave's
// message reaches Mattermost, but not of alice's post. A Mattermost
// admin's delete of carol's message is a moderation in the room once the
// bridge is a room admin; until then status says why it was not applied.
func TestXMPPOnlyAuthorsAndModerators(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		for _, mode := range []string{"component", "client"} {
			t.Run(mode, func(t *testing.T) {
				h := newXMPPHarnessOn(t, kind, mode)
				h.xmpp.CreateUser(t, "dave", "dave-pw")
				dave := h.xmpp.Client(t, "dave", "dave-pw")
				h.Must(dave.JoinRoom(h.ctx, h.room, "Dave"))

				carolID, err := h.occupant.Say(h.ctx, h.room, "carol's words")
				h.Must(err)
				carolPost := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "carol's words" })
				carolMsg := h.roomMessage("carol's message back", func(m xmpptest.Message) bool { return m.ID == carolID || m.OriginID == carolID })
				alicePost := h.post(h.alice, "alice's words", "")
				aliceMsg := h.roomMessage("alice's message", func(m xmpptest.Message) bool { return strings.Contains(m.Body, "alice's words") })

				// dave corrects and retracts what is not his.
				for i, target := range []xmpptest.Message{carolMsg, aliceMsg} {
					origin := target.OriginID
					if origin == "" {
						origin = target.ID
					}
					h.Must(dave.SendRaw(h.ctx, fmt.Sprintf(`<message to='%s' type='groupchat' id='fix%d'><body>forged</body><replace xmlns='urn:xmpp:message-correct:0' id='%s'/></message>`, h.room, i, origin)))
					h.Must(dave.SendRaw(h.ctx, fmt.Sprintf(`<message to='%s' type='groupchat' id='del%d'><retract xmlns='urn:xmpp:message-retract:1' id='%s'/><body>retracted</body></message>`, h.room, i, target.StanzaID)))
				}
				daveID, err := dave.Say(h.ctx, h.room, "dave's words")
				h.Must(err)
				davePost := h.channelPost("dave's message", func(p *model.Post) bool { return p.Message == "dave's words" })
				h.s.WaitHooks(wait)
				for _, p := range []*model.Post{carolPost, alicePost} {
					if got := h.s.Post(p.Id); got == nil || got.DeleteAt != 0 || strings.Contains(got.Message, "forged") {
						t.Fatalf("dave changed someone else's post: %+v", got)
					}
				}
				h.statusSays("not_author")

				// carol owns the room: her moderation of dave's message reaches
				// Mattermost; of alice's message, it stays in Mattermost.
				daveMsg := h.roomMessage("dave's message back", func(m xmpptest.Message) bool { return m.ID == daveID || m.OriginID == daveID })
				for i, id := range []string{daveMsg.StanzaID, aliceMsg.StanzaID} {
					h.raw(`<iq type='set' to='%s' id='mod%d'><apply-to xmlns='urn:xmpp:fasten:0' id='%s'><moderate xmlns='urn:xmpp:message-moderate:0'><retract xmlns='urn:xmpp:message-retract:0'/></moderate></apply-to></iq>`, h.room, i, id)
				}
				testhost.WaitFor(t, 20*time.Second, func() bool { p := h.s.Post(davePost.Id); return p == nil || p.DeleteAt > 0 }, "the moderation of dave's message")
				h.s.WaitHooks(wait)
				if got := h.s.Post(alicePost.Id); got == nil || got.DeleteAt != 0 {
					t.Fatal("a room moderator deleted a Mattermost user's post")
				}

				// The admin deletes carol's post: the bridge is no moderator yet.
				h.Must(appErrOrNil(h.n.DeletePost(h.admin.Id, carolPost.Id)))
				h.statusSays("no_rights")

				// carol makes the bridge a room admin; the next delete lands.
				bridgeJID := "bridge@" + h.xmpp.Domain
				if mode == "component" {
					bridgeJID = "bridge@" + h.xmpp.ComponentDomain
				}
				h.raw(`<iq type='set' to='%s' id='aff1'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='%s'/></query></iq>`, h.room, bridgeJID)
				againID, err := h.occupant.Say(h.ctx, h.room, "carol again")
				h.Must(err)
				again := h.channelPost("carol's second message", func(p *model.Post) bool { return p.Message == "carol again" })
				againMsg := h.roomMessage("carol's second message back", func(m xmpptest.Message) bool { return m.ID == againID || m.OriginID == againID })
				h.Must(appErrOrNil(h.n.DeletePost(h.admin.Id, again.Id)))
				h.roomMessage("the bridge's moderation", func(m xmpptest.Message) bool {
					return m.From.Equal(h.room) && strings.Contains(m.Raw, "urn:xmpp:message-moderate:") && strings.Contains(m.Raw, againMsg.StanzaID)
				})
			})
		}
	})
}

// Issue 9 item 2: the plugin is deactivated while XMPP messages wait in
// the queue towards a slow Mattermost: the room's archive position had not
// moved past them, so after activation every one arrives, once, in order.
func TestXMPPBacklogSurvivesDeactivation(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		for _, mode := range []string{"component", "client"} {
			t.Run(mode, func(t *testing.T) {
				h := newXMPPHarnessOn(t, kind, mode)
				h.exchangeFirstMessages()
				slow := h.slowDown("backlog ", 3*time.Second)
				var want []string
				for i := 1; i <= 6; i++ {
					want = append(want, fmt.Sprintf("backlog %02d", i))
					if _, err := h.occupant.Say(h.ctx, h.room, want[i-1]); err != nil {
						t.Fatal(err)
					}
				}
				// The first is posted after 3 s; the others are queued by then.
				h.channelPost("backlog 01", func(p *model.Post) bool { return p.Message == "backlog 01" })
				h.n.Deactivate()
				backlog := func() []string { return filterPrefix(h.remotePosts(), "backlog ") }
				if got := backlog(); len(got) == len(want) {
					t.Logf("the whole backlog arrived before the plugin stopped: %q", got)
				}

				slow.delay.Store(0)
				if err := h.n.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
					t.Fatal(err)
				}
				want = append(want, "backlog 07")
				if _, err := h.occupant.Say(h.ctx, h.room, "backlog 07"); err != nil {
					t.Fatal(err)
				}
				h.expectExactlyOnceInOrder("the channel", backlog, want)
			})
		}
	})
}

// Issue 9 item 1: the XMPP server is down while 50 posts are made, five
// times what the queue towards it holds. Nothing expires while it is down
// (the bus keeps items whatever their age), and once the queue is full the
// channel's pull stops reading ahead and reads on from its cursor later,
// so after the server returns all 50 arrive once, in order.
func TestXMPPOutageLongerThanTheQueue(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newXMPPHarnessOn(t, kind, "client")
		if err := h.s.SetPluginSettings(mergeSettings(h.s.PluginSettings(manifest.Id), map[string]any{"QueueSize": 10})); err != nil {
			t.Fatal(err)
		}
		h.exchangeFirstMessages()
		if err := h.xmpp.Kill(); err != nil {
			t.Fatal(err)
		}
		want := []string{"Alice Liddell: mm 1"}
		for i := 2; i <= 51; i++ {
			text := fmt.Sprintf("mm %d", i)
			h.post(h.alice, text, "")
			want = append(want, "Alice Liddell: "+text)
		}
		h.statusSays("Waiting for")
		h.xmpp.Restart(t)
		carol := h.xmpp.Client(t, "carol", "carol-pw")
		if err := carol.JoinRoom(h.ctx, h.room, "Carol"); err != nil {
			t.Fatal(err)
		}
		h.expectExactlyOnceInOrder("the room", func() []string { return filterPrefix(h.roomBodies(carol), "mm ") }, want)
	})
}

func mergeSettings(base, extra map[string]any) map[string]any {
	out := maps.Clone(base)
	maps.Copy(out, extra)
	return out
}

// Issue 10: five Mattermost users post for the first time under a limit of
// one registration per address per 600 s (ejabberd's default
// registration_timeout; on Prosody min_seconds_between_registrations,
// turned on for this test as admins do). The room gets every message, once,
// in order, some from ghosts and the rest through the bridge account, and
// status says why. How long each took to reach the room is logged, not
// asserted.
func TestXMPPFirstPostersUnderTheRegistrationLimit(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newXMPPHarnessOn(t, kind, "client", testservers.Options{ThrottleRegistration: true})
		var people []*model.User
		for i := 1; i <= 5; i++ {
			u := h.s.CreateUserWith(&model.User{Username: fmt.Sprintf("poster%d", i), Email: fmt.Sprintf("poster%d@example.com", i), FirstName: "Poster", LastName: fmt.Sprint(i), Password: "Passw0rd!x"})
			h.s.AddToTeam(u.Id, h.ch.TeamId)
			h.s.AddToChannel(u.Id, h.ch.Id)
			people = append(people, u)
		}
		posted := map[string]time.Time{}
		var want []string
		for _, u := range people {
			text := "first words of " + u.Username
			want = append(want, text)
			posted[text] = time.Now()
			h.post(u, text, "")
		}
		var fromGhosts int
		for _, text := range want {
			m := h.roomMessage(text, func(m xmpptest.Message) bool { return strings.HasSuffix(m.Body, text) })
			t.Logf("%q reached the room %v after it was posted, from %s", text, time.Since(posted[text]).Round(time.Millisecond), m.From.Resourcepart())
			if m.From.Resourcepart() != "Mattermost" {
				fromGhosts++
			}
		}
		if fromGhosts == 0 || fromGhosts == len(people) {
			t.Errorf("%d of %d first posts came from ghosts; the limit should have let one in and refused the others", fromGhosts, len(people))
		}
		h.expectExactlyOnceInOrder("the room", func() []string {
			var got []string
			for _, line := range h.roomBodies(h.occupant) {
				if _, text, ok := strings.Cut(line, "first words of "); ok {
					got = append(got, "first words of "+text)
				}
			}
			return got
		}, want)
		h.statusSays("refused to register an account", "bridge account")
	})
}
