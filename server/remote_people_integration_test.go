package main

import (
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Issue 8 item 3: nobody outside notifies a whole channel. Every post and
// edit by a remote person carries the server's highlight-disabled prop, and
// channel-wide mentions in the text are inert by the server's own rules.
func TestRemotePostsNeverNotifyTheWholeChannel(t *testing.T) {
	h := newHarness(t)
	disabled := func(p *model.Post) bool { return p.GetProp(model.PostPropsMentionHighlightDisabled) == true }

	id, err := h.net.Say(h.ctx, "lobby", carol, "plain words", "")
	h.must(err)
	plain := h.channelPost("carol's plain post", func(p *model.Post) bool { return p.Message == "plain words" })
	if !disabled(plain) {
		t.Errorf("a remote post without mentions has props %v; want %s", plain.GetProps(), model.PostPropsMentionHighlightDisabled)
	}

	// The forms the server's parser trims down to a channel-wide mention.
	loud := "_@channel_ @here__ (@all) **@channel** @channel. @ALL @here: x-@all-hands, and @alice"
	_, err = h.net.Say(h.ctx, "lobby", carol, loud, "")
	h.must(err)
	p := h.channelPost("carol's loud post", func(p *model.Post) bool { return strings.Contains(p.Message, "and @alice") })
	if strings.ReplaceAll(p.Message, "\u2060", "") != loud {
		t.Errorf("the loud post reads %q", p.Message)
	}
	for _, word := range []string{"@channel", "@here", "@all", "@ALL"} {
		if strings.Contains(p.Message, word) {
			t.Errorf("%s is still in %q", word, p.Message)
		}
	}
	if !disabled(p) {
		t.Errorf("the loud post has props %v", p.GetProps())
	}

	// An edit keeps the prop and is defanged the same way.
	h.must(h.net.Edit(h.ctx, "lobby", carol, id, "now @here."))
	testhost.WaitFor(t, wait, func() bool {
		e := h.s.Post(plain.Id)
		return e.Message == "now @\u2060here." && disabled(e)
	}, "the edit, defanged and with the prop")
}

// Issue 8 item 8: a remote person's names always show their network, so
// "Alice Smith" from XMPP never looks like the local Alice Smith under any
// of the server's name-display settings; people made before get the label
// with their next message.
func TestRemoteNamesShowTheirNetwork(t *testing.T) {
	h := newXMPPHarness(t, "client")
	local := h.s.CreateUserWith(&model.User{Username: "asmith", Email: "asmith@example.com", FirstName: "Alice", LastName: "Smith", Password: "Passw0rd!x"})
	h.xmpp.CreateUser(t, "alice", "alice-pw")
	remote := h.xmpp.Client(t, "alice", "alice-pw")
	if err := remote.JoinRoom(h.ctx, h.room, "Alice Smith"); err != nil {
		t.Fatal(err)
	}
	say := func(text string) *model.User {
		t.Helper()
		if _, err := remote.Say(h.ctx, h.room, text); err != nil {
			t.Fatal(err)
		}
		return h.s.User(h.channelPost(text, func(p *model.Post) bool { return p.Message == text }).UserId)
	}

	u := say("hello from xmpp")
	const want = "Alice Smith (XMPP)"
	if u.FirstName != want || u.Nickname != want || !strings.HasSuffix(u.Username, ":xmpp") {
		t.Fatalf("remote Alice Smith is username %q, first name %q, last name %q, nickname %q", u.Username, u.FirstName, u.LastName, u.Nickname)
	}
	for _, setting := range []string{model.ShowUsername, model.ShowNicknameFullName, model.ShowFullName} {
		if r, l := u.GetDisplayName(setting), local.GetDisplayName(setting); r == l || !strings.Contains(strings.ToLower(r), "xmpp") {
			t.Errorf("under %s the remote Alice shows as %q and the local one as %q", setting, r, l)
		}
	}

	// A person the bridge made before names carried the network: their
	// record and profile say just "Alice Smith".
	st := store.New(h.s.KV())
	rec, err := st.RemoteUserByMattermostID(u.Id)
	if err != nil || rec.Network != bridge.NetworkXMPP {
		t.Fatalf("the remote user's record: %+v, %v", rec, err)
	}
	rec.DisplayName = "Alice Smith"
	if err := st.SaveRemoteUser(*rec); err != nil {
		t.Fatal(err)
	}
	old := h.s.User(u.Id)
	old.FirstName, old.Nickname = "Alice Smith", "Alice Smith"
	if _, appErr := h.n.API(manifest.Id).UpdateUser(old); appErr != nil {
		t.Fatal(appErr)
	}
	h.s.WaitForReplicas() // the old record is from long ago
	if again := say("hello again"); again.Id != u.Id {
		t.Fatalf("the next message came from another user, %s", again.Username)
	}
	testhost.WaitFor(t, wait, func() bool {
		u := h.s.User(u.Id)
		return u.FirstName == want && u.Nickname == want
	}, "the old remote user's names to show the network")
}
