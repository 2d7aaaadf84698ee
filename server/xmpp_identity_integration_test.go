package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// makeBridgeRoomAdmin has carol (the room's owner) make the bridge account
// a room admin, so the room shows it its members' real addresses; until
// then status says the room hides them.
func (h *xmppHarness) makeBridgeRoomAdmin(mode string) {
	h.t.Helper()
	bridgeJID := "bridge@" + h.xmpp.Domain
	if mode == "component" {
		bridgeJID = "bridge@" + h.xmpp.ComponentDomain
	}
	hidden := h.room.String() + " hides members' addresses from the bridge"
	h.statusSays(hidden, "make the bridge account a room admin")
	h.raw(`<iq type='set' to='%s' id='aff-bridge'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='%s'/></query></iq>`, h.room, bridgeJID)
	testhost.WaitFor(h.t, 20*time.Second, func() bool { return !strings.Contains(h.status(), hidden) }, "status to stop saying the room hides addresses")
	// carol announces herself again: the room shows the bridge, a
	// moderator now, her address, before anything she says next.
	h.raw(`<presence to='%s/Carol'/>`, h.room)
}

// An archived message is its sender's, not whoever holds the nick when the
// bridge reads it. While the bridge is away, dave takes carol's nick once
// she has left, corrects her first message and leaves; carol comes back
// and corrects her second, and leaves too. The bridge sees real addresses
// (it is a room admin), so carol is known by hers: the catch-up must not
// lend dave's archived correction the address of whoever holds the nick
// then, and knows carol's by the occupant-id the room showed with her
// address before.
func TestXMPPArchivedMessagesKeepTheirOwnAuthor(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newXMPPHarnessOn(t, kind, "client")
		h.makeBridgeRoomAdmin("client")
		h.xmpp.CreateUser(t, "dave", "dave-pw")
		dave := h.xmpp.Client(t, "dave", "dave-pw")

		first, err := h.occupant.Say(h.ctx, h.room, "first words")
		h.Must(err)
		second, err := h.occupant.Say(h.ctx, h.room, "second words")
		h.Must(err)
		firstPost := h.channelPost("carol's first message", func(p *model.Post) bool { return p.Message == "first words" })
		secondPost := h.channelPost("carol's second message", func(p *model.Post) bool { return p.Message == "second words" })

		h.n.Deactivate()
		h.Must(h.occupant.LeaveRoom(h.ctx, h.room))
		h.Must(dave.JoinRoom(h.ctx, h.room, "Carol"))
		h.Must(dave.SendRaw(h.ctx, fmt.Sprintf(`<message to='%s' type='groupchat' id='forge'><body>forged by dave</body><replace xmlns='urn:xmpp:message-correct:0' id='%s'/></message>`, h.room, first)))
		h.Must(dave.LeaveRoom(h.ctx, h.room))
		h.Must(h.occupant.JoinRoom(h.ctx, h.room, "Carol"))
		h.raw(`<message to='%s' type='groupchat' id='fix'><body>second words, fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='%s'/></message>`, h.room, second)
		h.Must(h.occupant.LeaveRoom(h.ctx, h.room))
		h.Must(h.n.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }))

		// The archive gives dave's correction before carol's.
		testhost.WaitFor(t, 60*time.Second, func() bool { return h.s.Post(secondPost.Id).Message == "second words, fixed" }, "carol's own correction")
		if got := h.s.Post(firstPost.Id); got.Message != "first words" {
			t.Fatalf("dave's correction under carol's nick was taken for hers: %q", got.Message)
		}
		h.statusSays("not_author")
	})
}

// Someone's corrections after the XMPP server restarted are theirs when
// the bridge knows them by address: ejabberd gives everyone a new
// occupant-id on every restart (its salt lives in memory), Prosody keeps
// them; an address never changes.
func TestXMPPCorrectionsAfterAServerRestartKeepTheirAuthor(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newXMPPHarnessOn(t, kind, "client", testservers.Options{UnlimitedRegistration: true})
		h.makeBridgeRoomAdmin("client")
		before, err := h.occupant.Say(h.ctx, h.room, "said before the restart")
		h.Must(err)
		post := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "said before the restart" })

		h.xmpp.Restart(t)
		h.occupant = h.xmpp.Client(t, "carol", "carol-pw")
		h.Must(h.occupant.JoinRoom(h.ctx, h.room, "Carol"))
		h.statusSays("XMPP bridge: connected")
		h.raw(`<message to='%s' type='groupchat' id='fix'><body>corrected after the restart</body><replace xmlns='urn:xmpp:message-correct:0' id='%s'/></message>`, h.room, before)
		testhost.WaitFor(t, 60*time.Second, func() bool { return h.s.Post(post.Id).Message == "corrected after the restart" }, "carol's correction after the restart")
	})
}
