package testhost

import (
	"bytes"
	"image"
	"image/png"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const syncPluginID = "com.example.syncremote"

// syncRemote is a plugin with one shared-channels remote that records what
// the sync service sends it; it refuses (PostErrors) a post whose message
// is in refuse as many times as it says.
type syncRemote struct {
	plugin.MattermostPlugin

	mu       sync.Mutex
	remoteID string
	refuse   map[string]int
	posts    []*model.Post
	users    []string
	files    []string
	images   []string
	fail     bool
	offline  bool
}

func (p *syncRemote) OnActivate() error {
	id, err := p.API.RegisterPluginForSharedChannels(model.RegisterPluginOpts{Displayname: "Remote", PluginID: syncPluginID, CreatorID: model.NewId(), SiteURL: "https://remote.example"})
	p.mu.Lock()
	p.remoteID = id
	p.mu.Unlock()
	return err
}

func (p *syncRemote) OnSharedChannelsSyncMsg(msg *model.SyncMsg, _ *model.RemoteCluster) (model.SyncResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var resp model.SyncResponse
	if p.fail {
		return resp, errTestRemote
	}
	for id := range msg.Users {
		p.users = append(p.users, id)
		resp.UsersSyncd = append(resp.UsersSyncd, id)
	}
	for _, post := range msg.Posts {
		if p.refuse[post.Message] > 0 {
			p.refuse[post.Message]--
			resp.PostErrors = append(resp.PostErrors, post.Id)
			continue
		}
		p.posts = append(p.posts, post)
	}
	return resp, nil
}

func (p *syncRemote) OnSharedChannelsAttachmentSyncMsg(fi *model.FileInfo, _ *model.Post, _ *model.RemoteCluster) error {
	p.mu.Lock()
	p.files = append(p.files, fi.Id)
	p.mu.Unlock()
	return nil
}

func (p *syncRemote) OnSharedChannelsProfileImageSyncMsg(u *model.User, _ *model.RemoteCluster) error {
	p.mu.Lock()
	p.images = append(p.images, u.Id)
	p.mu.Unlock()
	return nil
}

func (p *syncRemote) OnSharedChannelsPing(*model.RemoteCluster) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.offline
}

// messages returns the messages of the posts received, in order.
func (p *syncRemote) messages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.posts))
	for _, post := range p.posts {
		out = append(out, post.Message)
	}
	return out
}

type testRemoteError struct{}

func (testRemoteError) Error() string { return "the remote is down" }

var errTestRemote = testRemoteError{}

func newSyncFixture(t *testing.T, opts ...Option) (*fixture, *syncRemote) {
	t.Helper()
	f := newFixture(t, append([]Option{WithPluginID(syncPluginID), WithSharedChannels()}, opts...)...)
	f.s.SetSyncDelay(50 * time.Millisecond)
	p := &syncRemote{refuse: map[string]int{}}
	if err := f.s.Node(0).ActivateInProcess(&model.Manifest{Id: syncPluginID, Name: "Sync remote", Version: "0.0.1"}, func() any { return p }); err != nil {
		t.Fatal(err)
	}
	return f, p
}

func (p *syncRemote) remote() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remoteID
}

func TestSyncSendsNewPostsButNotHistoryNorTheRemotesOwn(t *testing.T) {
	t.Parallel()
	f, p := newSyncFixture(t)
	n := f.s.Node(0)
	api := n.API(syncPluginID)
	if _, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "before the invitation"}); appErr != nil {
		t.Fatal(appErr)
	}
	if err := api.InviteRemoteToChannel(f.ch.Id, p.remote(), f.user.Id, true); err != nil {
		t.Fatal(err)
	}
	remoteUser := f.s.CreateUserWith(&model.User{Username: "remote-bob", Email: "bob@remote.example", Password: "password1", RemoteId: model.NewPointer(p.remote())})
	f.s.AddToChannel(remoteUser.Id, f.ch.Id)
	if _, appErr := api.CreatePost(&model.Post{UserId: remoteUser.Id, ChannelId: f.ch.Id, Message: "from the remote", RemoteId: model.NewPointer(p.remote())}); appErr != nil {
		t.Fatal(appErr)
	}
	first, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "one"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	if _, appErr = n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "two"}); appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 10*time.Second, func() bool { return len(p.messages()) >= 2 }, "the posts were not synced: %v", p.messages())
	if got := p.messages(); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("synced %q, want [one two]: history and the remote's own posts stay home", got)
	}
	p.mu.Lock()
	users := slices.Clone(p.users)
	p.mu.Unlock()
	if !slices.Equal(users, []string{f.user.Id}) {
		t.Fatalf("users synced %v, want the author alone", users)
	}

	// The cursor is where the fetch got to; an edit is sent once more.
	scr := f.s.SharedChannelRemotes(f.ch.Id)[0]
	if scr.LastPostCreateID == "" || scr.LastPostCreateAt < first.CreateAt {
		t.Fatalf("cursor %+v did not move past the synced posts", scr)
	}
	if _, appErr = n.PatchPost(f.user.Id, first.Id, "one, edited"); appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 10*time.Second, func() bool { return len(p.messages()) == 3 }, "the edit was not synced: %v", p.messages())
	time.Sleep(300 * time.Millisecond)
	if got := p.messages(); !slices.Equal(got, []string{"one", "two", "one, edited"}) {
		t.Fatalf("synced %q after the edit", got)
	}
}

