package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func msgOf(n bridge.Network, room, id string) bridge.Ref {
	return bridge.Ref{Network: n, Room: room, ID: id}
}

func wantCounterpart(t *testing.T, s *Store, msg, dest bridge.Ref, want string) {
	t.Helper()
	id, ok, err := s.Counterpart(context.Background(), msg, dest)
	must(t, err)
	if want == "" {
		if ok {
			t.Errorf("Counterpart(%s, %s) = %q, want none", msg.Key(), dest.RoomKey(), id)
		}
		return
	}
	if !ok || id != want {
		t.Errorf("Counterpart(%s, %s) = %q, %v; want %q", msg.Key(), dest.RoomKey(), id, ok, want)
	}
}

func wantOrigin(t *testing.T, s *Store, msg, want bridge.Ref) {
	t.Helper()
	got, ok, err := s.OriginOf(context.Background(), msg)
	must(t, err)
	if want == (bridge.Ref{}) {
		if ok {
			t.Errorf("OriginOf(%s) = %s, want none", msg.Key(), got.Key())
		}
		return
	}
	if !ok || got != want {
		t.Errorf("OriginOf(%s) = %v, %v; want %v", msg.Key(), got, ok, want)
	}
}

func TestMessageMapRoundTripAcrossRestart(t *testing.T) {
	s, kv := newTestStore(t)
	ctx := context.Background()
	ch := model.NewId()
	mmRoom, xRoom, mRoom, sRoom := roomRef(bridge.NetworkMattermost, ch), roomRef(bridge.NetworkXMPP, longJID("r")), roomRef(bridge.NetworkMatrix, "!m:hs"), roomRef(bridge.NetworkSlack, "C1")
	origin := msgOf(bridge.NetworkMattermost, ch, model.NewId())
	xCopy := msgOf(bridge.NetworkXMPP, xRoom.Room, "stanza-1")
	mCopy := msgOf(bridge.NetworkMatrix, mRoom.Room, "$ev1")
	must(t, s.RecordCounterpart(ctx, origin, xCopy, "mattermost|alice"))
	must(t, s.RecordCounterpart(ctx, origin, mCopy, "mattermost|alice"))
	must(t, s.RecordCounterpart(ctx, origin, mCopy, "mattermost|alice")) // idempotent

	for name, st := range map[string]*Store{"same store": s, "after restart": New(kv)} {
		t.Run(name, func(t *testing.T) {
			wantCounterpart(t, st, origin, xRoom, "stanza-1")
			wantCounterpart(t, st, origin, mRoom, "$ev1")
			wantCounterpart(t, st, xCopy, mmRoom, origin.ID)
			wantCounterpart(t, st, xCopy, mRoom, "$ev1")
			wantCounterpart(t, st, mCopy, xRoom, "stanza-1")
			wantCounterpart(t, st, mCopy, mRoom, "$ev1") // itself
			wantCounterpart(t, st, origin, sRoom, "")
			wantCounterpart(t, st, msgOf(bridge.NetworkXMPP, xRoom.Room, "unknown"), mmRoom, "")
			wantOrigin(t, st, origin, origin)
			wantOrigin(t, st, xCopy, origin)
			wantOrigin(t, st, mCopy, origin)
			wantOrigin(t, st, msgOf(bridge.NetworkSlack, "C1", "1.2"), bridge.Ref{})
			for _, msg := range []bridge.Ref{origin, xCopy, mCopy} {
				if o, author, ok, err := st.AuthorOf(ctx, msg); err != nil || !ok || o != origin || author != "mattermost|alice" {
					t.Errorf("AuthorOf(%s) = %v, %q, %v, %v", msg.Key(), o, author, ok, err)
				}
			}
		})
	}

	// A copy of a copy joins the original bridged message.
	sCopy := msgOf(bridge.NetworkSlack, "C1", "1700000000.000100")
	// A copy of a copy joins the original bridged message, whose author
	// stays who wrote the original whatever the later call says.
	must(t, s.RecordCounterpart(ctx, xCopy, sCopy, "xmpp|mallory"))
	if _, author, _, _ := s.AuthorOf(ctx, sCopy); author != "mattermost|alice" {
		t.Errorf("author of a copy of a copy = %q", author)
	}
	wantOrigin(t, s, sCopy, origin)
	wantCounterpart(t, s, origin, sRoom, sCopy.ID)
	wantCounterpart(t, s, sCopy, xRoom, xCopy.ID)
}

