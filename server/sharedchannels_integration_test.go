package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// sharedHarness is the plugin with Slack on a server whose shared channels
// are on or off, and a Slack channel to link.
type sharedHarness struct {
	*slackHarness
	sch slacktest.Channel
	sam slacktest.User
}

func newSharedHarness(t *testing.T, sharedChannels bool, extra map[string]any) *sharedHarness {
	t.Helper()
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)

	var opts []testhost.Option
	if sharedChannels {
		opts = append(opts, testhost.WithSharedChannels())
	}
	h := newSlackHarnessWith(t, slack, extra, nil, opts...)
	return &sharedHarness{slackHarness: h, sch: sch, sam: sam}
}

// slackRemote is the ID of the Slack network's shared-channels remote.
func (h *sharedHarness) slackRemote() string {
	h.t.Helper()
	for _, rc := range h.s.RemoteClusters() {
		if rc.DisplayName == "Slack" && rc.DeleteAt == 0 {
			return rc.RemoteId
		}
	}
	h.t.Fatal("no Slack remote registered")
	return ""
}

// invited lists the remotes invited to the channel.
func (h *sharedHarness) invited() []string {
	var out []string
	for _, scr := range h.s.SharedChannelRemotes(h.ch.Id) {
		out = append(out, scr.RemoteId)
	}
	return out
}

// inSlack counts the messages of the Slack channel with exactly text.
func (h *sharedHarness) inSlack(text string) int {
	n := 0
	for _, m := range h.srv.Messages(h.sch.ID) {
		if m.Text == text {
			n++
		}
	}
	return n
}

// syncedPost returns the responses the plugin gave to sync messages that
// carried post.
func (h *sharedHarness) syncedPost(postID string) []model.SyncResponse {
	var out []model.SyncResponse
	for _, c := range h.s.SyncCalls() {
		if c.Msg == nil || c.Err != nil {
			continue
		}
		for _, p := range c.Msg.Posts {
			if p.Id == postID {
				out = append(out, c.Response)
			}
		}
	}
	return out
}

// Issue 12 check 5: a channel shared with the Slack remote gets each post
// from the post hook and, two seconds later, from the server's sync
// service; Slack has each once, and the plugin's answer covers exactly
// the posts it handled.
func TestSharedChannelDeliversAPostOnceFromHookAndSync(t *testing.T) {
	h := newSharedHarness(t, true, nil)
	h.command("/slackbridge map "+h.sch.ID, "Linked this channel")
	remote := h.slackRemote()
	if got := h.invited(); !slices.Equal(got, []string{remote}) {
		t.Fatalf("remotes invited to the linked channel: %v, want the Slack remote", got)
	}

	var posts []*model.Post
	for i := range 10 {
		posts = append(posts, h.post(h.alice, "shared "+string(rune('a'+i)), ""))
	}
	edited, appErr := h.n.PatchPost(h.alice.Id, posts[0].Id, "shared a, edited")
	if appErr != nil {
		t.Fatal(appErr)
	}
	ctx, cancel := context.WithTimeout(h.ctx, wait)
	defer cancel()
	for _, p := range posts {
		testhost.WaitFor(t, wait, func() bool { return len(h.syncedPost(p.Id)) > 0 }, "the sync service never sent %q", p.Message)
	}
	if _, err := h.srv.WaitMessage(ctx, h.sch.ID, func(m slacktest.Message) bool { return m.Text == "shared j" }); err != nil {
		t.Fatal(err)
	}
	h.s.WaitHooks(5 * time.Second)
	time.Sleep(time.Second)
	for _, p := range posts[1:] {
		if n := h.inSlack(p.Message); n != 1 {
			t.Errorf("%q is in Slack %d times, want once", p.Message, n)
		}
	}
	if n := h.inSlack(edited.Message); n != 1 {
		t.Errorf("the edit is in Slack %d times, want once", n)
	}
	for _, p := range posts {
		for _, resp := range h.syncedPost(p.Id) {
			if slices.Contains(resp.PostErrors, p.Id) {
				t.Errorf("the plugin did not handle %q: %+v", p.Message, resp)
			}
			if resp.PostsLastUpdateAt < p.UpdateAt {
				t.Errorf("answer %+v stops before %q, which it handled", resp, p.Message)
			}
		}
	}
}

