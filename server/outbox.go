package main

import (
	"sync"
	"time"
)

// A hook that fires on a node that does not hold the bridge is handed to
// the holder; while no node holds it (a takeover after the holder died
// takes about 8 s) nobody acts on it, and the new holder's catch-up reads
// new posts only, not edits and reactions. So each node keeps the hooks it
// handed on until the holder acknowledges them, and hands them again,
// in order, until one does. The holder acts on each once (answerOnce).

// hookResend is how long a hook may go unacknowledged before it and every
// hook after it are handed on again.
const hookResend = 500 * time.Millisecond

// hookGiveUp is how long a node keeps handing a hook on: past it no node
// has held the bridge for that long, and the hook is dropped with a
// warning.
const hookGiveUp = 2 * time.Minute

type outbox struct {
	mu      sync.Mutex
	pending []*outgoing // in the order the hooks fired
}

type outgoing struct {
	f           forwarded
	first, sent time.Time
}

// add keeps f until it is acknowledged and reports whether to hand it on
// now: not while an earlier hook waits past hookResend for its answer,
// which would put f before it; resend hands them on together, in order.
func (o *outbox) add(f forwarded, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	stale := len(o.pending) > 0 && now.Sub(o.pending[0].sent) >= hookResend
	g := &outgoing{f: f, first: now}
	if !stale {
		g.sent = now
	}
	o.pending = append(o.pending, g)
	return !stale
}

// ack forgets the hook the holder acknowledged.
func (o *outbox) ack(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, g := range o.pending {
		if g.f.ID == id {
			o.pending = append(o.pending[:i], o.pending[i+1:]...)
			return
		}
	}
}

// due returns, in order, every hook to hand on again (all of them once
// the oldest waited past hookResend), and those given up on.
func (o *outbox) due(now time.Time) (again, dropped []forwarded) {
	o.mu.Lock()
	defer o.mu.Unlock()
	kept := o.pending[:0]
	for _, g := range o.pending {
		if now.Sub(g.first) >= hookGiveUp {
			dropped = append(dropped, g.f)
			continue
		}
		kept = append(kept, g)
	}
	clear(o.pending[len(kept):])
	o.pending = kept
	if len(kept) == 0 || now.Sub(kept[0].sent) < hookResend {
		return nil, dropped
	}
	for _, g := range kept {
		g.sent = now
		again = append(again, g.f)
	}
	return again, dropped
}

// takeAll empties the outbox: the node now holds the bridge itself.
func (o *outbox) takeAll() []forwarded {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]forwarded, 0, len(o.pending))
	for _, g := range o.pending {
		out = append(out, g.f)
	}
	o.pending = nil
	return out
}