func TestRecordCounterpartConcurrent(t *testing.T) {
	s, kv := newTestStore(t)
	origin := msgOf(bridge.NetworkMatrix, "!m:hs", "$origin")
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		node := New(kv)
		wg.Go(func() {
			dest := msgOf(bridge.NetworkXMPP, fmt.Sprintf("room%d@conf", i), fmt.Sprintf("id%d", i))
			if err := node.RecordCounterpart(context.Background(), origin, dest, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		wantCounterpart(t, s, origin, roomRef(bridge.NetworkXMPP, fmt.Sprintf("room%d@conf", i)), fmt.Sprintf("id%d", i))
	}
}

func TestMessageMapExpiry(t *testing.T) {
	s, kv, clock := newClockedStore(t)
	ctx := context.Background()
	s.SetMessageRetention(time.Hour)
	if s.MessageRetention() != time.Hour {
		t.Fatalf("MessageRetention = %v", s.MessageRetention())
	}
	origin := msgOf(bridge.NetworkSlack, "C1", "1.1")
	a := msgOf(bridge.NetworkXMPP, "a@conf", "a1")
	b := msgOf(bridge.NetworkMatrix, "!b:hs", "$b1")
	must(t, s.RecordCounterpart(ctx, origin, a, ""))

	clock.Advance(50 * time.Minute)
	wantCounterpart(t, s, origin, roomRef(a.Network, a.Room), "a1")
	// A new copy re-saves the group and the origin's pointer: their clock
	// restarts; a's pointer keeps its own.
	must(t, s.RecordCounterpart(ctx, origin, b, ""))

	clock.Advance(20 * time.Minute) // 70 min after a, 20 after b
	wantOrigin(t, s, a, bridge.Ref{})
	wantCounterpart(t, s, origin, roomRef(a.Network, a.Room), "a1") // group still lists a
	wantCounterpart(t, s, b, roomRef(origin.Network, origin.Room), origin.ID)
	wantOrigin(t, s, origin, origin)

	clock.Advance(41 * time.Minute)
	wantOrigin(t, s, origin, bridge.Ref{})
	wantOrigin(t, s, b, bridge.Ref{})
	wantCounterpart(t, s, origin, roomRef(b.Network, b.Room), "")
	if left := dump(t, kv); len(left) != 0 {
		t.Fatalf("keys left after expiry: %v", keysOf(left))
	}

	// Retention 0 keeps maps forever.
	s.SetMessageRetention(0)
	must(t, s.RecordCounterpart(ctx, origin, a, ""))
	clock.Advance(24 * 365 * time.Hour)
	wantCounterpart(t, s, a, roomRef(origin.Network, origin.Room), origin.ID)
}

func TestForgetMessage(t *testing.T) {
	s, kv := newTestStore(t)
	ctx := context.Background()
	origin := msgOf(bridge.NetworkSlack, "C1", "1.1")
	a := msgOf(bridge.NetworkXMPP, "a@conf", "a1")
	b := msgOf(bridge.NetworkMatrix, "!b:hs", "$b1")
	must(t, s.RecordCounterpart(ctx, origin, a, ""))
	must(t, s.RecordCounterpart(ctx, origin, b, ""))

	// Forgetting a copy forgets that copy only.
	must(t, s.ForgetMessage(a))
	wantOrigin(t, s, a, bridge.Ref{})
	wantCounterpart(t, s, origin, roomRef(a.Network, a.Room), "")
	wantCounterpart(t, s, b, roomRef(origin.Network, origin.Room), origin.ID)
	must(t, s.ForgetMessage(a)) // unknown: fine

	// Forgetting the origin forgets everything.
	must(t, s.ForgetMessage(origin))
	wantOrigin(t, s, origin, bridge.Ref{})
	wantOrigin(t, s, b, bridge.Ref{})
	if left := dump(t, kv); len(left) != 0 {
		t.Fatalf("keys left: %v", keysOf(left))
	}
}

func TestMessageMapRejectsBadRefs(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	good := msgOf(bridge.NetworkXMPP, "a@conf", "1")
	for _, bad := range []bridge.Ref{
		{},
		msgOf("IRC!", "#go", "1"),
		msgOf(bridge.NetworkXMPP, "", "1"),
		msgOf(bridge.NetworkXMPP, "a@conf", ""),
		msgOf(bridge.NetworkXMPP, "a@conf", "\xff"),
	} {
		if err := s.RecordCounterpart(ctx, good, bad, ""); err == nil {
			t.Errorf("RecordCounterpart(%v) accepted", bad)
		}
		if _, _, err := s.OriginOf(ctx, bad); err == nil {
			t.Errorf("OriginOf(%v) accepted", bad)
		}
		if _, _, err := s.Counterpart(ctx, bad, roomRef(bridge.NetworkSlack, "C1")); err == nil {
			t.Errorf("Counterpart(%v) accepted", bad)
		}
	}
	if err := s.RecordCounterpart(ctx, good, msgOf(bridge.NetworkXMPP, "a@conf", "2"), ""); err == nil {
		t.Error("a copy in its origin's room was accepted")
	}
}

func TestAliasesRoundTripAndExpire(t *testing.T) {
	s, kv, clk := newClockedStore(t)
	s.SetMessageRetention(time.Hour)
	long := strings.Repeat("x", 300) + "@conference.example.com"
	if err := s.SetAlias("xmpp-origin|"+long, "Origin-ID-1", "stanza-1"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := New(kv).Alias("xmpp-origin|"+long, "Origin-ID-1"); err != nil || !ok || v != "stanza-1" {
		t.Fatalf("alias = %q %v %v", v, ok, err)
	}
	if _, ok, _ := s.Alias("xmpp-origin|"+long, "origin-id-1"); ok {
		t.Fatal("aliases must be case-sensitive")
	}
	clk.Advance(2 * time.Hour)
	if _, ok, _ := s.Alias("xmpp-origin|"+long, "Origin-ID-1"); ok {
		t.Fatal("alias outlived the retention")
	}
	if err := s.SetAlias("", "k", "v"); err == nil {
		t.Fatal("empty namespace accepted")
	}
}
