package slack

import (
	"io"
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

func TestConnectsAndSaysWhoItIs(t *testing.T) {
	h := newHarness(t, slacktest.Options{})
	hl := h.b.Health()
	team := h.srv.Team()
	for _, want := range []string{team.ID, team.Name, "@bridge", h.srv.BotUserID(), "chat:write.customize"} {
		if !strings.Contains(hl.Detail, want) {
			t.Errorf("health detail %q lacks %q", hl.Detail, want)
		}
	}
	if strings.Contains(hl.Detail, "missing scopes") {
		t.Errorf("no scope is missing, yet: %q", hl.Detail)
	}
	if got := h.b.identity().appID; got != h.srv.AppID() {
		t.Errorf("app ID = %q, want %q", got, h.srv.AppID())
	}
	h.assertNoSecrets(t, hl.Detail, hl.LastError)
}

func TestSlackMessagesBecomeEvents(t *testing.T) {
	h := newHarness(t, slacktest.Options{})
	s, ch, alice := h.srv, h.ch.ID, h.alice.ID
	carol := s.AddUser(slacktest.User{Name: "carol", RealName: "Carol"})
	s.Join(carol.ID, ch)
	other := s.AddBot("deploybot")

	root := s.Post(alice, ch, "hello <@"+carol.ID+"> see <https://example.com|the site>")
	reply := s.Reply(alice, ch, root, "in a thread")
	s.Edit(alice, ch, root, "hello again")
	me := s.MeMessage(alice, ch, "waves")
	s.React(carol.ID, ch, root, "thumbsup")
	s.Unreact(carol.ID, ch, root, "thumbsup")
	botTS := s.BotPost(other.ID, ch, "deployed", "Deploy Bot")
	fileTS, _ := s.ShareFile(slacktest.FileShare{User: alice, Channel: ch, Name: "notes.txt", Content: []byte("file body"), Text: "a file"})
	s.Delete(alice, ch, reply)

	evs := h.rec.wait(t, 9)
	if len(evs) != 9 {
		t.Fatalf("got %d events: %s", len(evs), describe(evs))
	}
	check := func(i int, kind bridge.Kind, origin, target, parent string) bridge.Event {
		t.Helper()
		ev := evs[i]
		if ev.Kind != kind || (origin != "" && ev.Origin.ID != origin) || ev.Target != target || ev.Parent != parent || ev.Origin.Room != ch || ev.Origin.Network != bridge.NetworkSlack {
			t.Errorf("event %d = %s origin %q target %q parent %q; want %s origin %q target %q parent %q",
				i, ev.Kind, ev.Origin.ID, ev.Target, ev.Parent, kind, origin, target, parent)
		}
		return ev
	}
	first := check(0, bridge.KindMessage, root, "", "")
	// A Slack mention is carol's name, not a Mattermost @mention (the
	// Slack carol is not the Mattermost user carol): a word joiner after
	// the @ keeps Mattermost quiet, and the mention names it as written.
	if first.Text != "hello @\u2060carol see [the site](https://example.com)" {
		t.Errorf("text = %q", first.Text)
	}
	if len(first.Mentions) != 1 || first.Mentions[0].Text != "@\u2060carol" || !strings.Contains(first.Text, first.Mentions[0].Text) || first.Mentions[0].Person.ID != h.srv.Team().ID+"/"+carol.ID {
		t.Errorf("mentions = %+v", first.Mentions)
	}
	if first.Sender.ID != h.srv.Team().ID+"/"+alice || first.Sender.Username != "alice" || first.Sender.DisplayName != "Alice Liddell" ||
		first.Sender.AvatarURL != h.alice.Image192 || first.Sender.AvatarHash == "" {
		t.Errorf("sender = %+v", first.Sender)
	}
	check(1, bridge.KindMessage, reply, "", root)
	if ed := check(2, bridge.KindEdit, "", root, ""); ed.Text != "hello again" || ed.Sender.ID != first.Sender.ID {
		t.Errorf("edit = %+v", ed)
	}
	if ev := check(3, bridge.KindMessage, me, "", ""); ev.Text != "*Alice Liddell waves*" {
		t.Errorf("me_message text = %q", ev.Text)
	}
	if ev := check(4, bridge.KindReactionAdd, "", root, ""); ev.Emoji != "+1" || ev.Sender.Username != "carol" {
		t.Errorf("reaction = %+v", ev)
	}
	check(5, bridge.KindReactionRemove, "", root, "")
	if ev := check(6, bridge.KindMessage, botTS, "", ""); ev.Sender.DisplayName != "Deploy Bot" || ev.Text != "deployed" {
		t.Errorf("bot message = %+v", ev)
	}
	fev := check(7, bridge.KindMessage, fileTS, "", "")
	if fev.Text != "a file" || len(fev.Attachments) != 1 || fev.Attachments[0].Name != "notes.txt" || fev.Attachments[0].Size != 9 {
		t.Fatalf("file message = %+v", fev)
	}
	rc, err := fev.Attachments[0].Open(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(body) != "file body" {
		t.Errorf("file content = %q", body)
	}
	if ev := check(8, bridge.KindDelete, "", reply, ""); ev.Sender.ID != first.Sender.ID {
		t.Errorf("delete sender = %+v", ev.Sender)
	}
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestUnlinkedChannelsAndOwnPostsAreNotRelayed(t *testing.T) {
	h := newHarness(t, slacktest.Options{})
	s := h.srv
	elsewhere := s.AddChannel(slacktest.Channel{Name: "random", Members: []string{h.alice.ID, s.BotUserID()}})
	s.Post(h.alice.ID, elsewhere.ID, "not linked")
	// The bridge's own posts come back as events; none may be relayed.
	id, err := h.b.Deliver(ctxT(t), h.delivery(bridge.KindMessage, "from mattermost"))
	if err != nil {
		t.Fatal(err)
	}
	d := h.delivery(bridge.KindEdit, "edited in mattermost")
	d.TargetID = id
	if _, err := h.b.Deliver(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	r := h.delivery(bridge.KindReactionAdd, "")
	r.TargetID, r.Emoji = id, "smile"
	if _, err := h.b.Deliver(ctxT(t), r); err != nil {
		t.Fatal(err)
	}
	del := h.delivery(bridge.KindDelete, "")
	del.TargetID = id
	if _, err := h.b.Deliver(ctxT(t), del); err != nil {
		t.Fatal(err)
	}
	marker := s.Post(h.alice.ID, h.ch.ID, "marker")
	h.rec.wait(t, 1)
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	evs := h.rec.all()
	if len(evs) != 1 || evs[0].Origin.ID != marker {
		t.Fatalf("only the marker should be relayed, got %s", describe(evs))
	}
}

func TestUserChangeUpdatesTheSender(t *testing.T) {
	h := newHarness(t, slacktest.Options{})
	s := h.srv
	s.Post(h.alice.ID, h.ch.ID, "before")
	h.rec.wait(t, 1)
	s.UpdateUser(h.alice.ID, func(u *slacktest.User) { u.RealName = "Alice Pleasance"; u.Image192 = s.URL + "/avatars/alice2.png" })
	s.Post(h.alice.ID, h.ch.ID, "after")
	evs := h.rec.wait(t, 2)
	if got := evs[1].Sender; got.DisplayName != "Alice Pleasance" || got.AvatarHash == evs[0].Sender.AvatarHash {
		t.Fatalf("sender after user_change = %+v", got)
	}
}
