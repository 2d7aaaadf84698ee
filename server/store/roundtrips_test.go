package store

import (
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// seenKV counts the calls that reach the KV store.
type seenKV struct {
	KV
	calls map[string]int64
}

func (k *seenKV) KVGet(key string) ([]byte, *model.AppError) {
	k.calls[KVGet]++
	return k.KV.KVGet(key)
}

func (k *seenKV) KVSetWithOptions(key string, value []byte, o model.PluginKVSetOptions) (bool, *model.AppError) {
	if o.Atomic {
		k.calls[KVCompareAndSet]++
	} else {
		k.calls[KVSet]++
	}
	return k.KV.KVSetWithOptions(key, value, o)
}

func (k *seenKV) KVDelete(key string) *model.AppError {
	k.calls[KVDelete]++
	return k.KV.KVDelete(key)
}

func (k *seenKV) KVList(page, perPage int) ([]string, *model.AppError) {
	k.calls[KVList]++
	return k.KV.KVList(page, perPage)
}

// The store counts every call it makes to the KV store, by operation, as
// the server sees them.
func TestStoreCountsKVRoundTrips(t *testing.T) {
	base, _ := newTestStore(t)
	seen := &seenKV{KV: base.kv, calls: map[string]int64{}}
	s := New(seen)
	if _, err := s.AddRemote("chanaaaaaaaaaaaaaaaaaaaaaa", "teamaaaaaaaaaaaaaaaaaaaaaa", RemoteRoom{Network: bridge.NetworkXMPP, Room: "room@conf.example.org"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListLinks(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveRemote("chanaaaaaaaaaaaaaaaaaaaaaa", bridge.NetworkXMPP, "room@conf.example.org"); err != nil {
		t.Fatal(err)
	}
	got := s.KVRoundTrips()
	for _, op := range []string{KVGet, KVSet, KVCompareAndSet, KVDelete, KVList} {
		if got[op] != seen.calls[op] {
			t.Errorf("%s: counted %d, the KV store saw %d", op, got[op], seen.calls[op])
		}
	}
	if got[KVGet] == 0 || got[KVCompareAndSet] == 0 || got[KVList] == 0 {
		t.Fatalf("linking, listing and unlinking made no reads, compare-and-sets or lists: %v", got)
	}
}
