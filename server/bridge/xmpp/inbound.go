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

// threadNS maps a room's XEP-0201 thread IDs to the native ID of the first
// message seen in each: a thread has no root of its own, so that message is
// the Mattermost thread's root.
func threadNS(room string) string { return "xmpp-thread|" + room }

func (b *Bridge) handleInbound(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case raw := <-b.inbound:
			if rest, ok := bytes.CutPrefix(raw, caughtUpMarker); ok {
				gen, room, _ := strings.Cut(string(rest), ":")
				b.inLaneAlways(room, func() { b.caughtUp(ctx, room, gen) })
			} else if id, ok := bytes.CutPrefix(raw, queryDoneMarker); ok {
				// After the query's results, which its room's lane handles.
				b.inLaneAlways(b.queryRoom(string(id)), func() { b.endArchiveQuery(string(id)) })
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
	key      string
	group    *bridge.SettleGroup
	heldBack bool
	// cleanups run once the events settled (files fetched for them).
	cleanups []func()
}

func (o *roomEvents) cleanup() {
	for _, c := range o.cleanups {
		c()
	}
}

// bridgedEverywhere reports whether the core already has msg in every room
// it is linked with: a message read again needs no files fetched again.
func (b *Bridge) bridgedEverywhere(ctx context.Context, msg bridge.Ref) bool {
	b.mu.Lock()
	sink := b.sink
	b.mu.Unlock()
	d, ok := sink.(bridge.DeliveryChecker)
	if !ok {
		return false
	}
	done, err := d.BridgedEverywhere(ctx, msg)
	return err == nil && done
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
		switch {
		case q.look != nil:
			q.look(m.Archived)
		case !q.positionOnly:
			b.dispatchGroupchat(ctx, m.Archived, true)
		}
		return
	}
	if m.Type != "groupchat" {
		return
	}
	b.mu.Lock()
	r, ok := b.rooms[m.From.Bare().String()]
	if ok && r.catchingUp && !r.behind && !b.isReflection(m) {
		r.held = append(r.held, heldMsg{m: m, view: b.viewLocked(r, m, false)})
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.dispatchGroupchat(ctx, m, false)
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
// skipping those the archive already gave; it runs in the room's lane,
// after the archived ones. A marker of an older catch-up (the room is being
// read again since) is ignored.
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
		for _, h := range held {
			if id := h.m.StanzaID(r.jid); id == "" || !seen[id] {
				b.mu.Lock()
				h.view.epoch = r.epoch // held, not queued: not stale
				b.mu.Unlock()
				b.handleGroupchat(ctx, h.m, false, h.view)
			}
		}
	}
}

// roomView is what the bridge knew of a room when one of its messages
// came: the message is handled later, in the room's lane, by when people
// may have left or changed nicks.
type roomView struct {
	// epoch is the room's when the message came: after a hold-back, what
	// was queued before is read again from the archive instead.
	epoch        int
	occ          occupant // the sender
	ours         bool     // sent by the bridge or a ghost
	selfNick     string
	firstSubject bool // the subject every join gets, not news
	modOcc       occupant
	modOurs      bool // a moderation by the bridge or a ghost
}

// viewLocked takes a room's view for message m; callers hold b.mu.
func (b *Bridge) viewLocked(r *room, m *inMsg, archived bool) roomView {
	nick := m.From.Resourcepart()
	v := roomView{epoch: r.epoch, occ: r.occupants[nick], ours: r.ourNicks[nick], selfNick: r.nick}
	if m.Subject != nil && m.Body == "" && !archived {
		v.firstSubject = !r.subjectSeen
		r.subjectSeen = true
	}
	if rt := m.parsed.Retract; rt != nil && rt.Moderated != nil {
		mod := rt.Moderated.By.Resourcepart()
		v.modOcc, v.modOurs = r.occupants[mod], r.ourNicks[mod] || mod == r.nick
	}
	return v
}

