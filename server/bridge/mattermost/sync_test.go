package mattermost

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// syncOf is the sync message the server sends for posts of the harness's
// channel.
func (h *lagHarness) syncOf(posts ...*model.Post) *model.SyncMsg {
	msg := model.NewSyncMsg(h.ch.Id)
	msg.Posts = posts
	return msg
}

// bothAtOnce runs the hook and the sync message together, many times over
// in the tests, the way two sources race on a real server.
func bothAtOnce(hook, fromSync func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() { <-start; hook() })
	wg.Go(func() { <-start; fromSync() })
	close(start)
	wg.Wait()
}

func TestSyncMsgAndHookRelayAPostEditAndReactionOnce(t *testing.T) {
	h := newLagHarness(t)
	h.s.SetReplicaLag(0)
	for i := range 20 {
		p := h.post(t, "hello")
		var resp model.SyncResponse
		bothAtOnce(func() { h.b.OnPost(p) }, func() { resp = h.b.OnSyncMsg(h.syncOf(p)) })
		if len(resp.PostErrors) != 0 || resp.PostsLastUpdateAt != p.UpdateAt {
			t.Fatalf("round %d: response %+v, want the post handled (PostsLastUpdateAt %d)", i, resp, p.UpdateAt)
		}
		edited, appErr := h.n.PatchPost(h.user.Id, p.Id, "hello again")
		if appErr != nil {
			t.Fatal(appErr)
		}
		bothAtOnce(func() { h.b.OnPostUpdated(edited, p) }, func() { h.b.OnSyncMsg(h.syncOf(edited)) })
		r, appErr := h.n.React(h.user.Id, p.Id, "smile")
		if appErr != nil {
			t.Fatal(appErr)
		}
		msg := h.syncOf()
		msg.Reactions = []*model.Reaction{r}
		bothAtOnce(func() { h.b.OnReaction(r, true) }, func() { h.b.OnSyncMsg(msg) })
		h.waitKinds(t, p.Id, bridge.KindMessage, bridge.KindEdit, bridge.KindReactionAdd)
	}
}

func TestSyncMsgCursorStopsBeforeAPostNotHandedOn(t *testing.T) {
	h := newLagHarness(t)
	before := h.post(t, "seen")
	h.s.SetReplicaLag(0)
	if resp := h.b.OnSyncMsg(h.syncOf(before)); len(resp.PostErrors) != 0 {
		t.Fatalf("a post the reads show was not handled: %+v", resp)
	}
	// The reads are a second behind: a post just made does not show.
	h.s.SetReplicaLag(time.Second)
	late := h.post(t, "late")
	after := h.post(t, "later")
	resp := h.b.OnSyncMsg(h.syncOf(late, after))
	if !slices.Equal(resp.PostErrors, []string{late.Id, after.Id}) {
		t.Fatalf("PostErrors = %v, want both posts the reads do not show", resp.PostErrors)
	}
	if resp.PostsLastUpdateAt >= late.UpdateAt {
		t.Fatalf("PostsLastUpdateAt %d is past a post not handed on (%d)", resp.PostsLastUpdateAt, late.UpdateAt)
	}
	// Sent again alone once the reads have it (the server's retry), it
	// goes once, and so does the one after it.
	testhost.WaitFor(t, wait, func() bool {
		r := h.b.OnSyncMsg(h.syncOf(late))
		return len(r.PostErrors) == 0 && r.PostsLastUpdateAt == late.UpdateAt
	}, "the post was never handled")
	h.b.OnPost(after)
	h.waitKinds(t, late.Id, bridge.KindMessage)
	h.waitKinds(t, after.Id, bridge.KindMessage)
	time.Sleep(200 * time.Millisecond)
	h.waitKinds(t, late.Id, bridge.KindMessage)
}

func TestReactionAddedAgainAfterItsRemovalIsRelayed(t *testing.T) {
	h := newLagHarness(t)
	h.s.SetReplicaLag(0)
	p := h.post(t, "hello")
	h.b.OnPost(p)
	h.waitKinds(t, p.Id, bridge.KindMessage)
	for _, added := range []bool{true, false, true, false} {
		if added {
			r, appErr := h.n.React(h.user.Id, p.Id, "smile")
			if appErr != nil {
				t.Fatal(appErr)
			}
			h.b.OnReaction(r, true)
			continue
		}
		if appErr := h.n.RemoveReaction(&model.Reaction{UserId: h.user.Id, PostId: p.Id, EmojiName: "smile"}); appErr != nil {
			t.Fatal(appErr)
		}
		now := model.GetMillis()
		h.b.OnReaction(&model.Reaction{UserId: h.user.Id, PostId: p.Id, EmojiName: "smile", ChannelId: h.ch.Id, UpdateAt: now, DeleteAt: now}, false)
		time.Sleep(5 * time.Millisecond) // a new millisecond for the next change, as a person's clicks get
	}
	h.waitKinds(t, p.Id, bridge.KindMessage, bridge.KindReactionAdd, bridge.KindReactionRemove, bridge.KindReactionAdd, bridge.KindReactionRemove)
}

func TestEditReplayedAtStartIsNotRelayedAgainBySync(t *testing.T) {
	var edited *model.Post
	h := newLagHarnessWith(t, func(h *lagHarness) {
		h.s.SetReplicaLag(0)
		// Posted before the link's start, edited while the bridge was down.
		old, appErr := h.n.CreatePost(&model.Post{UserId: h.user.Id, ChannelId: h.ch.Id, Message: "old", CreateAt: model.GetMillis() - 2*time.Minute.Milliseconds()})
		if appErr != nil {
			t.Fatal(appErr)
		}
		if edited, appErr = h.n.PatchPost(h.user.Id, old.Id, "old, edited"); appErr != nil {
			t.Fatal(appErr)
		}
	})
	h.waitKinds(t, edited.Id, bridge.KindEdit)
	if resp := h.b.OnSyncMsg(h.syncOf(edited)); len(resp.PostErrors) != 0 {
		t.Fatalf("answer %+v", resp)
	}
	time.Sleep(200 * time.Millisecond)
	h.waitKinds(t, edited.Id, bridge.KindEdit)
}
