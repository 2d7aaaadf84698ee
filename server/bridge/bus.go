package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// QueueKey names one ordered queue: a link and one destination room of it.
// Dest is a room key as returned by Ref.RoomKey ("xmpp|room@conf").
type QueueKey struct {
	Link string `json:"link"`
	Dest string `json:"dest"`
}

func (k QueueKey) String() string { return k.Link + " -> " + k.Dest }

// DestNetwork is the network of the destination room.
func (k QueueKey) DestNetwork() Network {
	n, _, _ := strings.Cut(k.Dest, "|")
	return Network(n)
}

// Task is the work of one queued item. It is called once per attempt with a
// context that ends at the per-attempt timeout or when the bus is shut down;
// it must honour it. Returning an error marked Permanent (or wrapping a
// *DropReason) drops the item; any other error is retried, after the delay
// it carries from RetryAfter if it has one.
type Task func(ctx context.Context) error

// Item is what Enqueue accepts.
type Item struct {
	// Label names the kind of work ("message", "edit"...) in logs and hooks.
	Label string
	Task  Task
	// Done, when set, is called exactly once with the item's outcome: reason ""
	// when the task succeeded, else the drop reason and the last error. For an
	// item Enqueue rejects it is called before Enqueue returns; otherwise it
	// runs on the queue's goroutine, so it must not block for long.
	Done func(reason string, err error)
}

// Drop reasons used by the core. Permanent errors wrapping a *DropReason are
// counted under its Code instead.
const (
	ReasonQueueFull             = "queue_full"              // Enqueue on a full queue
	ReasonClosed                = "closed"                  // Enqueue after Close
	ReasonShutdown              = "shutdown"                // abandoned when Close's context ended
	ReasonPermanent             = "permanent"               // Permanent error without a code
	ReasonExpired               = "expired"                 // still failing after MaxAge
	ReasonRetriesExhausted      = "retries_exhausted"       // still failing after MaxAttempts
	ReasonPanic                 = "panic"                   // the task panicked
	ReasonUnsupported           = "unsupported"             // destination cannot carry the kind
	ReasonUnknownTarget         = "unknown_target"          // edit/delete/reaction of a message the destination never got
	ReasonEcho                  = "echo"                    // a copy the bridge itself posted came back
	ReasonDuplicate             = "duplicate"               // the message already reached the destination
	ReasonNoBridge              = "no_bridge"               // no running bridge for the destination network
	ReasonTooLarge              = "too_large"               // a file over the destination's limit
	ReasonNotAuthor             = "not_author"              // an edit or delete by someone who did not write the message and may not moderate it
	ReasonNoRights              = "no_rights"               // a moderation delete where the bridge is not a moderator
	ReasonArchived              = "archived"                // the destination room is archived: read-only until it is unarchived
	ReasonDeletedBeforeDelivery = "deleted_before_delivery" // its sender deleted the message before it came (see EarlyDeletes)
)

// quietReasons are logged at debug level: expected in normal operation, or
// (not_author) sent by whoever is in a room, who must not flood the log.
// A full queue is not a loss: the source reads the event again later.
var quietReasons = map[string]bool{
	ReasonQueueFull: true, ReasonEcho: true, ReasonDuplicate: true, ReasonUnsupported: true, ReasonNoBridge: true, ReasonNotAuthor: true,
}

// Bus defaults, used when the matching BusOptions field is zero.
const (
	DefaultQueueCapacity  = 1000
	DefaultInitialBackoff = 250 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultAttemptTimeout = 30 * time.Second
	DefaultIdleTimeout    = time.Minute
	DefaultCloseGrace     = 5 * time.Second
)

