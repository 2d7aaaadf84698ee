package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultBridgeStopTimeout bounds each bridge's Stop when the context given
// to Manager.Stop is already used up by draining the bus.
const DefaultBridgeStopTimeout = 5 * time.Second

// ManagerOptions configures a Manager.
type ManagerOptions struct {
	Bus    BusOptions
	Router RouterOptions
	// Logger is used by the manager, and by the bus and router when their
	// own options leave Logger nil.
	Logger Logger
	// BridgeStopTimeout: see DefaultBridgeStopTimeout.
	BridgeStopTimeout time.Duration
}

type bridgeState int

const (
	stateRegistered bridgeState = iota // not started (manager not started, or stopped)
	stateStarting
	stateRunning
	stateFailed // Start returned an error
	stateStopping
)

type managed struct {
	b        Bridge
	gen      uint64 // bumped whenever b changes
	state    bridgeState
	startErr error
}

// Manager owns the bridges, the bus and the router. It is safe for
// concurrent use. A Manager runs once: after Stop it cannot be started again
// (a plugin builds a new one on activation).
type Manager struct {
	opts   ManagerOptions
	log    Logger
	bus    *Bus
	router *Router

	// lifecycle serialises Start/Stop/Register/Replace/Remove/Reconfigure;
	// mu guards the fields below and is never held while calling a bridge.
	lifecycle sync.Mutex
	mu        sync.RWMutex
	bridges   map[Network]*managed
	started   bool
	stopped   bool
}

// NewManager builds a manager routing through dir.
func NewManager(dir Directory, opts ManagerOptions) *Manager {
	opts.Logger = orNop(opts.Logger)
	if opts.Bus.Logger == nil {
		opts.Bus.Logger = opts.Logger
	}
	if opts.Router.Logger == nil {
		opts.Router.Logger = opts.Logger
	}
	if opts.BridgeStopTimeout <= 0 {
		opts.BridgeStopTimeout = DefaultBridgeStopTimeout
	}
	m := &Manager{opts: opts, log: opts.Logger, bridges: make(map[Network]*managed)}
	m.bus = NewBus(opts.Bus)
	m.router = NewRouter(dir, BridgeSourceFunc(m.deliverer), m.bus, opts.Router)
	return m
}

// Sink is the router every bridge is started with.
func (m *Manager) Sink() Sink { return m.router }

// Router returns the manager's router.
func (m *Manager) Router() *Router { return m.router }

// Counters are what the router counts (see RouterOptions.Counters).
func (m *Manager) Counters() *Counters { return m.router.Counters() }

// Stats returns the bus statistics.
func (m *Manager) Stats() BusStats { return m.bus.Stats() }

// SetQueueCapacity changes the bus's per-queue capacity in place (see
// Bus.SetQueueCapacity).
func (m *Manager) SetQueueCapacity(n int) { m.bus.SetQueueCapacity(n) }

// Register adds b before Start; Start will start it. It fails if a bridge of
// the same network is registered or the manager was already started (use
// Replace then).
func (m *Manager) Register(b Bridge) error {
	if b == nil {
		return errors.New("bridge: Register(nil)")
	}
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := b.Network()
	if m.started || m.stopped {
		return fmt.Errorf("bridge: Register(%s) after Start; use Replace", n)
	}
	if _, ok := m.bridges[n]; ok {
		return fmt.Errorf("bridge: a %s bridge is already registered", n)
	}
	m.bridges[n] = &managed{b: b}
	return nil
}

