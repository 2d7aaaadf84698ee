package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

const (
	nsMUC     = "http://jabber.org/protocol/muc"
	nsMUCUser = "http://jabber.org/protocol/muc#user"
)

// occupant is what the bridge knows of someone in a room, from presence.
type occupant struct {
	RealJID    jid.JID // bare; zero when the room hides it
	OccupantID string  // XEP-0421, when the room offers it
	// FirstNick is the nick the occupant had when the bridge first saw
	// them, so a rename keeps a nick-identified person the same person.
	FirstNick string
}

// room is the bridge's view of one joined room.
type room struct {
	jid       jid.JID
	nick      string
	joined    chan struct{} // closed by our own presence reflecting back
	joinErr   chan error    // receives an error presence for our join
	occupants map[string]occupant
	// ourNicks are the nicks of the bridge and its ghosts in this room.
	ourNicks map[string]bool
	// ghosts maps Mattermost user IDs to their ghost's nick in this room,
	// ghostUsers nicks back to Mattermost usernames (for mentions).
	ghosts     map[string]string
	ghostUsers map[string]string
	// catchingUp is set from the join until the archive catch-up is done;
	// live messages wait in held so the room's order is kept.
	catchingUp bool
	held       []heldMsg
	// catchUpGen counts the room's catch-ups, so the end marker of one
	// that was cut short does not end the next.
	catchUpGen int
	// subjectSeen is set by the first subject after a join: rooms send the
	// current subject to everyone who joins, which is not news.
	subjectSeen bool
	// caughtUpIDs are the archive IDs handled during a catch-up, so live
	// messages held meanwhile that the archive already gave are skipped.
	caughtUpIDs map[string]bool
	// seesAddresses is set while the room shows the bridge its members'
	// real addresses (a non-anonymous room, or the bridge a moderator).
	seesAddresses bool
	// addresses caches addressNS: occupant-ids and the addresses the room
	// showed with them.
	addresses map[string]jid.JID
	// unaddressed caches the occupant-ids addressNS has no address for.
	unaddressed map[string]bool

	// The fields below outlive a session.

	// lane handles the room's messages in order, off the inbound loop.
	lane lane

	// marks hold the saved archive position back to the oldest message
	// the core has not settled, so a stop or crash reads it again.
	marks *bridge.Watermark
	// fed is the archive ID of the last message the core took in this
	// process: reading again after holding back starts after it.
	fed string
	// behind is set when the core refused one of the room's events (a
	// full queue): nothing more of the room is handled until wait is
	// closed and the room is read again from fed.
	behind bool
	wait   <-chan struct{}
	// epoch counts hold-backs and sessions: messages queued in the lane
	// before one are stale (see roomView).
	epoch int
	// reading is set while a goroutine reads the room's archive (see
	// readArchive); it also reads again what a hold-back left.
	reading bool
}

// heldMsg is a live message held during a catch-up, with its room's view
// as it came.
type heldMsg struct {
	m    *inMsg
	view roomView
}

func newRoom(j jid.JID, commit func(pos string)) *room {
	r := &room{jid: j, marks: bridge.NewWatermark(commit)}
	r.reset()
	return r
}

// reset forgets everything that belongs to a session.
func (r *room) reset() {
	r.joined = make(chan struct{})
	r.joinErr = make(chan error, 1)
	r.occupants = map[string]occupant{}
	r.ourNicks = map[string]bool{}
	r.ghosts = map[string]string{}
	r.ghostUsers = map[string]string{}
	r.catchingUp = true
	r.held = nil
	r.subjectSeen = false
	r.caughtUpIDs = map[string]bool{}
	// The new session's catch-up reads from fed anyway.
	r.behind = false
	r.reading = false
	r.epoch++
}

// selfJID is who the bridge is in rooms: the account in client mode, an
// address under the component's domain otherwise.
func (b *Bridge) selfJID(s *xmpp.Session) jid.JID {
	if b.cfg.Mode == ModeComponent {
		j, _ := jid.New("bridge", b.cfg.ComponentDomain.Domainpart(), "mattermost")
		return j
	}
	return s.LocalAddr()
}

// iqTo starts every IQ the bridge sends on its own stream. A component
// names itself as the sender (an address under its domain): Prosody 13 and
// ejabberd close a component stream at the first stanza without a from.
// A client leaves from empty; the server stamps its full JID.
func (b *Bridge) iqTo(s *xmpp.Session, typ stanza.IQType, to jid.JID) stanza.IQ {
	iq := stanza.IQ{Type: typ, ID: randomID(), To: to}
	if b.cfg.Mode == ModeComponent {
		iq.From = b.selfJID(s)
	}
	return iq
}

