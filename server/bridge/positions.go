package bridge

import (
	"context"
	"sync"
	"time"
)

// PositionFlush is how often Positions saves: one write per busy stream
// per interval, rather than one per message.
const PositionFlush = 500 * time.Millisecond

// Positions saves where each stream a bridge reads (a room's archive, a
// channel's replay cursor) got to, at most every PositionFlush: a crash
// reads at most that much again, which the core recognizes as bridged
// already. Closed, it saves what is left; after that Note saves at once,
// so a delivery settling late is not lost. A nil *Positions (a bridge not
// started yet) saves at once too.
type Positions struct {
	mu      sync.Mutex
	due     map[string]func()
	order   []string
	stopped bool
}

// StartPositions returns Positions that save every PositionFlush until ctx
// ends, and then close.
func StartPositions(ctx context.Context) *Positions {
	p := &Positions{}
	go p.run(ctx)
	return p
}

// Note makes save the next save of stream key, replacing one not done yet:
// callers note positions in the order they are reached.
func (p *Positions) Note(key string, save func()) {
	if p == nil {
		save()
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		save()
		return
	}
	if p.due == nil {
		p.due = map[string]func(){}
	}
	if _, ok := p.due[key]; !ok {
		p.order = append(p.order, key)
	}
	p.due[key] = save
	p.mu.Unlock()
}

// Flush saves what is due now.
func (p *Positions) Flush() { p.flush(false) }

// Close saves what is due, and has every later Note save at once. A
// bridge's Stop calls it, so nothing due is left to a goroutine the
// process may not wait for.
func (p *Positions) Close() {
	if p != nil {
		p.flush(true)
	}
}

func (p *Positions) flush(stop bool) {
	p.mu.Lock()
	due, order := p.due, p.order
	p.due, p.order = nil, nil
	p.stopped = p.stopped || stop
	p.mu.Unlock()
	for _, key := range order {
		due[key]()
	}
}

func (p *Positions) run(ctx context.Context) {
	tick := time.NewTicker(PositionFlush)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.flush(true)
			return
		case <-tick.C:
			p.flush(false)
		}
	}
}
