package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

// These tests run the store over a KV whose reads come from a replica that
// lags behind the writes, as on a Mattermost server with
// SqlSettings.DataSourceReplicas: KVGet and KVList answer with the state of
// testLag ago, writes and compare-and-set act on the primary. The store
// must reach the same results as without the lag, only later.

const testLag = 50 * time.Millisecond

// newLaggedStores returns two stores (two cluster nodes) over one lagging
// KV, and the primary, for checking what was written.
func newLaggedStores(t *testing.T) (a, b *Store, primary *memkv.PluginKV) {
	t.Helper()
	mem := memkv.New(nil)
	mem.SetReplicaLag(testLag)
	return New(mem.Plugin(pluginID)), New(mem.Plugin(pluginID)), mem.Primary(pluginID)
}

// primaryJSON reads key from the primary into a new T; nil if absent.
func primaryJSON[T any](t *testing.T, kv *memkv.PluginKV, key string) *T {
	t.Helper()
	raw, appErr := kv.KVGet(key)
	if appErr != nil {
		t.Fatal(appErr)
	}
	if raw == nil {
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decoding %q (%s): %v", key, raw, err)
	}
	return v
}

func TestAddRemoteUnderReplicaLag(t *testing.T) {
	t.Parallel()
	s, _, primary := newLaggedStores(t)
	ch, team := model.NewId(), model.NewId()
	room := remote(bridge.NetworkXMPP, "dev@conference.example.org")
	if _, err := s.AddRemote(ch, team, room); err != nil {
		t.Fatalf("AddRemote on a lagging replica: %v", err)
	}
	// A second remote right away: the link just written is not on the
	// replica yet.
	if _, err := s.AddRemote(ch, team, remote(bridge.NetworkMatrix, "!r:example.org")); err != nil {
		t.Fatalf("a second AddRemote right after the first: %v", err)
	}
	l := primaryJSON[Link](t, primary, linkKey(ch))
	if l == nil || len(l.Remotes) != 2 {
		t.Fatalf("the primary's link = %+v, want both remotes", l)
	}
}

func TestRemoveRemoteRightAfterAddUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, primary := newLaggedStores(t)
	ch, other, team := model.NewId(), model.NewId(), model.NewId()
	room := remote(bridge.NetworkXMPP, "dev@conference.example.org")
	if _, err := a.AddRemote(ch, team, room); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RemoveRemote(ch, room.Network, room.Room); err != nil {
		t.Fatalf("RemoveRemote right after AddRemote: %v", err)
	}
	if l := primaryJSON[Link](t, primary, linkKey(ch)); l != nil {
		t.Fatalf("the primary still has the link: %+v", l)
	}
	if c := primaryJSON[roomClaim](t, primary, roomKey(room.Network, room.Room)); c != nil {
		t.Fatalf("the primary still has the room's claim: %+v", c)
	}
	// Nothing left behind: another channel (on another node) can take
	// the room at once.
	if _, err := b.AddRemote(other, team, room); err != nil {
		t.Fatalf("another channel linking the room: %v", err)
	}
}

func TestClaimRemoteUserRaceUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	userA, userB := model.NewId(), model.NewId()
	if _, won, err := a.ClaimRemoteUser(bridge.NetworkXMPP, "alice@example.org", userA); err != nil || !won {
		t.Fatalf("first claim: won=%v err=%v", won, err)
	}
	existing, won, err := b.ClaimRemoteUser(bridge.NetworkXMPP, "alice@example.org", userB)
	if err != nil || won || existing != userA {
		t.Fatalf("second node's claim right after: existing=%q won=%v err=%v; want %q, lost", existing, won, err, userA)
	}
}

func TestDeleteRemoteUserRightAfterClaimUnderReplicaLag(t *testing.T) {
	t.Parallel()
	s, _, primary := newLaggedStores(t)
	user := model.NewId()
	if _, _, err := s.ClaimRemoteUser(bridge.NetworkXMPP, "bob@example.org", user); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRemoteUser(bridge.NetworkXMPP, "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if u := primaryJSON[RemoteUser](t, primary, remoteUserKey(bridge.NetworkXMPP, "bob@example.org")); u != nil {
		t.Fatalf("the primary still has the remote user: %+v", u)
	}
	if r := primaryJSON[remoteUserRef](t, primary, userByMMKey(user)); r != nil {
		t.Fatalf("the primary still has the reverse lookup: %+v", r)
	}
}