// Check 5, the cursor: a post the plugin cannot hand on yet (the reads
// behind its pull do not show it) is answered in PostErrors with the cursor
// before it; it reaches Slack once when the reads catch up.
func TestSharedChannelCursorStopsBeforeWhatWasNotHandedOn(t *testing.T) {
	h := newSharedHarness(t, true, nil)
	h.command("/slackbridge map "+h.sch.ID, "Linked this channel")
	h.s.SetSyncDelay(100 * time.Millisecond)
	first := h.post(h.alice, "before the lag", "")
	testhost.WaitFor(t, wait, func() bool { return h.inSlack(first.Message) == 1 }, "the first post in Slack")
	// The remote reads online from its first ping, 5 s after it was
	// registered; until then the server syncs nothing.
	testhost.WaitFor(t, wait, func() bool { return len(h.syncedPost(first.Id)) > 0 }, "the first post synced")

	h.s.SetReplicaLag(3 * time.Second)
	late := h.post(h.alice, "while the reads lag", "")
	var refused model.SyncResponse
	testhost.WaitFor(t, wait, func() bool {
		for _, resp := range h.syncedPost(late.Id) {
			if slices.Contains(resp.PostErrors, late.Id) {
				refused = resp
				return true
			}
		}
		return false
	}, "a sync answer naming the post not handed on")
	if refused.PostsLastUpdateAt >= late.UpdateAt {
		t.Fatalf("answer %+v moves past a post not handed on", refused)
	}
	if n := h.inSlack(late.Message); n != 0 {
		t.Fatalf("the post reached Slack before the reads showed it (%d)", n)
	}
	h.s.SetReplicaLag(0)
	testhost.WaitFor(t, time.Minute, func() bool { return h.inSlack(late.Message) > 0 }, "the post in Slack after the lag")
	h.s.WaitHooks(5 * time.Second)
	time.Sleep(time.Second)
	if n := h.inSlack(late.Message); n != 1 {
		t.Fatalf("the post is in Slack %d times, want once", n)
	}
}

// Unmapping a network's room uninvites its remote (and the server unshares
// the channel left without remotes); links made while sharing was off are
// shared when it is turned on.
func TestSharedChannelFollowsMapUnmapAndTheSetting(t *testing.T) {
	h := newSharedHarness(t, true, map[string]any{"ShareLinkedChannels": false})
	h.command("/slackbridge map "+h.sch.ID, "Linked this channel")
	if got := h.invited(); len(got) != 0 {
		t.Fatalf("shared with %v while the setting is off", got)
	}
	h.command("/slackbridge status", "Shared channels: off")

	settings := slackSettings(h.srv)
	settings["ShareLinkedChannels"] = true
	if err := h.n.SetPluginSettings(settings); err != nil {
		t.Fatal(err)
	}
	remote := h.slackRemote()
	testhost.WaitFor(t, wait, func() bool { return slices.Equal(h.invited(), []string{remote}) }, "the existing link shared once the setting is on")
	h.command("/slackbridge status", "listed under System Console > Connected Workspaces")
	if sc := h.s.SharedChannel(h.ch.Id); sc == nil || !sc.Home {
		t.Fatalf("shared channel record %+v", sc)
	}

	h.command("/slackbridge unmap", "Unlinked")
	if got := h.invited(); len(got) != 0 {
		t.Fatalf("still invited after the unmap: %v", got)
	}
	if h.s.SharedChannel(h.ch.Id) != nil {
		t.Fatal("the channel is still shared without remotes")
	}
	waitPost(t, h.s, h.ch, "the server's note that the channel is no longer shared", func(p *model.Post) bool {
		return p.Type == model.PostTypeSystemGeneric && p.Message == "This channel is no longer shared."
	})
	h.command("/slackbridge map "+h.sch.ID, "Linked this channel")
	if got := h.invited(); !slices.Equal(got, []string{remote}) {
		t.Fatalf("not invited again after a new map: %v", got)
	}
}

// Without shared channels on the server, links work as before, nothing is
// shared, and status says why.
func TestWithoutSharedChannelsLinksWorkAndStatusSaysSo(t *testing.T) {
	h := newSharedHarness(t, false, nil)
	h.slackRemote() // registered all the same, as the server does
	h.command("/slackbridge status", "Shared channels: unavailable")
	h.command("/slackbridge map "+h.sch.ID, "Linked this channel")
	if h.s.SharedChannel(h.ch.Id) != nil || len(h.invited()) != 0 {
		t.Fatal("a channel was shared on a server without shared channels")
	}
	status := h.command("/slackbridge status", "Shared channels: unavailable")
	if !strings.Contains(status, "Links work as before") {
		t.Errorf("status = %q", status)
	}
	p := h.post(h.alice, "still relayed", "")
	testhost.WaitFor(t, wait, func() bool { return h.inSlack(p.Message) == 1 }, "the post in Slack")
	h.command("/slackbridge unmap", "Unlinked")
}

