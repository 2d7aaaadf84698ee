package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// A room keeps no record of what a sender already sent: a message sent
// again shows twice. The bridge may not know whether it sent one: the
// session dropped before the room echoed it, or the process died (a node
// of a cluster, a crash, a restart) after sending and before anything of it
// was recorded, and the next bridge replays the post from the Mattermost
// cursor. So before a stanza (a message, an edit, a retraction, a
// reaction) first goes out, the bridge writes in the store that it is
// sending it: its ID, which the delivery determines (see deliveryID), and
// the time. A delivery that finds such a mark and no record of the room's
// echo may have been sent: it first looks for it in the room's archive
// (XEP-0313), by ID and sender, and is sent only when it is not there
// (matrix/outbound.go send and slack/unsure.go do the same with their
// networks' means). Edits and reaction sets sent twice would change
// nothing, but clients without XEP-0424 show a retraction's fallback body
// each time.
//
// The mark also tells the bridge's own stanzas from others' when a
// catch-up reads ones whose sender died before their echo came: they are
// not relayed back to Mattermost as the ghost's.
//
// A room without an archive (or with archiving off) has nothing to show:
// the stanza is sent again and may show twice there (README, "Setting up
// XMPP").

// sendingNS keeps the messages the bridge began to send into a room:
// origin-id -> sendingMark as JSON.
func sendingNS(room string) string { return "xmpp-sending|" + room }

// sendingMark is what the store keeps of a message being sent.
type sendingMark struct {
	// Since is when the first attempt began.
	Since time.Time `json:"since"`
}

// unsureLookback: the archive's times come from the XMPP server's clock,
// not this host's, so the search starts well before the first attempt.
const unsureLookback = 2 * time.Minute

// maxUnsurePages bounds the search in a busy room (mamPageSize each).
const maxUnsurePages = 10

// unsureWait bounds one page of the search.
const unsureWait = 30 * time.Second

// sendingMark returns the mark of a message the bridge began to send.
func (b *Bridge) sendingMark(room, originID string) (sendingMark, bool, error) {
	raw, ok, err := b.store.Alias(sendingNS(room), originID)
	if err != nil || !ok {
		return sendingMark{}, false, err
	}
	var m sendingMark
	if json.Unmarshal([]byte(raw), &m) != nil || m.Since.IsZero() {
		// Written by the bridge only; unreadable, it still says the
		// message may be out, from any time.
		return sendingMark{}, true, nil
	}
	return m, true, nil
}

// markSending records that the message is about to go out; nothing is
// sent unless the record is made.
func (b *Bridge) markSending(room, originID string) error {
	raw, _ := json.Marshal(sendingMark{Since: time.Now()})
	if err := b.store.SetAlias(sendingNS(room), originID, string(raw)); err != nil {
		return fmt.Errorf("record the message before sending it: %w", err)
	}
	return nil
}

// sentByUs reports whether a message read from the room's archive is one
// the bridge sent: its origin-id is one of the bridge's and marked as
// being sent in this room. Only the bridge writes the marks, and its IDs
// cannot be guessed before the message shows (they are derived from the
// Mattermost post's ID), so nobody else can pass for it; someone who copies
// the ID of a message already there only hides their own copy.
func (b *Bridge) sentByUs(room string, m *inMsg) bool {
	id := m.senderID()
	if !isDeliveryID(id) {
		return false
	}
	_, ok, err := b.sendingMark(room, id)
	return err == nil && ok
}

// speakingAs is who the bridge speaks as in a room for a delivery: the
// nick, and the occupant ID the room gave it, if any.
func (b *Bridge) speakingAs(roomJID jid.JID, senderID string, prefixed bool) (nick, occupantID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rooms[roomJID.String()]
	if !ok {
		return "", ""
	}
	nick = r.nick
	if g, ok := r.ghosts[senderID]; ok && !prefixed {
		nick = g
	}
	return nick, r.occupants[nick].OccupantID
}

