package bridge

import "sync"

// Watermark keeps the durable position of one ordered stream (an XMPP
// room's archive, say) honest when its events settle out of order: a
// position is committed only once it and everything begun before it have
// settled, so a crash never skips an event still on its way.
type Watermark struct {
	commit func(pos string)

	mu      sync.Mutex
	seq     uint64  // of the last mark begun
	pending []*Mark // in Begin order

	// commitMu orders commits made from different goroutines: a position
	// is never saved after a later one.
	commitMu  sync.Mutex
	committed uint64 // seq of the last position committed
}

// Mark is one position of the stream on its way.
type Mark struct {
	w       *Watermark
	pos     string
	seq     uint64
	settled bool
	gone    bool // abandoned
}

// NewWatermark returns a Watermark that calls commit with each position it
// may save, one call at a time and never with a position older than one
// already committed.
func NewWatermark(commit func(pos string)) *Watermark {
	return &Watermark{commit: commit}
}

// Begin appends pos to the stream. An empty pos holds its place in the
// order but is never committed.
func (w *Watermark) Begin(pos string) *Mark {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	m := &Mark{w: w, pos: pos, seq: w.seq}
	w.pending = append(w.pending, m)
	return m
}

// Settle says everything at m was handled; calling it again, or after
// Abandon, does nothing.
func (m *Mark) Settle() {
	w := m.w
	w.mu.Lock()
	if m.settled || m.gone {
		w.mu.Unlock()
		return
	}
	m.settled = true
	w.advance()
}

// Abandon takes m, and every mark begun after it, out of the stream
// without committing them: the stream will be read again from just before
// m and begin new marks. Marks before m still commit once settled.
func (m *Mark) Abandon() {
	w := m.w
	w.mu.Lock()
	if m.settled || m.gone {
		w.mu.Unlock()
		return
	}
	for i, p := range w.pending {
		if p == m {
			for _, later := range w.pending[i:] {
				later.gone = true
			}
			clear(w.pending[i:])
			w.pending = w.pending[:i]
			break
		}
	}
	w.advance()
}

// advance pops the settled head of the stream and commits its last
// position. Called with w.mu held; it releases it.
func (w *Watermark) advance() {
	var last *Mark
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

// Pending counts positions begun and neither committed nor abandoned.
func (w *Watermark) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// SettleGroup settles several events as one: a message that became two
// reactions, a transaction of many events. Its settled function is called
// once every member settled and Seal was called, unless a member failed.
type SettleGroup struct {
	mu      sync.Mutex
	pending int
	failed  bool
	settled func()
}

// NewSettleGroup returns an open group calling settled (if not nil).
func NewSettleGroup(settled func()) *SettleGroup {
	return &SettleGroup{pending: 1, settled: settled}
}

// Add returns a new member's settle function, for an Event's Settled.
func (g *SettleGroup) Add() func() {
	member := g.member()
	return func() { member(true) }
}

// Fail says a member will be read again: the group never settles.
func (g *SettleGroup) Fail() { g.member()(false) }

// Seal says no member will be added; members may still settle after.
func (g *SettleGroup) Seal() { g.done(true) }

func (g *SettleGroup) member() func(ok bool) {
	g.mu.Lock()
	g.pending++
	g.mu.Unlock()
	var once sync.Once
	return func(ok bool) { once.Do(func() { g.done(ok) }) }
}

func (g *SettleGroup) done(ok bool) {
	g.mu.Lock()
	g.pending--
	g.failed = g.failed || !ok
	call := g.pending == 0 && !g.failed && g.settled != nil
	g.mu.Unlock()
	if call {
		g.settled()
	}
}
