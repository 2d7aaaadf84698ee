package bridge

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCountersCountPathsDirectionsAndLatency(t *testing.T) {
	c := NewCounters()
	now := time.Now()
	// Two XMPP messages reach Mattermost, one 30 ms old and one 2 s old;
	// one reaches Matrix through the channel's link.
	c.delivered("chan1", msgIn(xmppRoom, "x1"), mmRoom, now.Add(-30*time.Millisecond), now)
	c.delivered("chan1", msgIn(xmppRoom, "x2"), mmRoom, now.Add(-2*time.Second), now)
	c.delivered("chan1", msgIn(xmppRoom, "x2"), matrixRoom, now.Add(-time.Second), now)
	// A Mattermost post reaches XMPP; an event without a time counts but
	// has no latency.
	c.delivered("chan1", msgIn(mmRoom, "p1"), xmppRoom, now.Add(-100*time.Millisecond), now)
	c.delivered("chan1", msgIn(mmRoom, "p2"), xmppRoom, time.Time{}, now)
	c.dropped(NetworkMattermost, NetworkXMPP, ReasonTooLarge)
	c.dropped(NetworkXMPP, NetworkMattermost, ReasonTooLarge)
	c.dropped(NetworkXMPP, NetworkMattermost, ReasonTooLarge)
	// An echo is dropped before routing: it has no destination.
	c.dropped(NetworkXMPP, "", ReasonEcho)
	c.dropped(NetworkMattermost, "", ReasonEcho)

	s := c.Snapshot()
	xmppToMM := s.Path(NetworkXMPP, NetworkMattermost)
	if xmppToMM.Relayed != 2 || xmppToMM.Drops[ReasonTooLarge] != 2 {
		t.Fatalf("xmpp -> mattermost = %+v", xmppToMM)
	}
	h := xmppToMM.Latency
	if h.Count != 2 || h.Sum < 2.02 || h.Sum > 2.04 {
		t.Fatalf("latency count %d sum %v", h.Count, h.Sum)
	}
	for i, bound := range LatencyBuckets {
		want := uint64(0)
		if bound >= 0.03 {
			want = 1
		}
		if bound >= 2 {
			want = 2
		}
		if h.Buckets[i] != want {
			t.Fatalf("bucket <= %vs holds %d, want %d (all: %v)", bound, h.Buckets[i], want, h.Buckets)
		}
	}
	if mmToXMPP := s.Path(NetworkMattermost, NetworkXMPP); mmToXMPP.Relayed != 2 || mmToXMPP.Latency.Count != 1 {
		t.Fatalf("mattermost -> xmpp = %+v", mmToXMPP)
	}

	by := s.ByNetwork()
	x := by[NetworkXMPP]
	if x.Relayed[ToMattermost] != 2 || x.Relayed[FromMattermost] != 2 {
		t.Fatalf("xmpp relayed %v", x.Relayed)
	}
	if x.Dropped[ToMattermost][ReasonTooLarge] != 2 || x.Dropped[ToMattermost][ReasonEcho] != 1 || x.Dropped[FromMattermost][ReasonTooLarge] != 1 {
		t.Fatalf("xmpp dropped %v", x.Dropped)
	}
	// What went from XMPP to Matrix went into Matrix from the channel.
	if m := by[NetworkMatrix]; m.Relayed[FromMattermost] != 1 || m.Relayed[ToMattermost] != 0 {
		t.Fatalf("matrix relayed %v", m.Relayed)
	}
	// Mattermost's own line: everything posted into it, everything out of it.
	if m := by[NetworkMattermost]; m.Relayed[ToMattermost] != 2 || m.Relayed[FromMattermost] != 2 ||
		m.Dropped[FromMattermost][ReasonEcho] != 1 || m.Dropped[FromMattermost][ReasonTooLarge] != 1 || m.Dropped[ToMattermost][ReasonTooLarge] != 2 {
		t.Fatalf("mattermost %+v", m)
	}

	// The last message each way per room of a link.
	if got := c.LastIn("chan1", xmppRoom); !got.Equal(now) {
		t.Fatalf("last in from xmpp = %v", got)
	}
	if got := c.LastOut("chan1", matrixRoom); !got.Equal(now) {
		t.Fatalf("last out to matrix = %v", got)
	}
	if got := c.LastIn("chan1", matrixRoom); !got.IsZero() {
		t.Fatalf("nothing came in from matrix, got %v", got)
	}
}

// The router counts every outcome in the manager's counters: deliveries per
// path and drops by reason, including those decided before queueing.
func TestRouterCountsOutcomes(t *testing.T) {
	e, _, x, _ := standard(t)
	x.setHook(func(_ context.Context, d *Delivery) error {
		if d.Text == "too big" {
			return Drop(ReasonTooLarge, errors.New("too big for xmpp"))
		}
		return nil
	})
	ev := message(mmRoom, "p1", "hello")
	ev.Time = time.Now().Add(-50 * time.Millisecond)
	e.receive(t, ev)
	e.receive(t, message(mmRoom, "p2", "too big"))
	e.outcomes(t, 4)
	s := e.r.Counters().Snapshot()
	if p := s.Path(NetworkMattermost, NetworkXMPP); p.Relayed != 1 || p.Drops[ReasonTooLarge] != 1 || p.Latency.Count != 1 {
		t.Fatalf("mattermost -> xmpp = %+v", p)
	}
	if p := s.Path(NetworkMattermost, NetworkMatrix); p.Relayed != 2 || p.Latency.Count != 1 {
		t.Fatalf("mattermost -> matrix = %+v", p)
	}
	// The copy in XMPP comes back: an echo, dropped before routing.
	e.receive(t, message(xmppRoom, "xmpp-1", "hello"))
	e.outcomes(t, 1)
	if p := e.r.Counters().Snapshot().Path(NetworkXMPP, ""); p.Drops[ReasonEcho] != 1 {
		t.Fatalf("echo = %+v", p)
	}
}

// Counting costs no allocation once a path has been seen: the bus moves
// every message through it.
func TestCountersDoNotAllocatePerEvent(t *testing.T) {
	c := NewCounters()
	now := time.Now()
	origin, dest := msgIn(xmppRoom, "x1"), mmRoom
	c.delivered("chan1", origin, dest, now, now)
	c.dropped(NetworkXMPP, NetworkMattermost, ReasonTooLarge)
	if n := testing.AllocsPerRun(100, func() {
		c.delivered("chan1", origin, dest, now, now)
		c.dropped(NetworkXMPP, NetworkMattermost, ReasonTooLarge)
	}); n != 0 {
		t.Fatalf("%v allocations per event", n)
	}
}
