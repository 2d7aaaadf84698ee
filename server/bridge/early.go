package bridge

import (
	"context"
	"sync"
	"time"
)

// EarlyDeletes is the optional part of a Directory that keeps the deletes
// which came before their message. A delete can overtake its message: a
// homeserver resends a transaction the dying holder never answered, long
// after the redaction reached the next holder another way. Without a
// record the message would be bridged after its delete and stay.
type EarlyDeletes interface {
	// RecordEarlyDelete keeps that by (a Sender's Identity) deleted msg, a
	// message no map knows yet, for EarlyDeleteTTL.
	RecordEarlyDelete(ctx context.Context, d EarlyDelete) error
	// EarlyDeletes returns the deletes recorded within EarlyDeleteTTL.
	EarlyDeletes(ctx context.Context) ([]EarlyDelete, error)
}

// EarlyDelete is a delete of a message not bridged yet.
type EarlyDelete struct {
	// Msg is the message's Ref.Key(); By the deleting Sender's Identity.
	Msg string    `json:"msg"`
	By  string    `json:"by"`
	At  time.Time `json:"at"`
}

// EarlyDeleteTTL is how long an early delete keeps its message away.
const EarlyDeleteTTL = time.Hour

// earlyDeletes is the router's copy of the records, read from the
// directory once per router (a holder's whole tenure: only the holder
// routes), so that a message costs no store read for them.
type earlyDeletes struct {
	mu     sync.Mutex
	loaded bool
	by     map[string]time.Time // Msg + "\x00" + By -> when
}

func (e *earlyDeletes) loadLocked(ctx context.Context, r *Router) bool {
	if e.loaded {
		return true
	}
	dir, ok := r.dir.(EarlyDeletes)
	if !ok {
		return false
	}
	list, err := dir.EarlyDeletes(ctx)
	if err != nil {
		r.log.Warn("bridge: could not read the deletes that came before their messages", "error", err.Error())
		return false
	}
	e.by = map[string]time.Time{}
	for _, d := range list {
		e.by[d.Msg+"\x00"+d.By] = d.At
	}
	e.loaded = true
	return true
}

// deleted reports whether by deleted msg before it came. Only the
// message's own sender's delete counts: nobody keeps others' messages
// away by deleting them in advance.
func (e *earlyDeletes) deleted(ctx context.Context, r *Router, msg Ref, by string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.loadLocked(ctx, r) {
		return false
	}
	at, ok := e.by[msg.Key()+"\x00"+by]
	return ok && time.Since(at) < EarlyDeleteTTL
}

// record keeps a delete of a message no map knows.
func (e *earlyDeletes) record(r *Router, msg Ref, by string) {
	dir, ok := r.dir.(EarlyDeletes)
	if !ok || by == "" {
		return
	}
	ctx := context.Background()
	d := EarlyDelete{Msg: msg.Key(), By: by, At: time.Now().UTC()}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.loadLocked(ctx, r) {
		return
	}
	k := d.Msg + "\x00" + d.By
	if _, ok := e.by[k]; ok {
		return // one record per delete, whatever the number of destinations
	}
	for old, at := range e.by {
		if time.Since(at) >= EarlyDeleteTTL {
			delete(e.by, old)
		}
	}
	if err := dir.RecordEarlyDelete(ctx, d); err != nil {
		r.log.Warn("bridge: could not record a delete that came before its message", "msg", d.Msg, "error", err.Error())
		return
	}
	e.by[k] = d.At
}