// A sync message reaching a node that does not hold the bridge is handed
// to the holder, and racing with the post hook it still relays each post
// once.
func TestSyncMsgOnAFollowerIsHandledByTheHolderOnce(t *testing.T) {
	h := newSharedHarness(t, true, nil)
	follower := h.s.AddNode()
	if err := follower.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
		t.Fatal(err)
	}
	h.command("/slackbridge map "+h.sch.ID, "Linked this channel")
	hooks, err := follower.Hooks()
	if err != nil {
		t.Fatal(err)
	}
	rc := &model.RemoteCluster{RemoteId: h.slackRemote(), PluginID: manifest.Id}
	var posts []*model.Post
	for i := range 10 {
		p := h.post(h.alice, "via the follower "+string(rune('a'+i)), "")
		posts = append(posts, p)
		msg := model.NewSyncMsg(h.ch.Id)
		msg.Posts = []*model.Post{h.s.Post(p.Id)}
		resp, err := hooks.OnSharedChannelsSyncMsg(msg, rc)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.PostErrors) == 0 && resp.PostsLastUpdateAt != p.UpdateAt {
			t.Fatalf("answer %+v for a post it handled (UpdateAt %d)", resp, p.UpdateAt)
		}
	}
	for _, p := range posts {
		testhost.WaitFor(t, wait, func() bool { return h.inSlack(p.Message) > 0 }, "%q in Slack", p.Message)
	}
	h.s.WaitHooks(5 * time.Second)
	time.Sleep(3 * time.Second) // the sync service's own messages too
	for _, p := range posts {
		if n := h.inSlack(p.Message); n != 1 {
			t.Errorf("%q is in Slack %d times, want once", p.Message, n)
		}
	}
	if _, err := hooks.OnSharedChannelsSyncMsg(model.NewSyncMsg(h.ch.Id), &model.RemoteCluster{RemoteId: model.NewId()}); err == nil {
		t.Error("a sync message for another plugin's remote was taken")
	}
}

// The server's sync service runs on its leader, which need not hold the
// bridge: there the plugin hands each sync message to the holder, and each
// post still reaches Slack once.
func TestSyncServiceOnANodeThatDoesNotHoldTheBridge(t *testing.T) {
	h := newSharedHarness(t, true, nil)
	h.command("/slackbridge map "+h.sch.ID, "Linked this channel")
	second := h.s.AddNode()
	if err := second.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
		t.Fatal(err)
	}
	// node0 gives the bridge to node1 and comes back as a follower, and as
	// the server's leader (the first node), where the sync runs.
	if err := h.n.Restart(); err != nil {
		t.Fatal(err)
	}
	ha := &haHarness{xmppHarness: &xmppHarness{channelHarness: channelHarness{t: t, s: h.s}}, nodes: []*testhost.Node{h.n, second}}
	if holder := ha.holder(nil); holder != second {
		t.Fatalf("the bridge is on %s, want node1", holder.ID())
	}
	// Slack lets one process open a socket once a minute: the new holder's
	// may wait that long, and the remote reads offline meanwhile.
	h.s.SetPingInterval(time.Second)
	waitConnectedWithin(t, 2*time.Minute, second, h.admin, h.ch, "slackbridge", "Slack")
	var posts []*model.Post
	for i := range 5 {
		posts = append(posts, h.post(h.alice, "synced by the leader "+string(rune('a'+i)), ""))
	}
	for _, p := range posts {
		testhost.WaitFor(t, time.Minute, func() bool {
			for _, c := range h.s.SyncCalls() {
				if c.Msg == nil || c.Node != h.n.ID() || c.Err != nil {
					continue
				}
				for _, sp := range c.Msg.Posts {
					if sp.Id == p.Id && !slices.Contains(c.Response.PostErrors, p.Id) && c.Response.PostsLastUpdateAt >= p.UpdateAt {
						return true
					}
				}
			}
			return false
		}, "the leader node0 to sync %q and the holder to answer it handled (calls %s; remotes %s)", p.Message, describeSyncCalls(h.s.SyncCalls()), describeRemotes(h.s))
	}
	h.s.WaitHooks(5 * time.Second)
	time.Sleep(time.Second)
	for _, p := range posts {
		if n := h.inSlack(p.Message); n != 1 {
			t.Errorf("%q is in Slack %d times, want once", p.Message, n)
		}
	}
}

func describeSyncCalls(calls []testhost.SyncCall) string {
	var b strings.Builder
	for _, c := range calls {
		if c.Msg == nil {
			continue
		}
		fmt.Fprintf(&b, "[%s %s posts=%d err=%v resp=%+v] ", c.Node, c.Hook, len(c.Msg.Posts), c.Err, c.Response)
	}
	return b.String()
}

func describeRemotes(s *testhost.Server) string {
	var b strings.Builder
	for _, rc := range s.RemoteClusters() {
		fmt.Fprintf(&b, "[%s %s ping=%d online=%v del=%d] ", rc.DisplayName, rc.RemoteId, rc.LastPingAt, rc.IsOnline(), rc.DeleteAt)
	}
	return b.String()
}
