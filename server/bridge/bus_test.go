package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastBus retries almost at once so tests do not wait on backoff.
func fastBus(t *testing.T, opts BusOptions) *Bus {
	t.Helper()
	if opts.InitialBackoff == 0 {
		opts.InitialBackoff = time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 2 * time.Millisecond
	}
	b := NewBus(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b.Close(ctx)
	})
	return b
}

func mustEnqueue(t *testing.T, b *Bus, key QueueKey, it Item) {
	t.Helper()
	if err := b.Enqueue(key, it); err != nil {
		t.Fatalf("Enqueue(%v): %v", key, err)
	}
}

type outcome struct {
	label  string
	reason string
	err    error
}

// collector gathers item outcomes and a shared trace of what ran.
type collector struct {
	mu    sync.Mutex
	trace []string
	done  chan outcome
}

func newCollector() *collector { return &collector{done: make(chan outcome, 100)} }

func (c *collector) log(s string) {
	c.mu.Lock()
	c.trace = append(c.trace, s)
	c.mu.Unlock()
}

func (c *collector) traced() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.trace)
}

func (c *collector) item(label string, task Task) Item {
	return Item{Label: label, Task: task, Done: func(reason string, err error) {
		c.done <- outcome{label, reason, err}
	}}
}

func (c *collector) wait(t *testing.T, n int) []outcome {
	t.Helper()
	var out []outcome
	for range n {
		out = append(out, recv(t, c.done, "item outcome"))
	}
	return out
}

