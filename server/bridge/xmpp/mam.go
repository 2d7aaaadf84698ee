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
)

const (
	nsRSM       = "http://jabber.org/protocol/rsm"
	nsDataForms = "jabber:x:data"
	mamPageSize = 100
	// mamMaxPages bounds one catch-up; what is left comes on the next one.
	mamMaxPages = 50
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

// afterJoin catches up from the archive, then lets the room's held live
// messages through, in the order they came.
func (b *Bridge) afterJoin(s *xmpp.Session, roomJID jid.JID) {
	b.mu.Lock()
	ctx := b.runCtx
	b.mu.Unlock()
	b.catchUp(ctx, s, roomJID)
	marker := append(append([]byte{}, caughtUpMarker...), roomJID.String()...)
	select {
	case b.inbound <- marker:
	case <-ctx.Done():
	}
}

// catchUp fetches from the room's archive (XEP-0313) what was said since the
// last message the bridge saw, so nothing said while it was away is lost.
// A room never seen before has no position: its history before the link is
// not relayed.
func (b *Bridge) catchUp(ctx context.Context, s *xmpp.Session, roomJID jid.JID) {
	room := roomJID.String()
	after, ok, err := b.store.GetCursor(string(b.Network()), archiveCursorName(room))
	if err != nil {
		b.log.Warn("Could not read the XMPP archive position", "room", room, "error", err.Error())
		return
	}
	if !ok {
		// First time in this room: start from the archive's end, so what
		// is said from now on is never lost, and older history is not sent.
		if err = b.initArchivePosition(ctx, s, roomJID); err != nil {
			b.log.Warn("Could not find the end of the XMPP room's archive", "room", room, "error", err.Error())
		}
		return
	}
	for page := 0; page < mamMaxPages && ctx.Err() == nil; page++ {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		last, complete, err := b.queryArchive(qctx, s, roomJID, after)
		cancel()
		if err != nil {
			b.log.Warn("XMPP archive catch-up failed", "room", room, "error", err.Error())
			return
		}
		if complete || last == "" || last == after {
			return
		}
		after = last
	}
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
	last, _, err := b.archiveQuery(qctx, s, roomJID, "", 1, true)
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

// queryArchive asks for one page after the given archive ID. The results
// arrive as messages, before the answer, and go through the usual handler.
func (b *Bridge) queryArchive(ctx context.Context, s *xmpp.Session, roomJID jid.JID, after string) (last string, complete bool, err error) {
	return b.archiveQuery(ctx, s, roomJID, after, mamPageSize, false)
}

// archiveQuery pages through a room's archive: forward after the given ID,
// or with positionOnly, backward from the end to learn the newest ID.
func (b *Bridge) archiveQuery(ctx context.Context, s *xmpp.Session, roomJID jid.JID, after string, pageSize int, positionOnly bool) (last string, complete bool, err error) {
	field := func(v, val string, hidden bool) xml.TokenReader {
		attrs := []xml.Attr{{Name: xml.Name{Local: "var"}, Value: v}}
		if hidden {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "type"}, Value: "hidden"})
		}
		return xmlstream.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(val)), xml.StartElement{Name: xml.Name{Local: "value"}}),
			xml.StartElement{Name: xml.Name{Local: "field"}, Attr: attrs})
	}
	form := xmlstream.Wrap(field("FORM_TYPE", nsMAM, true), xml.StartElement{
		Name: xml.Name{Space: nsDataForms, Local: "x"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "submit"}},
	})
	page := []xml.TokenReader{xmlstream.Wrap(xmlstream.Token(xml.CharData(fmt.Sprint(pageSize))), xml.StartElement{Name: xml.Name{Local: "max"}})}
	switch {
	case positionOnly:
		page = append(page, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "before"}}))
	case after != "" && after != archiveStart:
		page = append(page, xmlstream.Wrap(xmlstream.Token(xml.CharData(after)), xml.StartElement{Name: xml.Name{Local: "after"}}))
	}
	set := xmlstream.Wrap(xmlstream.MultiReader(page...), xml.StartElement{Name: xml.Name{Space: nsRSM, Local: "set"}})
	queryID := randomID()
	if positionOnly {
		b.mu.Lock()
		b.positionQueries[queryID] = true
		b.mu.Unlock()
		defer func() {
			// Results are handled off the read loop; forget the query only
			// once they had time to pass.
			time.AfterFunc(time.Minute, func() {
				b.mu.Lock()
				delete(b.positionQueries, queryID)
				b.mu.Unlock()
			})
		}()
	}
	query := xmlstream.Wrap(xmlstream.MultiReader(form, set), xml.StartElement{
		Name: xml.Name{Space: nsMAM, Local: "query"}, Attr: []xml.Attr{{Name: xml.Name{Local: "queryid"}, Value: queryID}},
	})
	iq := stanza.IQ{To: roomJID, Type: stanza.SetIQ, ID: randomID()}
	if b.cfg.Mode == ModeComponent {
		iq.From = b.selfJID(s)
	}
	var fin mamFin
	if qerr := s.UnmarshalIQElement(ctx, query, iq, &fin); qerr != nil {
		return "", false, qerr
	}
	return fin.Set.Last, fin.Complete, nil
}
