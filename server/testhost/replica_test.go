package testhost

import (
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// testClock is a settable clock for the replica lag, so a test crosses the
// lag without sleeping.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Unix(1_700_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

func newLaggedFixture(t *testing.T) (*fixture, *API, *testClock) {
	t.Helper()
	c := newTestClock()
	f, api := newAPIFixture(t, WithReplicaLag(time.Minute), withClock(c.Now))
	return f, api, c
}

func inList(l *model.PostList, id string) bool {
	if l == nil {
		return false
	}
	_, ok := l.Posts[id]
	return ok
}

func TestReplicaLagDelaysNewPosts(t *testing.T) {
	t.Parallel()
	f, api, c := newLaggedFixture(t)
	since := model.GetMillis() - 1
	root, appErr := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "root"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	if _, appErr := api.GetPost(root.Id); appErr == nil || appErr.StatusCode != 404 {
		t.Fatalf("GetPost just after CreatePost: %v, want 404", appErr)
	}
	if l, _ := api.GetPostsSince(f.ch.Id, since); inList(l, root.Id) {
		t.Fatal("GetPostsSince just after CreatePost has the post")
	}
	if l, _ := api.GetPostsForChannel(f.ch.Id, 0, 10); inList(l, root.Id) {
		t.Fatal("GetPostsForChannel just after CreatePost has the post")
	}
	if f.s.Post(root.Id) == nil || len(f.s.ChannelPosts(f.ch.Id)) != 1 {
		t.Fatal("the test's view (the primary) lacks the post")
	}
	// The app layer reads the primary: a reply to the new post is taken.
	reply, appErr := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "reply", RootId: root.Id})
	if appErr != nil {
		t.Fatalf("a reply to a post only the primary has: %v", appErr)
	}

	c.Advance(time.Minute)
	if p, appErr := api.GetPost(root.Id); appErr != nil || p.Message != "root" {
		t.Fatalf("GetPost one lag later: %v %v", p, appErr)
	}
	l, _ := api.GetPostsSince(f.ch.Id, since)
	if !inList(l, root.Id) || !inList(l, reply.Id) {
		t.Fatalf("GetPostsSince one lag later: %v", l.Order)
	}
	if th, appErr := api.GetPostThread(reply.Id); appErr != nil || len(th.Order) != 2 {
		t.Fatalf("GetPostThread one lag later: %v %v", th, appErr)
	}
	if l, _ := api.GetPostsAfter(f.ch.Id, root.Id, 0, 10); !inList(l, reply.Id) {
		t.Fatal("GetPostsAfter one lag later lacks the reply")
	}
}

func TestReplicaLagDelaysEditsAndDeletes(t *testing.T) {
	t.Parallel()
	f, api, c := newLaggedFixture(t)
	p, appErr := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "first"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	c.Advance(time.Minute)
	edited := p.Clone()
	edited.Message = "second"
	if _, appErr := api.UpdatePost(edited); appErr != nil {
		t.Fatal(appErr)
	}
	if got, _ := api.GetPost(p.Id); got == nil || got.Message != "first" {
		t.Fatalf("GetPost just after an edit = %v, want the old text", got)
	}
	c.Advance(time.Minute)
	if got, _ := api.GetPost(p.Id); got == nil || got.Message != "second" {
		t.Fatalf("GetPost one lag after an edit = %v, want the new text", got)
	}

	if appErr := api.DeletePost(p.Id); appErr != nil {
		t.Fatal(appErr)
	}
	if got, _ := api.GetPost(p.Id); got == nil {
		t.Fatal("GetPost just after a delete lacks the post")
	}
	c.Advance(time.Minute)
	if _, appErr := api.GetPost(p.Id); appErr == nil {
		t.Fatal("GetPost one lag after a delete still has the post")
	}
	if l, _ := api.GetPostsSince(f.ch.Id, 0); l.Posts[p.Id] == nil || l.Posts[p.Id].DeleteAt == 0 {
		t.Fatal("GetPostsSince one lag after a delete lacks the deleted post")
	}
}

