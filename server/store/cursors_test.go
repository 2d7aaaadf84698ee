package store

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

func TestCursors(t *testing.T) {
	s, _ := newTestStore(t)
	link := model.NewId()
	if _, ok, err := s.GetCursor(link, "mam"); ok || err != nil {
		t.Fatalf("unset cursor: %v, %v", ok, err)
	}
	must(t, s.SetCursor(link, "mam", "stanza-9"))
	must(t, s.SetCursor(link, "Long:Name/"+longJID("n"), "x"))
	if v, ok, err := s.GetCursor(link, "mam"); v != "stanza-9" || !ok || err != nil {
		t.Fatalf("GetCursor = %q, %v, %v", v, ok, err)
	}
	if v, ok, _ := s.GetCursor(link, "Long:Name/"+longJID("n")); v != "x" || !ok {
		t.Fatalf("GetCursor(long) = %q, %v", v, ok)
	}
	must(t, s.SetCursor(link, "mam", "stanza-3")) // SetCursor may go back
	if v, _, _ := s.GetCursor(link, "mam"); v != "stanza-3" {
		t.Fatalf("GetCursor = %q", v)
	}
	if err := s.AdvanceCursorInt(link, "mam", 5); err == nil {
		t.Fatal("AdvanceCursorInt over a non-integer succeeded")
	}
}

func TestAdvanceCursorIntOnlyMovesForward(t *testing.T) {
	s, kv := newTestStore(t)
	link := model.NewId()
	must(t, s.AdvanceCursorInt(link, "post_at", 100))
	must(t, s.AdvanceCursorInt(link, "post_at", 50))
	if v, _, _ := s.GetCursor(link, "post_at"); v != "100" {
		t.Fatalf("cursor went back to %q", v)
	}
	var maxV atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		node := New(kv)
		wg.Go(func() {
			for range 20 {
				v := 100 + rand.Int64N(10000)
				for {
					m := maxV.Load()
					if v <= m || maxV.CompareAndSwap(m, v) {
						break
					}
				}
				if err := node.AdvanceCursorInt(link, "post_at", v); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	v, _, _ := s.GetCursor(link, "post_at")
	if want := strconv.FormatInt(maxV.Load(), 10); v != want {
		t.Fatalf("cursor = %s, want the maximum %s", v, want)
	}
}

func TestMarkSeen(t *testing.T) {
	s, kv, clock := newClockedStore(t)
	first, err := s.MarkSeen("matrix-txn", "txn1", time.Hour)
	must(t, err)
	if !first {
		t.Fatal("first MarkSeen not first")
	}
	if first, _ := s.MarkSeen("matrix-txn", "txn1", time.Hour); first {
		t.Fatal("second MarkSeen first")
	}
	if first, _ := s.MarkSeen("slack-envelope", "txn1", time.Hour); !first {
		t.Fatal("namespaces are not separate")
	}
	clock.Advance(time.Hour)
	if first, _ := s.MarkSeen("matrix-txn", "txn1", time.Hour); !first {
		t.Fatal("mark did not expire")
	}
	if first, _ := s.MarkSeen("forever", "x", 0); !first {
		t.Fatal("first MarkSeen not first")
	}
	clock.Advance(1000 * time.Hour)
	if first, _ := s.MarkSeen("forever", "x", 0); first {
		t.Fatal("ttl 0 mark expired")
	}

	// Racing callers: exactly one is first.
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		node := New(kv)
		wg.Go(func() {
			first, err := node.MarkSeen("slack-envelope", "env-42", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("%d callers were first", firsts.Load())
	}
}

func TestSeenOnlyReads(t *testing.T) {
	s, _, clock := newClockedStore(t)
	if seen, err := s.Seen("matrix-txn", "t1"); err != nil || seen {
		t.Fatalf("Seen before MarkSeen = %v, %v", seen, err)
	}
	if seen, _ := s.Seen("matrix-txn", "t1"); seen {
		t.Fatal("Seen recorded the ID")
	}
	_, err := s.MarkSeen("matrix-txn", "t1", time.Hour)
	must(t, err)
	if seen, err := s.Seen("matrix-txn", "t1"); err != nil || !seen {
		t.Fatalf("Seen after MarkSeen = %v, %v", seen, err)
	}
	clock.Advance(time.Hour)
	if seen, _ := s.Seen("matrix-txn", "t1"); seen {
		t.Fatal("Seen after expiry")
	}
	if _, err := s.Seen("", "t1"); err == nil {
		t.Fatal("empty namespace accepted")
	}
}
