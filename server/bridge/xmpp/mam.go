package xmpp

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/stanzaid"
)

const (
	nsRSM       = "http://jabber.org/protocol/rsm"
	nsDataForms = "jabber:x:data"
	mamPageSize = 100
)

func archiveCursorName(room string) string { return "mam|" + room }

// saveArchivePosition remembers the last archived message seen in a room,
// where the next catch-up starts.
func (b *Bridge) saveArchivePosition(room, id string) {
	if id == "" {
		return
	}
	if err := b.store.SetCursor(string(b.Network()), archiveCursorName(room), id); err != nil {
		b.log.Warn("Could not save the XMPP archive position", "room", room, "error", err.Error())
	}
}

// notePosition has the room's archive position saved (soon: see
// bridge.Positions).
func (b *Bridge) notePosition(room, id string) {
	b.positions.Load().Note(room, func() { b.saveArchivePosition(room, id) })
}

// startReading marks room as read by a new catch-up (whose generation it
// returns), which reads from fed: a hold-back is covered by it.
func (b *Bridge) startReading(room string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rooms[room]
	if !ok {
		return 0
	}
	r.catchUpGen++
	r.reading, r.behind, r.catchingUp = true, false, true
	return r.catchUpGen
}

// readArchive catches the room up from the archive, then lets its held live
// messages through, in the order they came. When the core refuses one of
// its messages meanwhile (a full queue), it waits for space and reads on
// from the last message the core took. Only one readArchive works on a room
// at a time (see reading); a newer one (gen) ends an older one.
func (b *Bridge) readArchive(s *xmpp.Session, roomJID jid.JID, gen int) {
	b.mu.Lock()
	ctx := b.runCtx
	b.mu.Unlock()
	if ctx == nil {
		return // not started
	}
	room := roomJID.String()
	for {
		if err := b.catchUp(ctx, s, roomJID, gen); err != nil {
			b.log.Warn("XMPP archive catch-up failed; trying again shortly", "room", room, "error", err.Error())
			b.holdBack(room, closedAfter(readAgainAfterError))
		}
		wait, again := b.finishReading(room, gen)
		if !again {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return
		}
		if !b.resumeReading(s, room, gen) {
			return
		}
	}
	marker := fmt.Appendf(append([]byte{}, caughtUpMarker...), "%d:%s", gen, room)
	select {
	case b.inbound <- marker:
	case <-ctx.Done():
	}
}

// finishReading ends catch-up gen of room, unless the room was held back
// meanwhile: then it returns what to wait for before reading on.
func (b *Bridge) finishReading(room string, gen int) (wait <-chan struct{}, again bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rooms[room]
	if !ok || r.catchUpGen != gen {
		return nil, false
	}
	if r.behind {
		return r.wait, true
	}
	r.reading = false
	return nil, false
}

// resumeReading lets catch-up gen read on after a hold-back, unless a newer
// one took over or the session is gone (the next one catches up).
func (b *Bridge) resumeReading(s *xmpp.Session, room string, gen int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rooms[room]
	if !ok || r.catchUpGen != gen || b.session != s {
		return false
	}
	r.behind = false
	return true
}

// holdBack stops handling room's messages until wait is closed. The
// catch-up reading the room, if any, reads on from fed then; otherwise a
// new one starts.
func (b *Bridge) holdBack(room string, wait <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rooms[room]
	if !ok {
		return
	}
	r.behind, r.wait = true, wait
	r.epoch++
	if !r.reading {
		go b.readAgain(room, r.catchUpGen, wait)
	}
}

// readAgain starts a catch-up for a room held back while no catch-up was
// reading it, once wait is closed, unless one started meanwhile.
func (b *Bridge) readAgain(room string, gen int, wait <-chan struct{}) {
	b.mu.Lock()
	ctx := b.runCtx
	b.mu.Unlock()
	if ctx == nil {
		return // not started
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return
	}
	b.mu.Lock()
	r, ok := b.rooms[room]
	s := b.session
	if !ok || !r.behind || r.reading || r.catchUpGen != gen || s == nil {
		b.mu.Unlock()
		return
	}
	r.held = nil
	b.mu.Unlock()
	b.readArchive(s, r.jid, b.startReading(room))
}