func TestReplicaLagDelaysKVReadsNotWrites(t *testing.T) {
	t.Parallel()
	f, api, c := newLaggedFixture(t)
	if appErr := api.KVSet("k", []byte("v1")); appErr != nil {
		t.Fatal(appErr)
	}
	if v, _ := api.KVGet("k"); v != nil {
		t.Fatalf("KVGet just after KVSet = %q, want nothing", v)
	}
	if keys, _ := api.KVList(0, 10); len(keys) != 0 {
		t.Fatalf("KVList just after KVSet = %v", keys)
	}
	if v, _ := f.s.KV().KVGet("k"); string(v) != "v1" {
		t.Fatalf("the test's view (the primary) = %q", v)
	}
	// Compare-and-set acts on the primary, whatever the replica shows.
	if ok, _ := api.KVCompareAndSet("k", nil, []byte("x")); ok {
		t.Fatal("insert-if-absent succeeded over a key the primary has")
	}
	if ok, _ := api.KVCompareAndSet("k", []byte("v1"), []byte("v2")); !ok {
		t.Fatal("compare-and-set against the primary's value failed")
	}
	c.Advance(time.Minute)
	if v, _ := api.KVGet("k"); string(v) != "v2" {
		t.Fatalf("KVGet one lag later = %q, want v2", v)
	}
	if ok, _ := api.KVCompareAndDelete("k", []byte("v2")); !ok {
		t.Fatal("compare-and-delete failed")
	}
	if v, _ := api.KVGet("k"); string(v) != "v2" {
		t.Fatalf("KVGet just after the delete = %q, want v2", v)
	}
}

func TestReplicaLagCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	f, api, _ := newLaggedFixture(t)
	p, appErr := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "hi"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	f.s.SetReplicaLag(0)
	if _, appErr := api.GetPost(p.Id); appErr != nil {
		t.Fatalf("GetPost with the lag off: %v", appErr)
	}
	// Turned on again, what exists counts as replicated.
	f.s.SetReplicaLag(time.Minute)
	if _, appErr := api.GetPost(p.Id); appErr != nil {
		t.Fatalf("GetPost of a post from before the lag: %v", appErr)
	}
}

func TestReplicaLagFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want time.Duration
	}{{"", 50 * time.Millisecond}, {"0", 0}, {"200ms", 200 * time.Millisecond}} {
		t.Setenv(ReplicaLagEnv, tc.env)
		if got := ReplicaLagFromEnv(50 * time.Millisecond); got != tc.want {
			t.Errorf("%s=%q: %v, want %v", ReplicaLagEnv, tc.env, got, tc.want)
		}
	}
	t.Setenv(ReplicaLagEnv, "fast")
	defer func() {
		if recover() == nil {
			t.Error("a bad duration was taken")
		}
	}()
	ReplicaLagFromEnv(0)
}

func TestDefaultOptionsApplyFirst(t *testing.T) {
	SetDefaultOptions(WithReplicaLag(time.Second))
	defer SetDefaultOptions()
	if lag := NewServer(t).ReplicaLag(); lag != time.Second {
		t.Fatalf("a server with the default options has lag %v", lag)
	}
	if lag := NewServer(t, WithReplicaLag(0)).ReplicaLag(); lag != 0 {
		t.Fatalf("an explicit option lost to the default: lag %v", lag)
	}
}

func TestWaitForReplicas(t *testing.T) {
	t.Parallel()
	_, api := newAPIFixture(t, WithReplicaLag(20*time.Millisecond))
	if appErr := api.KVSet("k", []byte("v")); appErr != nil {
		t.Fatal(appErr)
	}
	api.s.WaitForReplicas()
	if v, _ := api.KVGet("k"); string(v) != "v" {
		t.Fatalf("KVGet after WaitForReplicas = %q", v)
	}
}

// A plugin learns from the configuration whether reads may lag: a server
// whose reads lag lists a replica (sanitized, as the server shows it), one
// without replicas lists none.
func TestTheConfigurationShowsReplicas(t *testing.T) {
	t.Parallel()
	_, lagging := newAPIFixture(t, WithReplicaLag(20*time.Millisecond))
	if got := lagging.GetConfig().SqlSettings.DataSourceReplicas; len(got) != 1 || got[0] == "postgres://replica" {
		t.Errorf("a server with a lagging replica shows DataSourceReplicas %q (want one, sanitized)", got)
	}
	_, master := newAPIFixture(t, WithReplicaLag(0))
	if got := master.GetConfig().SqlSettings.DataSourceReplicas; len(got) != 0 {
		t.Errorf("a server without replicas shows DataSourceReplicas %q", got)
	}
	master.s.SetReplicaLag(time.Second)
	if got := master.GetConfig().SqlSettings.DataSourceReplicas; len(got) != 1 {
		t.Errorf("a lag turned on later shows DataSourceReplicas %q", got)
	}
}

// Every plugin API call a node serves is counted by method (what a
// benchmark reports per message as the RPC boundary's cost).
func TestNodeCountsAPICalls(t *testing.T) {
	t.Parallel()
	f, _ := newAPIFixture(t)
	safe := f.s.Node(0).newAPIImpl(&model.Manifest{Id: testPluginID})
	before := f.s.Node(0).APICalls()["KVGet"]
	for range 3 {
		if _, appErr := safe.KVGet("k"); appErr != nil {
			t.Fatal(appErr)
		}
	}
	if got := f.s.Node(0).APICalls()["KVGet"] - before; got != 3 {
		t.Errorf("three KVGet calls counted as %d", got)
	}
}
