package xmpp

import (
	"context"
	"fmt"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// joinCall is the bot's join of a room on a session, in flight.
type joinCall struct {
	s    *xmpp.Session
	done chan struct{}
}

// join enters a room as the bridge unless it is in already, one join at a
// time per room and session, however many ask at once (on connecting, the
// linked rooms are joined while deliveries queued meanwhile want the same
// rooms): each join starts an archive catch-up, and two at once would both
// relay what was said while the bridge was away.
func (b *Bridge) join(ctx context.Context, s *xmpp.Session, roomJID jid.JID) error {
	key := roomJID.Bare().String()
	var c *joinCall
	for c == nil {
		b.mu.Lock()
		other, ok := b.joining[key]
		if !ok || other.s != s {
			// None in flight, or one on a session that is gone.
			c = &joinCall{s: s, done: make(chan struct{})}
			b.joining[key] = c
		}
		b.mu.Unlock()
		if c != nil {
			break
		}
		select {
		case <-other.done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the join of %s: %w", key, ctx.Err())
		}
	}
	defer func() {
		b.mu.Lock()
		if b.joining[key] == c {
			delete(b.joining, key)
		}
		b.mu.Unlock()
		close(c.done)
	}()
	return b.joinRoom(ctx, s, roomJID)
}
