package store

import (
	"context"
	"slices"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// A bridged message is one origin message and its copies in the other rooms
// of a link. It is kept as a group record (g:, keyed by the origin) listing
// every copy, and one pointer record per message ref (m:, for the origin and
// each copy) naming the group's origin. Both expire after the message
// retention; writing a group or pointer again restarts its clock.

type msgPointer struct {
	Ref    bridge.Ref `json:"ref"`
	Origin bridge.Ref `json:"origin"`
	// Author is the Identity of who wrote the origin, so an edit or delete
	// can be checked against it from any copy in one read.
	Author string `json:"author,omitempty"`
}

type msgGroup struct {
	Origin bridge.Ref   `json:"origin"`
	Copies []bridge.Ref `json:"copies"`
}

var _ bridge.Directory = (*Store)(nil)

// SetMessageRetention sets how long message-ID maps are kept after they were
// last written; 0 (or less) keeps them forever. It applies to writes made
// after the call. Every node should set the same value from configuration.
func (s *Store) SetMessageRetention(d time.Duration) { s.retention.Store(ttlSeconds(d)) }

// MessageRetention returns the retention set by SetMessageRetention.
func (s *Store) MessageRetention() time.Duration {
	return time.Duration(s.retention.Load()) * time.Second
}

func checkMessage(what string, r bridge.Ref) error {
	if err := checkNetwork(r.Network); err != nil {
		return err
	}
	if err := checkString(what+" room", r.Room); err != nil {
		return err
	}
	return checkString(what+" message ID", r.ID)
}

func checkRoom(what string, r bridge.Ref) error {
	if err := checkNetwork(r.Network); err != nil {
		return err
	}
	return checkString(what+" room", r.Room)
}

func msgRef(r bridge.Ref) bridge.Ref { return bridge.Ref{Network: r.Network, Room: r.Room, ID: r.ID} }

// pointer returns the pointer record of ref, nil if none, and the bytes
// read at its key.
func (s *Store) pointer(ref bridge.Ref) (*msgPointer, []byte, error) {
	p, raw, err := getJSON[msgPointer](s, messageKey(ref))
	if err != nil {
		return nil, nil, err
	}
	if p == nil || p.Ref != ref {
		return nil, raw, nil
	}
	return p, raw, nil
}

// readAt is what a lookup read at a key.
type readAt struct {
	key string
	raw []byte
}

// proven runs a lookup of the message maps until its answer holds on the
// master. A "no" rests on what the lookup read (reads); a read replica may
// lack a record written just now, so those keys are proven unchanged on
// the master (see confirm) before the "no" is believed, and the lookup
// runs again if one changed. A "yes" is taken as read.
func proven[R any](ctx context.Context, s *Store, lookup func() (r R, ok bool, reads []readAt, err error)) (R, bool, error) {
	for r := newRetry(); ; {
		res, ok, reads, err := lookup()
		if err != nil || ok {
			return res, ok, err
		}
		held := true
		for _, rd := range reads {
			if held, err = s.confirm(rd.key, rd.raw, s.retention.Load()); err != nil || !held {
				break
			}
		}
		if err != nil || held {
			return res, false, err
		}
		if err := r.wait(ctx, reads[0].key); err != nil {
			return res, false, err
		}
	}
}

// RecordCounterpart implements bridge.Directory: dest (with ID) is a copy of
// origin (with ID), written by author. When origin is itself a recorded
// copy, dest joins the bridged message origin belongs to, and keeps the
// author recorded first. Concurrent calls for one message (one per
// destination) never lose a copy.
func (s *Store) RecordCounterpart(ctx context.Context, origin bridge.Ref, dest bridge.Ref, author string) error {
	if err := checkMessage("origin", origin); err != nil {
		return err
	}
	if err := checkMessage("destination", dest); err != nil {
		return err
	}
	if origin.RoomKey() == dest.RoomKey() {
		return invalid("copy %s is in the room of its origin %s", dest.Key(), origin.Key())
	}
	origin, dest = msgRef(origin), msgRef(dest)
	root := origin
	p, _, err := s.pointer(origin)
	if err != nil {
		return err
	}
	if p != nil {
		root = p.Origin
		if p.Author != "" {
			author = p.Author
		}
	}
	if dest == root {
		return nil
	}
	ttl := s.retention.Load()
	created := false
	if _, hinted := s.hint(groupKey(root)); p == nil && !hinted {
		// The first copy of a message: its group is most likely new, and
		// inserting it saves reading it first.
		if created, err = s.replace(groupKey(root), nil, msgGroup{Origin: root, Copies: []bridge.Ref{dest}}, ttl); err != nil {
			return err
		}
	}
	if !created {
		_, err = update(ctx, s, groupKey(root), ttl, func(old *msgGroup) (*msgGroup, error) {
			if old == nil {
				old = &msgGroup{Origin: root}
			}
			if slices.Contains(old.Copies, dest) {
				if ttl == 0 {
					return nil, errNoChange
				}
				return old, nil // rewrite: refresh the expiry
			}
			old.Copies = append(old.Copies, dest)
			return old, nil
		})
	}
	if err != nil {
		return err
	}
	if err := s.putJSON(messageKey(root), msgPointer{Ref: root, Origin: root, Author: author}, ttl); err != nil {
		return err
	}
	return s.putJSON(messageKey(dest), msgPointer{Ref: dest, Origin: root, Author: author}, ttl)
}

// Counterpart implements bridge.Directory: the native ID in destRoom of the
// bridged message msg belongs to (the origin's ID when destRoom is the
// origin's room). A message's counterpart in its own room is itself. A copy
// recorded just now may not be on a lagging read replica: "none" is proven
// on the master first.
func (s *Store) Counterpart(ctx context.Context, msg bridge.Ref, destRoom bridge.Ref) (string, bool, error) {
	if msg.RoomKey() == destRoom.RoomKey() && checkMessage("message", msg) == nil {
		return msg.ID, true, ctx.Err()
	}
	id, ok, _, err := s.CopyOf(ctx, msg, destRoom)
	return id, ok, err
}

// CopyOf implements bridge.Directory: Counterpart, and whether msg is
// itself a copy of another message, from the same reads.
func (s *Store) CopyOf(ctx context.Context, msg bridge.Ref, destRoom bridge.Ref) (id string, ok, echo bool, err error) {
	if err := ctx.Err(); err != nil {
		return "", false, false, err
	}
	if err := checkMessage("message", msg); err != nil {
		return "", false, false, err
	}
	if err := checkRoom("destination", destRoom); err != nil {
		return "", false, false, err
	}
	if msg.RoomKey() == destRoom.RoomKey() {
		origin, known, err := s.OriginOf(ctx, msg)
		return msg.ID, true, known && origin != msgRef(msg), err
	}
	msg = msgRef(msg)
	type found struct {
		id   string
		echo bool
	}
	f, ok, err := proven(ctx, s, func() (found, bool, []readAt, error) {
		p, raw, err := s.pointer(msg)
		if err != nil || p == nil {
			return found{}, false, []readAt{{messageKey(msg), raw}}, err
		}
		echo := p.Origin != msg
		if p.Origin.RoomKey() == destRoom.RoomKey() {
			return found{p.Origin.ID, echo}, true, nil, nil
		}
		g, graw, err := getJSON[msgGroup](s, groupKey(p.Origin))
		if err != nil {
			return found{}, false, nil, err
		}
		if g != nil && g.Origin == p.Origin {
			for _, c := range g.Copies {
				if c.RoomKey() == destRoom.RoomKey() {
					return found{c.ID, echo}, true, nil, nil
				}
			}
		}
		if echo {
			// A copy is known for one as read: nothing to prove.
			return found{echo: true}, true, nil, nil
		}
		return found{}, false, []readAt{{groupKey(p.Origin), graw}}, nil
	})
	if f.echo {
		return f.id, f.id != "", true, err
	}
	return f.id, ok, false, err
}

// OriginOf implements bridge.Directory: the origin of the bridged message
// msg belongs to, msg itself when it is the origin; ok=false if msg was never
// bridged (or its map expired).
func (s *Store) OriginOf(ctx context.Context, msg bridge.Ref) (bridge.Ref, bool, error) {
	if err := ctx.Err(); err != nil {
		return bridge.Ref{}, false, err
	}
	if err := checkMessage("message", msg); err != nil {
		return bridge.Ref{}, false, err
	}
	p, _, err := s.pointer(msgRef(msg))
	if err != nil || p == nil {
		return bridge.Ref{}, false, err
	}
	return p.Origin, true, nil
}

// AuthorOf implements bridge.Directory: the origin of the bridged message
// msg belongs to and who wrote it ("" for maps recorded before authors
// were); ok=false if msg was never bridged (or its map expired). A message
// bridged just now may not be on a lagging read replica: "never bridged"
// is proven on the master first.
func (s *Store) AuthorOf(ctx context.Context, msg bridge.Ref) (bridge.Ref, string, bool, error) {
	if err := ctx.Err(); err != nil {
		return bridge.Ref{}, "", false, err
	}
	if err := checkMessage("message", msg); err != nil {
		return bridge.Ref{}, "", false, err
	}
	msg = msgRef(msg)
	p, ok, err := proven(ctx, s, func() (*msgPointer, bool, []readAt, error) {
		p, raw, err := s.pointer(msg)
		return p, p != nil, []readAt{{messageKey(msg), raw}}, err
	})
	if err != nil || !ok {
		return bridge.Ref{}, "", false, err
	}
	return p.Origin, p.Author, true, nil
}

// ForgetMessage drops ref from the message maps. Forgetting an origin
// forgets the whole bridged message (every copy); forgetting a copy removes
// just that copy. Unknown refs are not an error.
func (s *Store) ForgetMessage(ref bridge.Ref) error {
	if err := checkMessage("message", ref); err != nil {
		return err
	}
	ref = msgRef(ref)
	ctx := context.Background()
	ttl := s.retention.Load()
	// The pointer goes first: deleting it proves what it said on the
	// master, where a lagging read could have said nothing.
	p, err := s.dropPointer(ctx, ref, func(*msgPointer) bool { return true })
	if err != nil || p == nil {
		return err
	}
	if p.Origin != ref {
		_, err := update(ctx, s, groupKey(p.Origin), ttl, func(old *msgGroup) (*msgGroup, error) {
			if old == nil || !slices.Contains(old.Copies, ref) {
				return nil, errNoChange
			}
			old.Copies = slices.DeleteFunc(old.Copies, func(c bridge.Ref) bool { return c == ref })
			return old, nil
		})
		return err
	}

	var copies []bridge.Ref
	if _, err := update(ctx, s, groupKey(ref), 0, func(old *msgGroup) (*msgGroup, error) {
		copies = nil
		if old != nil {
			copies = old.Copies
		}
		return nil, nil
	}); err != nil {
		return err
	}
	for _, c := range copies {
		if _, err := s.dropPointer(ctx, c, func(cp *msgPointer) bool { return cp.Origin == ref }); err != nil {
			return err
		}
	}
	return nil
}

// dropPointer deletes the pointer record of ref if it exists and drop says
// so, and returns it (nil when there was none).
func (s *Store) dropPointer(ctx context.Context, ref bridge.Ref, drop func(*msgPointer) bool) (*msgPointer, error) {
	var dropped *msgPointer
	_, err := update(ctx, s, messageKey(ref), s.retention.Load(), func(old *msgPointer) (*msgPointer, error) {
		dropped = nil
		if old == nil || old.Ref != ref || !drop(old) {
			return nil, errNoChange
		}
		dropped = old
		return nil, nil
	})
	return dropped, err
}