func TestFinishKeyRotationRightAfterStartUnderReplicaLag(t *testing.T) {
	t.Parallel()
	s, _, primary := newLaggedStores(t)
	must(t, s.UpdateKeyRotation(func(*KeyRotation) (*KeyRotation, error) { return &KeyRotation{To: "k2"}, nil }))
	must(t, s.FinishKeyRotation("k2"))
	if r := primaryJSON[KeyRotation](t, primary, keyKeyRotation); r != nil {
		t.Fatalf("the primary still has the finished rotation: %+v", r)
	}
}

func TestInstanceSecretUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	first, err := a.InstanceSecret()
	must(t, err)
	second, err := b.InstanceSecret()
	must(t, err)
	if len(first) != 64 || second != first {
		t.Fatalf("two nodes got %q and %q", first, second)
	}
}

func TestUpdateUnderReplicaLagLosesNothing(t *testing.T) {
	t.Parallel()
	a, b, primary := newLaggedStores(t)
	type counter struct{ N int }
	const workers, each = 4, 5
	var wg sync.WaitGroup
	for i := range workers {
		s := []*Store{a, b}[i%2]
		wg.Go(func() {
			for range each {
				_, err := update(context.Background(), s, "counter", 0, func(old *counter) (*counter, error) {
					if old == nil {
						old = &counter{}
					}
					old.N++
					return old, nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if c := primaryJSON[counter](t, primary, "counter"); c == nil || c.N != workers*each {
		t.Fatalf("counter = %+v, want %d: updates were lost", c, workers*each)
	}
}

func TestNoChangeIsCheckedAgainstThePrimary(t *testing.T) {
	t.Parallel()
	s, _, primary := newLaggedStores(t)
	// The replica still shows the key without the entry when update
	// decides it has nothing to do.
	type set struct{ Items []string }
	must(t, s.putJSON("set", set{}, 0))
	time.Sleep(2 * testLag) // what is written from here on lags
	must(t, s.putJSON("set", set{Items: []string{"x"}}, 0))
	_, err := update(context.Background(), s, "set", 0, func(old *set) (*set, error) {
		if old == nil || len(old.Items) == 0 {
			return nil, errNoChange // nothing to remove
		}
		return &set{}, nil
	})
	must(t, err)
	if v := primaryJSON[set](t, primary, "set"); v == nil || len(v.Items) != 0 {
		t.Fatalf("the primary = %+v: a removal was skipped on a lagging read", v)
	}
}

func TestForgetMessageRightAfterRecordUnderReplicaLag(t *testing.T) {
	t.Parallel()
	s, _, primary := newLaggedStores(t)
	ctx := context.Background()
	origin := msgOf(bridge.NetworkXMPP, "r@c", "1")
	dest := msgOf(bridge.NetworkMattermost, model.NewId(), model.NewId())
	must(t, s.RecordCounterpart(ctx, origin, dest, ""))
	must(t, s.ForgetMessage(dest))
	if p := primaryJSON[msgPointer](t, primary, messageKey(dest)); p != nil {
		t.Fatalf("the primary still has the copy's pointer: %+v", p)
	}
	if g := primaryJSON[msgGroup](t, primary, groupKey(origin)); g == nil || len(g.Copies) != 0 {
		t.Fatalf("the primary's group = %+v, want it without the copy", g)
	}
}

func TestPlaceholderReadsAsAbsent(t *testing.T) {
	t.Parallel()
	s, _, primary := newLaggedStores(t)
	ch := model.NewId()
	// A placeholder left by a node that died while proving an absence.
	if ok, err := s.insert(linkKey(ch), placeholder, 0); err != nil || !ok {
		t.Fatalf("insert: %v %v", ok, err)
	}
	time.Sleep(2 * testLag) // the replica has it
	if _, err := s.GetLink(ch); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetLink over a placeholder: %v, want ErrNotFound", err)
	}
	if links, err := s.ListLinks(); err != nil || len(links) != 0 {
		t.Fatalf("ListLinks over a placeholder: %v %v", links, err)
	}
	if _, err := s.AddRemote(ch, model.NewId(), remote(bridge.NetworkXMPP, "r@c")); err != nil {
		t.Fatalf("AddRemote over a placeholder: %v", err)
	}
	if l := primaryJSON[Link](t, primary, linkKey(ch)); l == nil || len(l.Remotes) != 1 {
		t.Fatalf("the primary's link = %+v", l)
	}
}

func TestLinkedRoomsRightAfterAddRemoteUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	ch, team := model.NewId(), model.NewId()
	room := remote(bridge.NetworkXMPP, "dev@conference.example.org")
	if _, err := a.AddRemote(ch, team, room); err != nil {
		t.Fatal(err)
	}
	// Another node hears from the room at once.
	id, rooms, err := b.LinkedRooms(context.Background(), room.Ref())
	if err != nil || id != ch || len(rooms) != 1 {
		t.Fatalf("LinkedRooms(room) right after linking = %q %v %v", id, rooms, err)
	}
	id, rooms, err = b.LinkedRooms(context.Background(), roomRef(bridge.NetworkMattermost, ch))
	if err != nil || id != ch || len(rooms) != 1 {
		t.Fatalf("LinkedRooms(channel) right after linking = %q %v %v", id, rooms, err)
	}
	if got, err := b.ChannelForRoom(room.Network, room.Room); err != nil || got != ch {
		t.Fatalf("ChannelForRoom right after linking = %q %v", got, err)
	}
	// Unlinked rooms stay unlinked.
	if _, _, err := b.LinkedRooms(context.Background(), roomRef(bridge.NetworkXMPP, "other@c")); !errors.Is(err, bridge.ErrNotLinked) {
		t.Fatalf("an unlinked room: %v", err)
	}
}

func TestCounterpartRightAfterRecordUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	ctx := context.Background()
	origin := msgOf(bridge.NetworkXMPP, "r@c", "1")
	dest := msgOf(bridge.NetworkMattermost, model.NewId(), model.NewId())
	must(t, a.RecordCounterpart(ctx, origin, dest, "xmpp:carol"))
	// Another node translates an edit of the message at once.
	wantCounterpart(t, b, origin, roomRef(dest.Network, dest.Room), dest.ID)
	if got, author, ok, err := b.AuthorOf(ctx, dest); err != nil || !ok || got != origin || author != "xmpp:carol" {
		t.Fatalf("AuthorOf right after recording = %v %q %v %v", got, author, ok, err)
	}
	wantCounterpart(t, b, origin, roomRef(bridge.NetworkMatrix, "!other:example.org"), "")
}

func TestSeenRightAfterMarkSeenUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	if first, err := a.MarkSeen("matrix-txn", "t1", time.Hour); err != nil || !first {
		t.Fatalf("MarkSeen = %v %v", first, err)
	}
	if seen, err := b.Seen("matrix-txn", "t1"); err != nil || !seen {
		t.Fatalf("another node's Seen right after MarkSeen = %v %v", seen, err)
	}
	if first, err := b.MarkSeen("matrix-txn", "t1", time.Hour); err != nil || first {
		t.Fatalf("another node's MarkSeen right after = %v %v, want not first", first, err)
	}
	if seen, err := b.Seen("matrix-txn", "t2"); err != nil || seen {
		t.Fatalf("Seen of an unmarked ID = %v %v", seen, err)
	}
}

func TestHotKeyUpdatesDoNotWaitForTheReplica(t *testing.T) {
	t.Parallel()
	// A replica that never catches up: each update must work from what
	// the store itself wrote last.
	c := newClock()
	mem := memkv.New(c.Now)
	mem.SetReplicaLag(time.Hour)
	s := New(mem.Plugin(pluginID))
	s.now = c.Now
	for i := range 20 {
		must(t, s.AdvanceCursorInt("link", "cursor", int64(i+1)))
	}
	if v, _, err := New(mem.Primary(pluginID)).GetCursor("link", "cursor"); err != nil || v != "20" {
		t.Fatalf("the cursor = %q %v, want 20", v, err)
	}
}

func TestProvenLinkRightAfterAddRemoteUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	ch := model.NewId()
	if _, err := a.AddRemote(ch, model.NewId(), remote(bridge.NetworkXMPP, "r@c")); err != nil {
		t.Fatal(err)
	}
	if l, err := b.ProvenLink(context.Background(), ch); err != nil || len(l.Remotes) != 1 {
		t.Fatalf("ProvenLink right after linking = %+v %v", l, err)
	}
	if _, err := b.ProvenLink(context.Background(), model.NewId()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ProvenLink of an unlinked channel: %v", err)
	}
}

func TestRecordsMadeJustNowAreFoundUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	user := model.NewId()
	must(t, a.SaveRemoteUser(RemoteUser{Network: bridge.NetworkXMPP, RemoteID: "carol@example.org", UserID: user}))
	if u, err := b.GetRemoteUser(bridge.NetworkXMPP, "carol@example.org"); err != nil || u.UserID != user {
		t.Fatalf("GetRemoteUser right after saving = %+v %v", u, err)
	}
	must(t, a.SaveGhost(Ghost{Network: bridge.NetworkMatrix, UserID: user, RemoteID: "@alice:example.org"}))
	if g, err := b.GetGhost(bridge.NetworkMatrix, user); err != nil || g.RemoteID != "@alice:example.org" {
		t.Fatalf("GetGhost right after saving = %+v %v", g, err)
	}
	if _, err := b.GetGhost(bridge.NetworkMatrix, model.NewId()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetGhost of nobody: %v", err)
	}
}

