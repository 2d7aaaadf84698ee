package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// cursor is a named position kept per link (last relayed post time, a
// history token...).
type cursor struct {
	LinkID string `json:"link_id"`
	Name   string `json:"name"`
	Value  string `json:"value"`
}

func checkCursor(linkID, name string) error {
	if err := checkString("link ID", linkID); err != nil {
		return err
	}
	return checkString("cursor name", name)
}

// GetCursor returns the cursor name of link linkID; ok=false when unset.
func (s *Store) GetCursor(linkID, name string) (string, bool, error) {
	if err := checkCursor(linkID, name); err != nil {
		return "", false, err
	}
	c, _, err := getJSON[cursor](s, cursorKey(linkID, name))
	if err != nil || c == nil {
		return "", false, err
	}
	return c.Value, true, nil
}

// SetCursor sets the cursor name of link linkID, whatever its value was.
// Cursors of a link are deleted with it (RemoveRemote of its last remote).
func (s *Store) SetCursor(linkID, name, value string) error {
	if err := checkCursor(linkID, name); err != nil {
		return err
	}
	if len(value) > maxField {
		return invalid("cursor value is longer than %d bytes", maxField)
	}
	return s.putJSON(cursorKey(linkID, name), cursor{LinkID: linkID, Name: name, Value: value}, 0)
}

// AdvanceCursorInt sets an integer cursor to v unless it already is at v or
// beyond: the cursor only ever moves forward, whatever the order concurrent
// calls land in. It fails if the cursor holds a non-integer.
func (s *Store) AdvanceCursorInt(linkID, name string, v int64) error {
	if err := checkCursor(linkID, name); err != nil {
		return err
	}
	value := strconv.FormatInt(v, 10)
	_, err := update(context.Background(), s, cursorKey(linkID, name), 0, func(old *cursor) (*cursor, error) {
		if old != nil {
			cur, err := strconv.ParseInt(old.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("store: cursor %q of link %s is not an integer: %q", name, linkID, old.Value)
			}
			if cur >= v {
				return nil, errNoChange
			}
		}
		return &cursor{LinkID: linkID, Name: name, Value: value}, nil
	})
	return err
}

// deleteCursors deletes every cursor of a link.
func (s *Store) deleteCursors(linkID string) error {
	keys, err := s.listKeys(cursorPrefix(linkID))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.del(k); err != nil {
			return err
		}
	}
	return nil
}

type seenMark struct {
	Namespace string    `json:"ns"`
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	// Claim tells one Claim's mark from another's (see Claim).
	Claim string `json:"claim,omitempty"`
}

// MarkSeen records id in namespace (a Matrix transaction ID, a Slack envelope
// ID...) for ttl (0 = forever; it is rounded up to whole seconds) and reports
// whether this call was the first to see it. It is insert-if-absent, so of
// concurrent callers exactly one gets first=true.
func (s *Store) MarkSeen(namespace, id string, ttl time.Duration) (first bool, err error) {
	return s.markSeen(seenMark{Namespace: namespace, ID: id, At: s.stamp()}, ttl)
}

// markSeen inserts mark if its namespace and ID hold none (see MarkSeen).
func (s *Store) markSeen(mark seenMark, ttl time.Duration) (first bool, err error) {
	namespace, id := mark.Namespace, mark.ID
	if err := checkString("namespace", namespace); err != nil {
		return false, err
	}
	if err := checkString("ID", id); err != nil {
		return false, err
	}
	if ttl < 0 {
		return false, invalid("negative ttl %v", ttl)
	}
	b, err := json.Marshal(mark)
	if err != nil {
		return false, err
	}
	key := seenKey(namespace, id)
	for r := newRetry(); ; {
		ok, err := s.insert(key, b, ttlSeconds(ttl))
		if err != nil || ok {
			return ok, err
		}
		// Taken, unless by the placeholder of a Seen proving the mark
		// absent (gone in a moment), or by a mark the replica does not
		// show yet: look again.
		cur, err := s.get(key)
		if err != nil {
			return false, err
		}
		if cur != nil && !isPlaceholder(cur) {
			return false, nil
		}
		if err := r.wait(context.Background(), key); err != nil {
			return false, err
		}
	}
}

// Seen reports whether id was recorded in namespace by MarkSeen and has
// not expired. Callers that must finish work before recording it check
// with Seen first and MarkSeen after. It records nothing; a mark made just
// now may not be on a lagging read replica, so "not seen" is proven on the
// master (a placeholder inserted and removed) before it is believed.
func (s *Store) Seen(namespace, id string) (bool, error) {
	if err := checkString("namespace", namespace); err != nil {
		return false, err
	}
	if err := checkString("ID", id); err != nil {
		return false, err
	}
	key := seenKey(namespace, id)
	for r := newRetry(); ; {
		b, err := s.get(key)
		if err != nil || (b != nil && !isPlaceholder(b)) {
			return b != nil, err
		}
		ok, err := s.confirmAbsent(key, b)
		if err != nil || ok {
			return false, err
		}
		if err := r.wait(context.Background(), key); err != nil {
			return false, err
		}
	}
}
