// Package holder chooses the one node of a Mattermost cluster that holds
// the bridge's connections (XMPP session and ghosts, Slack socket, Matrix
// background work), with a lease in the plugin's KV store. Every node runs
// an Elector; the one whose lease is current runs the work, the others try
// again every second, so when the holder dies another node takes over once
// its lease lapses, and at once when it gives the lease back.
//
// A holder that cannot renew its lease stops its work well before the
// lease can lapse (the fence), so two nodes never run the work at once:
// the next holder can take the lease only after it lapsed, by which time
// the old one has stopped.
package holder

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Leases is the part of the store an Elector uses.
type Leases interface {
	TakeLease(name, holder string, ttl time.Duration) (store.Lease, bool, error)
	RenewLease(name string, l store.Lease, ttl time.Duration) (bool, error)
	ReleaseLease(name string, l store.Lease) error
}

// Logger is what an Elector logs through.
type Logger interface {
	Info(msg string, keyValuePairs ...any)
	Warn(msg string, keyValuePairs ...any)
}

// Timing is how an Elector paces itself. The defaults: a lease lasts 9 s
// and is renewed every 1.5 s; a holder stops its work when 4 s went by
// without a renewal, which leaves 5 s for the work to stop before the
// lease can lapse; the others try to take it every second.
type Timing struct {
	TTL   time.Duration
	Renew time.Duration
	Fence time.Duration
	Retry time.Duration
}

// DefaultTiming is the timing of a real cluster.
var DefaultTiming = Timing{TTL: 9 * time.Second, Renew: 1500 * time.Millisecond, Fence: 4 * time.Second, Retry: time.Second}

// Options configure an Elector.
type Options struct {
	// Lease names the lease; Node is this node's ID, unique to this
	// activation.
	Lease, Node string
	// Start begins the work once this node holds the lease; an error gives
	// the lease back and the node tries again later. Stop ends it when the
	// lease is lost or given up; it must return within TTL-Fence.
	Start  func(ctx context.Context) error
	Stop   func()
	Timing Timing
	Logger Logger
}

// Elector takes, keeps and gives up one node's lease.
type Elector struct {
	leases Leases
	o      Options
	wake   chan struct{}

	// work serialises Start and Stop: a fence firing during a Start waits
	// for it, then stops what it started.
	work sync.Mutex

	mu      sync.Mutex
	holding bool
	lease   store.Lease
	gen     int
	fence   *time.Timer
	// starting says Start runs; cancelStart cuts it short.
	starting    bool
	cancelStart context.CancelFunc
}

// New returns an Elector; Run starts it.
func New(leases Leases, o Options) *Elector {
	if o.Timing == (Timing{}) {
		o.Timing = DefaultTiming
	}
	return &Elector{leases: leases, o: o, wake: make(chan struct{}, 1)}
}

// Holding reports whether this node holds the lease and runs the work.
func (e *Elector) Holding() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holding
}