// alreadySent returns the bridge's stanza msg from the room's archive when
// an earlier attempt may have sent it and did; otherwise (nil) it marks msg
// as being sent, and the caller sends it. A fresh delivery (see
// firstAttempt) had no earlier attempt: it is only marked. nick and
// occupantID are who the bridge speaks as; the archive is asked on the
// bridge's own session bot (a client-mode ghost's session does not hand its
// stanzas to the inbound loop).
func (b *Bridge) alreadySent(ctx context.Context, bot *xmpp.Session, msg stanza.Message, nick, occupantID string, fresh bool) (*inMsg, error) {
	room := msg.To.String()
	var mark sendingMark
	var unsure bool
	var err error
	if !fresh {
		mark, unsure, err = b.sendingMark(room, msg.ID)
	}
	switch {
	case err != nil:
		return nil, err
	case unsure:
		// An earlier attempt, of this bridge or of one that died, began
		// and nothing says how it ended.
		m, ferr := b.findDelivered(ctx, bot, msg.To, msg.ID, mark, nick, occupantID)
		switch {
		case errors.Is(ferr, errNoArchive):
			b.log.Warn("Sending an XMPP message again that may have reached the room: it keeps no archive to look in", "room", room, "error", ferr.Error())
		case ferr != nil:
			return nil, ferr
		case m != nil:
			b.remember(room, m)
			return m, nil
		}
	default:
		if err := b.markSending(room, msg.ID); err != nil {
			return nil, err
		}
	}
	if b.testHookBeforeSend != nil {
		if err := b.testHookBeforeSend(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// firstAttempt reports whether a delivery (by its stanza ID) is fresh: an
// event from after this bridge started, not tried before in this process.
// Nothing can have sent a fresh one yet, so it needs no look for an earlier
// attempt (two reads per message); an older event may have been sent by a
// bridge that stopped or died before recording it (freshAfter allows for
// the clocks of a cluster's nodes). Until finished, the delivery counts as
// tried.
func (b *Bridge) firstAttempt(id string, at time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	fresh := !b.tried[id] && !at.IsZero() && at.After(b.started.Add(freshAfter))
	b.tried[id] = true
	return fresh
}

// freshAfter is how long after its start the bridge takes no event for
// fresh: an event's time is the clock of the node it happened on.
const freshAfter = 10 * time.Second

func (b *Bridge) finished(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.tried, id)
}

// errNoArchive says the room keeps no archive the bridge may read.
var errNoArchive = errors.New("the room offers no archive")

// findDelivered looks for a message the bridge may have sent into the
// room: one with the origin-id, from the nick or occupant ID the bridge
// speaks as, archived since the first attempt (less the lookback). It
// returns the archived message, or nil.
func (b *Bridge) findDelivered(ctx context.Context, s *xmpp.Session, roomJID jid.JID, originID string, mark sendingMark, nick, occupantID string) (*inMsg, error) {
	var (
		mu    sync.Mutex
		found *inMsg
	)
	look := func(m *inMsg) {
		if m.senderID() != originID || m.From.Resourcepart() == "" {
			return
		}
		// The occupant ID stays with the account across nicks and
		// sessions; without one, the nick is all the room shows.
		if m.OccupantID != "" && occupantID != "" {
			if m.OccupantID != occupantID {
				return
			}
		} else if m.From.Resourcepart() != nick {
			return
		}
		mu.Lock()
		if found == nil {
			found = m
		}
		mu.Unlock()
	}
	ask := archiveAsk{max: mamPageSize, look: look}
	if !mark.Since.IsZero() {
		ask.start = mark.Since.Add(-unsureLookback)
	}
	for range maxUnsurePages {
		qctx, cancel := context.WithTimeout(ctx, unsureWait)
		last, complete, err := b.archiveQuery(qctx, s, roomJID, ask)
		cancel()
		if err != nil {
			var se stanza.Error
			if errors.As(err, &se) && noArchive(se.Condition) {
				return nil, fmt.Errorf("%w: %s", errNoArchive, se.Condition)
			}
			return nil, fmt.Errorf("look for an earlier attempt in the room's archive: %w", err)
		}
		mu.Lock()
		m := found
		mu.Unlock()
		if m != nil {
			return m, nil
		}
		if complete || last == "" || last == ask.after {
			return nil, nil
		}
		ask.after = last
	}
	b.log.Warn("An XMPP message that may have been sent was not found in the room's recent archive; sending it", "room", roomJID.String())
	return nil, nil
}

// noArchive reports whether a room's error answer to a MAM query says it
// keeps none the bridge may read, as opposed to a passing failure.
func noArchive(c stanza.Condition) bool {
	switch c {
	case stanza.FeatureNotImplemented, stanza.ServiceUnavailable, stanza.Forbidden, stanza.NotAllowed:
		return true
	}
	return false
}

// isDeliveryID reports whether id has the shape of the bridge's own
// message IDs (see deliveryID).
func isDeliveryID(id string) bool {
	rest, ok := strings.CutPrefix(id, "mm-")
	if !ok || len(rest) != 24 {
		return false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
