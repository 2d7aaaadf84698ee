package bridge

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// guard is how long a test waits for something that should happen before
// declaring it hung. It is a failsafe, never an expected duration.
const guard = 10 * time.Second

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitFor polls cond until it holds, failing the test after guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeBridge is an in-memory Bridge. Deliver records what it got and returns
// "<network>-<n>" for messages and the TargetID otherwise; hook, when set,
// runs first and its error (if any) is returned instead.
type fakeBridge struct {
	network Network
	caps    Capabilities

	mu         sync.Mutex
	hook       func(ctx context.Context, d *Delivery) error
	deliveries []Delivery
	attempts   int
	next       int
	startErr   error
	starts     int
	stops      int
	sink       Sink
	log        *traceLog // shared event log, optional
}

// traceLog is an event log several fakes can share.
type traceLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *traceLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *traceLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func newFakeBridge(n Network, caps Capabilities) *fakeBridge {
	return &fakeBridge{network: n, caps: caps}
}

func allCaps() Capabilities {
	return Capabilities{Edits: true, Deletes: true, Reactions: true, Threads: true, Files: true}
}

func (f *fakeBridge) Network() Network { return f.network }

func (f *fakeBridge) Start(_ context.Context, sink Sink) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	f.note("start")
	if f.startErr != nil {
		return f.startErr
	}
	f.sink = sink
	return nil
}

func (f *fakeBridge) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops++
	f.note("stop")
	return nil
}

func (f *fakeBridge) note(s string) {
	if f.log != nil {
		f.log.add(string(f.network) + " " + s)
	}
}

func (f *fakeBridge) setHook(h func(ctx context.Context, d *Delivery) error) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *fakeBridge) Deliver(ctx context.Context, d *Delivery) (string, error) {
	f.mu.Lock()
	f.attempts++
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, d); err != nil {
			return "", err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliveries = append(f.deliveries, *d)
	f.note("deliver " + d.Text)
	if d.Kind == KindMessage {
		f.next++
		return fmt.Sprintf("%s-%d", f.network, f.next), nil
	}
	return d.TargetID, nil
}

func (f *fakeBridge) Health() Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sink == nil {
		return Health{State: StateDisconnected}
	}
	return Health{State: StateConnected}
}

func (f *fakeBridge) Capabilities() Capabilities { return f.caps }

func (f *fakeBridge) got() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.deliveries...)
}

func (f *fakeBridge) texts() []string {
	var out []string
	for _, d := range f.got() {
		out = append(out, d.Text)
	}
	return out
}

func (f *fakeBridge) counts() (starts, stops, attempts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts, f.stops, f.attempts
}

func (f *fakeBridge) currentSink() Sink {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sink
}

// fakeDirectory keeps links and bridged-message groups in memory, with the
// semantics the KV store is expected to have.
type fakeDirectory struct {
	mu     sync.Mutex
	links  map[string][]Ref // link ID -> rooms (IDs empty)
	groups map[string]int   // message key -> group
	origin map[int]Ref      // group -> origin message
	author map[int]string   // group -> who wrote the origin
	member map[int]map[string]string
	nextG  int
	early  []EarlyDelete

	recordErr func(origin, dest Ref) error
	originOf  func(msg Ref) // called at the start of OriginOf
}

func newFakeDirectory() *fakeDirectory {
	return &fakeDirectory{
		links:  map[string][]Ref{},
		groups: map[string]int{},
		origin: map[int]Ref{},
		author: map[int]string{},
		member: map[int]map[string]string{},
	}
}

func (d *fakeDirectory) link(id string, rooms ...Ref) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.links[id] = rooms
}

func (d *fakeDirectory) LinkedRooms(_ context.Context, room Ref) (string, []Ref, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, rooms := range d.links {
		for _, r := range rooms {
			if r.RoomKey() == room.RoomKey() {
				var out []Ref
				for _, o := range rooms {
					if o.RoomKey() != room.RoomKey() {
						out = append(out, o)
					}
				}
				return id, out, nil
			}
		}
	}
	return "", nil, ErrNotLinked
}

func (d *fakeDirectory) Counterpart(_ context.Context, msg Ref, destRoom Ref) (string, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.groups[msg.Key()]
	if !ok {
		return "", false, nil
	}
	id, ok := d.member[g][destRoom.RoomKey()]
	return id, ok, nil
}

func (d *fakeDirectory) CopyOf(ctx context.Context, msg Ref, destRoom Ref) (string, bool, bool, error) {
	origin, known, err := d.OriginOf(ctx, msg)
	if err != nil {
		return "", false, false, err
	}
	id, ok, err := d.Counterpart(ctx, msg, destRoom)
	return id, ok, known && origin.Key() != msg.Key(), err
}

func (d *fakeDirectory) RecordCounterpart(_ context.Context, origin Ref, dest Ref, author string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.recordErr != nil {
		if err := d.recordErr(origin, dest); err != nil {
			return err
		}
	}
	g, ok := d.groups[origin.Key()]
	if !ok {
		d.nextG++
		g = d.nextG
		d.groups[origin.Key()] = g
		d.origin[g] = origin
		d.author[g] = author
		d.member[g] = map[string]string{origin.RoomKey(): origin.ID}
	}
	d.groups[dest.Key()] = g
	d.member[g][dest.RoomKey()] = dest.ID
	return nil
}

func (d *fakeDirectory) OriginOf(_ context.Context, msg Ref) (Ref, bool, error) {
	if d.originOf != nil {
		d.originOf(msg)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.groups[msg.Key()]
	if !ok {
		return Ref{}, false, nil
	}
	return d.origin[g], true, nil
}

func (d *fakeDirectory) AuthorOf(_ context.Context, msg Ref) (Ref, string, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.groups[msg.Key()]
	if !ok {
		return Ref{}, "", false, nil
	}
	return d.origin[g], d.author[g], true, nil
}

// fakePluginAPI records LogX calls.
type fakePluginAPI struct {
	mu    sync.Mutex
	lines []string
}

func (p *fakePluginAPI) add(level, msg string, kv ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, fmt.Sprint(level, " ", msg, " ", kv))
}

func (p *fakePluginAPI) LogDebug(msg string, kv ...any) { p.add("debug", msg, kv...) }
func (p *fakePluginAPI) LogInfo(msg string, kv ...any)  { p.add("info", msg, kv...) }
func (p *fakePluginAPI) LogWarn(msg string, kv ...any)  { p.add("warn", msg, kv...) }
func (p *fakePluginAPI) LogError(msg string, kv ...any) { p.add("error", msg, kv...) }

func (d *fakeDirectory) RecordEarlyDelete(_ context.Context, e EarlyDelete) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.early = append(d.early, e)
	return nil
}

func (d *fakeDirectory) EarlyDeletes(context.Context) ([]EarlyDelete, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]EarlyDelete(nil), d.early...), nil
}