// Wake makes a waiting node try to take the lease now (another node gave
// it up).
func (e *Elector) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// TryTake makes one attempt to take the lease and start the work; it is
// what activation does before Run, so a lone node starts its work at once.
// err is Start's error (the lease was given back); a lease held by another
// node, or one the store could not take, is no error.
func (e *Elector) TryTake(ctx context.Context) (held bool, err error) {
	if e.Holding() {
		return true, nil
	}
	begun := time.Now()
	l, ok, err := e.leases.TakeLease(e.o.Lease, e.o.Node, e.o.Timing.TTL)
	if err != nil {
		e.o.Logger.Warn("Could not take the bridge's lease", "error", err.Error())
		return false, nil
	}
	if !ok {
		return false, nil
	}
	e.work.Lock()
	defer e.work.Unlock()
	e.mu.Lock()
	e.holding, e.lease = true, l
	e.gen++
	gen := e.gen
	e.fence = time.AfterFunc(e.o.Timing.Fence-time.Since(begun), func() { e.lose(gen, "its lease was not renewed in time") })
	// A start may take longer than the fence (a server that does not
	// answer, a loaded machine): the lease is renewed meanwhile, and a
	// lease lost meanwhile cuts the start short.
	// startCtx is the work's context: it ends with a failed start, or
	// with a lease lost while starting.
	startCtx, cancelStart := context.WithCancel(ctx)
	e.starting, e.cancelStart = true, cancelStart
	e.mu.Unlock()
	started := make(chan struct{})
	go e.renewUntil(started)
	err = e.o.Start(startCtx)
	close(started)
	e.mu.Lock()
	e.starting = false
	e.mu.Unlock()
	if err != nil {
		cancelStart()
		e.o.Logger.Warn("Could not start the bridge's work on this node; giving the lease back", "error", err.Error())
		e.mu.Lock()
		e.fence.Stop()
		e.holding = false
		e.mu.Unlock()
		e.release(l)
		return false, err
	}
	e.o.Logger.Info("This node holds the bridge's connections", "node", e.o.Node)
	return true, nil
}

// renewUntil renews the lease every Renew until done is closed.
func (e *Elector) renewUntil(done <-chan struct{}) {
	t := time.NewTicker(e.o.Timing.Renew)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			e.renew()
		}
	}
}

// Run keeps the lease while ctx lasts, or tries to take it every Retry;
// when ctx ends it stops the work and gives the lease back.
func (e *Elector) Run(ctx context.Context) {
	defer e.giveUp()
	for {
		wait := e.o.Timing.Retry
		if e.Holding() {
			wait = e.o.Timing.Renew
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.wake:
			t.Stop()
		case <-t.C:
		}
		if e.Holding() {
			e.renew()
		} else {
			_, _ = e.TryTake(ctx) // a failed Start was logged; try again later
		}
	}
}

func (e *Elector) renew() {
	e.mu.Lock()
	l, gen := e.lease, e.gen
	e.mu.Unlock()
	begun := time.Now()
	ok, err := e.leases.RenewLease(e.o.Lease, l, e.o.Timing.TTL)
	switch {
	case err != nil:
		// The fence stops the work if this goes on.
		e.o.Logger.Warn("Could not renew the bridge's lease", "error", err.Error())
	case !ok:
		e.lose(gen, "its lease went to another node")
	default:
		e.mu.Lock()
		if e.holding && e.gen == gen {
			e.fence.Reset(e.o.Timing.Fence - time.Since(begun))
		}
		e.mu.Unlock()
	}
}

// lose stops the work of acquisition gen, if it still runs.
func (e *Elector) lose(gen int, why string) {
	e.mu.Lock()
	if e.holding && e.gen == gen && e.starting {
		e.cancelStart() // a start still running ends before the work lock is free
	}
	e.mu.Unlock()
	e.work.Lock()
	defer e.work.Unlock()
	e.mu.Lock()
	if !e.holding || e.gen != gen {
		e.mu.Unlock()
		return
	}
	e.holding = false
	e.fence.Stop()
	l := e.lease
	e.mu.Unlock()
	e.o.Logger.Warn("This node stops holding the bridge's connections", "reason", why)
	e.o.Stop()
	// Harmless if the lease is already another's; lets the others in at
	// once if it is still ours.
	e.release(l)
}

// giveUp stops the work and gives the lease back (deactivation).
func (e *Elector) giveUp() {
	e.mu.Lock()
	gen, holding := e.gen, e.holding
	e.mu.Unlock()
	if holding {
		e.lose(gen, "the plugin is stopping on this node")
	}
}

func (e *Elector) release(l store.Lease) {
	if err := e.leases.ReleaseLease(e.o.Lease, l); err != nil && !errors.Is(err, context.Canceled) {
		e.o.Logger.Warn("Could not give the bridge's lease back; another node takes it when it lapses", "error", err.Error())
	}
}