// Start starts every registered bridge with the router as its sink. A bridge
// whose Start fails shows StateError in Health and receives nothing; the
// others start regardless. The error joins the failures.
func (m *Manager) Start(ctx context.Context) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	m.mu.Lock()
	if m.started || m.stopped {
		m.mu.Unlock()
		return errors.New("bridge: manager already started")
	}
	m.started = true
	// Mark every bridge starting first, so an event one bridge receives while
	// the next is starting is queued for it (and retried) rather than dropped.
	var todo []*managed
	for _, n := range m.networksLocked() {
		e := m.bridges[n]
		e.state = stateStarting
		todo = append(todo, e)
	}
	m.mu.Unlock()

	var errs []error
	for _, e := range todo {
		if err := m.startLocked(ctx, e, e.b, e.gen); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// startLocked starts b (generation gen of e); lifecycle must be held.
func (m *Manager) startLocked(ctx context.Context, e *managed, b Bridge, gen uint64) error {
	begun := time.Now()
	err := b.Start(ctx, m.router)
	m.mu.Lock()
	if e.gen == gen {
		if err != nil {
			e.state, e.startErr = stateFailed, err
		} else {
			e.state, e.startErr = stateRunning, nil
		}
	}
	m.mu.Unlock()
	if err != nil {
		m.log.Error("bridge: start failed", "network", string(b.Network()), "error", err.Error())
		return fmt.Errorf("starting %s bridge: %w", b.Network(), err)
	}
	m.log.Info("bridge: started", "network", string(b.Network()), "took", time.Since(begun).Round(time.Millisecond).String())
	return nil
}

// stopLocked stops the bridge of e if it runs and leaves e in state after;
// lifecycle must be held. Replace passes stateStopping so that deliveries
// keep seeing a bridge (and retry) until the new one is in place.
func (m *Manager) stopLocked(ctx context.Context, e *managed, after bridgeState) error {
	m.mu.Lock()
	if e.state != stateRunning && e.state != stateStarting {
		if after != stateStopping {
			e.state = after
		}
		m.mu.Unlock()
		return nil
	}
	e.state = stateStopping
	b := e.b
	m.mu.Unlock()

	err := b.Stop(ctx)

	m.mu.Lock()
	e.state = after
	m.mu.Unlock()
	if err != nil {
		m.log.Warn("bridge: stop failed", "network", string(b.Network()), "error", err.Error())
		return fmt.Errorf("stopping %s bridge: %w", b.Network(), err)
	}
	m.log.Info("bridge: stopped", "network", string(b.Network()))
	return nil
}

// Replace puts b in place of the bridge of its network: the old one (if any)
// is stopped, then b is started if the manager runs. Deliveries to the network
// that come due meanwhile fail transiently and are retried, so nothing queued
// is lost to a reconfiguration.
func (m *Manager) Replace(ctx context.Context, b Bridge) error {
	if b == nil {
		return errors.New("bridge: Replace(nil)")
	}
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	return m.replaceLocked(ctx, b)
}

func (m *Manager) replaceLocked(ctx context.Context, b Bridge) error {
	n := b.Network()
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return errors.New("bridge: manager is stopped")
	}
	e := m.bridges[n]
	if e == nil {
		e = &managed{}
		m.bridges[n] = e
	}
	m.mu.Unlock()

	stopErr := m.stopLocked(ctx, e, stateStopping)

	m.mu.Lock()
	e.b, e.startErr = b, nil
	e.gen++
	gen, run := e.gen, m.started
	if run {
		e.state = stateStarting
	} else {
		e.state = stateRegistered
	}
	m.mu.Unlock()
	if !run {
		return stopErr
	}
	return errors.Join(stopErr, m.startLocked(ctx, e, b, gen))
}

// Remove stops the bridge of network n and forgets it. Deliveries still queued
// for n are dropped with reason "no_bridge".
func (m *Manager) Remove(ctx context.Context, n Network) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	return m.removeLocked(ctx, n)
}

func (m *Manager) removeLocked(ctx context.Context, n Network) error {
	m.mu.RLock()
	e := m.bridges[n]
	m.mu.RUnlock()
	if e == nil {
		return nil
	}
	err := m.stopLocked(ctx, e, stateRegistered)
	m.mu.Lock()
	if m.bridges[n] == e {
		delete(m.bridges, n)
	}
	m.mu.Unlock()
	return err
}