func TestSyncResendsRefusedPostsAloneAndRetriesFailures(t *testing.T) {
	t.Parallel()
	f, p := newSyncFixture(t)
	n := f.s.Node(0)
	if err := n.API(syncPluginID).InviteRemoteToChannel(f.ch.Id, p.remote(), f.user.Id, true); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.refuse["refused"] = 2
	p.refuse["lost"] = 100
	p.mu.Unlock()
	for _, m := range []string{"a", "refused", "lost", "b"} {
		if _, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: m}); appErr != nil {
			t.Fatal(appErr)
		}
	}
	// A refused post is sent again alone, up to MaxRetries more times:
	// "refused" arrives on its third sending, "lost" is given up after
	// its fifth.
	sent := func(m string) int {
		n := 0
		for _, c := range f.s.SyncCalls() {
			if c.Msg != nil {
				for _, post := range c.Msg.Posts {
					if post.Message == m {
						n++
					}
				}
			}
		}
		return n
	}
	WaitFor(t, 10*time.Second, func() bool { return sent("lost") >= 2+syncMaxRetries }, "lost was sent %d times", sent("lost"))
	time.Sleep(500 * time.Millisecond)
	if got := p.messages(); !slices.Equal(got, []string{"a", "b", "refused"}) {
		t.Fatalf("received %q, want a, b, then refused once", got)
	}
	if n := sent("lost"); n != 2+syncMaxRetries {
		t.Fatalf("a post refused every time was sent %d times, want %d", n, 2+syncMaxRetries)
	}

	// A hook that fails: the server moves the cursor all the same (the
	// posts callback runs with the error) and the retried task finds
	// nothing new, so the post is not sent again. A plugin that wants a
	// post again lists it in PostErrors.
	p.mu.Lock()
	p.fail = true
	p.mu.Unlock()
	before := len(f.s.SyncCalls())
	down, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "while down"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 10*time.Second, func() bool {
		scr := f.s.SharedChannelRemotes(f.ch.Id)[0]
		return scr.LastPostCreateID == down.Id
	}, "the cursor did not move past a post the hook failed on")
	time.Sleep(500 * time.Millisecond)
	failed := 0
	for _, c := range f.s.SyncCalls()[before:] {
		if c.Err != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d failed calls, want 1: a retried task reads from the moved cursor", failed)
	}
}

func TestSyncSendsAttachmentsReactionsAndPictures(t *testing.T) {
	t.Parallel()
	f, p := newSyncFixture(t)
	n := f.s.Node(0)
	if err := n.API(syncPluginID).InviteRemoteToChannel(f.ch.Id, p.remote(), f.user.Id, true); err != nil {
		t.Fatal(err)
	}
	fi, appErr := n.UploadFile(f.user.Id, f.ch.Id, "a.txt", []byte("hello"))
	if appErr != nil {
		t.Fatal(appErr)
	}
	post, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "file", FileIds: []string{fi.Id}})
	if appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.files) == 1 && len(p.images) == 1
	}, "no attachment or picture synced")
	if _, appErr = n.React(f.user.Id, post.Id, "smile"); appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 10*time.Second, func() bool {
		for _, c := range f.s.SyncCalls() {
			if c.Msg != nil && len(c.Msg.Reactions) == 1 && c.Msg.Reactions[0].EmojiName == "smile" {
				return true
			}
		}
		return false
	}, "the reaction was not synced")
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	if appErr = n.API(syncPluginID).SetProfileImage(f.user.Id, buf.Bytes()); appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.images) == 2
	}, "the new picture was not synced")
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.files) != 1 {
		t.Fatalf("the attachment was synced %d times", len(p.files))
	}
}