// catchUp fetches from the room's archive (XEP-0313) what was said after
// the last message the core took: in this process, where it left off (a
// reconnect, or a room held back by a full queue); after a start, the
// saved position. A room never seen before has no position: its history
// before the link is not relayed. It pages to the archive's end unless the
// room is held back or a newer catch-up starts.
func (b *Bridge) catchUp(ctx context.Context, s *xmpp.Session, roomJID jid.JID, gen int) error {
	room := roomJID.String()
	after, ok := b.fedPosition(room)
	if !ok {
		var err error
		if after, ok, err = b.store.GetCursor(string(b.Network()), archiveCursorName(room)); err != nil {
			return fmt.Errorf("read the archive position: %w", err)
		}
	}
	if !ok {
		// First time in this room: start from the archive's end, so what
		// is said from now on is never lost, and older history is not sent.
		if err := b.initArchivePosition(ctx, s, roomJID); err != nil {
			b.log.Warn("Could not find the end of the XMPP room's archive", "room", room, "error", err.Error())
		}
		return nil
	}
	for ctx.Err() == nil && b.stillReading(room, gen) {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		last, complete, err := b.queryArchive(qctx, s, roomJID, after)
		cancel()
		if err != nil {
			if !b.stillReading(room, gen) || b.sessionGone(s) {
				return nil // a newer catch-up or session reads the rest
			}
			return err
		}
		if complete || last == "" || last == after {
			return nil
		}
		after = last
	}
	return nil
}

func (b *Bridge) sessionGone(s *xmpp.Session) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.session != s
}

// fedPosition is the archive ID of the last message of room the core took
// in this process.
func (b *Bridge) fedPosition(room string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.rooms[room]; ok && r.fed != "" {
		return r.fed, true
	}
	return "", false
}

// stillReading reports whether catch-up gen of room should go on: not when
// the room was held back meanwhile or a newer catch-up started.
func (b *Bridge) stillReading(room string, gen int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rooms[room]
	return ok && !r.behind && r.catchUpGen == gen
}

type mamFin struct {
	XMLName  xml.Name `xml:"urn:xmpp:mam:2 fin"`
	Complete bool     `xml:"complete,attr"`
	Set      struct {
		Last string `xml:"last"`
	} `xml:"http://jabber.org/protocol/rsm set"`
}

// initArchivePosition saves the ID of the room's newest archived message.
func (b *Bridge) initArchivePosition(ctx context.Context, s *xmpp.Session, roomJID jid.JID) error {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	last, _, err := b.archiveQuery(qctx, s, roomJID, archiveAsk{max: 1, positionOnly: true})
	if err != nil {
		return err
	}
	if last == "" {
		last = archiveStart // empty archive: everything from now on
	}
	b.saveArchivePosition(roomJID.String(), last)
	return nil
}

// archiveStart is the position of an empty archive: catch-up then asks for
// everything.
const archiveStart = "-"

// openQuery is a MAM query in flight: its results count only from the
// archive asked (the room's bare JID) until the answer ends it.
type openQuery struct {
	archive jid.JID
	// positionOnly queries only learn where the archive ends; their
	// messages are not relayed.
	positionOnly bool
	// look, when set, is handed the query's messages instead of relaying
	// them (see findDelivered). It runs on the inbound loop.
	look func(*inMsg)
	// handled is closed when the query ends, after its results were
	// handled.
	handled chan struct{}
}

// queryDoneMarker, queued behind a query's results, ends the query in the
// order the server sent things: every result before the answer has been
// handled by then. Like caughtUpMarker it can never start a stanza.
var queryDoneMarker = []byte("\x00query-done:")

// openArchiveQuery registers a new query to archive and returns its ID,
// unpredictable so that nobody can answer a query they did not see.
func (b *Bridge) openArchiveQuery(archive jid.JID, positionOnly bool) (id string, handled <-chan struct{}) {
	id = stanzaid.New()
	q := openQuery{archive: archive.Bare(), positionOnly: positionOnly, handled: make(chan struct{})}
	b.mu.Lock()
	b.archiveQueries[id] = q
	b.mu.Unlock()
	return id, q.handled
}

// finishArchiveQuery ends a query once the results already read from the
// stream are handled; with no inbound loop running it ends it at once.
func (b *Bridge) finishArchiveQuery(id string) {
	b.mu.Lock()
	ctx, inbound := b.runCtx, b.inbound
	b.mu.Unlock()
	if inbound != nil && ctx != nil {
		select {
		case inbound <- append(append([]byte{}, queryDoneMarker...), id...):
			return
		case <-ctx.Done():
		}
	}
	b.endArchiveQuery(id)
}

func (b *Bridge) endArchiveQuery(id string) {
	b.mu.Lock()
	if q, ok := b.archiveQueries[id]; ok {
		close(q.handled)
		delete(b.archiveQueries, id)
	}
	b.mu.Unlock()
}

