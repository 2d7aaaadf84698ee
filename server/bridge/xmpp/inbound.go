package xmpp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/emoji"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/styling"
)

// Alias namespaces. In a room a message has two IDs: the one its sender
// chose (used by corrections, XEP-0308) and the one the room assigned
// (XEP-0359 stanza-id, used by retractions, reactions and replies). The
// bridge's native ID is the room's; aliases map between the two.
func originNS(room string) string   { return "xmpp-origin|" + room }
func stanzaNS(room string) string   { return "xmpp-stanza|" + room }
func reactionNS(room string) string { return "xmpp-reactions|" + room }

func (b *Bridge) handleInbound(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case raw := <-b.inbound:
			if rest, ok := bytes.CutPrefix(raw, caughtUpMarker); ok {
				gen, room, _ := strings.Cut(string(rest), ":")
				b.caughtUp(ctx, room, gen)
			} else if id, ok := bytes.CutPrefix(raw, queryDoneMarker); ok {
				b.endArchiveQuery(string(id))
			} else if bytes.HasPrefix(raw, []byte("<presence")) {
				b.handlePresence(raw)
			} else {
				b.handleMessage(ctx, raw)
			}
		}
	}
}

// roomEvents hands the events of one room message to the core as a unit:
// the message's archive position settles once all of them have, and a
// refusal holds the room back to be read again.
type roomEvents struct {
	b        *Bridge
	r        *room
	key      string
	group    *bridge.SettleGroup
	heldBack bool
}

// readAgainAfterError is how long a room whose event the core could not
// take for an unexpected reason waits before it is read again.
const readAgainAfterError = time.Second

func (o *roomEvents) send(ctx context.Context, ev bridge.Event) {
	b := o.b
	b.mu.Lock()
	sink := b.sink
	b.mu.Unlock()
	if sink == nil || o.heldBack {
		return
	}
	ev.Settled = o.group.Add()
	err := sink.Receive(ctx, ev)
	var full *bridge.QueueFullError
	switch {
	case err == nil:
		b.health.Touch(time.Now())
	case errors.As(err, &full):
		// A destination is backed up: the room waits for it and is read
		// again from the archive, rather than anything being dropped.
		b.log.Debug("Holding an XMPP room back: a destination's queue is full", "room", o.key, "queue", full.Key.String())
		o.holdBack(full.Space)
	case errors.Is(err, bridge.ErrBusClosed):
		// Stopping: the position stays before it and the next start reads
		// it again.
		o.heldBack = true
		o.group.Fail()
	case errors.Is(err, bridge.ErrNotLinked), errors.Is(err, bridge.ErrInvalidEvent):
		// It would fail again: it counts as done.
		b.log.Warn("Could not relay an XMPP message", "room", o.key, "kind", string(ev.Kind), "error", err.Error())
		ev.Settled()
	default:
		b.log.Warn("Could not relay an XMPP message; the room is read again shortly", "room", o.key, "kind", string(ev.Kind), "error", err.Error())
		o.holdBack(closedAfter(readAgainAfterError))
	}
}

// holdBack stops handling the room's messages until wait is closed; then
// the room is read again from the archive after the last message the core
// took (see readArchive).
func (o *roomEvents) holdBack(wait <-chan struct{}) {
	o.heldBack = true
	o.group.Fail()
	o.b.holdBack(o.key, wait)
}

func closedAfter(d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	time.AfterFunc(d, func() { close(c) })
	return c
}

