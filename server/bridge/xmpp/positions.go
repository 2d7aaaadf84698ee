package xmpp

import (
	"context"
	"sync"
	"time"
)

// positionFlush is how often the rooms' archive positions are saved: one
// write per busy room per interval, rather than one per message. A crash
// reads at most this much of an archive again, which the core recognizes
// as bridged already; a stop saves them all.
const positionFlush = 500 * time.Millisecond

// positions holds each room's newest settled archive position until it is
// saved.
type positions struct {
	save func(room, pos string)

	mu      sync.Mutex
	due     map[string]string
	stopped bool
}

// note takes pos as room's position to save next; once the saver stopped
// (see run), it is saved at once.
func (p *positions) note(room, pos string) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		p.save(room, pos)
		return
	}
	if p.due == nil {
		p.due = map[string]string{}
	}
	p.due[room] = pos
	p.mu.Unlock()
}

func (p *positions) flush(stop bool) {
	p.mu.Lock()
	due := p.due
	p.due = nil
	p.stopped = p.stopped || stop
	p.mu.Unlock()
	for room, pos := range due {
		p.save(room, pos)
	}
}

// run saves the due positions every positionFlush until ctx ends, then
// the last ones.
func (p *positions) run(ctx context.Context) {
	tick := time.NewTicker(positionFlush)
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

// positionSaver is the running bridge's; before a start, positions are
// saved at once.
func (b *Bridge) positionSaver() *positions {
	if p := b.positions.Load(); p != nil {
		return p
	}
	return &positions{save: b.saveArchivePosition, stopped: true}
}
