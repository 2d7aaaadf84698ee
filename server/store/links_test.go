package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func roomRef(n bridge.Network, room string) bridge.Ref { return bridge.Ref{Network: n, Room: room} }

func remote(n bridge.Network, room string) RemoteRoom { return RemoteRoom{Network: n, Room: room} }

func TestAddRemoteAndGetLink(t *testing.T) {
	s, _, clock := newClockedStore(t)
	ch, team, user := model.NewId(), model.NewId(), model.NewId()
	if _, err := s.GetLink(ch); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetLink before linking: %v, want ErrNotFound", err)
	}
	l, err := s.AddRemote(ch, team, RemoteRoom{Network: bridge.NetworkXMPP, Room: "dev@conference.example.org", LinkedBy: user})
	must(t, err)
	if l.ChannelID != ch || l.TeamID != team || l.CreatedBy != user || !l.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("link = %+v", l)
	}
	if len(l.Remotes) != 1 || l.Remotes[0].LinkedBy != user || !l.Remotes[0].LinkedAt.Equal(clock.Now()) {
		t.Fatalf("remotes = %+v", l.Remotes)
	}
	clock.Advance(time.Hour)
	_, err = s.AddRemote(ch, team, remote(bridge.NetworkMatrix, "!Room:matrix.org"))
	must(t, err)

	got, err := s.GetLink(ch)
	must(t, err)
	if len(got.Remotes) != 2 || !got.CreatedAt.Equal(l.CreatedAt) {
		t.Fatalf("GetLink = %+v", got)
	}
	if r, ok := got.Remote(bridge.NetworkMatrix, "!Room:matrix.org"); !ok || !r.LinkedAt.Equal(clock.Now()) || r.LinkedBy != "" {
		t.Fatalf("Remote(matrix) = %+v, %v", r, ok)
	}
	for _, r := range got.Remotes {
		c, err := s.ChannelForRoom(r.Network, r.Room)
		if err != nil || c != ch {
			t.Errorf("ChannelForRoom(%s) = %q, %v", r.Room, c, err)
		}
	}

	_, err = s.AddRemote(ch, team, remote(bridge.NetworkXMPP, "dev@conference.example.org"))
	if !errors.Is(err, ErrAlreadyLinked) {
		t.Fatalf("linking twice: %v, want ErrAlreadyLinked", err)
	}
	other := model.NewId()
	_, err = s.AddRemote(other, team, remote(bridge.NetworkXMPP, "dev@conference.example.org"))
	var taken *RoomTakenError
	if !errors.Is(err, ErrRoomTaken) || !errors.As(err, &taken) || taken.ChannelID != ch || !strings.Contains(err.Error(), ch) {
		t.Fatalf("linking to another channel: %v, want ErrRoomTaken naming %s", err, ch)
	}
	if _, err := s.GetLink(other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("losing channel got a link: %v", err)
	}
}

func TestLongJIDRoundTrips(t *testing.T) {
	s, kv := newTestStore(t)
	ch, team := model.NewId(), model.NewId()
	jid := longJID("é")
	_, err := s.AddRemote(ch, team, remote(bridge.NetworkXMPP, jid))
	must(t, err)
	c, err := s.ChannelForRoom(bridge.NetworkXMPP, jid)
	if err != nil || c != ch {
		t.Fatalf("ChannelForRoom(long JID) = %q, %v", c, err)
	}
	l, err := s.GetLink(ch)
	must(t, err)
	if l.Remotes[0].Room != jid {
		t.Fatal("the full JID was not kept")
	}
	// A JID differing only at the end is another room.
	if _, err := s.ChannelForRoom(bridge.NetworkXMPP, jid[:len(jid)-2]+"x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("near-identical JID: %v, want ErrNotFound", err)
	}
	for k := range dump(t, kv) {
		if n := len([]rune(k)); n > model.KeyValueKeyMaxRunes {
			t.Errorf("key %q has %d runes", k, n)
		}
	}
}

