package xmpp

import (
	"context"
	"encoding/xml"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// In component mode every address under the component's domain reaches the
// bridge on its one stream: the bot's and every ghost's. A room sends each
// of its messages to every occupant (XEP-0045 §7.4), so with the bot and
// n ghosts in a room each message arrives n+1 times, identical but for the
// to address. And the server keeps a component's occupants in its rooms
// when the component goes away: nothing tells it they left, as a client's
// session ending would (Prosody removes them only if a stanza to them
// bounces while the component is away). Ghosts of an earlier session (a
// plugin restart, a crash, a dropped stream) stay in the rooms and keep
// receiving copies.
//
// So, in component mode:
//   - only the copy addressed to the bot is relayed; the bot is in every
//     room the bridge relays (it joins before any ghost, and catches up from
//     the archive after a rejoin), and the copies to ghosts are dropped as
//     they are read, before they take queue space (the server still sends
//     them: a ghost in a room is an occupant like any other);
//   - the bridge remembers which ghost addresses this session put in which
//     room; a stanza from a linked room to any other address of ours shows a
//     leftover of an earlier session, which is asked to leave (a component
//     may send from any address under its domain, and the room finds the
//     occupant to remove by that address);
//   - on Stop, every ghost and the bot leave every room before the stream
//     closes, so a clean restart leaves nothing behind in the first place.

const (
	// leaveTimeout bounds the leaves sent on Stop, and each leftover's.
	leaveTimeout = 5 * time.Second
)

// botJID is the bot's address in component mode.
func (b *Bridge) botJID() jid.JID {
	j, _ := jid.New("bridge", b.cfg.ComponentDomain.Domainpart(), "mattermost")
	return j
}

// resetOccupancyLocked forgets which ghosts a session put in rooms, for a
// new session. Callers hold b.mu.
func (b *Bridge) resetOccupancyLocked() {
	b.ghostsIn = map[string]map[string]string{}
	b.leftoversAsked = map[string]bool{}
}

// sendGhostJoin records that this session puts ghost in room as nick, then
// sends its join. occupancyMu keeps the join and a leftover's leave of the
// same address in the order they were decided in.
func (b *Bridge) sendGhostJoin(ctx context.Context, s *xmpp.Session, room jid.JID, ghost jid.JID, nick string) error {
	occ, err := room.WithResource(nick)
	if err != nil {
		return err
	}
	b.occupancyMu.Lock()
	defer b.occupancyMu.Unlock()
	if b.cfg.Mode == ModeComponent && ghost.String() != "" {
		b.mu.Lock()
		key := room.Bare().String()
		if b.ghostsIn[key] == nil {
			b.ghostsIn[key] = map[string]string{}
		}
		b.ghostsIn[key][ghost.String()] = nick
		b.mu.Unlock()
	}
	return s.Send(ctx, joinPresence(occ, ghost))
}

// ghostJoinFailed forgets a ghost's join that the room refused.
func (b *Bridge) ghostJoinFailed(room jid.JID, ghost jid.JID, nick string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if in := b.ghostsIn[room.Bare().String()]; in != nil && in[ghost.String()] == nick {
		delete(in, ghost.String())
	}
}

// screen decides, on the read loop and before anything is queued, whether a
// message or presence read from a component stream is for the bridge: the
// bot's copy of everything, and what is addressed to this session's ghosts
// except their copies of room messages. A stanza from a linked room to any
// other address under the domain has the ghost of an earlier session as
// its addressee, which is asked to leave.
func (b *Bridge) screen(start *xml.StartElement) bool {
	if b.cfg.Mode != ModeComponent {
		return true
	}
	var rawTo, rawFrom, typ string
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "to":
			rawTo = a.Value
		case "from":
			rawFrom = a.Value
		case "type":
			typ = a.Value
		}
	}
	if rawTo == b.botAddr {
		return true // most stanzas: no parsing
	}
	to, err := jid.Parse(rawTo)
	if err != nil || to.Equal(b.botJID()) || to.Localpart() == "" {
		return true
	}
	groupchat := start.Name.Local == "message" && typ == string(stanza.GroupChatMessage)
	from, err := jid.Parse(rawFrom)
	if err != nil {
		return !groupchat
	}
	room := from.Bare().String()
	b.mu.Lock()
	_, linked := b.rooms[room]
	_, ours := b.ghostsIn[room][to.String()]
	asked := b.leftoversAsked[room+"|"+to.String()]
	leftover := linked && !ours && !asked
	if leftover {
		b.leftoversAsked[room+"|"+to.String()] = true
	}
	s, ctx := b.session, b.runCtx
	b.mu.Unlock()
	if leftover && s != nil {
		go b.leaveLeftover(ctx, s, from.Bare(), to)
	}
	switch {
	case groupchat:
		// The bot has the same message.
		return false
	case linked && !ours:
		// A leftover's copy of the room's presence, or the answer to its
		// leave: the bot has its own.
		return false
	}
	return true
}

