package bridge

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

type managerEnv struct {
	m   *Manager
	dir *fakeDirectory
	out chan routed
}

func newManagerEnv(t *testing.T) *managerEnv {
	t.Helper()
	e := &managerEnv{dir: newFakeDirectory(), out: make(chan routed, 100)}
	e.dir.link("chan1", mmRoom, xmppRoom, matrixRoom)
	e.m = NewManager(e.dir, ManagerOptions{
		Bus: BusOptions{InitialBackoff: 1e6, MaxBackoff: 2e6},
		Router: RouterOptions{
			OnDelivered: func(_ string, dest Ref, ev Event, id string) {
				e.out <- routed{dest: dest, ev: ev, nativeID: id}
			},
			OnDropped: func(_ string, dest Ref, ev Event, reason string, err error) {
				e.out <- routed{dest: dest, ev: ev, reason: reason, err: err}
			},
		},
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _ = e.m.Stop(ctx)
	})
	return e
}

func TestManagerStartAndHealth(t *testing.T) {
	e := newManagerEnv(t)
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	mx := newFakeBridge(NetworkMatrix, allCaps())
	mx.startErr = errors.New("bad homeserver URL")
	for _, b := range []Bridge{mm, x, mx} {
		if err := e.m.Register(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.Register(newFakeBridge(NetworkXMPP, allCaps())); err == nil {
		t.Fatal("registered two XMPP bridges")
	}
	for n, h := range e.m.Health() {
		if h.State != StateDisabled {
			t.Fatalf("%s before Start: %+v", n, h)
		}
	}

	err := e.m.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad homeserver URL") {
		t.Fatalf("Start = %v", err)
	}
	h := e.m.Health()
	if h[NetworkMattermost].State != StateConnected || h[NetworkXMPP].State != StateConnected {
		t.Fatalf("health = %+v", h)
	}
	if h[NetworkMatrix].State != StateError || h[NetworkMatrix].LastError != "bad homeserver URL" {
		t.Fatalf("matrix health = %+v", h[NetworkMatrix])
	}
	if x.currentSink() != e.m.Sink() {
		t.Fatal("bridge not started with the router as sink")
	}
	if b, ok := e.m.Bridge(NetworkMatrix); !ok || b != mx {
		t.Fatal("Bridge(matrix)")
	}
	if _, ok := e.m.Bridge(NetworkSlack); ok {
		t.Fatal("Bridge(slack)")
	}
	if err := e.m.Register(newFakeBridge(NetworkSlack, allCaps())); err == nil {
		t.Fatal("Register after Start succeeded")
	}
	if err := e.m.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}

	// Events flow between the running bridges; the failed one gets nothing.
	if err := mm.currentSink().Receive(context.Background(), message(mmRoom, "p1", "hi")); err != nil {
		t.Fatal(err)
	}
	got := map[Network]routed{}
	for range 2 {
		o := recv(t, e.out, "outcome")
		got[o.dest.Network] = o
	}
	if got[NetworkXMPP].reason != "" || got[NetworkMatrix].reason != ReasonNoBridge {
		t.Fatalf("outcomes = %+v", got)
	}
	if s := e.m.Stats(); s.Delivered != 1 || s.Drops[ReasonNoBridge] != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestManagerReplaceKeepsQueuedDeliveries(t *testing.T) {
	e := newManagerEnv(t)
	mm := newFakeBridge(NetworkMattermost, allCaps())
	old := newFakeBridge(NetworkXMPP, allCaps())
	if err := e.m.Register(mm); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Register(old); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	entered, gate := make(chan struct{}), make(chan struct{})
	old.setHook(func(ctx context.Context, d *Delivery) error {
		close(entered)
		<-gate
		return errors.New("connection closed")
	})
	if err := e.m.Sink().Receive(context.Background(), message(mmRoom, "p1", "hi")); err != nil {
		t.Fatal(err)
	}
	if o := recv(t, e.out, "matrix drop"); o.reason != ReasonNoBridge {
		t.Fatalf("outcome = %+v", o)
	}
	recv(t, entered, "delivery to the old bridge")

	repl := newFakeBridge(NetworkXMPP, allCaps())
	if err := e.m.Replace(context.Background(), repl); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if o := recv(t, e.out, "delivery"); o.reason != "" || o.nativeID != "xmpp-1" {
		t.Fatalf("outcome = %+v", o)
	}
	if texts := repl.texts(); !slices.Equal(texts, []string{"hi"}) {
		t.Fatalf("new bridge got %q", texts)
	}
	if _, stops, attempts := old.counts(); stops != 1 || attempts != 1 {
		t.Fatalf("old bridge: %d stops, %d attempts", stops, attempts)
	}
	if starts, stops, _ := repl.counts(); starts != 1 || stops != 0 {
		t.Fatalf("new bridge: %d starts, %d stops", starts, stops)
	}
	if b, _ := e.m.Bridge(NetworkXMPP); b != repl {
		t.Fatal("Bridge(xmpp) is not the replacement")
	}
}

func TestManagerReconfigure(t *testing.T) {
	e := newManagerEnv(t)
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	mx := newFakeBridge(NetworkMatrix, allCaps())
	// Before Start, Reconfigure only registers.
	if err := e.m.Reconfigure(context.Background(), map[Network]Bridge{
		NetworkMattermost: mm, NetworkXMPP: x, NetworkMatrix: mx,
	}); err != nil {
		t.Fatal(err)
	}
	if starts, _, _ := x.counts(); starts != 0 {
		t.Fatal("started before Start")
	}
	if err := e.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	x2 := newFakeBridge(NetworkXMPP, allCaps())
	sl := newFakeBridge(NetworkSlack, allCaps())
	err := e.m.Reconfigure(context.Background(), map[Network]Bridge{
		NetworkMattermost: mm, // unchanged
		NetworkXMPP:       x2, // new settings
		NetworkSlack:      sl, // newly enabled
		// Matrix disabled
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, b *fakeBridge, starts, stops int) {
		t.Helper()
		if s, st, _ := b.counts(); s != starts || st != stops {
			t.Fatalf("%s: %d starts, %d stops; want %d, %d", name, s, st, starts, stops)
		}
	}
	check("mattermost", mm, 1, 0)
	check("old xmpp", x, 1, 1)
	check("new xmpp", x2, 1, 0)
	check("matrix", mx, 1, 1)
	check("slack", sl, 1, 0)
	h := e.m.Health()
	if _, ok := h[NetworkMatrix]; ok || len(h) != 3 {
		t.Fatalf("health = %+v", h)
	}
	if err := e.m.Reconfigure(context.Background(), map[Network]Bridge{NetworkMatrix: x}); err == nil {
		t.Fatal("accepted a bridge under the wrong network")
	}
}

func TestManagerStopDrainsThenStopsBridges(t *testing.T) {
	e := newManagerEnv(t)
	trace := &traceLog{}
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	mx := newFakeBridge(NetworkMatrix, allCaps())
	for _, b := range []*fakeBridge{mm, x, mx} {
		b.log = trace
		if err := e.m.Register(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	entered, gate := make(chan struct{}), make(chan struct{})
	x.setHook(func(ctx context.Context, d *Delivery) error {
		if d.Text == "one" {
			close(entered)
			<-gate
		}
		return nil
	})
	for _, ev := range []Event{message(mmRoom, "p1", "one"), message(mmRoom, "p2", "two")} {
		if err := e.m.Sink().Receive(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, entered, "xmpp busy")
	type result struct {
		n   int
		err error
	}
	stopped := make(chan result)
	go func() {
		n, err := e.m.Stop(context.Background())
		stopped <- result{n, err}
	}()
	close(gate)
	if r := recv(t, stopped, "Stop"); r.n != 0 || r.err != nil {
		t.Fatalf("Stop = %+v", r)
	}
	if texts := x.texts(); !slices.Equal(texts, []string{"one", "two"}) {
		t.Fatalf("xmpp got %q", texts)
	}
	for _, b := range []*fakeBridge{mm, x, mx} {
		if _, stops, _ := b.counts(); stops != 1 {
			t.Fatalf("%s stopped %d times", b.network, stops)
		}
	}
	// Every delivery happened before any bridge stopped.
	lines := trace.get()
	firstStop := slices.IndexFunc(lines, func(s string) bool { return strings.HasSuffix(s, " stop") })
	lastDeliver := -1
	for i, s := range lines {
		if strings.Contains(s, " deliver ") {
			lastDeliver = i
		}
	}
	if firstStop < lastDeliver || lastDeliver < 0 {
		t.Fatalf("trace = %q", lines)
	}
	for n, h := range e.m.Health() {
		if h.State != StateDisabled {
			t.Fatalf("%s after Stop: %+v", n, h)
		}
	}
	if err := e.m.Sink().Receive(context.Background(), message(mmRoom, "p3", "late")); !errors.Is(err, ErrBusClosed) {
		t.Fatalf("Receive after Stop = %v", err)
	}
	if err := e.m.Start(context.Background()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	if n, err := e.m.Stop(context.Background()); n != 0 || err != nil {
		t.Fatal("second Stop")
	}
}

func TestManagerConcurrentUse(t *testing.T) {
	e := newManagerEnv(t)
	mm := newFakeBridge(NetworkMattermost, allCaps())
	if err := e.m.Register(mm); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Register(newFakeBridge(NetworkXMPP, allCaps())); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 20 {
			if err := e.m.Replace(context.Background(), newFakeBridge(NetworkXMPP, allCaps())); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() {
		for range 50 {
			e.m.Health()
			e.m.Stats()
			e.m.Bridge(NetworkXMPP)
		}
	})
	for i := range 20 {
		if err := e.m.Sink().Receive(context.Background(), message(mmRoom, string(rune('a'+i)), "x")); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	// Every message reaches the XMPP bridge of the moment (retrying while it
	// is being replaced); Matrix has no bridge.
	delivered := 0
	for range 40 {
		if o := recv(t, e.out, "outcome"); o.reason == "" {
			delivered++
		}
	}
	if delivered != 20 {
		t.Fatalf("delivered %d of 20", delivered)
	}
}
