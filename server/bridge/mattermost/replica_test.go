package mattermost

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// These tests run the bridge against the test host with read replicas that
// lag behind (as with SqlSettings.DataSourceReplicas): GetPost,
// GetPostsSince and KVGet see the server as it was testLag ago. The hooks
// are called directly, as the plugin does, right after the change they
// report: on a real server a hook can likewise run before a replica has the
// post it carries.

const (
	testLag  = 50 * time.Millisecond
	pluginID = "com.mattermost.bridge"
	wait     = 10 * time.Second
)

type lagHarness struct {
	s    *testhost.Server
	n    *testhost.Node
	b    *Bridge
	st   *store.Store
	ch   *model.Channel
	user *model.User

	mu     sync.Mutex
	events []bridge.Event
}

// newLagHarness returns a started bridge with a channel linked with an XMPP
// room since a minute ago; the lag starts once the link is there.
func newLagHarness(t *testing.T) *lagHarness {
	t.Helper()
	return newLagHarnessWith(t, nil)
}

// newLagHarnessWith is newLagHarness with before run just before the
// bridge starts.
func newLagHarnessWith(t *testing.T, before func(*lagHarness)) *lagHarness {
	t.Helper()
	s := testhost.NewServer(t, testhost.WithPluginID(pluginID), testhost.WithReplicaLag(0))
	h := &lagHarness{s: s, n: s.Node(0), user: s.CreateUser("alice", false)}
	h.ch = s.CreateChannel(s.DefaultTeam().Id, "town")
	s.AddToChannel(h.user.Id, h.ch.Id)
	api := h.n.API(pluginID)
	st := store.New(api)
	if _, err := st.AddRemote(h.ch.Id, h.ch.TeamId, store.RemoteRoom{
		Network: bridge.NetworkXMPP, Room: "town@conference.example.org", LinkedAt: time.Now().Add(-time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	s.SetReplicaLag(testLag)
	h.st = st
	h.b = New(api, st, Options{
		BotUserID: model.NewId(),
		RemoteIDs: map[bridge.Network]string{bridge.NetworkXMPP: model.NewId()},
	})
	sink := bridge.SinkFunc(func(_ context.Context, ev bridge.Event) error {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
		return nil
	})
	if before != nil {
		before(h)
	}
	if err := h.b.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = h.b.Stop(ctx)
	})
	return h
}

// kinds lists the kinds of the events about post, in the order the bridge
// handed them on.
func (h *lagHarness) kinds(postID string) []bridge.Kind {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []bridge.Kind
	for _, ev := range h.events {
		if ev.Origin.ID == postID || ev.Target == postID {
			out = append(out, ev.Kind)
		}
	}
	return out
}

func (h *lagHarness) waitKinds(t *testing.T, postID string, want ...bridge.Kind) {
	t.Helper()
	testhost.WaitFor(t, wait, func() bool { return len(h.kinds(postID)) >= len(want) },
		"events %v about post %s (have %v)", want, postID, h.kinds(postID))
	if got := h.kinds(postID); !slices.Equal(got, want) {
		t.Fatalf("events about the post = %v, want %v", got, want)
	}
}

func (h *lagHarness) post(t *testing.T, text string) *model.Post {
	t.Helper()
	p, appErr := h.n.CreatePost(&model.Post{UserId: h.user.Id, ChannelId: h.ch.Id, Message: text})
	if appErr != nil {
		t.Fatal(appErr)
	}
	return p
}

func TestPostMissingFromALaggingReadIsRelayedLater(t *testing.T) {
	h := newLagHarness(t)
	p := h.post(t, "hello")
	h.b.OnPost(p) // GetPostsSince does not have it yet
	h.waitKinds(t, p.Id, bridge.KindMessage)
}

func TestPostRightAfterLinkingIsRelayed(t *testing.T) {
	h := newLagHarness(t)
	ch := h.s.CreateChannel(h.ch.TeamId, "new")
	h.s.AddToChannel(h.user.Id, ch.Id)
	if _, err := h.st.AddRemote(ch.Id, ch.TeamId, store.RemoteRoom{Network: bridge.NetworkXMPP, Room: "new@conference.example.org"}); err != nil {
		t.Fatal(err)
	}
	p, appErr := h.n.CreatePost(&model.Post{UserId: h.user.Id, ChannelId: ch.Id, Message: "first!"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	h.b.OnPost(p) // the replica does not have the link yet
	h.waitKinds(t, p.Id, bridge.KindMessage)
}

func TestEditOfAPostMissingFromALaggingReadFollowsIt(t *testing.T) {
	h := newLagHarness(t)
	p := h.post(t, "helo")
	edited, appErr := h.n.PatchPost(h.user.Id, p.Id, "hello")
	if appErr != nil {
		t.Fatal(appErr)
	}
	old := p.Clone()
	h.b.OnPost(p)
	h.b.OnPostUpdated(edited, old)
	h.waitKinds(t, p.Id, bridge.KindMessage, bridge.KindEdit)
}

func TestReactionToAPostMissingFromALaggingReadFollowsIt(t *testing.T) {
	h := newLagHarness(t)
	p := h.post(t, "hello")
	r, appErr := h.n.React(h.user.Id, p.Id, "smile")
	if appErr != nil {
		t.Fatal(appErr)
	}
	h.b.OnPost(p)
	h.b.OnReaction(r, true)
	h.waitKinds(t, p.Id, bridge.KindMessage, bridge.KindReactionAdd)
}

func TestLateCommittedPostIsNotSkipped(t *testing.T) {
	h := newLagHarness(t)
	second := h.post(t, "second")
	h.b.OnPost(second)
	h.waitKinds(t, second.Id, bridge.KindMessage)
	// A post created just before the one relayed, whose row the database
	// committed only now (concurrent requests commit in any order): reads
	// show it after the position moved past its creation time.
	late, appErr := h.n.API(pluginID).CreatePost(&model.Post{
		UserId: h.user.Id, ChannelId: h.ch.Id, Message: "first", CreateAt: second.CreateAt - 1,
	})
	if appErr != nil {
		t.Fatal(appErr)
	}
	h.b.OnPost(late)
	h.waitKinds(t, late.Id, bridge.KindMessage)
}

func (h *lagHarness) deliver(t *testing.T, d *bridge.Delivery) string {
	t.Helper()
	d.Room = h.ch.Id
	if d.Sender.ID == "" {
		d.Sender = bridge.Sender{Network: bridge.NetworkXMPP, ID: "bob@example.org", Username: "bob"}
	}
	id, err := h.b.Deliver(context.Background(), d)
	if err != nil {
		t.Fatalf("Deliver %s: %v", d.Kind, err)
	}
	return id
}

// remoteUserReady delivers a first message from the remote sender, so
// that the deliveries a test times have their user ready and replicated:
// making the user takes longer than the lag.
func (h *lagHarness) remoteUserReady(t *testing.T) {
	t.Helper()
	h.deliver(t, &bridge.Delivery{Event: bridge.Event{Kind: bridge.KindMessage, Text: "hi"}})
	time.Sleep(2 * testLag)
}

func TestReplyToAPostMissingFromALaggingReadIsThreaded(t *testing.T) {
	h := newLagHarness(t)
	h.remoteUserReady(t)
	root := h.post(t, "root")
	id := h.deliver(t, &bridge.Delivery{Event: bridge.Event{Kind: bridge.KindMessage, Text: "reply"}, ParentID: root.Id})
	if got := h.s.Post(id); got == nil || got.RootId != root.Id {
		t.Fatalf("the reply = %+v, want it in the thread of %s", got, root.Id)
	}
}

func TestEditOfAPostMissingFromALaggingReadIsMade(t *testing.T) {
	h := newLagHarness(t)
	h.remoteUserReady(t)
	id := h.deliver(t, &bridge.Delivery{Event: bridge.Event{Kind: bridge.KindMessage, Text: "helo"}})
	h.deliver(t, &bridge.Delivery{Event: bridge.Event{Kind: bridge.KindEdit, Text: "hello"}, TargetID: id})
	if got := h.s.Post(id); got == nil || got.Message != "hello" {
		t.Fatalf("the edited post = %+v", got)
	}
}

func TestPostMadeJustBeforeAStartIsReplayed(t *testing.T) {
	h := newLagHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Made while the bridge was stopped, so no hook brings it; the start
	// comes before the replicas have it.
	p := h.post(t, "while stopped")
	sink := bridge.SinkFunc(func(_ context.Context, ev bridge.Event) error {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
		return nil
	})
	if err := h.b.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	h.waitKinds(t, p.Id, bridge.KindMessage)
}
