package holder

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

// fast is the timing of these tests: the same proportions as the default,
// scaled down.
var fast = Timing{TTL: 2 * time.Second, Renew: 200 * time.Millisecond, Fence: 900 * time.Millisecond, Retry: 50 * time.Millisecond}

const failsafe = 30 * time.Second

type nopLogger struct{}

func (nopLogger) Info(string, ...any) {}
func (nopLogger) Warn(string, ...any) {}

// brokenKV makes a node's lease calls fail while set, as when the node
// lost its database.
type brokenKV struct {
	Leases
	broken atomic.Bool
}

var errDown = errors.New("database unreachable")

func (b *brokenKV) TakeLease(name, holder string, ttl time.Duration) (store.Lease, bool, error) {
	if b.broken.Load() {
		return store.Lease{}, false, errDown
	}
	return b.Leases.TakeLease(name, holder, ttl)
}

func (b *brokenKV) RenewLease(name string, l store.Lease, ttl time.Duration) (bool, error) {
	if b.broken.Load() {
		return false, errDown
	}
	return b.Leases.RenewLease(name, l, ttl)
}

func (b *brokenKV) ReleaseLease(name string, l store.Lease) error {
	if b.broken.Load() {
		return errDown
	}
	return b.Leases.ReleaseLease(name, l)
}

// cluster is n nodes over one KV, each counting whether its work runs;
// overlap records any moment two ran at once.
type cluster struct {
	t       *testing.T
	nodes   []*node
	running atomic.Int32
	overlap atomic.Bool
}

type node struct {
	e      *Elector
	kv     *brokenKV
	cancel context.CancelFunc
	done   chan struct{}
	runs   atomic.Bool
}

func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{t: t}
	shared := memkv.New(nil)
	for i := range n {
		nd := &node{kv: &brokenKV{Leases: store.New(shared.Plugin("p"))}, done: make(chan struct{})}
		nd.e = New(nd.kv, Options{
			Lease: "bridge", Node: string(rune('a' + i)), Timing: fast, Logger: nopLogger{},
			Start: func(context.Context) error {
				if c.running.Add(1) > 1 {
					c.overlap.Store(true)
				}
				nd.runs.Store(true)
				return nil
			},
			Stop: func() {
				nd.runs.Store(false)
				c.running.Add(-1)
			},
		})
		var ctx context.Context
		ctx, nd.cancel = context.WithCancel(context.Background())
		go func() { defer close(nd.done); nd.e.Run(ctx) }()
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.cancel()
			<-nd.done
		}
	})
	return c
}

// holder waits until exactly one node (not except) runs the work.
func (c *cluster) holder(except *node) *node {
	c.t.Helper()
	deadline := time.Now().Add(failsafe)
	for time.Now().Before(deadline) {
		var holders []*node
		for _, nd := range c.nodes {
			if nd.runs.Load() {
				holders = append(holders, nd)
			}
		}
		if len(holders) == 1 && holders[0] != except && holders[0].e.Holding() {
			return holders[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no single node took over")
	return nil
}

func TestOneNodeHoldsAndAnotherTakesOver(t *testing.T) {
	c := newCluster(t, 3)
	first := c.holder(nil)
	// It keeps the lease: many renewals later it still holds alone.
	time.Sleep(3 * fast.TTL)
	if again := c.holder(nil); again != first {
		t.Fatal("the lease moved while its holder was healthy")
	}

	// Deactivation gives the lease back; another node takes it.
	first.cancel()
	<-first.done
	second := c.holder(first)

	// A holder that loses its database stops its work by the fence,
	// before the lease lapses and a third node takes it.
	second.kv.broken.Store(true)
	third := c.holder(second)
	if third == second || second.runs.Load() {
		t.Fatal("the cut-off node still runs")
	}
	if c.overlap.Load() {
		t.Fatal("two nodes ran the work at once")
	}
	// Back on its database, the old holder stays a follower.
	second.kv.broken.Store(false)
	time.Sleep(3 * fast.Renew)
	if c.holder(nil) != third {
		t.Fatal("the lease moved back")
	}
}

// A Start that fails gives the lease back, and the node (or another) tries
// again later.
func TestFailedStartGivesTheLeaseBack(t *testing.T) {
	shared := memkv.New(nil)
	var tries atomic.Int32
	var mu sync.Mutex
	started := false
	e := New(store.New(shared.Plugin("p")), Options{
		Lease: "bridge", Node: "a", Timing: fast, Logger: nopLogger{},
		Start: func(context.Context) error {
			if tries.Add(1) < 3 {
				return errors.New("bot user missing")
			}
			mu.Lock()
			started = true
			mu.Unlock()
			return nil
		},
		Stop: func() {},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(failsafe)
	for !e.Holding() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if !started || tries.Load() != 3 {
		t.Fatalf("started %v after %d tries", started, tries.Load())
	}
}

// A Start slower than the fence (a homeserver that does not answer while
// the bridge starts, a loaded machine) keeps the lease: the node renews it
// while it starts, and holds on once the start is done. The soak saw the
// opposite: every node took the lease, started for a minute, lost the
// lease at once, and nothing was relayed again.
func TestSlowStartKeepsTheLease(t *testing.T) {
	shared := memkv.New(nil)
	slow := 3 * fast.TTL
	var starts, stops atomic.Int32
	var workCtx atomic.Value // the context a's work runs under
	newNode := func(name string) (*Elector, func()) {
		e := New(store.New(shared.Plugin("p")), Options{
			Lease: "bridge", Node: name, Timing: fast, Logger: nopLogger{},
			Start: func(ctx context.Context) error {
				workCtx.CompareAndSwap(nil, ctx)
				starts.Add(1)
				time.Sleep(slow)
				return nil
			},
			Stop: func() { stops.Add(1) },
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx) }()
		return e, func() { cancel(); <-done }
	}
	a, stopA := newNode("a")
	defer stopA()
	deadline := time.Now().Add(failsafe)
	for !a.Holding() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b, stopB := newNode("b")
	defer stopB()
	time.Sleep(slow + 3*fast.TTL)
	if !a.Holding() || b.Holding() {
		t.Fatalf("after a slow start: a holds %v, b holds %v", a.Holding(), b.Holding())
	}
	if n, s := starts.Load(), stops.Load(); n != 1 || s != 0 {
		t.Fatalf("%d starts and %d stops, want one start and no stop", n, s)
	}
	// The work runs under the context Start was given until it stops.
	if err := workCtx.Load().(context.Context).Err(); err != nil {
		t.Fatalf("the work's context ended while the node holds: %v", err)
	}
}

// A node that loses its database while starting stops starting (its
// start's context ends) rather than start work it no longer holds.
func TestLeaseLostWhileStartingCutsTheStartShort(t *testing.T) {
	kv := &brokenKV{Leases: store.New(memkv.New(nil).Plugin("p"))}
	entered := make(chan struct{})
	ended := make(chan error, 1)
	e := New(kv, Options{
		Lease: "bridge", Node: "a", Timing: fast, Logger: nopLogger{},
		Start: func(ctx context.Context) error {
			close(entered)
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
				return ctx.Err()
			case <-time.After(failsafe):
				ended <- nil
				return nil
			}
		},
		Stop: func() {},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-entered
	kv.broken.Store(true)
	if err := <-ended; err == nil {
		t.Fatal("the start ran to its end after the lease was lost")
	}
	if e.Holding() {
		t.Fatal("the node holds a lease it could not renew")
	}
}