// leaveLeftover asks the room to remove who, an address of ours that this
// session did not put there. Rooms find the occupant to remove by the
// sender's address; the nick is the leftover's when the room shows real
// addresses, else the bot's, a nick the room has.
func (b *Bridge) leaveLeftover(ctx context.Context, s *xmpp.Session, room, who jid.JID) {
	b.occupancyMu.Lock()
	defer b.occupancyMu.Unlock()
	key := room.String()
	b.mu.Lock()
	_, ours := b.ghostsIn[key][who.String()]
	nick := b.cfg.Nick
	if r, ok := b.rooms[key]; ok {
		if r.nick != "" {
			nick = r.nick
		}
		for n, o := range r.occupants {
			if o.RealJID.Equal(who.Bare()) {
				nick = n
				break
			}
		}
	}
	b.mu.Unlock()
	if ours {
		return // this session put it back in the meantime
	}
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	if err := b.sendLeave(ctx, s, room, who, nick); err != nil {
		b.log.Debug("Could not remove an earlier session's ghost from an XMPP room", "room", key, "jid", who.String(), "error", err.Error())
		b.mu.Lock()
		delete(b.leftoversAsked, key+"|"+who.String()) // the next copy it gets tries again
		b.mu.Unlock()
		return
	}
	b.log.Info("Removed an earlier session's ghost from an XMPP room", "room", key, "jid", who.String())
}

func (b *Bridge) sendLeave(ctx context.Context, s *xmpp.Session, room, from jid.JID, nick string) error {
	occ, err := room.WithResource(nick)
	if err != nil {
		return err
	}
	p := stanza.Presence{To: occ, Type: stanza.UnavailablePresence}
	if b.cfg.Mode == ModeComponent {
		p.From = from
	}
	return s.Send(ctx, p.Wrap(nil))
}

// leaveRoom takes the ghosts this session put in room out of it, then the
// bot (as nick), and forgets them.
func (b *Bridge) leaveRoom(ctx context.Context, s *xmpp.Session, room jid.JID, nick string) error {
	key := room.Bare().String()
	b.occupancyMu.Lock()
	defer b.occupancyMu.Unlock()
	b.mu.Lock()
	ghosts := b.ghostsIn[key]
	delete(b.ghostsIn, key)
	b.mu.Unlock()
	if b.cfg.Mode == ModeComponent {
		for g, n := range ghosts {
			j, perr := jid.Parse(g)
			if perr != nil {
				continue
			}
			if err := b.sendLeave(ctx, s, room, j, n); err != nil {
				return err
			}
		}
	}
	if nick == "" {
		return nil
	}
	return b.sendLeave(ctx, s, room, b.selfJID(s), nick)
}

// leaveAllRooms takes this session's ghosts and the bot out of every room,
// within leaveTimeout, before the stream closes (component mode: a client's
// stream ending is a leave already).
func (b *Bridge) leaveAllRooms(ctx context.Context, s *xmpp.Session) {
	if b.cfg.Mode != ModeComponent {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	type joined struct {
		room jid.JID
		nick string
	}
	var rooms []joined
	b.mu.Lock()
	for _, r := range b.rooms {
		nick := ""
		select {
		case <-r.joined:
			nick = r.nick
		default:
		}
		rooms = append(rooms, joined{r.jid, nick})
	}
	b.mu.Unlock()
	for _, r := range rooms {
		if err := b.leaveRoom(ctx, s, r.room, r.nick); err != nil {
			b.log.Warn("Could not leave an XMPP room before disconnecting; the next start removes what stayed", "room", r.room.String(), "error", err.Error())
			return
		}
	}
}
