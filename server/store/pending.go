package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// prefixPending keys the records of work a source accepted and has not
// finished (see the key layout in keys.go).
const prefixPending = "p:"

func pendingKey(namespace, id string) string { return join(prefixPending, namespace, id) }

// pendingRecord is one piece of accepted work, kept until its source says
// it is done. It never expires: what it holds would otherwise be lost.
type pendingRecord struct {
	Namespace string          `json:"ns"`
	ID        string          `json:"id"`
	Value     json.RawMessage `json:"value"`
}

// Pending is a record ListPending returns.
type Pending struct {
	ID    string
	Value json.RawMessage
}

// SavePending keeps value, a JSON document, under id in namespace until
// DeletePending: a source that acknowledged work it has not finished (a
// Matrix transaction answered before its events reached every room) reads
// it back with ListPending after a restart. There is no size limit below
// the database's: plugin KV values are bytea on PostgreSQL.
func (s *Store) SavePending(namespace, id string, value json.RawMessage) error {
	if err := checkString("namespace", namespace); err != nil {
		return err
	}
	if err := checkString("pending ID", id); err != nil {
		return err
	}
	if !json.Valid(value) {
		return invalid("pending value %q is not JSON", id)
	}
	return s.putJSON(pendingKey(namespace, id), pendingRecord{Namespace: namespace, ID: id, Value: value}, 0)
}

// DeletePending deletes the record of id in namespace; deleting one that
// does not exist is not an error.
func (s *Store) DeletePending(namespace, id string) error {
	if err := checkString("namespace", namespace); err != nil {
		return err
	}
	if err := checkString("pending ID", id); err != nil {
		return err
	}
	return s.del(pendingKey(namespace, id))
}

// ListPending returns every record of namespace, in no particular order.
// It walks every key, like the other listings: meant for a start, not for
// every event. It waits for the read replicas first (AwaitReplicas): a
// record saved just before the start must not be missed.
func (s *Store) ListPending(namespace string) ([]Pending, error) {
	if err := checkString("namespace", namespace); err != nil {
		return nil, err
	}
	if err := s.AwaitReplicas(context.Background()); err != nil {
		return nil, fmt.Errorf("store: listing pending %s: %w", namespace, err)
	}
	records, err := listJSON[pendingRecord](s, join(prefixPending, namespace)+":")
	if err != nil {
		return nil, fmt.Errorf("store: listing pending %s: %w", namespace, err)
	}
	out := make([]Pending, 0, len(records))
	for _, r := range records {
		if r.Namespace == namespace {
			out = append(out, Pending{ID: r.ID, Value: r.Value})
		}
	}
	return out, nil
}

// GetPending returns the record of id in namespace (ok false when there
// is none) as the master holds it: a replica may be behind a record saved,
// replaced or deleted a moment ago, on this node or another, and a caller
// resuming work must not take up a stale step.
func (s *Store) GetPending(namespace, id string) (value json.RawMessage, ok bool, err error) {
	if err := checkString("namespace", namespace); err != nil {
		return nil, false, err
	}
	if err := checkString("pending ID", id); err != nil {
		return nil, false, err
	}
	key := pendingKey(namespace, id)
	for r := newRetry(); ; {
		raw, err := s.get(key)
		if err != nil {
			return nil, false, err
		}
		held, err := s.confirm(key, raw, 0)
		if err != nil {
			return nil, false, err
		}
		if held {
			if raw == nil || isPlaceholder(raw) {
				return nil, false, nil
			}
			rec, err := decodeJSON[pendingRecord](key, raw)
			if err != nil || rec.Namespace != namespace || rec.ID != id {
				return nil, false, err
			}
			return rec.Value, true, nil
		}
		if err := r.wait(context.Background(), key); err != nil {
			return nil, false, err
		}
	}
}