// BusOptions configures a Bus. Zero fields take the defaults above.
type BusOptions struct {
	// QueueCapacity is the most items one queue holds, the one being worked
	// on included.
	QueueCapacity int
	// InitialBackoff is the wait before the first retry; it doubles per retry
	// up to MaxBackoff. The actual wait is drawn uniformly from [d/2, d].
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxAttempts stops retrying after this many attempts; 0 means no limit
	// (MaxAge still applies).
	MaxAttempts int
	// MaxAge stops retrying an item once the next attempt would start more
	// than MaxAge after it was enqueued. Zero or negative means no limit,
	// the default: a destination that stays down keeps its items (the
	// queue's capacity bounds memory), and the positions behind them hold.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AttemptTimeout bounds each attempt, so a hanging destination fails and
	// is retried. Negative means no timeout.
	AttemptTimeout time.Duration
	// IdleTimeout is how long a queue's goroutine waits for work before
	// exiting; the next Enqueue starts a new one.
	IdleTimeout time.Duration
	// CloseGrace is how long Close waits, after cancelling in-flight work, for
	// tasks to return before giving up on them.
	CloseGrace time.Duration
	// OnDrop is called for every dropped item (outside the bus's locks).
	OnDrop func(key QueueKey, label, reason string, err error)
	Logger Logger
}