// archiveResult returns the query m answers, if m is a result the bridge
// may believe: it answers an open query of ours, comes from the archive
// that query asked (the room's bare JID, as the room itself sends it), and
// the message inside is that room's. Anyone can send the bridge a message
// wrapping a <result/>; only these are the room speaking.
func (b *Bridge) archiveResult(m *inMsg) (openQuery, bool) {
	b.mu.Lock()
	q, ok := b.archiveQueries[m.QueryID]
	b.mu.Unlock()
	if !ok || m.QueryID == "" {
		return openQuery{}, false
	}
	if !m.From.Equal(q.archive) || !m.Archived.From.Bare().Equal(q.archive) {
		return openQuery{}, false
	}
	return q, true
}

// ignoreArchiveResult counts and logs a result the bridge does not believe.
func (b *Bridge) ignoreArchiveResult(m *inMsg) {
	b.mu.Lock()
	b.ignoredResults++
	b.mu.Unlock()
	b.log.Debug("Ignoring an archive result that answers no query of ours", "from", m.From.String(), "query_id", m.QueryID)
}

// queryArchive asks for one page after the given archive ID. The results
// arrive as messages, before the answer, and go through the usual handler.
func (b *Bridge) queryArchive(ctx context.Context, s *xmpp.Session, roomJID jid.JID, after string) (last string, complete bool, err error) {
	return b.archiveQuery(ctx, s, roomJID, archiveAsk{after: after, max: mamPageSize})
}

// archiveAsk is one page asked of an archive.
type archiveAsk struct {
	after string
	// start leaves out what was archived before it (XEP-0313 §4.1.1).
	start time.Time
	max   int
	// positionOnly asks backward from the end, to learn the newest ID.
	positionOnly bool
	look         func(*inMsg)
}

// archiveQuery pages through a room's archive: forward after the given ID,
// or with positionOnly, backward from the end to learn the newest ID.
func (b *Bridge) archiveQuery(ctx context.Context, s *xmpp.Session, roomJID jid.JID, ask archiveAsk) (last string, complete bool, err error) {
	field := func(v, val string, hidden bool) xml.TokenReader {
		attrs := []xml.Attr{{Name: xml.Name{Local: "var"}, Value: v}}
		if hidden {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "type"}, Value: "hidden"})
		}
		return xmlstream.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(val)), xml.StartElement{Name: xml.Name{Local: "value"}}),
			xml.StartElement{Name: xml.Name{Local: "field"}, Attr: attrs})
	}
	fields := []xml.TokenReader{field("FORM_TYPE", nsMAM, true)}
	if !ask.start.IsZero() {
		fields = append(fields, field("start", ask.start.UTC().Format(time.RFC3339), false))
	}
	form := xmlstream.Wrap(xmlstream.MultiReader(fields...), xml.StartElement{
		Name: xml.Name{Space: nsDataForms, Local: "x"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "submit"}},
	})
	page := []xml.TokenReader{xmlstream.Wrap(xmlstream.Token(xml.CharData(fmt.Sprint(ask.max))), xml.StartElement{Name: xml.Name{Local: "max"}})}
	switch {
	case ask.positionOnly:
		page = append(page, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "before"}}))
	case ask.after != "" && ask.after != archiveStart:
		page = append(page, xmlstream.Wrap(xmlstream.Token(xml.CharData(ask.after)), xml.StartElement{Name: xml.Name{Local: "after"}}))
	}
	set := xmlstream.Wrap(xmlstream.MultiReader(page...), xml.StartElement{Name: xml.Name{Space: nsRSM, Local: "set"}})
	queryID, handled := b.openArchiveQuery(roomJID, ask.positionOnly)
	if ask.look != nil {
		b.mu.Lock()
		q := b.archiveQueries[queryID]
		q.look = ask.look
		b.archiveQueries[queryID] = q
		b.mu.Unlock()
	}
	query := xmlstream.Wrap(xmlstream.MultiReader(form, set), xml.StartElement{
		Name: xml.Name{Space: nsMAM, Local: "query"}, Attr: []xml.Attr{{Name: xml.Name{Local: "queryid"}, Value: queryID}},
	})
	var fin mamFin
	qerr := s.UnmarshalIQElement(ctx, query, b.iqTo(s, stanza.SetIQ, roomJID), &fin)
	// The answer (<fin/>) ends the query: results that come after it, or
	// after we gave up waiting, are no longer answers to anything.
	b.finishArchiveQuery(queryID)
	if qerr != nil {
		return "", false, qerr
	}
	// The next page is asked for only once this one's results are handled,
	// so a room held back meanwhile is not read further.
	select {
	case <-handled:
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	return fin.Set.Last, fin.Complete, nil
}
