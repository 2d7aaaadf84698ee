package store

import (
	"errors"
	"slices"
	"testing"
	"time"

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

// Without read replicas every read is the master's: a lookup that finds
// nothing believes it, where with replicas it proves the absence with a
// placeholder written and removed (two more round trips on the hot path of
// every message not bridged yet).
func TestAbsenceNeedsNoProofWithoutReadReplicas(t *testing.T) {
	msg := bridge.Ref{Network: bridge.NetworkXMPP, Room: "room@conf.example.org", ID: "m1"}
	dest := bridge.Ref{Network: bridge.NetworkMattermost, Room: "chanaaaaaaaaaaaaaaaaaaaaaa"}
	for _, replicas := range []bool{true, false} {
		base, _ := newTestStore(t)
		seen := &seenKV{KV: base.kv, calls: map[string]int64{}}
		s := New(seen)
		s.SetReadReplicas(replicas)
		if _, ok, err := s.Counterpart(t.Context(), msg, dest); err != nil || ok {
			t.Fatalf("replicas=%v: Counterpart of a message never bridged = %v, %v", replicas, ok, err)
		}
		if _, ok, err := s.OriginOf(t.Context(), msg); err != nil || ok {
			t.Fatalf("replicas=%v: OriginOf = %v, %v", replicas, ok, err)
		}
		if err := s.AwaitReplicas(t.Context()); err != nil {
			t.Fatal(err)
		}
		writes := seen.calls[KVSet] + seen.calls[KVCompareAndSet] + seen.calls[KVDelete]
		if replicas && writes == 0 {
			t.Errorf("with read replicas, an absence was believed without proof: %v", seen.calls)
		}
		if !replicas && (writes != 0 || seen.calls[KVGet] != 2) {
			t.Errorf("without read replicas: want two reads and no writes, got %v", seen.calls)
		}
	}
}

// CopyOf tells a copy (an echo) from an origin and finds the origin's copy
// in a room, from the reads one lookup makes.
func TestCopyOfTellsEchoesAndCopies(t *testing.T) {
	base, _ := newTestStore(t)
	seen := &seenKV{KV: base.kv, calls: map[string]int64{}}
	s := New(seen)
	s.SetReadReplicas(false)
	ctx := t.Context()
	origin := bridge.Ref{Network: bridge.NetworkXMPP, Room: "room@conf.example.org", ID: "m1"}
	inMM := bridge.Ref{Network: bridge.NetworkMattermost, Room: "chanaaaaaaaaaaaaaaaaaaaaaa"}
	inMatrix := bridge.Ref{Network: bridge.NetworkMatrix, Room: "!room:example.org"}
	copyRef := inMM
	copyRef.ID = "postaaaaaaaaaaaaaaaaaaaaaa"
	if err := s.RecordCounterpart(ctx, origin, copyRef, "xmpp:alice"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		msg      bridge.Ref
		dest     bridge.Ref
		id       string
		ok, echo bool
	}{
		{"the origin, to a room with its copy", origin, inMM, copyRef.ID, true, false},
		{"the origin, to a room without one", origin, inMatrix, "", false, false},
		{"the copy, to another room", copyRef, inMatrix, "", false, true},
		{"the copy, to the origin's room", copyRef, bridge.Ref{Network: origin.Network, Room: origin.Room}, origin.ID, true, true},
		{"a message never bridged", bridge.Ref{Network: bridge.NetworkXMPP, Room: origin.Room, ID: "m2"}, inMM, "", false, false},
	} {
		clear(seen.calls)
		id, ok, echo, err := s.CopyOf(ctx, tc.msg, tc.dest)
		if err != nil || id != tc.id || ok != tc.ok || echo != tc.echo {
			t.Errorf("%s: CopyOf = %q, %v, echo %v, %v; want %q, %v, echo %v", tc.name, id, ok, echo, err, tc.id, tc.ok, tc.echo)
		}
		if n := seen.calls[KVGet]; n > 2 || len(seen.calls) > 1 {
			t.Errorf("%s: CopyOf made %v round trips (want at most two reads)", tc.name, seen.calls)
		}
	}
}

// Recording the first copy of a message reads its pointer and writes its
// group (inserted, not read first) and the two pointers; the second copy's
// group write starts from the bytes this store wrote.
func TestRecordingCopiesReadsOnlyWhatItMust(t *testing.T) {
	base, _ := newTestStore(t)
	seen := &seenKV{KV: base.kv, calls: map[string]int64{}}
	s := New(seen)
	ctx := t.Context()
	origin := bridge.Ref{Network: bridge.NetworkXMPP, Room: "room@conf.example.org", ID: "m1"}
	first := bridge.Ref{Network: bridge.NetworkMattermost, Room: "chanaaaaaaaaaaaaaaaaaaaaaa", ID: "postaaaaaaaaaaaaaaaaaaaaaa"}
	second := bridge.Ref{Network: bridge.NetworkMatrix, Room: "!room:example.org", ID: "$event"}
	for i, dest := range []bridge.Ref{first, second} {
		clear(seen.calls)
		if err := s.RecordCounterpart(ctx, origin, dest, "xmpp:alice"); err != nil {
			t.Fatal(err)
		}
		if seen.calls[KVGet] != 1 || seen.calls[KVCompareAndSet] != 1 || seen.calls[KVSet] != 2 {
			t.Errorf("copy %d: want one read, one compare-and-set and two sets, got %v", i+1, seen.calls)
		}
	}
	for _, dest := range []bridge.Ref{first, second} {
		if id, ok, err := s.Counterpart(ctx, origin, dest); err != nil || !ok || id != dest.ID {
			t.Errorf("Counterpart in %s = %q, %v, %v", dest.RoomKey(), id, ok, err)
		}
	}
}

// Routing reads a message's link from a cache: a second message makes no
// read; a link this store changes is read afresh at once; one another
// node changed behind its back is read again within readCacheTTL.
func TestLinksAreCachedForRoutingAndForgottenOnChange(t *testing.T) {
	base, kv := newTestStore(t)
	seen := &seenKV{KV: base.kv, calls: map[string]int64{}}
	s := New(seen)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := t.Context()
	const ch, team = "chanaaaaaaaaaaaaaaaaaaaaaa", "teamaaaaaaaaaaaaaaaaaaaaaa"
	xroom := bridge.Ref{Network: bridge.NetworkXMPP, Room: "room@conf.example.org"}
	mroom := bridge.Ref{Network: bridge.NetworkMatrix, Room: "!room:example.org"}
	if _, err := s.AddRemote(ch, team, remote(xroom.Network, xroom.Room)); err != nil {
		t.Fatal(err)
	}
	routed := func(what string, want ...bridge.Ref) {
		t.Helper()
		_, rooms, err := s.LinkedRooms(ctx, xroom)
		if len(want) == 0 {
			if !errors.Is(err, bridge.ErrNotLinked) {
				t.Fatalf("%s: LinkedRooms = %v, %v; want not linked", what, rooms, err)
			}
			return
		}
		if err != nil || !slices.Equal(rooms, want) {
			t.Fatalf("%s: LinkedRooms = %v, %v; want %v", what, rooms, err, want)
		}
	}
	mm := bridge.Ref{Network: bridge.NetworkMattermost, Room: ch}
	routed("first message", mm)
	clear(seen.calls)
	routed("second message", mm)
	if len(seen.calls) != 0 {
		t.Errorf("the second message's routing made %v round trips", seen.calls)
	}
	if _, err := s.AddRemote(ch, team, remote(mroom.Network, mroom.Room)); err != nil {
		t.Fatal(err)
	}
	routed("after linking a Matrix room", mm, mroom)

	// Another node unlinks the Matrix room, behind this store's back.
	other := New(kv)
	if _, err := other.RemoveRemote(ch, mroom.Network, mroom.Room); err != nil {
		t.Fatal(err)
	}
	routed("just after another node's change", mm, mroom)
	now = now.Add(readCacheTTL)
	routed("linkCacheTTL later", mm)

	if _, err := s.RemoveRemote(ch, xroom.Network, xroom.Room); err != nil {
		t.Fatal(err)
	}
	routed("after unlinking the room")
}

// Each message to Mattermost reads its sender's remote user: the second
// read comes from the cache, and a change this store makes shows at once.
func TestRemoteUsersAreCachedAndForgottenOnChange(t *testing.T) {
	base, _ := newTestStore(t)
	seen := &seenKV{KV: base.kv, calls: map[string]int64{}}
	s := New(seen)
	u := RemoteUser{Network: bridge.NetworkXMPP, RemoteID: "jid:alice@example.org", UserID: "useraaaaaaaaaaaaaaaaaaaaaa", DisplayName: "Alice"}
	if err := s.SaveRemoteUser(u); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		clear(seen.calls)
		got, err := s.GetRemoteUser(u.Network, u.RemoteID)
		if err != nil || got.DisplayName != "Alice" {
			t.Fatalf("read %d: %+v, %v", i+1, got, err)
		}
		if i == 1 && len(seen.calls) != 0 {
			t.Errorf("the second read made %v round trips", seen.calls)
		}
	}
	u.DisplayName = "Alice Smith"
	if err := s.SaveRemoteUser(u); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetRemoteUser(u.Network, u.RemoteID); err != nil || got.DisplayName != "Alice Smith" {
		t.Fatalf("after a change: %+v, %v", got, err)
	}
}
