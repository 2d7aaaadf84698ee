package matrix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// A transaction answered 200 is never sent again, and the core only queues
// its events in memory: a deactivation or crash before they reach every
// linked room would lose them. So the events a transaction (or a sync
// batch of redactions) hands on are kept in a pending record, written
// before the answer, until every one of them settled (reached every room
// or was dropped there for good); the next start hands on again whatever
// records are left, before anything newer. The router skips what a room
// already has, so this doubles nothing.
//
// Holding the answer until delivery instead would stall all of Matrix
// behind any one slow destination, and the homeserver's retries with it.

// nsPending holds the pending records.
const nsPending = "matrix-pending"

// pendingRecord is what a pending record holds.
type pendingRecord struct {
	// Source is the transaction ID, or "sync" for the redactions read from
	// the bot's sync; for logs.
	Source string            `json:"source"`
	Events []json.RawMessage `json:"events"`
}

// newPendingID names a record: the time first, so records sort in the
// order they were accepted, then a random part, so two acceptances of one
// transaction (a resend after a failed answer, two cluster nodes) never
// share a record.
func newPendingID() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%020d-%s", time.Now().UnixNano(), hex.EncodeToString(r[:]))
}

// accepted follows the events of one transaction or sync batch from their
// acceptance until every one settled, then deletes their record.
type accepted struct {
	b      *Bridge
	id     string
	rec    pendingRecord
	group  *bridge.SettleGroup
	stored bool // set before the group is sealed, read once it settles
}

func (b *Bridge) newAccepted(source string) *accepted {
	a := &accepted{b: b, id: newPendingID(), rec: pendingRecord{Source: source}}
	a.group = bridge.NewSettleGroup(a.settled)
	return a
}

// keep adds an event handed on to the record.
func (a *accepted) keep(raw json.RawMessage) { a.rec.Events = append(a.rec.Events, raw) }

// persist writes the record, when anything was handed on (the bridge's
// own events, the bulk of what a homeserver sends, cost no write), and
// seals the group: from then on the last event to settle deletes it.
func (a *accepted) persist() error {
	if len(a.rec.Events) > 0 {
		value, err := json.Marshal(a.rec)
		if err == nil {
			err = a.b.store.SavePending(nsPending, a.id, value)
		}
		if err != nil {
			a.group.Fail()
			return fmt.Errorf("keep the accepted events: %w", err)
		}
		a.stored = true
		a.b.setLive(a.id, true)
	}
	a.group.Seal()
	return nil
}

func (a *accepted) settled() {
	if a.stored {
		a.b.forgetPending(a.id)
	}
}

// forgetPending deletes a record whose events all settled. It runs on the
// core's delivery goroutines: one KV delete.
func (b *Bridge) forgetPending(recordID string) {
	if err := b.store.DeletePending(nsPending, recordID); err != nil {
		// Harmless: the next start hands its events on again, and they
		// are skipped where they arrived.
		b.log.Warn("Could not delete a settled Matrix pending record", "record", recordID, "error", err.Error())
	}
	b.setLive(recordID, false)
}

// setLive notes the records whose events this bridge is following, so a
// start after a stop does not hand them on a second time.
func (b *Bridge) setLive(recordID string, live bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if live {
		b.live[recordID] = true
	} else {
		delete(b.live, recordID)
	}
}

// replaying is a pending record left by an earlier run, being handed on
// again.
type replaying struct {
	id    string
	rec   pendingRecord
	next  int // index of the next event to hand on
	group *bridge.SettleGroup
	// settle is the Settled of events[next], kept when handing it on
	// failed so the retry does not leave a member that never settles.
	settle func()
}

// catchUpLocked hands on again, oldest first, the events of every pending
// record an earlier run left (it stopped or crashed before they settled),
// once per start and before any newer event. b.txnMu is held. After an
// error the next call goes on where this one stopped.
func (b *Bridge) catchUpLocked(ctx context.Context, sink bridge.Sink) error {
	if b.caughtUp {
		return nil
	}
	if b.backlog == nil {
		backlog, err := b.loadBacklog()
		if err != nil {
			return err
		}
		b.backlog = backlog
	}
	for len(b.backlog) > 0 {
		if err := b.replay(ctx, sink, b.backlog[0]); err != nil {
			return err
		}
		b.backlog = b.backlog[1:]
	}
	b.caughtUp = true
	return nil
}