func TestConcurrentAddRemoteKeepsAll(t *testing.T) {
	s, kv := newTestStore(t)
	ch, team := model.NewId(), model.NewId()
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		// Separate Store values over one KV: like separate cluster nodes.
		node := New(kv)
		wg.Go(func() {
			_, err := node.AddRemote(ch, team, remote(bridge.NetworkMatrix, fmt.Sprintf("!room%d:example.org", i)))
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	l, err := s.GetLink(ch)
	must(t, err)
	if len(l.Remotes) != n {
		t.Fatalf("link has %d remotes, want %d: %+v", len(l.Remotes), n, l.Remotes)
	}
	for i := range n {
		room := fmt.Sprintf("!room%d:example.org", i)
		if _, ok := l.Remote(bridge.NetworkMatrix, room); !ok {
			t.Errorf("remote %s lost", room)
		}
		if c, err := s.ChannelForRoom(bridge.NetworkMatrix, room); err != nil || c != ch {
			t.Errorf("ChannelForRoom(%s) = %q, %v", room, c, err)
		}
	}
}

func TestTwoChannelsRaceForOneRoom(t *testing.T) {
	for round := range 20 {
		s, kv := newTestStore(t)
		team := model.NewId()
		room := remote(bridge.NetworkSlack, "C0RACE")
		channels := []string{model.NewId(), model.NewId(), model.NewId()}
		errs := make([]error, len(channels))
		var wg sync.WaitGroup
		for i, ch := range channels {
			node := New(kv)
			wg.Go(func() { _, errs[i] = node.AddRemote(ch, team, room) })
		}
		wg.Wait()
		var winner string
		for i, err := range errs {
			switch {
			case err == nil:
				if winner != "" {
					t.Fatalf("round %d: both %s and %s won", round, winner, channels[i])
				}
				winner = channels[i]
			case !errors.Is(err, ErrRoomTaken):
				t.Fatalf("round %d: loser error %v, want ErrRoomTaken", round, err)
			}
		}
		if winner == "" {
			t.Fatalf("round %d: nobody won: %v", round, errs)
		}
		for i, err := range errs {
			var taken *RoomTakenError
			if err != nil && (!errors.As(err, &taken) || taken.ChannelID != winner) {
				t.Fatalf("round %d: loser %s told %v, want winner %s", round, channels[i], err, winner)
			}
		}
		if c, err := s.ChannelForRoom(room.Network, room.Room); err != nil || c != winner {
			t.Fatalf("round %d: ChannelForRoom = %q, %v; want %s", round, c, err, winner)
		}
		links, err := s.ListLinks()
		must(t, err)
		if len(links) != 1 || links[0].ChannelID != winner {
			t.Fatalf("round %d: links = %+v", round, links)
		}
	}
}

func TestSameChannelRaceForOneRoom(t *testing.T) {
	s, kv := newTestStore(t)
	ch, team := model.NewId(), model.NewId()
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		node := New(kv)
		wg.Go(func() { _, errs[i] = node.AddRemote(ch, team, remote(bridge.NetworkXMPP, "x@conf")) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, ErrAlreadyLinked) {
			t.Fatalf("error %v, want ErrAlreadyLinked", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d calls succeeded, want 1", ok)
	}
	l, err := s.GetLink(ch)
	must(t, err)
	if len(l.Remotes) != 1 {
		t.Fatalf("remotes = %+v", l.Remotes)
	}
}

func TestRemoveRemote(t *testing.T) {
	s, kv := newTestStore(t)
	ch, team := model.NewId(), model.NewId()
	a, b := remote(bridge.NetworkXMPP, "a@conf"), remote(bridge.NetworkMatrix, "!b:hs")
	_, err := s.AddRemote(ch, team, a)
	must(t, err)
	_, err = s.AddRemote(ch, team, b)
	must(t, err)
	must(t, s.SetCursor(ch, "mattermost", "100"))
	must(t, s.SetCursor(model.NewId(), "mattermost", "5")) // another link's

	if _, err := s.RemoveRemote(ch, bridge.NetworkSlack, "C1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing an unlinked room: %v, want ErrNotFound", err)
	}
	if _, err := s.RemoveRemote(model.NewId(), a.Network, a.Room); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing from an unlinked channel: %v, want ErrNotFound", err)
	}

	l, err := s.RemoveRemote(ch, a.Network, a.Room)
	must(t, err)
	if len(l.Remotes) != 1 || l.Remotes[0].Room != b.Room {
		t.Fatalf("after removing a: %+v", l)
	}
	if _, err := s.ChannelForRoom(a.Network, a.Room); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ChannelForRoom(a) after removal: %v, want ErrNotFound", err)
	}
	if _, ok := dump(t, kv)[roomKey(a.Network, a.Room)]; ok {
		t.Fatal("reverse lookup of a left behind")
	}
	if c, err := s.ChannelForRoom(b.Network, b.Room); err != nil || c != ch {
		t.Fatalf("ChannelForRoom(b) = %q, %v", c, err)
	}
	if _, err := s.RemoveRemote(ch, a.Network, a.Room); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing twice: %v, want ErrNotFound", err)
	}
	if _, ok, _ := s.GetCursor(ch, "mattermost"); !ok {
		t.Fatal("cursor deleted while the link still exists")
	}

	l, err = s.RemoveRemote(ch, b.Network, b.Room)
	must(t, err)
	if l.ChannelID != ch || l.Remotes == nil || len(l.Remotes) != 0 {
		t.Fatalf("after removing the last remote: %+v", l)
	}
	if _, err := s.GetLink(ch); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetLink after removing the last remote: %v", err)
	}
	if _, ok, _ := s.GetCursor(ch, "mattermost"); ok {
		t.Fatal("cursors of a removed link kept")
	}
	left := slices.DeleteFunc(keysOf(dump(t, kv)), func(k string) bool { return k == keyLinkIndex })
	if len(left) != 1 || !strings.HasPrefix(left[0], prefixCursor) {
		t.Fatalf("keys left: %v; want only the other link's cursor (and the link index)", left)
	}

	// The room is free again, for any channel.
	other := model.NewId()
	_, err = s.AddRemote(other, team, a)
	must(t, err)
	if c, _ := s.ChannelForRoom(a.Network, a.Room); c != other {
		t.Fatalf("room not relinked: %q", c)
	}
}

