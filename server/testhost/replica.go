package testhost

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// A server with SqlSettings.DataSourceReplicas serves many reads from a read
// replica that is a little behind the master. WithReplicaLag makes the host
// do the same for the plugin API reads the real server sends to a replica:
// the KV store's KVGet and KVList (SqlPluginStore.Get and List use
// GetReplicaX) and the post reads below, each marked with the store
// function that reads the replica. Writes, compare-and-set and the app
// layer's own reads (the post UpdatePost, DeletePost or AddReaction act on)
// use the primary, and so do the Server's accessors: what a test checks is
// what was written, not what a lagging read shows.

// ReplicaLagEnv names the environment variable ReplicaLagFromEnv reads: a
// Go duration ("50ms"), 0 for no lag.
const ReplicaLagEnv = "BRIDGE_TEST_REPLICA_LAG"

// ReplicaLagFromEnv returns the lag $BRIDGE_TEST_REPLICA_LAG asks for, or
// def when it is unset. It panics on a value that is not a duration: a
// test run must not silently run without the lag it was asked for.
func ReplicaLagFromEnv(def time.Duration) time.Duration {
	v, ok := os.LookupEnv(ReplicaLagEnv)
	if !ok || v == "" {
		return def
	}
	if v == "0" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		panic(fmt.Sprintf("testhost: %s=%q is not a duration such as 50ms", ReplicaLagEnv, v))
	}
	return d
}

// WithReplicaLag makes the plugin API's replica reads see the server as it
// was d ago (see SetReplicaLag).
func WithReplicaLag(d time.Duration) Option { return func(o *options) { o.replicaLag = d } }

var defaults struct {
	mu   sync.Mutex
	opts []Option
}

// SetDefaultOptions sets options every later NewServer applies before its
// own, e.g. from TestMain: a package's whole suite then runs with, say, a
// replica lag, and a test that needs otherwise says so.
func SetDefaultOptions(opts ...Option) {
	defaults.mu.Lock()
	defer defaults.mu.Unlock()
	defaults.opts = slices.Clone(opts)
}

func defaultOptions() []Option {
	defaults.mu.Lock()
	defer defaults.mu.Unlock()
	return slices.Clone(defaults.opts)
}

// SetReplicaLag makes the plugin API's replica reads (see WithReplicaLag)
// see every key and post as it was d ago: a read just after a write
// returns the old value, or nothing for a new key or post, and one d later
// the new one. 0 reads the primary. What exists when the lag is turned on
// counts as replicated long ago. A lag puts a replica in the
// configuration (SqlSettings.DataSourceReplicas), which is how a plugin
// learns that reads may lag; 0 leaves it there, caught up.
func (s *Server) SetReplicaLag(d time.Duration) {
	d = max(d, 0)
	s.kv.SetReplicaLag(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > 0 && len(s.st.config.SqlSettings.DataSourceReplicas) == 0 {
		s.st.config.SqlSettings.DataSourceReplicas = []string{"postgres://replica"}
	}
	switch {
	case d == 0:
		s.st.postVersions = nil
	case s.st.replicaLag == 0:
		s.st.postVersions = map[string][]postVersion{}
		for id, p := range s.st.posts {
			s.st.postVersions[id] = []postVersion{{p: copyPost(p)}}
		}
	}
	s.st.replicaLag = d
}

// ReplicaLag is the lag the plugin API's replica reads have.
func (s *Server) ReplicaLag() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.replicaLag
}

// WaitForReplicas returns once every write made before the call shows in
// replica reads (it sleeps the replica lag): for a fixture a test writes
// behind the plugin's back that stands for data from long ago.
func (s *Server) WaitForReplicas() {
	if lag := s.ReplicaLag(); lag > 0 {
		time.Sleep(lag)
	}
}

// postVersion is a post as stored from at on.
type postVersion struct {
	at time.Time
	p  *model.Post
}

// versionPostLocked records a post's new state for the replica, which has
// it the lag later, and forgets the versions no read can get any more.
// Every change of a stored post calls it.
func (s *Server) versionPostLocked(p *model.Post) {
	if s.st.replicaLag == 0 {
		return
	}
	now := s.clock()
	vs := s.st.postVersions[p.Id]
	vs = append(vs, postVersion{at: now, p: copyPost(p)})
	s.st.postVersions[p.Id] = vs[replicatedVersion(vs, now.Add(-s.st.replicaLag)):]
}

// replicatedVersion is the index of the newest version at or before cutoff
// (0 when there is none).
func replicatedVersion(vs []postVersion, cutoff time.Time) int {
	for i := len(vs) - 1; i > 0; i-- {
		if !vs[i].at.After(cutoff) {
			return i
		}
	}
	return 0
}

// replica is the posts as a read replica has them: each one as it was the
// lag ago. Without a lag it is the primary. Get it with s.mu held.
type replica struct {
	s      *Server
	lagged bool
	cutoff time.Time
}

func (s *Server) replicaLocked() replica {
	return replica{s: s, lagged: s.st.replicaLag > 0, cutoff: s.clock().Add(-s.st.replicaLag)}
}

// post is the stored post id (deleted ones and edit history included) as
// the replica has it; nil when it does not have it yet.
func (r replica) post(id string) *model.Post {
	if !r.lagged {
		return r.s.st.posts[id]
	}
	vs := r.s.st.postVersions[id]
	if len(vs) == 0 {
		return nil
	}
	v := vs[replicatedVersion(vs, r.cutoff)]
	if v.at.After(r.cutoff) {
		return nil
	}
	return v.p
}

// livePost is post when it is not deleted.
func (r replica) livePost(id string) *model.Post {
	if p := r.post(id); p != nil && p.DeleteAt == 0 {
		return p
	}
	return nil
}

// channelPosts is the channel's posts (deleted ones and edit history
// included) as the replica has them, oldest first.
func (r replica) channelPosts(channelID string) []*model.Post {
	var out []*model.Post
	for _, p := range r.s.sortedPostsLocked(channelID) {
		if rp := r.post(p.Id); rp != nil {
			out = append(out, rp)
		}
	}
	return out
}

// threads is the live posts of the threads rooted at rootIDs.
func (r replica) threads(rootIDs []string) []*model.Post {
	var out []*model.Post
	for id := range r.s.st.posts {
		p := r.livePost(id)
		if p != nil && (slices.Contains(rootIDs, p.Id) || slices.Contains(rootIDs, p.RootId)) {
			out = append(out, p)
		}
	}
	return out
}
