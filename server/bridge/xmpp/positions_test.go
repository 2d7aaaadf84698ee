package xmpp

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// A busy room's archive position is written once per flush, as its newest
// settled message; a stop writes what is due, and what settles after the
// stop is written at once.
func TestArchivePositionsAreSavedNewestFirstOncePerFlush(t *testing.T) {
	var mu sync.Mutex
	var saved []string
	p := &positions{save: func(room, pos string) {
		mu.Lock()
		defer mu.Unlock()
		saved = append(saved, room+"="+pos)
	}}
	for _, pos := range []string{"s1", "s2", "s3"} {
		p.note("dev@conf", pos)
	}
	p.note("ops@conf", "o1")
	p.flush(false)
	slices.Sort(saved)
	if want := []string{"dev@conf=s3", "ops@conf=o1"}; !slices.Equal(saved, want) {
		t.Fatalf("first flush saved %v, want %v", saved, want)
	}
	saved = nil
	p.note("dev@conf", "s4")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.run(ctx)
	p.note("dev@conf", "s5") // a delivery settling after the stop
	if want := []string{"dev@conf=s4", "dev@conf=s5"}; !slices.Equal(saved, want) {
		t.Fatalf("the stop and after saved %v, want %v", saved, want)
	}
}