// putClaim plants a reverse lookup without a link, as an interrupted call would.
func putClaim(t *testing.T, s *Store, ch string, r RemoteRoom, at time.Time) {
	t.Helper()
	must(t, s.putJSON(roomKey(r.Network, r.Room), roomClaim{Network: r.Network, Room: r.Room, ChannelID: ch, ClaimedAt: at}, 0))
}

func TestLeftoverClaims(t *testing.T) {
	s, _, clock := newClockedStore(t)
	team := model.NewId()
	r := remote(bridge.NetworkXMPP, "x@conf")
	crashed, other := model.NewId(), model.NewId()
	putClaim(t, s, crashed, r, clock.Now())

	// A fresh claim may be a call in progress: the room counts as taken,
	// but it is not linked for routing.
	if _, err := s.AddRemote(other, team, r); !errors.Is(err, ErrRoomTaken) {
		t.Fatalf("fresh claim: %v, want ErrRoomTaken", err)
	}
	if _, err := s.ChannelForRoom(r.Network, r.Room); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ChannelForRoom with only a claim: %v, want ErrNotFound", err)
	}
	if _, _, err := s.LinkedRooms(context.Background(), r.Ref()); !errors.Is(err, bridge.ErrNotLinked) {
		t.Fatalf("LinkedRooms with only a claim: %v, want ErrNotLinked", err)
	}
	// Once old, another channel may take it over.
	clock.Advance(staleClaimAge + time.Second)
	_, err := s.AddRemote(other, team, r)
	must(t, err)
	if c, _ := s.ChannelForRoom(r.Network, r.Room); c != other {
		t.Fatalf("ChannelForRoom = %q, want %s", c, other)
	}

	// The channel named by a leftover claim repairs it by linking again.
	r2 := remote(bridge.NetworkXMPP, "y@conf")
	putClaim(t, s, crashed, r2, clock.Now())
	_, err = s.AddRemote(crashed, team, r2)
	must(t, err)
	if c, _ := s.ChannelForRoom(r2.Network, r2.Room); c != crashed {
		t.Fatalf("ChannelForRoom = %q, want %s", c, crashed)
	}

	// RemoveRemote clears a leftover claim of its channel.
	r3 := remote(bridge.NetworkXMPP, "z@conf")
	putClaim(t, s, other, r3, clock.Now())
	if _, err := s.RemoveRemote(other, r3.Network, r3.Room); err != nil {
		t.Fatalf("RemoveRemote of a leftover claim: %v", err)
	}
	if _, err := s.AddRemote(crashed, team, r3); err != nil {
		t.Fatalf("AddRemote after clearing the claim: %v", err)
	}
}

