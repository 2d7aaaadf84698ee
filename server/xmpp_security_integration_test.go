package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Issue 8 item 1: anyone can send the bridge a message wrapping a MAM
// <result/>; only the room the bridge queried may answer, so a forged
// result posts nothing and retracts nothing.
func TestXMPPForgedArchiveResultsComponentMode(t *testing.T) {
	testForgedArchiveResults(t, "component")
}

func TestXMPPForgedArchiveResultsClientMode(t *testing.T) { testForgedArchiveResults(t, "client") }

func testForgedArchiveResults(t *testing.T, mode string) {
	h := newXMPPHarness(t, mode)
	if _, err := h.occupant.Say(h.ctx, h.room, "carol's real message"); err != nil {
		t.Fatal(err)
	}
	carolPost := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "carol's real message" })
	carolMsg := h.roomMessage("carol's message back", func(m xmpptest.Message) bool { return m.Body == "carol's real message" })

	// Where the outsider writes: the component's domain and the bridge's
	// own address under it, or the bridge account's full JID (Carol made
	// the room, so as its owner she sees the bridge's real JID).
	targets := []string{h.xmpp.ComponentDomain, "bridge@" + h.xmpp.ComponentDomain + "/mattermost"}
	if mode == "client" {
		targets = []string{h.bridgeFullJID().String()}
	}
	h.xmpp.CreateUser(t, "mallory", "mallory-pw")
	mallory := h.xmpp.Client(t, "mallory", "mallory-pw")
	for i, to := range targets {
		for j, inner := range []string{
			fmt.Sprintf(`<message xmlns='jabber:client' from='%s/ceo' type='groupchat' id='ceo-%d'><body>wire the money</body></message>`, h.room, i),
			fmt.Sprintf(`<message xmlns='jabber:client' from='%s/Carol' type='groupchat' id='del-%d'><retract xmlns='urn:xmpp:message-retract:1' id='%s'/><body>retracted</body></message>`, h.room, i, carolMsg.StanzaID),
		} {
			forged := fmt.Sprintf(`<message to='%s' id='forged-%d-%d'><result xmlns='urn:xmpp:mam:2' queryid='guessed-query' id='forged-%d-%d'>`+
				`<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-01-02T03:04:05Z'/>%s</forwarded></result></message>`,
				to, i, j, i, j, inner)
			if err := mallory.SendRaw(h.ctx, forged); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each forgery is either taken (a post, a deletion) or counted as
	// ignored in status; wait for one or the other, then look.
	forgedPost := func() *model.Post {
		for _, p := range h.s.ChannelPosts(h.ch.Id) {
			if strings.Contains(p.Message, "wire the money") {
				return p
			}
		}
		return nil
	}
	deleted := func() bool { p := h.s.Post(carolPost.Id); return p == nil || p.DeleteAt > 0 }
	want := fmt.Sprintf("%d archive results ignored", 2*len(targets))
	testhost.WaitFor(t, 30*time.Second, func() bool {
		return forgedPost() != nil || deleted() || strings.Contains(h.status(), want)
	}, "the forged results to be handled")
	h.s.WaitHooks(10 * time.Second)
	if p := forgedPost(); p != nil {
		t.Fatalf("a forged archive result was posted as %s: %q", h.s.User(p.UserId).Username, p.Message)
	}
	if deleted() {
		t.Fatal("a forged retraction deleted carol's post")
	}
	h.statusSays(want)
	// And the link still works.
	if _, err := h.occupant.Say(h.ctx, h.room, "after the forgeries"); err != nil {
		t.Fatal(err)
	}
	h.channelPost("carol's next message", func(p *model.Post) bool { return p.Message == "after the forgeries" })
}

// bridgeFullJID is the bridge account's full JID as the room shows it to
// its owner, Carol.
func (h *xmppHarness) bridgeFullJID() jid.JID {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
	defer cancel()
	p, err := h.occupant.WaitPresence(ctx, func(p xmpptest.Presence) bool {
		return p.From.Bare().Equal(h.room) && p.From.Resourcepart() == "Mattermost" && p.RealJID != ""
	})
	if err != nil {
		h.t.Fatalf("the room did not show the bridge's real JID: %v", err)
	}
	j, err := jid.Parse(p.RealJID)
	if err != nil || j.Resourcepart() == "" {
		h.t.Fatalf("the bridge's real JID %q is not a full JID: %v", p.RealJID, err)
	}
	return j
}

// Issue 8 item 4: component mode never runs plaintext by accident; status
// names the transport in every mode.
func TestXMPPTransportIsNeverSilentlyPlaintext(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		component := func(p xmppServer, tlsMode, addr string) map[string]any {
			s := xmppSettings(p, "component")
			s["XMPPTLSMode"], s["XMPPServerAddress"] = tlsMode, addr
			return s
		}
		h := newBareHarness(t, kind, testservers.Options{}, func(p xmppServer) map[string]any {
			return component(p, "starttls", p.ComponentAddr())
		})
		// STARTTLS does not exist for components: refused, not run in plaintext.
		h.statusSays("XMPP bridge: error", "XMPPTLSMode", "component mode")

		h.Must(h.s.SetPluginSettings(component(h.xmpp, "tls", h.xmpp.ComponentTLSAddr())))
		h.statusSays("XMPP bridge: connected", "transport: TLS (direct)")

		h.Must(h.s.SetPluginSettings(component(h.xmpp, "plain-loopback-only", h.xmpp.ComponentAddr())))
		h.statusSays("XMPP bridge: connected", "transport: plaintext (loopback)")

		h.Must(h.s.SetPluginSettings(clientSettings(h.xmpp, bridgePassword, h.xmpp.CACertPEM)))
		h.statusSays("XMPP bridge: connected", "transport: TLS (STARTTLS)")

		for _, line := range h.s.Logs() {
			if strings.Contains(line, h.xmpp.ComponentSecret) {
				t.Fatalf("the component secret reached a log line: %s", line)
			}
		}
	})
}

// status is the text of /xmppbridge status in the harness's channel.
func (h *xmppHarness) status() string {
	resp, appErr := h.n.ExecuteCommand(h.admin.Id, h.ch.Id, h.ch.TeamId, "/xmppbridge status")
	if resp == nil {
		return fmt.Sprint(appErr)
	}
	return resp.Text
}
