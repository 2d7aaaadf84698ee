package store

import (
	"context"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// The next holder reads the early deletes the last one recorded, until
// they expire.
func TestEarlyDeletesOutliveTheHolderAndExpire(t *testing.T) {
	s, kv, clock := newClockedStore(t)
	ctx := context.Background()
	d := bridge.EarlyDelete{Msg: "matrix|!r:hs|$e", By: "matrix|@carol:hs", At: clock.Now()}
	if err := s.RecordEarlyDelete(ctx, d); err != nil {
		t.Fatal(err)
	}
	next := New(kv)
	next.now = clock.Now
	got, err := next.EarlyDeletes(ctx)
	if err != nil || len(got) != 1 || got[0].Msg != d.Msg || got[0].By != d.By || !got[0].At.Equal(d.At) {
		t.Fatalf("the next holder reads %+v, %v; want %+v", got, err, d)
	}
	clock.Advance(bridge.EarlyDeleteTTL + time.Second)
	if got, err := next.EarlyDeletes(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after the TTL: %+v, %v; want none", got, err)
	}
	if err := s.RecordEarlyDelete(ctx, bridge.EarlyDelete{Msg: "", By: "x"}); err == nil {
		t.Fatal("an early delete without a message was recorded")
	}
}

// Without an early delete within the TTL, reading them walks no keys: the
// router reads them as a holder starts relaying, and a walk of a store
// holding thousands of messages took seconds.
func TestNoEarlyDeletesCostsNoWalk(t *testing.T) {
	s, _ := newTestStore(t)
	before := s.KVRoundTrips()
	if got, err := s.EarlyDeletes(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("EarlyDeletes = %+v, %v", got, err)
	}
	if n := s.KVRoundTrips()[KVList] - before[KVList]; n != 0 {
		t.Fatalf("EarlyDeletes listed keys %d times with none recorded", n)
	}
}
