package xmpp

import (
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"
)

// addressNS maps a room's occupant-ids (XEP-0421) to the real addresses the
// room showed with them. The room derives an occupant-id from the address,
// so one never stands for two people; remembering the pair lets the bridge
// know the author of an archived message whose sender has left.
func addressNS(room string) string { return "xmpp-address|" + room }

// learnAddress remembers the address a room showed with an occupant-id.
// Only presences teach it: the room writes their muc#user items itself,
// while a message's can be the sender's own (both Prosody and ejabberd
// relay one a sender put in).
func (b *Bridge) learnAddress(room string, o occupant) {
	if o.OccupantID == "" || o.RealJID.String() == "" {
		return
	}
	b.mu.Lock()
	r, ok := b.rooms[room]
	if !ok || r.addresses[o.OccupantID].Equal(o.RealJID) {
		b.mu.Unlock()
		return
	}
	r.addresses = cacheIn(r.addresses, o.OccupantID, o.RealJID)
	b.mu.Unlock()
	b.log.Debug("An XMPP occupant-id stands for an address", "room", room, "occupant_id", o.OccupantID, "jid", o.RealJID.String())
	if err := b.store.SetAlias(addressNS(room), o.OccupantID, o.RealJID.String()); err != nil {
		b.log.Warn("Could not remember an XMPP occupant's address", "room", room, "error", err.Error())
	}
}

// knownAddress is the address the room showed with an occupant-id, if it
// ever did.
func (b *Bridge) knownAddress(room, occupantID string) (jid.JID, bool) {
	b.mu.Lock()
	r, joined := b.rooms[room]
	var addr jid.JID
	var known, unknown bool
	if joined {
		addr, known = r.addresses[occupantID]
		unknown = r.unaddressed[occupantID]
	}
	b.mu.Unlock()
	if known || unknown {
		return addr, known
	}
	v, found, err := b.store.Alias(addressNS(room), occupantID)
	if err != nil {
		return jid.JID{}, false
	}
	if found {
		if addr, err = jid.Parse(v); err != nil {
			return jid.JID{}, false
		}
	}
	if joined {
		// Cached either way: learnAddress, the only writer while the
		// bridge runs, fills addresses, which wins over unaddressed.
		b.mu.Lock()
		if _, learnt := r.addresses[occupantID]; !learnt {
			if found {
				r.addresses = cacheIn(r.addresses, occupantID, addr)
			} else {
				r.unaddressed = cacheIn(r.unaddressed, occupantID, true)
			}
		}
		b.mu.Unlock()
	}
	return addr, found
}

func cacheIn[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// authorOf is who said something in a room under nick, as far as the room
// proves it; stamped is the occupant-id the room put on it, now what the
// bridge knows of the nick's occupant as it is handled. Live, it is
// theirs: the room relays presences and messages in order. Archived, it
// was said by whoever held the nick then, perhaps someone who has left
// since, so only the stamped occupant-id counts; without one, only the
// nick. Either way, an occupant-id the room once showed with an address
// stands for that address, so that a person is one person whether the
// bridge saw their presence this time or not.
func (b *Bridge) authorOf(room, nick, stamped string, archived bool, now occupant) occupant {
	if stamped == "" {
		if archived {
			return occupant{FirstNick: nick}
		}
		return now
	}
	o := occupant{OccupantID: stamped}
	if now.OccupantID == stamped || !archived && now.OccupantID == "" {
		o = now
		o.OccupantID = stamped
	}
	if o.RealJID.String() == "" {
		if addr, ok := b.knownAddress(room, stamped); ok {
			o.RealJID = addr
		} else if b.seesAddresses(room) {
			b.log.Debug("An XMPP occupant is known by occupant-id only, in a room that shows the bridge addresses", "room", room, "nick", nick, "occupant_id", stamped, "archived", archived)
		}
	}
	return o
}

func (b *Bridge) seesAddresses(room string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rooms[room]
	return ok && r.seesAddresses
}

// addressNote names the joined rooms that hide their members' addresses
// from the bridge. There it knows people by occupant-id alone, which
// ejabberd renews on every restart (it keeps the rooms' salts in memory):
// an edit, delete or reaction after one, to a message from before it,
// cannot be shown to be its author's and is refused.
func (b *Bridge) addressNote() string {
	b.mu.Lock()
	var hidden []string
	for key, r := range b.rooms {
		if _, self := r.occupants[r.nick]; self && !r.seesAddresses {
			hidden = append(hidden, key)
		}
	}
	b.mu.Unlock()
	if len(hidden) == 0 {
		return ""
	}
	slices.Sort(hidden)
	verb := "hide"
	if len(hidden) == 1 {
		verb = "hides"
	}
	return fmt.Sprintf("%s %s members' addresses from the bridge, which then knows authors by occupant-id only "+
		"(ejabberd renews those on every restart, so edits, deletes and reactions made after one to earlier messages are refused): "+
		"make the bridge account a room admin", strings.Join(hidden, ", "), verb)
}