// Reconfigure makes the set of bridges match want: bridges of networks
// missing from want are removed, and every bridge of want that is not the
// instance already registered replaces it. Pass the current instance for an
// unchanged network to leave it running. Before Start it only registers.
func (m *Manager) Reconfigure(ctx context.Context, want map[Network]Bridge) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()

	m.mu.RLock()
	current := make(map[Network]Bridge, len(m.bridges))
	for n, e := range m.bridges {
		current[n] = e.b
	}
	m.mu.RUnlock()

	var errs []error
	for _, n := range sortedKeys(current) {
		if want[n] == nil {
			errs = append(errs, m.removeLocked(ctx, n))
		}
	}
	for _, n := range sortedKeys(want) {
		b := want[n]
		if b == nil {
			continue
		}
		if b.Network() != n {
			errs = append(errs, fmt.Errorf("bridge: Reconfigure: bridge of network %s listed under %s", b.Network(), n))
			continue
		}
		if cur, ok := current[n]; ok && sameBridge(cur, b) {
			continue
		}
		errs = append(errs, m.replaceLocked(ctx, b))
	}
	return errors.Join(errs...)
}

// Stop closes the bus, delivering what is queued until ctx is done, then
// stops every bridge. It returns how many queued items were abandoned and
// the bridges' stop errors.
func (m *Manager) Stop(ctx context.Context) (abandoned int, err error) {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return 0, nil
	}
	m.stopped = true
	entries := make([]*managed, 0, len(m.bridges))
	for _, n := range m.networksLocked() {
		entries = append(entries, m.bridges[n])
	}
	m.mu.Unlock()

	// Bridges keep running while the bus drains: they are who delivers.
	abandoned = m.bus.Close(ctx)

	stopCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), m.opts.BridgeStopTimeout)
		defer cancel()
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, m.stopLocked(stopCtx, e, stateRegistered))
	}
	return abandoned, errors.Join(errs...)
}

// Bridge returns the registered bridge of network n, whatever its state.
func (m *Manager) Bridge(n Network) (Bridge, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if e := m.bridges[n]; e != nil {
		return e.b, true
	}
	return nil, false
}

// Health reports every registered bridge: its own Health while it runs,
// StateError with the start error if Start failed, else StateDisabled.
func (m *Manager) Health() map[Network]Health {
	m.mu.RLock()
	type snap struct {
		b     Bridge
		state bridgeState
		err   error
	}
	snaps := make(map[Network]snap, len(m.bridges))
	for n, e := range m.bridges {
		snaps[n] = snap{e.b, e.state, e.startErr}
	}
	m.mu.RUnlock()

	out := make(map[Network]Health, len(snaps))
	for n, s := range snaps {
		switch s.state {
		case stateStarting, stateRunning, stateStopping:
			out[n] = s.b.Health()
		case stateFailed:
			out[n] = Health{State: StateError, LastError: s.err.Error()}
		default:
			out[n] = Health{State: StateDisabled}
		}
	}
	return out
}

// deliverer is the router's view of the bridges: a bridge that is starting,
// running, or being stopped for a replacement is returned wrapped so that
// Deliver fails transiently unless it is the current, started instance.
func (m *Manager) deliverer(n Network) (Bridge, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.bridges[n]
	if e == nil {
		return nil, false
	}
	switch e.state {
	case stateStarting, stateRunning, stateStopping:
		return guardedBridge{Bridge: e.b, m: m, e: e, gen: e.gen}, true
	}
	return nil, false
}

type guardedBridge struct {
	Bridge
	m   *Manager
	e   *managed
	gen uint64
}

func (g guardedBridge) Deliver(ctx context.Context, d *Delivery) (string, error) {
	g.m.mu.RLock()
	ok := g.e.gen == g.gen && g.e.state == stateRunning
	g.m.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrBridgeUnavailable, g.Network())
	}
	return g.Bridge.Deliver(ctx, d)
}

func (m *Manager) networksLocked() []Network {
	ns := make([]Network, 0, len(m.bridges))
	for n := range m.bridges {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

func sortedKeys[V any](mp map[Network]V) []Network {
	ns := make([]Network, 0, len(mp))
	for n := range mp {
		ns = append(ns, n)
	}
	slices.SortFunc(ns, cmp.Compare[Network])
	return ns
}

// sameBridge compares two bridges by identity without panicking on
// non-comparable dynamic types.
func sameBridge(a, b Bridge) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
