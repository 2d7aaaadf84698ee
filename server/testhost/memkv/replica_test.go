package memkv

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// clock is a settable clock, so the lag is crossed without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func laggedStore(lag time.Duration) (*Store, *clock) {
	c := &clock{t: time.Unix(1000, 0)}
	s := New(c.Now)
	s.SetReplicaLag(lag)
	return s, c
}

func get(t *testing.T, kv *PluginKV, key string) string {
	t.Helper()
	v, appErr := kv.KVGet(key)
	if appErr != nil {
		t.Fatalf("KVGet(%q): %v", key, appErr)
	}
	if v == nil {
		return "<absent>"
	}
	return string(v)
}

func set(t *testing.T, kv *PluginKV, key, value string, opts model.PluginKVSetOptions) bool {
	t.Helper()
	var v []byte
	if value != "" {
		v = []byte(value)
	}
	ok, appErr := kv.KVSetWithOptions(key, v, opts)
	if appErr != nil {
		t.Fatalf("KVSetWithOptions(%q): %v", key, appErr)
	}
	return ok
}

func TestReplicaReadsLagBehindWrites(t *testing.T) {
	s, c := laggedStore(50 * time.Millisecond)
	kv, primary := s.Plugin("p"), s.Primary("p")

	set(t, kv, "k", "v1", model.PluginKVSetOptions{})
	if got := get(t, kv, "k"); got != "<absent>" {
		t.Fatalf("a read just after the first write = %q, want the key absent", got)
	}
	if got := get(t, primary, "k"); got != "v1" {
		t.Fatalf("the primary = %q, want v1", got)
	}
	c.Advance(50 * time.Millisecond)
	if got := get(t, kv, "k"); got != "v1" {
		t.Fatalf("a read one lag later = %q, want v1", got)
	}

	set(t, kv, "k", "v2", model.PluginKVSetOptions{})
	c.Advance(20 * time.Millisecond)
	set(t, kv, "k", "v3", model.PluginKVSetOptions{})
	if got := get(t, kv, "k"); got != "v1" {
		t.Fatalf("a read just after two writes = %q, want v1", got)
	}
	c.Advance(30 * time.Millisecond)
	if got := get(t, kv, "k"); got != "v2" {
		t.Fatalf("a read one lag after the second write = %q, want v2", got)
	}
	c.Advance(20 * time.Millisecond)
	if got := get(t, kv, "k"); got != "v3" {
		t.Fatalf("a read one lag after the third write = %q, want v3", got)
	}

	if err := kv.KVDelete("k"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, kv, "k"); got != "v3" {
		t.Fatalf("a read just after the delete = %q, want v3", got)
	}
	c.Advance(50 * time.Millisecond)
	if got := get(t, kv, "k"); got != "<absent>" {
		t.Fatalf("a read one lag after the delete = %q, want the key absent", got)
	}
}

func TestCompareAndSetActsOnThePrimary(t *testing.T) {
	s, c := laggedStore(time.Minute)
	kv := s.Plugin("p")
	if !set(t, kv, "k", "a", model.PluginKVSetOptions{Atomic: true}) {
		t.Fatal("insert-if-absent of a new key failed")
	}
	// The replica does not have the key yet; the primary does.
	if set(t, kv, "k", "b", model.PluginKVSetOptions{Atomic: true}) {
		t.Fatal("insert-if-absent succeeded over a key only the replica lacks")
	}
	if !set(t, kv, "k", "b", model.PluginKVSetOptions{Atomic: true, OldValue: []byte("a")}) {
		t.Fatal("compare-and-set against the primary's value failed")
	}
	c.Advance(time.Minute)
	if got := get(t, kv, "k"); got != "b" {
		t.Fatalf("after the lag = %q, want b", got)
	}
	if set(t, kv, "k", "", model.PluginKVSetOptions{Atomic: true, OldValue: []byte("a")}) {
		t.Fatal("compare-and-delete with an old value succeeded")
	}
	if !set(t, kv, "k", "", model.PluginKVSetOptions{Atomic: true, OldValue: []byte("b")}) {
		t.Fatal("compare-and-delete with the primary's value failed")
	}
	if got := get(t, kv, "k"); got != "b" {
		t.Fatalf("a read just after the delete = %q, want b", got)
	}
}

func TestReplicaListLags(t *testing.T) {
	s, c := laggedStore(time.Second)
	kv := s.Plugin("p")
	set(t, kv, "old", "x", model.PluginKVSetOptions{})
	c.Advance(time.Second)
	set(t, kv, "new", "y", model.PluginKVSetOptions{})
	if err := kv.KVDelete("old"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := kv.KVList(0, 10); !slices.Equal(keys, []string{"old"}) {
		t.Fatalf("replica keys = %v, want [old]", keys)
	}
	if keys, _ := s.Primary("p").KVList(0, 10); !slices.Equal(keys, []string{"new"}) {
		t.Fatalf("primary keys = %v, want [new]", keys)
	}
	c.Advance(time.Second)
	if keys, _ := kv.KVList(0, 10); !slices.Equal(keys, []string{"new"}) {
		t.Fatalf("replica keys one lag later = %v, want [new]", keys)
	}
}

func TestReplicaChecksExpiryAtReadTime(t *testing.T) {
	s, c := laggedStore(time.Second)
	kv := s.Plugin("p")
	set(t, kv, "k", "v", model.PluginKVSetOptions{ExpireInSeconds: 2})
	c.Advance(time.Second)
	if got := get(t, kv, "k"); got != "v" {
		t.Fatalf("before the expiry = %q", got)
	}
	c.Advance(time.Second)
	if got := get(t, kv, "k"); got != "<absent>" {
		t.Fatalf("after the expiry = %q, want the key absent", got)
	}
}

func TestTurningTheLagOnKeepsWhatWasThere(t *testing.T) {
	s, c := laggedStore(0)
	kv := s.Plugin("p")
	set(t, kv, "k", "before", model.PluginKVSetOptions{})
	s.SetReplicaLag(time.Second)
	if got := get(t, kv, "k"); got != "before" {
		t.Fatalf("a key written before the lag = %q", got)
	}
	set(t, kv, "k", "after", model.PluginKVSetOptions{})
	if got := get(t, kv, "k"); got != "before" {
		t.Fatalf("just after a write = %q, want before", got)
	}
	c.Advance(time.Second)
	if got := get(t, kv, "k"); got != "after" {
		t.Fatalf("one lag later = %q, want after", got)
	}
	set(t, kv, "k", "last", model.PluginKVSetOptions{})
	s.SetReplicaLag(0)
	if got := get(t, kv, "k"); got != "last" {
		t.Fatalf("with the lag off = %q, want last", got)
	}
}

func TestDeleteAllLags(t *testing.T) {
	s, c := laggedStore(time.Second)
	kv := s.Plugin("p")
	set(t, kv, "k", "v", model.PluginKVSetOptions{})
	c.Advance(time.Second)
	if err := s.DeleteAll("p"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, kv, "k"); got != "v" {
		t.Fatalf("just after DeleteAll = %q, want v", got)
	}
	c.Advance(time.Second)
	if got := get(t, kv, "k"); got != "<absent>" {
		t.Fatalf("one lag after DeleteAll = %q", got)
	}
}