func (b *Bridge) handleMessage(ctx context.Context, raw []byte) {
	m, err := parseMessage(raw)
	if err != nil {
		b.log.Debug("Ignoring a malformed XMPP message", "error", err.Error())
		return
	}
	if m.Type == "error" {
		b.failReflection(m)
		return
	}
	if m.Archived != nil {
		// A MAM result: the archived groupchat message inside, if it
		// answers our query, unless the query only looked for the
		// archive's end.
		q, ok := b.archiveResult(m)
		if !ok {
			b.ignoreArchiveResult(m)
			return
		}
		if !q.positionOnly {
			b.handleGroupchat(ctx, m.Archived, true)
		}
		return
	}
	if m.Type != "groupchat" {
		return
	}
	b.mu.Lock()
	r, ok := b.rooms[m.From.Bare().String()]
	if ok && r.catchingUp && !r.behind && !b.isReflection(m) {
		r.held = append(r.held, m)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.handleGroupchat(ctx, m, false)
}

// isReflection reports whether m is a message a delivery waits for; those
// are never held, or the delivery would wait for the catch-up. Callers hold
// b.mu.
func (b *Bridge) isReflection(m *inMsg) bool {
	_, ok := b.reflections[m.senderID()]
	return ok
}

// caughtUpMarker, queued behind a room's archived messages, says its
// catch-up is complete; it can never start a stanza. It is followed by the
// catch-up's generation and the room ("<gen>:<room>").
var caughtUpMarker = []byte("\x00caught-up:")

// caughtUp releases the live messages held during a room's catch-up,
// skipping those the archive already gave. A marker of an older catch-up
// (the room is being read again since) is ignored.
func (b *Bridge) caughtUp(ctx context.Context, room, gen string) {
	for {
		b.mu.Lock()
		r, ok := b.rooms[room]
		if !ok || strconv.Itoa(r.catchUpGen) != gen {
			b.mu.Unlock()
			return
		}
		held := r.held
		r.held = nil
		seen := r.caughtUpIDs
		if len(held) == 0 {
			r.catchingUp = false
			r.caughtUpIDs = map[string]bool{}
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		for _, m := range held {
			if id := m.StanzaID(r.jid); id == "" || !seen[id] {
				b.handleGroupchat(ctx, m, false)
			}
		}
	}
}

// handleGroupchat turns one room message into events. Archived messages
// (catch-up after a disconnect) go the same way; the router drops any the
// channel already has. The room's archive position moves past the message
// once the core has settled its events.
func (b *Bridge) handleGroupchat(ctx context.Context, m *inMsg, archived bool) {
	roomJID := m.From.Bare()
	key := roomJID.String()
	pos := m.StanzaID(roomJID)
	b.mu.Lock()
	r, linked := b.rooms[key]
	behind := linked && r.behind
	b.mu.Unlock()
	if !linked {
		return
	}
	if behind {
		// The archive gives it again once the room is read again; only a
		// delivery waiting for its reflection needs it now.
		if b.resolveReflection(m) {
			b.remember(key, m)
		}
		return
	}
	mark := r.marks.Begin(pos)
	out := &roomEvents{b: b, r: r, key: key, group: bridge.NewSettleGroup(mark.Settle)}
	b.relayGroupchat(ctx, m, archived, out)
	out.group.Seal()
	if out.heldBack {
		mark.Abandon()
		return
	}
	if pos != "" {
		b.mu.Lock()
		r.fed = pos
		if archived {
			r.caughtUpIDs[pos] = true
		}
		b.mu.Unlock()
	}
}

func (b *Bridge) relayGroupchat(ctx context.Context, m *inMsg, archived bool, out *roomEvents) {
	roomJID := m.From.Bare()
	nick := m.From.Resourcepart()
	key := roomJID.String()

	b.mu.Lock()
	r, linked := b.rooms[key]
	var occ occupant
	var ours bool
	var selfNick string
	firstSubject := false
	if linked {
		occ = r.occupants[nick]
		ours = r.ourNicks[nick]
		selfNick = r.nick
		if m.Subject != nil && m.Body == "" && !archived {
			firstSubject = !r.subjectSeen
			r.subjectSeen = true
		}
	}
	b.mu.Unlock()
	if !linked {
		return
	}
	if m.Subject != nil && m.Body == "" {
		// Rooms send the current subject on every join; only later
		// changes are news.
		if b.cfg.PostSubjects && !archived && !firstSubject && m.Delay.IsZero() && !ours && nick != selfNick {
			b.relaySubject(ctx, roomJID, nick, occ, m, out)
		}
		return
	}
	if nick == "" {
		// The room itself speaking: notices, and XEP-0425 moderations,
		// which only the room sends and only for its moderators.
		b.relayModeration(ctx, roomJID, m, out)
		return
	}
	if b.resolveReflection(m) || ours {
		b.remember(key, m)
		return
	}
	nativeID := m.StanzaID(roomJID)
	if nativeID == "" {
		nativeID = m.ID
	}
	if nativeID == "" {
		return
	}
	b.remember(key, m)

	if m.OccupantID != "" {
		occ.OccupantID = m.OccupantID
	}
	sender := b.senderOf(roomJID, nick, occ)
	at := m.Delay
	if at.IsZero() {
		at = time.Now()
	}
	base := bridge.Event{Origin: bridge.Ref{Network: bridge.NetworkXMPP, Room: key, ID: nativeID}, Sender: sender, Time: at}

	switch {
	case m.Retract != "":
		ev := base
		ev.Kind, ev.Target = bridge.KindDelete, m.Retract
		out.send(ctx, ev)
	case m.Replace != "":
		ev := base
		ev.Kind, ev.Target, ev.Text = bridge.KindEdit, b.resolveOrigin(key, m.Replace), b.readMentions(key, styling.ToMarkdown(m.Body))
		out.send(ctx, ev)
	case m.ReactionsTo != "":
		b.relayReactions(ctx, base, m.ReactionsTo, m.Reactions, out)
	case m.Body != "" || len(m.OOB) > 0:
		ev := base
		ev.Kind = bridge.KindMessage
		ev.Text = b.readMentions(key, styling.ToMarkdown(m.Body))
		ev.Parent = m.ReplyTo
		ev.Text, ev.Attachments = b.fetchAll(ctx, ev.Text, m.OOB)
		if ev.Text == "" && len(ev.Attachments) == 0 {
			return
		}
		out.send(ctx, ev)
	}
}

// relayModeration turns the room's announcement that a moderator
// retracted a message into a moderated delete, unless the moderator is the
// bridge itself (relaying a Mattermost admin's delete).
func (b *Bridge) relayModeration(ctx context.Context, roomJID jid.JID, m *inMsg, out *roomEvents) {
	rt := m.parsed.Retract
	if rt == nil || rt.Moderated == nil || rt.ID == "" {
		return
	}
	by := rt.Moderated.By
	if !by.Bare().Equal(roomJID) || by.Resourcepart() == "" {
		b.log.Debug("Ignoring an XMPP moderation that names no moderator of the room", "room", roomJID.String())
		return
	}
	modNick := by.Resourcepart()
	key := roomJID.String()
	b.mu.Lock()
	r, linked := b.rooms[key]
	var occ occupant
	ours := false
	if linked {
		occ, ours = r.occupants[modNick], r.ourNicks[modNick] || modNick == r.nick
	}
	b.mu.Unlock()
	if !linked || ours {
		return
	}
	if rt.Moderated.OccupantID != "" {
		occ.OccupantID = rt.Moderated.OccupantID
	}
	id := m.StanzaID(roomJID)
	if id == "" {
		id = m.ID
	}
	at := m.Delay
	if at.IsZero() {
		at = time.Now()
	}
	out.send(ctx, bridge.Event{
		Kind: bridge.KindDelete, Origin: bridge.Ref{Network: bridge.NetworkXMPP, Room: key, ID: id},
		Target: rt.ID, Sender: b.senderOf(roomJID, modNick, occ), Moderated: true, Time: at,
	})
}

// remember records the aliases of a message seen in a room.
func (b *Bridge) remember(room string, m *inMsg) {
	stanzaID := m.StanzaID(m.From.Bare())
	origin := m.senderID()
	if stanzaID == "" || origin == "" || m.Replace != "" || m.Retract != "" || m.ReactionsTo != "" {
		return
	}
	if err := b.store.SetAlias(originNS(room), origin, stanzaID); err != nil {
		b.log.Warn("Could not record an XMPP message ID", "error", err.Error())
	}
	if err := b.store.SetAlias(stanzaNS(room), stanzaID, origin); err != nil {
		b.log.Warn("Could not record an XMPP message ID", "error", err.Error())
	}
}

// resolveOrigin turns a sender-chosen ID into the room's ID for it.
func (b *Bridge) resolveOrigin(room, id string) string {
	if v, ok, err := b.store.Alias(originNS(room), id); err == nil && ok {
		return v
	}
	return id
}

// senderOf picks the most stable identity the room reveals: the real JID,
// else the occupant ID, else the nick.
func (b *Bridge) senderOf(roomJID jid.JID, nick string, occ occupant) bridge.Sender {
	s := bridge.Sender{Network: bridge.NetworkXMPP, Username: nick, DisplayName: nick}
	switch {
	case occ.RealJID.String() != "":
		s.ID = "jid:" + occ.RealJID.String()
		if lp := occ.RealJID.Localpart(); lp != "" {
			s.Username = lp
		}
	case occ.OccupantID != "":
		s.ID = "occupant:" + roomJID.String() + "|" + occ.OccupantID
	default:
		first := occ.FirstNick
		if first == "" {
			first = nick
		}
		s.ID = "nick:" + roomJID.String() + "|" + first
	}
	return s
}

// relayReactions turns XEP-0444's "my reactions to this message are now
// this set" into added and removed reactions, against the last set seen.
func (b *Bridge) relayReactions(ctx context.Context, base bridge.Event, target string, now []string, out *roomEvents) {
	key := target + "|" + base.Sender.ID
	var before []string
	if v, ok, err := b.store.Alias(reactionNS(base.Origin.Room), key); err == nil && ok {
		_ = json.Unmarshal([]byte(v), &before)
	}
	names := make([]string, 0, len(now))
	for _, r := range now {
		if n, ok := emoji.ToName(r); ok {
			names = append(names, n)
		} else {
			names = append(names, r)
		}
	}
	for _, n := range names {
		if !slices.Contains(before, n) {
			ev := base
			ev.Kind, ev.Target, ev.Emoji = bridge.KindReactionAdd, target, n
			ev.Origin.ID = target + "|" + base.Sender.ID + "|+" + n
			out.send(ctx, ev)
		}
	}
	for _, n := range before {
		if !slices.Contains(names, n) {
			ev := base
			ev.Kind, ev.Target, ev.Emoji = bridge.KindReactionRemove, target, n
			ev.Origin.ID = target + "|" + base.Sender.ID + "|-" + n
			out.send(ctx, ev)
		}
	}
	if out.heldBack {
		return // read again, against the set before
	}
	enc, _ := json.Marshal(names)
	if err := b.store.SetAlias(reactionNS(base.Origin.Room), key, string(enc)); err != nil {
		b.log.Warn("Could not record XMPP reactions", "error", err.Error())
	}
}

// relaySubject posts a subject change as a message from whoever made it.
func (b *Bridge) relaySubject(ctx context.Context, roomJID jid.JID, nick string, occ occupant, m *inMsg, out *roomEvents) {
	id := m.StanzaID(roomJID)
	if id == "" {
		id = m.ID
	}
	if id == "" {
		id = "subject-" + randomID()
	}
	sender := b.senderOf(roomJID, nick, occ)
	if nick == "" {
		sender = bridge.Sender{Network: bridge.NetworkXMPP, ID: "room:" + roomJID.String(), Username: roomJID.Localpart(), DisplayName: roomJID.Localpart()}
	}
	text := "changed the room subject to: " + styling.ToMarkdown(*m.Subject)
	if *m.Subject == "" {
		text = "cleared the room subject"
	}
	out.send(ctx, bridge.Event{
		Kind: bridge.KindMessage, Origin: bridge.Ref{Network: bridge.NetworkXMPP, Room: roomJID.String(), ID: id},
		Sender: sender, Text: "_" + text + "_", Time: time.Now(),
	})
}