func TestOwnAliasesReadBackAsSetUnderReplicaLag(t *testing.T) {
	t.Parallel()
	s, other, _ := newLaggedStores(t)
	must(t, s.SetAlias("reactions", "m1|carol", "[\"+1\"]"))
	must(t, s.SetAlias("reactions", "m1|carol", "[\"+1\",\"tada\"]"))
	if v, ok, err := s.Alias("reactions", "m1|carol"); err != nil || !ok || v != "[\"+1\",\"tada\"]" {
		t.Fatalf("Alias right after setting it = %q %v %v", v, ok, err)
	}
	// Another node's change wins over what this store remembers.
	must(t, other.SetAlias("reactions", "m1|carol", "[]"))
	time.Sleep(2 * testLag)
	if v, ok, err := s.Alias("reactions", "m1|carol"); err != nil || !ok || v != "[]" {
		t.Fatalf("Alias after another node set it = %q %v %v", v, ok, err)
	}
}

func TestListPendingRightAfterSaveUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, primary := newLaggedStores(t)
	must(t, a.SavePending("ns", "1", json.RawMessage(`{}`)))
	// Another node starts at once: the record must not be missed.
	if list, err := b.ListPending("ns"); err != nil || len(list) != 1 {
		t.Fatalf("ListPending right after SavePending = %v %v", list, err)
	}
	if keys := dump(t, primary); len(keys) != 1 {
		t.Fatalf("AwaitReplicas left its markers: %v", keys)
	}
}

