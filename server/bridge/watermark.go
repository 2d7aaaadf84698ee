package bridge

import "sync"

// Watermark keeps the durable position of one ordered stream (an XMPP
// room's archive, say) honest when its events settle out of order: a
// position is committed only once it and everything begun before it have
// settled, so a crash never skips an event still on its way.
type Watermark struct {
	commit func(pos string)

	mu      sync.Mutex
	gen     uint64
	seq     uint64  // of the last mark begun
	pending []*mark // in Begin order

	// commitMu orders commits made from different goroutines: a position
	// is never saved after a later one.
	commitMu  sync.Mutex
	committed uint64 // seq of the last position committed
}

type mark struct {
	pos     string
	seq     uint64
	settled bool
}

// NewWatermark returns a Watermark that calls commit with each position it
// may save, one call at a time and never with a position older than one
// already committed.
func NewWatermark(commit func(pos string)) *Watermark {
	return &Watermark{commit: commit}
}

// Begin appends pos to the stream and returns the function that settles
// it; calling that more than once is harmless. An empty pos holds its
// place in the order but is never committed.
func (w *Watermark) Begin(pos string) (settle func()) {
	w.mu.Lock()
	w.seq++
	m := &mark{pos: pos, seq: w.seq}
	w.pending = append(w.pending, m)
	gen := w.gen
	w.mu.Unlock()
	return func() { w.settle(m, gen) }
}

func (w *Watermark) settle(m *mark, gen uint64) {
	w.mu.Lock()
	if gen != w.gen || m.settled {
		w.mu.Unlock()
		return
	}
	m.settled = true
	var last *mark
	for len(w.pending) > 0 && w.pending[0].settled {
		if w.pending[0].pos != "" {
			last = w.pending[0]
		}
		w.pending[0] = nil
		w.pending = w.pending[1:]
	}
	w.mu.Unlock()
	if last == nil {
		return
	}
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	if last.seq > w.committed {
		w.committed = last.seq
		w.commit(last.pos)
	}
}

// Reset forgets every position in flight, for a stream about to be read
// again from its committed position; their settles then do nothing.
func (w *Watermark) Reset() {
	w.mu.Lock()
	w.gen++
	w.pending = nil
	w.mu.Unlock()
}

// Pending counts positions begun and not yet committed.
func (w *Watermark) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}
