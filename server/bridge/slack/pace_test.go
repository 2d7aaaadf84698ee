package slack

import (
	"testing"
	"time"
)

// TestPacerFollowsSlacksBucket walks a pacer through explicit times, so
// nothing here depends on how fast the machine is.
func TestPacerFollowsSlacksBucket(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

	// Tier 1, burst 1: the first open is immediate, the next one a minute
	// after the first was answered, and after a long-lived socket the next
	// one is immediate again.
	p := newPacer(time.Minute, 1)
	if _, ok := p.take(t0); !ok {
		t.Fatal("the first call waits")
	}
	p.answered(t0.Add(200 * time.Millisecond))
	if at, ok := p.take(t0.Add(time.Second)); ok || at.Before(t0.Add(time.Minute+200*time.Millisecond)) {
		t.Errorf("a second call a second later: allowed %v, at %v", ok, at)
	}
	later := t0.Add(time.Hour)
	if !p.allowedAt().Before(later) {
		t.Errorf("after an hour the next call waits until %v", p.allowedAt())
	}
	if _, ok := p.take(later); !ok {
		t.Error("the first call after a long-lived socket waits")
	}

	// chat.postMessage: a burst of three, then one a second.
	q := newPacer(time.Second, 3)
	for i := range 3 {
		if _, ok := q.take(t0); !ok {
			t.Fatalf("call %d of the burst waits", i+1)
		}
	}
	if _, ok := q.take(t0); ok {
		t.Error("a fourth call at once is allowed")
	}
	if _, ok := q.take(t0.Add(time.Second)); !ok {
		t.Error("a call a second after the burst waits")
	}

	// A 429 holds every call until its Retry-After, then allows one.
	r := newPacer(time.Second, 3)
	r.limited(t0, 5*time.Second)
	if _, ok := r.take(t0.Add(4 * time.Second)); ok {
		t.Error("a call before Retry-After is allowed")
	}
	if _, ok := r.take(t0.Add(5 * time.Second)); !ok {
		t.Error("the call at Retry-After waits")
	}
	if _, ok := r.take(t0.Add(5 * time.Second)); ok {
		t.Error("a burst right after a 429 is allowed")
	}
}