// dispatchGroupchat queues one room message in its room's lane, where it
// becomes events (see handleGroupchat), with what the room looked like as
// it came. A reflection of a message the bridge sent is resolved at once,
// so the delivery waiting for it does not wait for the lane.
func (b *Bridge) dispatchGroupchat(ctx context.Context, m *inMsg, archived bool) {
	key := m.From.Bare().String()
	b.mu.Lock()
	r, linked := b.rooms[key]
	if !linked || r.behind {
		b.mu.Unlock()
		if linked {
			// Read again from the archive later; only a delivery waiting
			// for its reflection needs it now.
			if b.resolveReflection(m) {
				b.remember(key, m)
			}
		}
		return
	}
	view := b.viewLocked(r, m, archived)
	b.mu.Unlock()
	if b.resolveReflection(m) {
		view.ours = true
	}
	if !b.inLane(key, func() { b.handleGroupchat(ctx, m, archived, view) }) {
		b.log.Debug("Holding an XMPP room back: too many of its messages wait", "room", key)
		b.holdBack(key, b.laneSpace(key))
	}
}

// handleGroupchat turns one room message into events, in the room's lane.
// Archived messages (catch-up after a disconnect) go the same way; the
// router drops any the channel already has. The room's archive position
// moves past the message once the core has settled its events.
func (b *Bridge) handleGroupchat(ctx context.Context, m *inMsg, archived bool, view roomView) {
	roomJID := m.From.Bare()
	key := roomJID.String()
	pos := m.StanzaID(roomJID)
	b.mu.Lock()
	r, linked := b.rooms[key]
	stale := !linked || r.behind || r.epoch != view.epoch
	b.mu.Unlock()
	if stale {
		return // read again from the archive
	}
	mark := r.marks.Begin(pos)
	out := &roomEvents{b: b, key: key}
	out.group = bridge.NewSettleGroup(func() {
		out.cleanup()
		mark.Settle()
	})
	b.relayGroupchat(ctx, m, archived, view, out)
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

func (b *Bridge) relayGroupchat(ctx context.Context, m *inMsg, archived bool, view roomView, out *roomEvents) {
	roomJID := m.From.Bare()
	nick := m.From.Resourcepart()
	key := roomJID.String()
	occ, ours, selfNick, firstSubject := view.occ, view.ours, view.selfNick, view.firstSubject
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
		b.relayModeration(ctx, roomJID, m, archived, view, out)
		return
	}
	if ours || archived && b.sentByUs(key, m) {
		// An archived message of the bridge's is one whose sender died
		// before its echo came (see unsure.go), not someone's to relay.
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

	occ = b.authorOf(key, nick, m.OccupantID, archived, occ)
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
		if m.parsed.Retract.Legacy {
			// XEP-0424 before 0.4 names the message by its origin-id, as
			// corrections do; the current form names the room's stanza-id.
			ev.Target = b.resolveOrigin(key, m.Retract)
		}
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
		// A reply names its parent; a message that is only in a thread
		// joins the thread's first message.
		ev.Parent = b.threadParent(key, m.Thread, nativeID)
		if m.ReplyTo != "" {
			ev.Parent = m.ReplyTo
		}
		if len(m.OOB) > 0 && !b.bridgedEverywhere(ctx, ev.Origin) {
			var cleanup func()
			ev.Text, ev.Attachments, cleanup = b.fetchAll(ctx, ev.Text, m.OOB)
			out.cleanups = append(out.cleanups, cleanup)
		}
		if ev.Text == "" && len(ev.Attachments) == 0 {
			return
		}
		out.send(ctx, ev)
	}
}

// relayModeration turns the room's announcement that a moderator
// retracted a message into a moderated delete, unless the moderator is the
// bridge itself (relaying a Mattermost admin's delete).
func (b *Bridge) relayModeration(ctx context.Context, roomJID jid.JID, m *inMsg, archived bool, view roomView, out *roomEvents) {
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
	occ := view.modOcc
	if view.modOurs {
		return
	}
	occ = b.authorOf(key, modNick, rt.Moderated.OccupantID, archived, occ)
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

// threadParent returns the native ID of the first message seen in thread,
// or "" when there is no thread or this message (nativeID) is its first,
// which it then records.
func (b *Bridge) threadParent(room, thread, nativeID string) string {
	if thread == "" {
		return ""
	}
	if v, ok, err := b.store.Alias(threadNS(room), thread); err == nil && ok {
		if v == nativeID {
			return "" // the first message, read again
		}
		return v
	}
	if err := b.store.SetAlias(threadNS(room), thread, nativeID); err != nil {
		b.log.Warn("Could not record an XMPP thread", "error", err.Error())
	}
	return ""
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
