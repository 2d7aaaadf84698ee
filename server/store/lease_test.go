package store

import (
	"sync"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

// A lease has one holder at a time, across stores (nodes) over one KV:
// the first to take it holds it, renewing keeps it, a lapsed lease goes
// to the next taker, and a node that lost it can neither renew nor
// release it.
func TestLeaseHasOneHolder(t *testing.T) {
	c := newClock()
	shared := memkv.New(c.Now)
	a, b := New(shared.Plugin(pluginID)), New(shared.Plugin(pluginID))
	a.now, b.now = c.Now, c.Now
	const ttl = 6 * time.Second

	la, ok, err := a.TakeLease("bridge", "node-a", ttl)
	if err != nil || !ok {
		t.Fatalf("first take: %v, %v", ok, err)
	}
	if _, ok, err := b.TakeLease("bridge", "node-b", ttl); err != nil || ok {
		t.Fatalf("second take while held: %v, %v", ok, err)
	}
	if h, err := b.LeaseHolder("bridge"); err != nil || h.Holder != "node-a" || !h.Since.Equal(la.Since) {
		t.Fatalf("LeaseHolder = %+v, %v", h, err)
	}
	// Renewing pushes the expiry: past the first ttl, a still holds.
	c.Advance(4 * time.Second)
	if ok, err := a.RenewLease("bridge", la, ttl); err != nil || !ok {
		t.Fatalf("renew: %v, %v", ok, err)
	}
	c.Advance(4 * time.Second)
	if _, ok, _ := b.TakeLease("bridge", "node-b", ttl); ok {
		t.Fatal("b took a renewed lease")
	}
	// a stops renewing: once it lapses, b takes it, and a is out.
	c.Advance(ttl)
	lb, ok, err := b.TakeLease("bridge", "node-b", ttl)
	if err != nil || !ok {
		t.Fatalf("take after lapse: %v, %v", ok, err)
	}
	if ok, err := a.RenewLease("bridge", la, ttl); err != nil || ok {
		t.Fatalf("a renewed b's lease: %v, %v", ok, err)
	}
	if err := a.ReleaseLease("bridge", la); err != nil {
		t.Fatal(err)
	}
	if h, _ := a.LeaseHolder("bridge"); h.Holder != "node-b" {
		t.Fatalf("a's release of a lease it lost removed b's: holder %+v", h)
	}
	if err := b.ReleaseLease("bridge", lb); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.TakeLease("bridge", "node-a", ttl); !ok {
		t.Fatal("a could not take a released lease")
	}
}

// Many nodes taking a free lease at once: exactly one gets it.
func TestLeaseRaceHasOneWinner(t *testing.T) {
	for range 50 {
		shared := memkv.New(nil)
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := New(shared.Plugin(pluginID))
				if _, ok, err := s.TakeLease("bridge", "node-"+string(rune('a'+i)), time.Minute); err == nil && ok {
					mu.Lock()
					winners++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if winners != 1 {
			t.Fatalf("%d nodes took the lease", winners)
		}
	}
}

func TestLeaseRefusesBadInput(t *testing.T) {
	s, _ := newTestStore(t)
	if _, _, err := s.TakeLease("", "node", time.Minute); err == nil {
		t.Error("empty name accepted")
	}
	if _, _, err := s.TakeLease("bridge", "", time.Minute); err == nil {
		t.Error("empty holder accepted")
	}
	if _, _, err := s.TakeLease("bridge", "node", 0); err == nil {
		t.Error("zero ttl accepted")
	}
}