func TestSharingNeedsTheService(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	rc, err := api.RegisterPluginForSharedChannels(model.RegisterPluginOpts{Displayname: "X", CreatorID: f.user.Id, SiteURL: "https://x.example"})
	if err != nil {
		t.Fatalf("registering needs no license on the server: %v", err)
	}
	err = api.InviteRemoteToChannel(f.ch.Id, rc, f.user.Id, true)
	appErr, ok := err.(*model.AppError)
	if !ok || appErr.Id != "api.command_share.service_disabled" {
		t.Fatalf("invite without the service: %v, want api.command_share.service_disabled", err)
	}
	if f.s.SharedChannel(f.ch.Id) != nil {
		t.Fatal("the channel was shared")
	}
}

func TestSyncSkipsAnOfflineRemoteAndCatchesUpWhenItIsBack(t *testing.T) {
	t.Parallel()
	f, p := newSyncFixture(t)
	n := f.s.Node(0)
	f.s.SetPingInterval(100 * time.Millisecond)
	if err := n.API(syncPluginID).InviteRemoteToChannel(f.ch.Id, p.remote(), f.user.Id, true); err != nil {
		t.Fatal(err)
	}
	if _, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "first"}); appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 10*time.Second, func() bool { return slices.Equal(p.messages(), []string{"first"}) }, "first synced")

	p.mu.Lock()
	p.offline = true
	p.mu.Unlock()
	remote := func() *model.RemoteCluster {
		for _, rc := range f.s.RemoteClusters() {
			if rc.RemoteId == p.remote() {
				return rc
			}
		}
		return nil
	}
	// Offline means no good ping for 5 minutes: make the last one that old.
	time.Sleep(300 * time.Millisecond)
	f.s.mu.Lock()
	f.s.st.remotes[p.remote()].LastPingAt = model.GetMillis() - model.RemoteOfflineAfterMillis - 1
	f.s.mu.Unlock()
	if remote().IsOnline() {
		t.Fatal("the remote reads online")
	}
	down, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "while offline"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 10*time.Second, func() bool {
		for _, e := range f.s.EphemeralPostsFor(f.user.Id) {
			if e.Post.Message == "Unable to deliver this message to Remote because it is offline. Please try again later." {
				return true
			}
		}
		return false
	}, "the author told the remote is offline")
	if got := p.messages(); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("synced to an offline remote: %q", got)
	}
	if scr := f.s.SharedChannelRemotes(f.ch.Id)[0]; scr.LastPostCreateAt >= down.CreateAt || scr.LastPostCreateID == down.Id {
		t.Fatalf("the cursor moved past a post not sent: %+v", scr)
	}

	p.mu.Lock()
	p.offline = false
	p.mu.Unlock()
	WaitFor(t, 10*time.Second, func() bool { return slices.Equal(p.messages(), []string{"first", "while offline"}) },
		"the post synced once the remote is back: %q", p.messages())
}

func TestSyncRunsOnTheLeaderOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithPluginID(syncPluginID), WithSharedChannels(), WithNodes(2))
	f.s.SetSyncDelay(50 * time.Millisecond)
	m := &model.Manifest{Id: syncPluginID, Name: "Sync remote", Version: "0.0.1"}
	var plugins []*syncRemote
	for _, n := range f.s.Nodes() {
		p := &syncRemote{refuse: map[string]int{}}
		plugins = append(plugins, p)
		if err := n.ActivateInProcess(m, func() any { return p }); err != nil {
			t.Fatal(err)
		}
	}
	n0, n1 := f.s.Node(0), f.s.Node(1)
	if err := n1.API(syncPluginID).InviteRemoteToChannel(f.ch.Id, plugins[1].remote(), f.user.Id, true); err != nil {
		t.Fatal(err)
	}
	nodesOf := func(msg string) []string {
		var out []string
		for _, c := range f.s.SyncCalls() {
			if c.Msg != nil && len(c.Msg.Posts) > 0 && c.Msg.Posts[0].Message == msg {
				out = append(out, c.Node)
			}
		}
		return out
	}
	if _, appErr := n1.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "posted on node1"}); appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 15*time.Second, func() bool { return len(nodesOf("posted on node1")) > 0 }, "the post synced")
	if got := nodesOf("posted on node1"); !slices.Equal(got, []string{n0.ID()}) {
		t.Fatalf("synced on %v, want the leader node0 alone", got)
	}
	n0.Deactivate()
	if _, appErr := n1.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "after the leader left"}); appErr != nil {
		t.Fatal(appErr)
	}
	WaitFor(t, 15*time.Second, func() bool { return len(nodesOf("after the leader left")) > 0 }, "the post synced")
	if got := nodesOf("after the leader left"); !slices.Equal(got, []string{n1.ID()}) {
		t.Fatalf("synced on %v, want node1, the leader now", got)
	}
}