// loadBacklog reads the pending records, oldest first, but those this
// bridge is still following. It never returns nil without an error.
func (b *Bridge) loadBacklog() ([]*replaying, error) {
	list, err := b.store.ListPending(nsPending)
	if err != nil {
		return nil, err
	}
	backlog := []*replaying{}
	events := 0
	for _, p := range list {
		b.mu.Lock()
		live := b.live[p.ID]
		b.mu.Unlock()
		if live {
			continue
		}
		r := &replaying{id: p.ID}
		if err := json.Unmarshal(p.Value, &r.rec); err != nil {
			// Never readable: keeping it would only log this forever.
			b.log.Warn("Dropped an unreadable Matrix pending record", "record", p.ID, "error", err.Error())
			b.forgetPending(p.ID)
			continue
		}
		r.group = bridge.NewSettleGroup(func() { b.forgetPending(r.id) })
		backlog = append(backlog, r)
		events += len(r.rec.Events)
	}
	slices.SortFunc(backlog, func(x, y *replaying) int { return strings.Compare(x.id, y.id) })
	if len(backlog) > 0 {
		b.log.Info("Handing on again Matrix events accepted before the bridge stopped", "records", len(backlog), "events", events)
	}
	return backlog, nil
}

// replay hands on the events of r from r.next. Events that need nothing
// more (arrived, or redactions already handled) settle at once; those
// that cannot be handed on any more are dropped with a warning.
func (b *Bridge) replay(ctx context.Context, sink bridge.Sink, r *replaying) error {
	for ; r.next < len(r.rec.Events); r.next++ {
		if r.settle == nil {
			r.settle = r.group.Add()
		}
		if err := b.replayEvent(ctx, sink, r.rec.Events[r.next], r.settle); err != nil {
			return err
		}
		r.settle = nil
	}
	r.group.Seal()
	return nil
}

// replayEvent hands one event of a record on again; an error means it
// must be tried again, anything else settles it in the end.
func (b *Bridge) replayEvent(ctx context.Context, sink bridge.Sink, raw json.RawMessage, settle func()) error {
	var evt event.Event
	if err := json.Unmarshal(raw, &evt); err != nil {
		b.log.Warn("Dropped an unreadable Matrix event from a pending record", "error", err.Error())
		settle()
		return nil
	}
	handed, err := b.handleEvent(ctx, sink, &evt, settle)
	switch {
	case err == nil && handed:
	case err == nil:
		settle()
	case skippable(err):
		b.log.Warn("Dropped a Matrix event accepted before the bridge stopped", "event", evt.ID.String(), "room", evt.RoomID.String(), "error", err.Error())
		settle()
	default:
		return err
	}
	return nil
}

// catchUp replays the pending records as soon as the bridge is connected,
// without waiting for a transaction to come, retrying until it is done: a
// full queue when it has space, other failures after a growing delay.
func (b *Bridge) catchUp(ctx context.Context) {
	delay := time.Second
	for ctx.Err() == nil {
		err := b.tryCatchUp(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		var full *bridge.QueueFullError
		if errors.As(err, &full) {
			b.log.Debug("Matrix catch-up waits for space in a queue", "error", err.Error())
			select {
			case <-full.Space:
			case <-ctx.Done():
			}
			continue
		}
		b.log.Warn("Could not hand on Matrix events accepted before the bridge stopped", "error", err.Error(), "retry_in", delay.String())
		if !sleep(ctx, delay) {
			return
		}
		delay = min(delay*2, time.Minute)
	}
}

func (b *Bridge) tryCatchUp(ctx context.Context) error {
	b.txnMu.Lock()
	defer b.txnMu.Unlock()
	sink := b.currentSink()
	if sink == nil {
		return errors.New("the Matrix bridge is not running")
	}
	return b.catchUpLocked(ctx, sink)
}