func TestListLinksManyPages(t *testing.T) {
	s, _ := newTestStore(t)
	s.pageSize = 10
	team := model.NewId()
	want := map[string]bool{}
	for i := range 35 {
		ch := model.NewId()
		want[ch] = true
		_, err := s.AddRemote(ch, team, remote(bridge.NetworkXMPP, fmt.Sprintf("room%d@conf", i)))
		must(t, err)
	}
	links, err := s.ListLinks()
	must(t, err)
	if len(links) != len(want) {
		t.Fatalf("ListLinks = %d links, want %d", len(links), len(want))
	}
	for _, l := range links {
		if !want[l.ChannelID] || len(l.Remotes) != 1 {
			t.Errorf("unexpected link %+v", l)
		}
	}
}

func TestLinkedRooms(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	ch, team := model.NewId(), model.NewId()
	x, m := remote(bridge.NetworkXMPP, "x@conf"), remote(bridge.NetworkMatrix, "!m:hs")
	_, err := s.AddRemote(ch, team, x)
	must(t, err)
	_, err = s.AddRemote(ch, team, m)
	must(t, err)
	mm := roomRef(bridge.NetworkMattermost, ch)

	check := func(from bridge.Ref, want ...bridge.Ref) {
		t.Helper()
		id, rooms, err := s.LinkedRooms(ctx, from)
		must(t, err)
		if id != ch {
			t.Errorf("link ID = %q, want %s", id, ch)
		}
		key := func(a, b bridge.Ref) int { return strings.Compare(a.RoomKey(), b.RoomKey()) }
		slices.SortFunc(rooms, key)
		slices.SortFunc(want, key)
		if !slices.Equal(rooms, want) {
			t.Errorf("LinkedRooms(%s) = %v, want %v", from.RoomKey(), rooms, want)
		}
	}
	check(mm, x.Ref(), m.Ref())
	check(x.Ref(), mm, m.Ref())
	withID := m.Ref()
	withID.ID = "$event" // a message ref works as well
	check(withID, mm, x.Ref())

	for _, r := range []bridge.Ref{
		roomRef(bridge.NetworkMattermost, model.NewId()),
		roomRef(bridge.NetworkSlack, "C1"),
		roomRef(bridge.NetworkMattermost, "not-an-id"),
		roomRef("IRC!", "#go"),
		roomRef(bridge.NetworkXMPP, ""),
	} {
		if _, _, err := s.LinkedRooms(ctx, r); !errors.Is(err, bridge.ErrNotLinked) {
			t.Errorf("LinkedRooms(%v): %v, want ErrNotLinked", r, err)
		}
	}
}