// untilDropped is ctx, ended early when the session s drops: an answer
// that was never going to come is not waited for until ctx's deadline.
func (b *Bridge) untilDropped(ctx context.Context, s *xmpp.Session) (context.Context, context.CancelFunc) {
	b.mu.Lock()
	dropped := b.dropped
	current := b.session == s
	b.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	if !current || dropped == nil {
		cancel(errSessionDropped)
		return ctx, func() { cancel(nil) }
	}
	go func() {
		select {
		case <-dropped:
			cancel(errSessionDropped)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

var errSessionDropped = errors.New("the XMPP session ended")

func (b *Bridge) roomState(j jid.JID) *room {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := j.Bare().String()
	r, ok := b.rooms[key]
	if !ok {
		r = newRoom(j.Bare(), func(pos string) { b.notePosition(key, pos) })
		b.rooms[key] = r
	}
	return r
}

// joinRoom enters a room as the bridge, picking another nick on a conflict.
// History is not requested: missed messages come from the archive (MAM)
// so each arrives once. Callers go through join.
func (b *Bridge) joinRoom(ctx context.Context, s *xmpp.Session, roomJID jid.JID) error {
	r := b.roomState(roomJID)
	b.mu.Lock()
	joined := r.joined
	b.mu.Unlock()
	select {
	case <-joined:
		return nil
	default:
	}
	nick := b.cfg.Nick
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			nick = fmt.Sprintf("%s (%d)", b.cfg.Nick, attempt+1)
		}
		err := b.sendJoin(ctx, s, r, b.selfJID(s), nick)
		if err == nil {
			go b.readArchive(s, roomJID, b.startReading(roomJID.String()))
			return nil
		}
		if !errors.Is(err, errNickConflict) {
			return err
		}
	}
	return fmt.Errorf("every nickname the bridge tried in %s is taken", roomJID)
}

var errNickConflict = errors.New("nickname already in use in the room")

// joinPresence enters a room as occ (room/nick), from a given address on
// component streams (zero otherwise). It asks for no history: missed
// messages come from the archive, so each arrives once.
func joinPresence(occ, from jid.JID) xml.TokenReader {
	history := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "history"}, Attr: []xml.Attr{{Name: xml.Name{Local: "maxstanzas"}, Value: "0"}}})
	x := xmlstream.Wrap(history, xml.StartElement{Name: xml.Name{Space: nsMUC, Local: "x"}})
	return stanza.Presence{To: occ, From: from, ID: randomID()}.Wrap(x)
}

func (b *Bridge) sendJoin(ctx context.Context, s *xmpp.Session, r *room, from jid.JID, nick string) error {
	occ, err := r.jid.WithResource(nick)
	if err != nil {
		return fmt.Errorf("nickname %q is not valid: %w", nick, err)
	}
	b.mu.Lock()
	r.nick = nick
	r.ourNicks[nick] = true
	joined, joinErr := r.joined, r.joinErr
	b.mu.Unlock()

	if b.cfg.Mode != ModeComponent {
		from = jid.JID{}
	}
	if serr := s.Send(ctx, joinPresence(occ, from)); serr != nil {
		return serr
	}
	select {
	case <-joined:
		return nil
	case err = <-joinErr:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer from %s to the join: %w", r.jid, ctx.Err())
	}
}