// A plugin restarted right after a key rotation began (another node, or
// the next activation) must see the rotation to resume it: its absence on
// a lagging replica is not proof there is none.
func TestKeyRotationRightAfterStartUnderReplicaLag(t *testing.T) {
	t.Parallel()
	a, b, _ := newLaggedStores(t)
	if err := a.UpdateKeyRotation(func(*KeyRotation) (*KeyRotation, error) {
		return &KeyRotation{To: "key-2"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	rec, err := b.GetKeyRotation()
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil || rec.To != "key-2" {
		t.Fatalf("a rotation begun just now reads as %+v on another store", rec)
	}
}

// A room linked a moment ago beside one linked earlier: the node that
// linked it relays the first room's next message there too, though its
// replica still shows the link without it (TestXMPPComponentRestartLeavesNoDoubles
// lost a Matrix message this way, sent right after /xmppbridge map).
func TestLinkedRoomsRightAfterASecondRoomUnderReplicaLag(t *testing.T) {
	t.Parallel()
	s, _, _ := newLaggedStores(t)
	ch, team := model.NewId(), model.NewId()
	first := remote(bridge.NetworkMatrix, "!room:example.org")
	second := remote(bridge.NetworkXMPP, "dev@conference.example.org")
	if _, err := s.AddRemote(ch, team, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * testLag) // the replicas have the first link
	if _, err := s.AddRemote(ch, team, second); err != nil {
		t.Fatal(err)
	}
	for _, from := range []bridge.Ref{first.Ref(), roomRef(bridge.NetworkMattermost, ch)} {
		_, rooms, err := s.LinkedRooms(context.Background(), from)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range rooms {
			found = found || r == second.Ref()
		}
		if !found {
			t.Fatalf("LinkedRooms(%s) right after the second room was linked = %v", from.RoomKey(), rooms)
		}
	}
}