func (o BusOptions) withDefaults() BusOptions {
	if o.QueueCapacity <= 0 {
		o.QueueCapacity = DefaultQueueCapacity
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.InitialBackoff {
		o.MaxBackoff = o.InitialBackoff
	}
	if o.MaxAttempts < 0 {
		o.MaxAttempts = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.CloseGrace <= 0 {
		o.CloseGrace = DefaultCloseGrace
	}
	o.Logger = orNop(o.Logger)
	return o
}

// QueueStats describes one queue.
type QueueStats struct {
	Key QueueKey `json:"key"`
	// Depth counts queued items, the one being worked on included.
	Depth int `json:"depth"`
	// Active says whether the queue's goroutine is running.
	Active          bool             `json:"active"`
	Delivered       int64            `json:"delivered"`
	Retries         int64            `json:"retries"`
	Drops           map[string]int64 `json:"drops,omitempty"`
	LastError       string           `json:"last_error,omitempty"`
	LastErrorAt     time.Time        `json:"last_error_at,omitzero"`
	LastDeliveredAt time.Time        `json:"last_delivered_at,omitzero"`
	// OldestQueuedAt is when the item at the head of the queue was queued:
	// how old the backlog is while a destination is down.
	OldestQueuedAt time.Time `json:"oldest_queued_at,omitzero"`
}

// BusStats is a snapshot of the whole bus.
type BusStats struct {
	// Queues is sorted by link then destination.
	Queues    []QueueStats     `json:"queues"`
	Depth     int              `json:"depth"`
	Workers   int              `json:"workers"`
	Delivered int64            `json:"delivered"`
	Retries   int64            `json:"retries"`
	Drops     map[string]int64 `json:"drops,omitempty"`
	// Abandoned counts items given up by Close (also counted as "shutdown" drops).
	Abandoned int64 `json:"abandoned"`
	Closed    bool  `json:"closed"`
}

// Bus is an in-process set of ordered FIFO queues, one per QueueKey, each
// drained by its own goroutine. Order holds inside a queue; a slow, failing
// or hanging destination only ever delays its own queue.
type Bus struct {
	opts BusOptions
	log  Logger

	// ctx is cancelled when Close stops draining; every attempt and backoff
	// wait derives from it.
	ctx     context.Context
	cancel  context.CancelFunc
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu        sync.Mutex
	queues    map[QueueKey]*queue
	closed    bool
	workers   int
	abandoned int64

	// test hooks
	onClosing    func()
	onWorkerExit func(QueueKey)
	jitter       func(d time.Duration) time.Duration
}

type queue struct {
	key     QueueKey
	items   []*queuedItem
	running bool
	wake    chan struct{}
	// space is closed once the queue, after refusing an item, has drained
	// to half its capacity; nil while nobody was refused.
	space chan struct{}

	delivered       int64
	retries         int64
	drops           map[string]int64
	lastError       string
	lastErrorAt     time.Time
	lastDeliveredAt time.Time
}

type queuedItem struct {
	Item
	enqueued time.Time
}

// NewBus returns a running bus.
func NewBus(opts BusOptions) *Bus {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Bus{
		opts:    opts,
		log:     opts.Logger,
		ctx:     ctx,
		cancel:  cancel,
		closing: make(chan struct{}),
		queues:  make(map[QueueKey]*queue),
	}
}

func (b *Bus) queueLocked(key QueueKey) *queue {
	q := b.queues[key]
	if q == nil {
		q = &queue{key: key, wake: make(chan struct{}, 1), drops: make(map[string]int64)}
		b.queues[key] = q
	}
	return q
}

// SetQueueCapacity changes QueueCapacity of every queue, existing and new,
// so a saved QueueSize applies without a restart. A queue already holding
// more than a smaller capacity keeps its items and refuses new ones until it
// drains below it. n <= 0 means DefaultQueueCapacity.
func (b *Bus) SetQueueCapacity(n int) {
	if n <= 0 {
		n = DefaultQueueCapacity
	}
	b.mu.Lock()
	b.opts.QueueCapacity = n
	b.mu.Unlock()
}

// Enqueue appends it to the queue of key and returns at once. It fails with
// ErrQueueFull when the queue is at capacity and ErrBusClosed after Close;
// either way the item is counted as dropped.
func (b *Bus) Enqueue(key QueueKey, it Item) error {
	if it.Task == nil {
		return errors.New("bridge: Enqueue of an item without a task")
	}
	b.mu.Lock()
	q := b.queueLocked(key)
	var err error
	var reason string
	switch {
	case b.closed:
		reason, err = ReasonClosed, fmt.Errorf("%w: %s", ErrBusClosed, key)
	case len(q.items) >= b.opts.QueueCapacity:
		if q.space == nil {
			q.space = make(chan struct{})
		}
		reason, err = ReasonQueueFull, &QueueFullError{Key: key, Items: len(q.items), Space: q.space}
	}
	if err != nil {
		q.drops[reason]++
		b.mu.Unlock()
		b.notifyDrop(key, it, reason, err)
		return err
	}
	q.items = append(q.items, &queuedItem{Item: it, enqueued: b.opts.Now()})
	if !q.running {
		q.running = true
		b.workers++
		b.wg.Add(1)
		go b.work(q)
	} else {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
	return nil
}

// RecordDrop counts a drop for key without queueing anything, for callers that
// decide not to enqueue (unsupported kind, echo...). It calls OnDrop.
func (b *Bus) RecordDrop(key QueueKey, label, reason string, err error) {
	b.mu.Lock()
	b.queueLocked(key).drops[reason]++
	b.mu.Unlock()
	b.notifyDrop(key, Item{Label: label}, reason, err)
}

func (b *Bus) notifyDrop(key QueueKey, it Item, reason string, err error) {
	kv := []any{"link", key.Link, "dest", key.Dest, "label", it.Label, "reason", reason}
	if err != nil {
		kv = append(kv, "error", err.Error())
	}
	if quietReasons[reason] {
		b.log.Debug("bridge: dropped", kv...)
	} else {
		b.log.Warn("bridge: dropped", kv...)
	}
	if b.opts.OnDrop != nil {
		b.opts.OnDrop(key, it.Label, reason, err)
	}
	if it.Done != nil {
		it.Done(reason, err)
	}
}

// work is the goroutine of one queue.
func (b *Bus) work(q *queue) {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		if b.ctx.Err() != nil {
			abandoned := b.abandonLocked(q)
			b.exitLocked(q)
			b.mu.Unlock()
			b.finishAbandoned(q.key, abandoned)
			b.exited(q.key)
			return
		}
		if len(q.items) == 0 {
			if b.closed {
				b.exitLocked(q)
				b.mu.Unlock()
				b.exited(q.key)
				return
			}
			b.mu.Unlock()
			if b.idle(q) {
				b.exited(q.key)
				return
			}
			continue
		}
		it := q.items[0]
		b.mu.Unlock()

		reason, err := b.run(q, it)

		b.mu.Lock()
		if len(q.items) == 0 || q.items[0] != it || reason == ReasonShutdown {
			// Close gave up on the queue (or is about to): the top of the loop
			// counts what is left as abandoned.
			b.mu.Unlock()
			continue
		}
		q.items[0] = nil
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil
		}
		if q.space != nil && len(q.items) <= b.opts.QueueCapacity/2 {
			close(q.space)
			q.space = nil
		}
		now := time.Now()
		if reason == "" {
			q.delivered++
			q.lastDeliveredAt = now
		} else {
			q.drops[reason]++
			if err != nil {
				q.lastError, q.lastErrorAt = err.Error(), now
			}
		}
		b.mu.Unlock()

		if reason == "" {
			if it.Done != nil {
				it.Done("", nil)
			}
		} else {
			b.notifyDrop(q.key, it.Item, reason, err)
		}
	}
}

// idle waits for work; it reports true when the goroutine should exit (and
// has already marked the queue as not running).
func (b *Bus) idle(q *queue) bool {
	t := time.NewTimer(b.opts.IdleTimeout)
	defer t.Stop()
	select {
	case <-q.wake:
	case <-b.closing:
	case <-t.C:
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(q.items) == 0 {
			b.exitLocked(q)
			return true
		}
	}
	return false
}

func (b *Bus) exitLocked(q *queue) {
	q.running = false
	b.workers--
}

func (b *Bus) exited(key QueueKey) {
	if b.onWorkerExit != nil {
		b.onWorkerExit(key)
	}
}

// abandonLocked removes every item of q, counting each as abandoned.
func (b *Bus) abandonLocked(q *queue) []*queuedItem {
	items := q.items
	q.items = nil
	q.drops[ReasonShutdown] += int64(len(items))
	b.abandoned += int64(len(items))
	return items
}

func (b *Bus) finishAbandoned(key QueueKey, items []*queuedItem) {
	for _, it := range items {
		b.notifyDrop(key, it.Item, ReasonShutdown, context.Canceled)
	}
}

// run attempts it until it succeeds, fails permanently or runs out of
// retries. It returns the drop reason, "" on success, or ReasonShutdown when
// the bus was killed (the item is then left at the head of the queue).
func (b *Bus) run(q *queue, it *queuedItem) (string, error) {
	for attempt := 1; ; attempt++ {
		if b.ctx.Err() != nil {
			return ReasonShutdown, b.ctx.Err()
		}
		err := b.attempt(it)
		if err == nil {
			return "", nil
		}
		if b.ctx.Err() != nil {
			return ReasonShutdown, err
		}
		if code := DropCode(err); code != "" {
			return code, err
		}
		if b.opts.MaxAttempts > 0 && attempt >= b.opts.MaxAttempts {
			return ReasonRetriesExhausted, err
		}
		delay, advised := b.retryDelay(attempt, err)
		if b.opts.MaxAge > 0 && b.opts.Now().Sub(it.enqueued)+delay > b.opts.MaxAge {
			return ReasonExpired, err
		}
		b.mu.Lock()
		q.retries++
		q.lastError, q.lastErrorAt = err.Error(), time.Now()
		b.mu.Unlock()
		b.log.Debug("bridge: delivery failed, retrying", "link", q.key.Link, "dest", q.key.Dest,
			"label", it.Label, "attempt", attempt, "retry_in", delay.String(), "advised", advised, "error", err.Error())

		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			return ReasonShutdown, err
		}
	}
}