func TestBusOrderHoldsUnderRetries(t *testing.T) {
	b := fastBus(t, BusOptions{})
	c := newCollector()
	key := QueueKey{"link", "xmpp|room"}
	failures := 3
	for i := 1; i <= 5; i++ {
		label := fmt.Sprint(i)
		err := b.Enqueue(key, c.item(label, func(context.Context) error {
			c.log("try " + label)
			if label == "2" && failures > 0 {
				failures--
				return errors.New("destination unavailable")
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, o := range c.wait(t, 5) {
		if o.label != fmt.Sprint(i+1) || o.reason != "" {
			t.Fatalf("outcome %d = %+v", i, o)
		}
	}
	want := []string{"try 1", "try 2", "try 2", "try 2", "try 2", "try 3", "try 4", "try 5"}
	if got := c.traced(); !slices.Equal(got, want) {
		t.Fatalf("trace = %v, want %v", got, want)
	}
	qs, _ := b.QueueStats(key)
	if qs.Delivered != 5 || qs.Retries != 3 || len(qs.Drops) != 0 || qs.Depth != 0 {
		t.Fatalf("stats = %+v", qs)
	}
	if qs.LastError != "destination unavailable" {
		t.Fatalf("last error = %q", qs.LastError)
	}
}

func TestBusHangingAndFailingQueuesDoNotDelayOthers(t *testing.T) {
	b := fastBus(t, BusOptions{AttemptTimeout: -1})
	c := newCollector()
	hung := QueueKey{"link", "xmpp|hang"}
	failing := QueueKey{"link", "matrix|fail"}
	ok := QueueKey{"link", "slack|ok"}

	entered := make(chan struct{})
	returned := make(chan struct{})
	mustEnqueue(t, b, hung, c.item("hang", func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		close(returned)
		return ctx.Err()
	}))
	mustEnqueue(t, b, hung, c.item("behind-hang", func(context.Context) error { return nil }))

	failed := make(chan struct{}, 100)
	var release sync.Once
	stopFailing := make(chan struct{})
	mustEnqueue(t, b, failing, c.item("fail", func(context.Context) error {
		select {
		case <-stopFailing:
			return nil
		default:
		}
		failed <- struct{}{}
		return errors.New("503")
	}))

	recv(t, entered, "hanging task to start")
	recv(t, failed, "failing task to fail once")
	for i := range 3 {
		mustEnqueue(t, b, ok, c.item(fmt.Sprint("ok", i), func(context.Context) error { return nil }))
	}
	for i, o := range c.wait(t, 3) {
		if o.label != fmt.Sprint("ok", i) || o.reason != "" {
			t.Fatalf("outcome %d = %+v", i, o)
		}
	}
	select {
	case <-returned:
		t.Fatal("hanging task returned early")
	default:
	}
	recv(t, failed, "failing task to be retried")
	release.Do(func() { close(stopFailing) })
	if o := recv(t, c.done, "failing task to succeed"); o.label != "fail" || o.reason != "" {
		t.Fatalf("outcome = %+v", o)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := b.Close(ctx); n != 2 {
		t.Fatalf("Close abandoned %d, want 2", n)
	}
	recv(t, returned, "hanging task to see cancellation")
	got := c.wait(t, 2)
	for _, o := range got {
		if o.reason != ReasonShutdown {
			t.Fatalf("outcome = %+v", o)
		}
	}
	s := b.Stats()
	if s.Abandoned != 2 || s.Drops[ReasonShutdown] != 2 || s.Delivered != 4 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestBusPermanentErrorsDropAndContinue(t *testing.T) {
	var drops []string
	var mu sync.Mutex
	b := fastBus(t, BusOptions{OnDrop: func(key QueueKey, label, reason string, err error) {
		mu.Lock()
		drops = append(drops, fmt.Sprintf("%s %s %s %v", key.Dest, label, reason, err))
		mu.Unlock()
	}})
	c := newCollector()
	key := QueueKey{"link", "xmpp|room"}
	attempts := map[string]int{}
	task := func(label string, err error) Task {
		return func(context.Context) error {
			attempts[label]++ // only this queue's goroutine touches it
			return err
		}
	}
	mustEnqueue(t, b, key, c.item("1", task("1", nil)))
	mustEnqueue(t, b, key, c.item("2", task("2", Permanent(errors.New("forbidden")))))
	mustEnqueue(t, b, key, c.item("3", task("3", Dropf("too_large", "file is %d MB", 80))))
	mustEnqueue(t, b, key, c.item("4", func(context.Context) error { panic("boom") }))
	mustEnqueue(t, b, key, c.item("5", task("5", nil)))

	got := c.wait(t, 5)
	wantReasons := []string{"", ReasonPermanent, "too_large", ReasonPanic, ""}
	for i, o := range got {
		if o.reason != wantReasons[i] {
			t.Fatalf("outcome %d = %+v, want reason %q", i, o, wantReasons[i])
		}
	}
	if got[1].err.Error() != "forbidden" || got[2].err.Error() != "file is 80 MB" {
		t.Fatalf("errors = %v, %v", got[1].err, got[2].err)
	}
	if attempts["2"] != 1 || attempts["3"] != 1 {
		t.Fatalf("permanent errors were retried: %v", attempts)
	}
	qs, _ := b.QueueStats(key)
	if qs.Delivered != 2 || qs.Retries != 0 ||
		qs.Drops[ReasonPermanent] != 1 || qs.Drops["too_large"] != 1 || qs.Drops[ReasonPanic] != 1 {
		t.Fatalf("stats = %+v", qs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(drops) != 3 || drops[0] != "xmpp|room 2 permanent forbidden" || drops[1] != "xmpp|room 3 too_large file is 80 MB" {
		t.Fatalf("OnDrop calls = %q", drops)
	}
}

func TestBusQueueFull(t *testing.T) {
	var onDrop []string
	b := fastBus(t, BusOptions{QueueCapacity: 2, OnDrop: func(_ QueueKey, label, reason string, _ error) {
		onDrop = append(onDrop, label+" "+reason) // called on this goroutine
	}})
	c := newCollector()
	key := QueueKey{"link", "xmpp|room"}
	entered, gate := make(chan struct{}), make(chan struct{})
	mustEnqueue(t, b, key, c.item("1", func(context.Context) error {
		close(entered)
		<-gate
		return nil
	}))
	recv(t, entered, "first task")
	if err := b.Enqueue(key, c.item("2", func(context.Context) error { return nil })); err != nil {
		t.Fatal(err)
	}
	err := b.Enqueue(key, c.item("3", func(context.Context) error { return nil }))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err = %v, want ErrQueueFull", err)
	}
	// Done ran before Enqueue returned.
	if o := recv(t, c.done, "rejected item outcome"); o.label != "3" || o.reason != ReasonQueueFull {
		t.Fatalf("outcome = %+v", o)
	}
	if !slices.Equal(onDrop, []string{"3 queue_full"}) {
		t.Fatalf("OnDrop = %v", onDrop)
	}
	other := QueueKey{"link", "matrix|room"}
	if err := b.Enqueue(other, c.item("other", func(context.Context) error { return nil })); err != nil {
		t.Fatalf("other queue: %v", err)
	}
	if o := recv(t, c.done, "other queue"); o.label != "other" || o.reason != "" {
		t.Fatalf("outcome = %+v", o)
	}
	qs, _ := b.QueueStats(key)
	if qs.Depth != 2 || qs.Drops[ReasonQueueFull] != 1 {
		t.Fatalf("stats = %+v", qs)
	}
	close(gate)
	if got := c.wait(t, 2); got[0].label != "1" || got[1].label != "2" {
		t.Fatalf("outcomes = %+v", got)
	}
}

func TestBusCloseDrains(t *testing.T) {
	b := fastBus(t, BusOptions{})
	c := newCollector()
	closing := make(chan struct{})
	b.onClosing = func() { close(closing) }
	gate := make(chan struct{})
	failures := 1
	for i := range 6 {
		key := QueueKey{"link", fmt.Sprint("net|room", i%2)}
		label := fmt.Sprint(i)
		mustEnqueue(t, b, key, c.item(label, func(ctx context.Context) error {
			<-gate
			if label == "0" && failures > 0 {
				failures--
				return errors.New("transient")
			}
			return nil
		}))
	}
	closed := make(chan int)
	go func() { closed <- b.Close(context.Background()) }()
	recv(t, closing, "Close to start")

	err := b.Enqueue(QueueKey{"link", "net|room0"}, c.item("late", func(context.Context) error { return nil }))
	if !errors.Is(err, ErrBusClosed) {
		t.Fatalf("Enqueue after Close: %v", err)
	}
	if o := recv(t, c.done, "late outcome"); o.reason != ReasonClosed {
		t.Fatalf("late outcome = %+v", o)
	}
	close(gate)
	if n := recv(t, closed, "Close to return"); n != 0 {
		t.Fatalf("Close abandoned %d", n)
	}
	for _, o := range c.wait(t, 6) {
		if o.reason != "" {
			t.Fatalf("outcome = %+v", o)
		}
	}
	s := b.Stats()
	if s.Delivered != 6 || s.Depth != 0 || s.Workers != 0 || !s.Closed || s.Retries != 1 {
		t.Fatalf("stats = %+v", s)
	}
	if n := b.Close(context.Background()); n != 0 {
		t.Fatalf("second Close = %d", n)
	}
}

func TestBusRetryLimits(t *testing.T) {
	t.Run("max attempts", func(t *testing.T) {
		b := fastBus(t, BusOptions{MaxAttempts: 3})
		c := newCollector()
		key := QueueKey{"l", "d"}
		n := 0
		mustEnqueue(t, b, key, c.item("x", func(context.Context) error { n++; return errors.New("down") }))
		mustEnqueue(t, b, key, c.item("y", func(context.Context) error { return nil }))
		got := c.wait(t, 2)
		if got[0].reason != ReasonRetriesExhausted || got[0].err.Error() != "down" || n != 3 {
			t.Fatalf("outcome = %+v after %d attempts", got[0], n)
		}
		if got[1].reason != "" {
			t.Fatalf("next item = %+v", got[1])
		}
		if qs, _ := b.QueueStats(key); qs.Retries != 2 || qs.Drops[ReasonRetriesExhausted] != 1 {
			t.Fatalf("stats = %+v", qs)
		}
	})
	t.Run("max age", func(t *testing.T) {
		b := fastBus(t, BusOptions{MaxAge: time.Nanosecond})
		c := newCollector()
		n := 0
		mustEnqueue(t, b, QueueKey{"l", "d"}, c.item("x", func(context.Context) error { n++; return errors.New("down") }))
		if o := c.wait(t, 1)[0]; o.reason != ReasonExpired || n != 1 {
			t.Fatalf("outcome = %+v after %d attempts", o, n)
		}
	})
	t.Run("attempt timeout", func(t *testing.T) {
		b := fastBus(t, BusOptions{AttemptTimeout: 5 * time.Millisecond})
		c := newCollector()
		var errs []error
		mustEnqueue(t, b, QueueKey{"l", "d"}, c.item("x", func(ctx context.Context) error {
			if len(errs) == 0 {
				<-ctx.Done() // hangs until the attempt times out
				errs = append(errs, ctx.Err())
				return ctx.Err()
			}
			return nil
		}))
		if o := c.wait(t, 1)[0]; o.reason != "" {
			t.Fatalf("outcome = %+v", o)
		}
		if !errors.Is(errs[0], context.DeadlineExceeded) {
			t.Fatalf("first attempt ended with %v", errs[0])
		}
		if s := b.Stats(); s.Retries != 1 || s.Delivered != 1 {
			t.Fatalf("stats = %+v", s)
		}
	})
}

func TestBusWorkerExitsWhenIdleAndRestarts(t *testing.T) {
	b := fastBus(t, BusOptions{IdleTimeout: time.Millisecond})
	exits := make(chan QueueKey, 10)
	b.onWorkerExit = func(k QueueKey) { exits <- k }
	c := newCollector()
	key := QueueKey{"l", "d"}
	for round := range 2 {
		if err := b.Enqueue(key, c.item(fmt.Sprint(round), func(context.Context) error { return nil })); err != nil {
			t.Fatal(err)
		}
		if o := c.wait(t, 1)[0]; o.reason != "" {
			t.Fatalf("round %d: %+v", round, o)
		}
		if k := recv(t, exits, "idle worker to exit"); k != key {
			t.Fatalf("exit of %v", k)
		}
		s := b.Stats()
		if s.Workers != 0 || s.Queues[0].Active {
			t.Fatalf("after idle exit: %+v", s)
		}
	}
	if qs, _ := b.QueueStats(key); qs.Delivered != 2 {
		t.Fatalf("stats = %+v", qs)
	}
}

func TestBusBackoff(t *testing.T) {
	b := NewBus(BusOptions{InitialBackoff: 250 * time.Millisecond, MaxBackoff: 30 * time.Second})
	defer b.Close(context.Background())
	b.jitter = func(d time.Duration) time.Duration { return d }
	var got []time.Duration
	for a := 1; a <= 10; a++ {
		got = append(got, b.backoff(a))
	}
	want := []time.Duration{250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff = %v", got)
		}
	}
	if d := b.backoff(1 << 20); d != 30*time.Second {
		t.Fatalf("huge attempt: %v", d)
	}
	b.jitter = nil
	for range 100 {
		if d := b.backoff(3); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("jittered backoff %v out of [500ms, 1s]", d)
		}
	}
}

func TestBusDefaults(t *testing.T) {
	o := BusOptions{}.withDefaults()
	if o.QueueCapacity != DefaultQueueCapacity || o.InitialBackoff != DefaultInitialBackoff ||
		o.MaxBackoff != DefaultMaxBackoff || o.MaxAge > 0 || o.AttemptTimeout != DefaultAttemptTimeout ||
		o.IdleTimeout != DefaultIdleTimeout || o.MaxAttempts != 0 || o.Logger == nil {
		t.Fatalf("defaults = %+v", o)
	}
	b := NewBus(BusOptions{})
	if err := b.Enqueue(QueueKey{}, Item{}); err == nil {
		t.Fatal("Enqueue without task succeeded")
	}
	b.Close(context.Background())
}

func TestDropErrors(t *testing.T) {
	plain := errors.New("x")
	if DropCode(plain) != "" || IsPermanent(plain) {
		t.Fatal("plain error is permanent")
	}
	if DropCode(Permanent(plain)) != ReasonPermanent {
		t.Fatal("Permanent has no code")
	}
	d := fmt.Errorf("wrapped: %w", Drop("too_large", plain))
	if DropCode(d) != "too_large" || !IsPermanent(d) || !errors.Is(d, plain) || d.Error() != "wrapped: x" {
		t.Fatalf("Drop: %v %q", d, DropCode(d))
	}
	bare := &DropReason{Code: "gone"}
	if !IsPermanent(bare) || DropCode(bare) != "gone" || bare.Error() != "gone" {
		t.Fatal("bare DropReason")
	}
	if DropCode(&DropReason{}) != ReasonPermanent {
		t.Fatal("empty code")
	}
}

func TestPluginLogger(t *testing.T) {
	api := &fakePluginAPI{}
	l := NewPluginLogger(api)
	l.Debug("d", "k", 1)
	l.Info("i")
	l.Warn("w")
	l.Error("e", "k", "v")
	want := "debug d [k 1]|info i []|warn w []|error e [k v]"
	if got := strings.Join(api.lines, "|"); got != want {
		t.Fatalf("got %q", got)
	}
	if _, ok := NewPluginLogger(nil).(NopLogger); !ok {
		t.Fatal("nil api")
	}
}

func TestBusWaitsTheAdvisedDelay(t *testing.T) {
	b := fastBus(t, BusOptions{})
	c := newCollector()
	key := QueueKey{"link", "matrix|room"}
	const advised = 300 * time.Millisecond
	var attempts []time.Time // only this queue's goroutine touches it
	mustEnqueue(t, b, key, c.item("limited", func(context.Context) error {
		attempts = append(attempts, time.Now())
		if len(attempts) == 1 {
			return RetryAfter(errors.New("429 too many requests"), advised)
		}
		return nil
	}))
	var behindAt time.Time
	mustEnqueue(t, b, key, c.item("behind", func(context.Context) error {
		behindAt = time.Now()
		return nil
	}))
	got := c.wait(t, 2)
	if got[0].label != "limited" || got[0].reason != "" || got[1].label != "behind" || got[1].reason != "" {
		t.Fatalf("outcomes = %+v", got)
	}
	if len(attempts) != 2 {
		t.Fatalf("%d attempts, want 2", len(attempts))
	}
	if gap := attempts[1].Sub(attempts[0]); gap < advised {
		t.Fatalf("retried after %v, before the advised %v (the backoff is at most 2ms)", gap, advised)
	}
	if behindAt.Before(attempts[1]) {
		t.Fatal("the item behind overtook the rate-limited one")
	}
	qs, _ := b.QueueStats(key)
	if qs.Retries != 1 || qs.Delivered != 2 || qs.LastError != "429 too many requests" {
		t.Fatalf("stats = %+v", qs)
	}
}

// Issue 9 item 1: by default nothing is dropped for its age. A destination
// down for longer than the old ten-minute expiry gets its items once it is
// back; the queue's oldest item and its age show in the stats meanwhile.
func TestBusNeverDropsForAgeByDefault(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := fastBus(t, BusOptions{Now: clock})
	c := newCollector()
	key := QueueKey{"l", "d"}
	attempts := 0
	down := make(chan struct{})
	mustEnqueue(t, b, key, c.item("x", func(context.Context) error {
		attempts++
		if attempts <= 3 {
			advance(11 * time.Minute) // each failure takes the clock past the old expiry
			if attempts == 3 {
				close(down)
			}
			return errors.New("destination down")
		}
		return nil
	}))
	select {
	case <-down:
	case o := <-c.done:
		t.Fatalf("outcome = %+v after %d attempts while the destination was down", o, attempts)
	case <-time.After(guard):
		t.Fatal("timed out waiting for the attempts")
	}
	if qs, _ := b.QueueStats(key); qs.Depth != 1 || !qs.OldestQueuedAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("stats while down = %+v", qs)
	}
	if o := c.wait(t, 1)[0]; o.reason != "" {
		t.Fatalf("outcome = %+v after %d attempts, want delivered", o, attempts)
	}
}

func TestBusAdvisedDelayLimits(t *testing.T) {
	t.Run("max age", func(t *testing.T) {
		b := fastBus(t, BusOptions{MaxAge: 100 * time.Millisecond})
		c := newCollector()
		n := 0
		mustEnqueue(t, b, QueueKey{"l", "d"}, c.item("x", func(context.Context) error {
			n++
			return RetryAfter(errors.New("slow down"), time.Second)
		}))
		if o := c.wait(t, 1)[0]; o.reason != ReasonExpired || n != 1 {
			t.Fatalf("outcome = %+v after %d attempts", o, n)
		}
	})
	t.Run("max attempts", func(t *testing.T) {
		b := fastBus(t, BusOptions{MaxAttempts: 1})
		c := newCollector()
		mustEnqueue(t, b, QueueKey{"l", "d"}, c.item("x", func(context.Context) error {
			return RetryAfter(errors.New("slow down"), time.Hour)
		}))
		if o := c.wait(t, 1)[0]; o.reason != ReasonRetriesExhausted {
			t.Fatalf("outcome = %+v", o)
		}
	})
	t.Run("permanent wins", func(t *testing.T) {
		b := fastBus(t, BusOptions{})
		c := newCollector()
		mustEnqueue(t, b, QueueKey{"l", "d"}, c.item("x", func(context.Context) error {
			return RetryAfter(Permanent(errors.New("forbidden")), time.Hour)
		}))
		if o := c.wait(t, 1)[0]; o.reason != ReasonPermanent {
			t.Fatalf("outcome = %+v", o)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		b := fastBus(t, BusOptions{})
		c := newCollector()
		failed := make(chan struct{}, 1)
		mustEnqueue(t, b, QueueKey{"l", "d"}, c.item("x", func(context.Context) error {
			failed <- struct{}{}
			return RetryAfter(errors.New("slow down"), time.Minute) // within MaxAge
		}))
		recv(t, failed, "the first attempt")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		if n := b.Close(ctx); n != 1 {
			t.Fatalf("Close abandoned %d, want 1", n)
		}
		if o := c.wait(t, 1)[0]; o.reason != ReasonShutdown {
			t.Fatalf("outcome = %+v", o)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Close waited %v on an advised delay", d)
		}
	})
	t.Run("cap and fallback", func(t *testing.T) {
		b := NewBus(BusOptions{InitialBackoff: 250 * time.Millisecond})
		defer b.Close(context.Background())
		b.jitter = func(d time.Duration) time.Duration { return d }
		if d, advised := b.retryDelay(1, fmt.Errorf("wrapped: %w", RetryAfter(errors.New("x"), 2*time.Second))); d != 2*time.Second || !advised {
			t.Fatalf("advised delay = %v, %v", d, advised)
		}
		if d, _ := b.retryDelay(1, RetryAfter(errors.New("x"), 24*time.Hour)); d != maxAdvisedDelay {
			t.Fatalf("a day's hint waits %v, want the cap %v", d, maxAdvisedDelay)
		}
		for _, err := range []error{errors.New("x"), RetryAfter(errors.New("x"), 0), RetryAfter(errors.New("x"), -time.Second)} {
			if d, advised := b.retryDelay(1, err); d != 250*time.Millisecond || advised {
				t.Fatalf("%v: delay %v advised %v, want the backoff", err, d, advised)
			}
		}
	})
}

func TestRetryAfterErrors(t *testing.T) {
	if RetryAfter(nil, time.Second) != nil {
		t.Fatal("RetryAfter(nil) is not nil")
	}
	base := errors.New("rate limited")
	err := fmt.Errorf("send: %w", RetryAfter(base, 1500*time.Millisecond))
	if d, ok := RetryDelay(err); !ok || d != 1500*time.Millisecond {
		t.Fatalf("RetryDelay = %v, %v", d, ok)
	}
	if !errors.Is(err, base) || err.Error() != "send: rate limited" || IsPermanent(err) || DropCode(err) != "" {
		t.Fatalf("wrapped error: %v", err)
	}
	if _, ok := RetryDelay(base); ok {
		t.Fatal("a plain error carries a delay")
	}
	if d, ok := RetryDelay(RetryAfter(base, -time.Second)); !ok || d != 0 {
		t.Fatalf("negative delay = %v, %v", d, ok)
	}
}

func TestBusFullQueueSaysWhenThereIsSpace(t *testing.T) {
	b := fastBus(t, BusOptions{QueueCapacity: 4})
	c := newCollector()
	key := QueueKey{"link", "matrix|room"}
	gates := make([]chan struct{}, 4)
	for i := range gates {
		gates[i] = make(chan struct{})
		gate := gates[i]
		mustEnqueue(t, b, key, c.item(fmt.Sprint(i), func(context.Context) error { <-gate; return nil }))
	}
	err := b.Enqueue(key, c.item("refused", func(context.Context) error { return nil }))
	var full *QueueFullError
	if !errors.As(err, &full) || !errors.Is(err, ErrQueueFull) || full.Key != key {
		t.Fatalf("err = %#v, want a *QueueFullError for %v", err, key)
	}
	c.wait(t, 1)
	// A second refusal waits on the same signal.
	var again *QueueFullError
	if err := b.Enqueue(key, c.item("refused", func(context.Context) error { return nil })); !errors.As(err, &again) || again.Space != full.Space {
		t.Fatalf("second refusal = %v", err)
	}
	c.wait(t, 1)
	close(gates[0])
	c.wait(t, 1)
	select {
	case <-full.Space:
		t.Fatal("space signalled with 3 of 4 items still queued")
	default:
	}
	close(gates[1])
	c.wait(t, 1)
	recv(t, full.Space, "space once the queue is down to half")
	close(gates[2])
	close(gates[3])
	c.wait(t, 2)
}

func TestBusCloseReleasesThoseWaitingForSpace(t *testing.T) {
	b := fastBus(t, BusOptions{QueueCapacity: 1})
	key := QueueKey{"link", "xmpp|room"}
	gate := make(chan struct{})
	mustEnqueue(t, b, key, Item{Label: "stuck", Task: func(ctx context.Context) error {
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return ctx.Err()
	}})
	var full *QueueFullError
	if err := b.Enqueue(key, Item{Label: "refused", Task: func(context.Context) error { return nil }}); !errors.As(err, &full) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Close(ctx)
	recv(t, full.Space, "space signalled by Close")
	close(gate)
}