// presence is the part of a presence stanza the bridge reads.
type presence struct {
	From string `xml:"from,attr"`
	Type string `xml:"type,attr"`
	MUC  *struct {
		Items []struct {
			JID  string `xml:"jid,attr"`
			Nick string `xml:"nick,attr"`
			Role string `xml:"role,attr"`
		} `xml:"item"`
		Status []struct {
			Code int `xml:"code,attr"`
		} `xml:"status"`
	} `xml:"http://jabber.org/protocol/muc#user x"`
	OccupantID *struct {
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:occupant-id:0 occupant-id"`
	Error *struct {
		Conflict *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-stanzas conflict"`
		Text     string    `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text"`
		Inner    []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
}

func (p *presence) status(code int) bool {
	if p.MUC == nil {
		return false
	}
	for _, s := range p.MUC.Status {
		if s.Code == code {
			return true
		}
	}
	return false
}

func (b *Bridge) handlePresence(raw []byte) {
	var p presence
	if err := xml.Unmarshal(raw, &p); err != nil {
		b.log.Debug("Ignoring a malformed presence", "error", err.Error())
		return
	}
	from, err := jid.Parse(p.From)
	if err != nil || from.Resourcepart() == "" {
		return
	}
	if p.Type == "" {
		b.learnAddress(from.Bare().String(), occupantOf(&p))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	nick := from.Resourcepart()
	if g, ok := b.pendingGhost[roomJIDKey(from, nick)]; ok && nick == g.nick {
		b.ghostJoinResult(g, &p)
	}
	r, ok := b.rooms[from.Bare().String()]
	if !ok {
		return
	}
	switch p.Type {
	case "error":
		if nick == r.nick {
			err := errors.New("the room refused the join")
			if p.Error != nil && p.Error.Conflict != nil {
				err = errNickConflict
			} else if p.Error != nil {
				reason := p.Error.Text
				for _, in := range p.Error.Inner {
					if reason == "" && in.XMLName.Local != "text" {
						reason = in.XMLName.Local
					}
				}
				err = fmt.Errorf("the room refused the join: %s", reason)
			}
			select {
			case r.joinErr <- err:
			default:
			}
		}
	case "unavailable":
		old := r.occupants[nick]
		delete(r.occupants, nick)
		if p.status(303) && p.MUC != nil && len(p.MUC.Items) > 0 && p.MUC.Items[0].Nick != "" {
			// A rename: the occupant stays who they were under the new nick.
			o := occupantOf(&p)
			if o.RealJID.String() == "" {
				o.RealJID = old.RealJID
			}
			if o.OccupantID == "" {
				o.OccupantID = old.OccupantID
			}
			o.FirstNick = old.FirstNick
			if o.FirstNick == "" {
				o.FirstNick = nick
			}
			if r.ourNicks[nick] {
				r.ourNicks[p.MUC.Items[0].Nick] = true
			}
			r.occupants[p.MUC.Items[0].Nick] = o
		}
	default:
		o := occupantOf(&p)
		if prev, ok := r.occupants[nick]; ok && prev.FirstNick != "" {
			o.FirstNick = prev.FirstNick
		}
		r.occupants[nick] = o
		if nick == r.nick {
			// XEP-0045 §7.2.2: status 100 in the self-presence says the room
			// is non-anonymous; a moderator sees addresses in any room.
			r.seesAddresses = p.status(100) || p.MUC != nil && len(p.MUC.Items) > 0 && p.MUC.Items[0].Role == "moderator"
			select {
			case <-r.joined:
			default:
				close(r.joined)
			}
		}
	}
}

// ghostJoinResult completes a ghost's pending join from the room's answer.
func (b *Bridge) ghostJoinResult(g *room, p *presence) {
	switch p.Type {
	case "error":
		err := errors.New("the room refused the ghost's join")
		if p.Error != nil && p.Error.Conflict != nil {
			err = errNickConflict
		}
		select {
		case g.joinErr <- err:
		default:
		}
	case "unavailable":
	default:
		select {
		case <-g.joined:
		default:
			close(g.joined)
		}
	}
}

func occupantOf(p *presence) occupant {
	var o occupant
	if p.MUC != nil && len(p.MUC.Items) > 0 && p.MUC.Items[0].JID != "" {
		if j, err := jid.Parse(p.MUC.Items[0].JID); err == nil {
			o.RealJID = j.Bare()
		}
	}
	if p.OccupantID != nil {
		o.OccupantID = p.OccupantID.ID
	}
	return o
}

// CheckRoom checks that a room exists and is a multi-user chat room before
// it is linked.
func (b *Bridge) CheckRoom(ctx context.Context, room string) (string, error) {
	j, err := jid.Parse(room)
	if err != nil || j.Localpart() == "" {
		return "", fmt.Errorf("%q is not a room JID", room)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := b.currentSession(ctx)
	if err != nil {
		return "", err
	}
	ctx, stop := b.untilDropped(ctx, s)
	defer stop()
	info, err := disco.GetInfoIQ(ctx, "", b.iqTo(s, stanza.GetIQ, j.Bare()), s)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errSessionDropped) {
			err = cause
		}
		var se stanza.Error
		if errors.As(err, &se) && (se.Condition == stanza.ItemNotFound || se.Condition == stanza.RemoteServerNotFound) {
			return "", fmt.Errorf("room %s does not exist", j.Bare())
		}
		return "", fmt.Errorf("could not look up room %s: %w", j.Bare(), err)
	}
	isMUC := false
	for _, f := range info.Features {
		if f.Var == nsMUC {
			isMUC = true
		}
	}
	if !isMUC {
		return "", fmt.Errorf("%s is not a multi-user chat room", j.Bare())
	}
	return j.Bare().String(), nil
}

// RoomLinked joins a newly linked room.
func (b *Bridge) RoomLinked(ctx context.Context, room string) error {
	j, err := jid.Parse(room)
	if err != nil {
		return err
	}
	s, err := b.currentSession(ctx)
	if err != nil {
		return err
	}
	return b.join(ctx, s, j.Bare())
}

// RoomUnlinked leaves a room no channel is linked to any more.
func (b *Bridge) RoomUnlinked(ctx context.Context, room string) error {
	j, err := jid.Parse(room)
	if err != nil {
		return err
	}
	b.mu.Lock()
	r, ok := b.rooms[j.Bare().String()]
	delete(b.rooms, j.Bare().String())
	s := b.session
	b.mu.Unlock()
	if !ok || s == nil {
		return nil
	}
	// The ghosts leave too: in component mode nothing else takes them out.
	return b.leaveRoom(ctx, s, r.jid, r.nick)
}

// randomID makes stanza IDs; they must be unique, not secret.
func randomID() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36) //nolint:gosec // uniqueness only
}