func (b *Bus) attempt(it *queuedItem) (err error) {
	ctx, cancel := b.ctx, context.CancelFunc(func() {})
	if b.opts.AttemptTimeout > 0 {
		ctx, cancel = context.WithTimeout(b.ctx, b.opts.AttemptTimeout)
	}
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = Drop(ReasonPanic, fmt.Errorf("task panicked: %v", r))
		}
	}()
	return it.Task(ctx)
}

// maxAdvisedDelay caps a delay a destination asks for with RetryAfter, so a
// wrong or hostile hint (Retry-After: one day) cannot park a queue; MaxAge,
// when set, still decides whether the item waits at all.
const maxAdvisedDelay = 10 * time.Minute

// retryDelay returns the wait after the given failed attempt: the delay err
// carries from RetryAfter when it has one (advised is then true), else the
// backoff. The item stays at the head of its queue while it waits, so what
// is queued behind it keeps its order. A zero hint says nothing about how
// long the destination needs, so it gets the backoff rather than a retry
// at once, which could spin until MaxAge.
func (b *Bus) retryDelay(attempt int, err error) (delay time.Duration, advised bool) {
	if d, ok := RetryDelay(err); ok && d > 0 {
		return min(d, maxAdvisedDelay), true
	}
	return b.backoff(attempt), false
}

// backoff returns the wait after the given failed attempt (1-based):
// InitialBackoff doubled per attempt, capped at MaxBackoff, with jitter.
func (b *Bus) backoff(attempt int) time.Duration {
	d := b.opts.InitialBackoff
	for i := 1; i < attempt && d < b.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, b.opts.MaxBackoff)
	if b.jitter != nil {
		return b.jitter(d)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Close stops accepting items and keeps delivering what is queued until every
// queue is empty or ctx is done. Then it cancels in-flight work, drops what is
// left with reason "shutdown" and returns how many items it abandoned. Close
// is idempotent; later calls return 0 at once.
func (b *Bus) Close(ctx context.Context) int {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0
	}
	b.closed = true
	close(b.closing)
	for _, q := range b.queues {
		// Nothing will be accepted again: whoever waits for space must
		// not wait forever.
		if q.space != nil {
			close(q.space)
			q.space = nil
		}
	}
	b.mu.Unlock()
	if b.onClosing != nil {
		b.onClosing()
	}

	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		b.cancel()
		t := time.NewTimer(b.opts.CloseGrace)
		select {
		case <-done:
		case <-t.C:
			// Some task ignores its context. Give up on it: whatever is still
			// queued is abandoned here, and its goroutine exits when it returns.
			b.log.Warn("bridge: bus closed with tasks still running")
		}
		t.Stop()
	}
	b.cancel()

	b.mu.Lock()
	var left []struct {
		key   QueueKey
		items []*queuedItem
	}
	for _, q := range b.queues {
		if len(q.items) > 0 {
			left = append(left, struct {
				key   QueueKey
				items []*queuedItem
			}{q.key, b.abandonLocked(q)})
		}
	}
	abandoned := int(b.abandoned)
	b.mu.Unlock()
	for _, l := range left {
		b.finishAbandoned(l.key, l.items)
	}
	if abandoned > 0 {
		b.log.Warn("bridge: bus closed, items abandoned", "abandoned", abandoned)
	}
	return abandoned
}

// Closed reports whether Close was called.
func (b *Bus) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Stats returns a snapshot of every queue and the totals.
func (b *Bus) Stats() BusStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BusStats{
		Queues:    make([]QueueStats, 0, len(b.queues)),
		Workers:   b.workers,
		Drops:     make(map[string]int64),
		Abandoned: b.abandoned,
		Closed:    b.closed,
	}
	for _, q := range b.queues {
		qs := QueueStats{
			Key:             q.key,
			Depth:           len(q.items),
			Active:          q.running,
			Delivered:       q.delivered,
			Retries:         q.retries,
			LastError:       q.lastError,
			LastErrorAt:     q.lastErrorAt,
			LastDeliveredAt: q.lastDeliveredAt,
		}
		if len(q.items) > 0 {
			qs.OldestQueuedAt = q.items[0].enqueued
		}
		if len(q.drops) > 0 {
			qs.Drops = make(map[string]int64, len(q.drops))
			for r, n := range q.drops {
				qs.Drops[r] = n
				s.Drops[r] += n
			}
		}
		s.Depth += qs.Depth
		s.Delivered += qs.Delivered
		s.Retries += qs.Retries
		s.Queues = append(s.Queues, qs)
	}
	slices.SortFunc(s.Queues, func(a, b QueueStats) int {
		return cmp.Or(cmp.Compare(a.Key.Link, b.Key.Link), cmp.Compare(a.Key.Dest, b.Key.Dest))
	})
	return s
}

// QueueStats returns the stats of one queue; ok is false if the bus never saw key.
func (b *Bus) QueueStats(key QueueKey) (QueueStats, bool) {
	for _, q := range b.Stats().Queues {
		if q.Key == key {
			return q, true
		}
	}
	return QueueStats{}, false
}
