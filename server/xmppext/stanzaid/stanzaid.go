// Package stanzaid implements XEP-0359: Unique and Stable Stanza IDs.
//
// A client marks the messages it sends with an <origin-id/> that survives
// the trip (a MUC may rewrite the stanza's own id attribute), and the
// entities that archive or relay a message stamp it with a <stanza-id/>
// naming themselves in its by attribute. In a groupchat the room's stanza-id
// is the one other clients use to refer to the message in retractions,
// reactions and replies.
//
// A stanza-id is only trustworthy when its by is the entity that is expected
// to have added it (the room, or the user's own server) and that entity
// advertises NS: anyone can put a stanza-id in a message they send, and only
// a conforming server strips forged ones. See IDs.StanzaID.
package stanzaid

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmlutil"
)

// NS is the namespace of both elements, also the service discovery feature.
const NS = "urn:xmpp:sid:0"

// OriginID is the <origin-id/> element a sender adds to its own messages.
type OriginID struct {
	XMLName xml.Name `xml:"urn:xmpp:sid:0 origin-id"`
	ID      string   `xml:"id,attr"`
}

// TokenReader implements xmlstream.Marshaler.
func (o OriginID) TokenReader() xml.TokenReader {
	return xmlutil.Empty(NS, "origin-id", xmlutil.A("id", o.ID))
}

// WriteXML implements xmlstream.WriterTo.
func (o OriginID) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, o.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (o OriginID) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, o)
}

// StanzaID is a <stanza-id/> element, added by the entity named in By.
type StanzaID struct {
	XMLName xml.Name `xml:"urn:xmpp:sid:0 stanza-id"`
	ID      string   `xml:"id,attr"`
	By      jid.JID  `xml:"by,attr"`
}

// TokenReader implements xmlstream.Marshaler.
func (s StanzaID) TokenReader() xml.TokenReader {
	return xmlutil.Empty(NS, "stanza-id", xmlutil.A("id", s.ID), xmlutil.A("by", s.By.String()))
}

// WriteXML implements xmlstream.WriterTo.
func (s StanzaID) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, s.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (s StanzaID) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, s)
}

// IDs are the XEP-0359 IDs found in one stanza.
type IDs struct {
	// Origin is the origin-id, empty if there is none.
	Origin string
	// Stanza are the stanza-ids, at most one per by.
	Stanza []StanzaID
}

// StanzaID returns the ID that by assigned to the stanza, or "" if it did
// not assign one. by is compared as a bare JID: rooms and servers stamp
// with their bare address.
func (ids IDs) StanzaID(by jid.JID) string {
	by = by.Bare()
	for _, s := range ids.Stanza {
		if s.By.Equal(by) {
			return s.ID
		}
	}
	return ""
}

// DecodeOriginID decodes an <origin-id/> element whose start has just been
// read from r, consuming r up to and including its end.
func DecodeOriginID(start xml.StartElement, r xml.TokenReader) (OriginID, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return OriginID{}, err
	}
	return OriginID{XMLName: start.Name, ID: id}, xmlutil.Skip(xmlutil.Within(r, start))
}

// DecodeStanzaID decodes a <stanza-id/> element whose start has just been
// read from r, consuming r up to and including its end. A stanza-id without
// a valid by cannot be attributed, and so cannot be trusted, and is an
// error.
func DecodeStanzaID(start xml.StartElement, r xml.TokenReader) (StanzaID, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return StanzaID{}, err
	}
	byAttr, err := xmlutil.ID(start, "by")
	if err != nil {
		return StanzaID{}, err
	}
	by, err := jid.Parse(byAttr)
	if err != nil {
		return StanzaID{}, fmt.Errorf("%w: stanza-id by: %w", xmlutil.ErrMalformed, err)
	}
	return StanzaID{XMLName: start.Name, ID: id, By: by}, xmlutil.Skip(xmlutil.Within(r, start))
}

// Add records s in ids, refusing a second stanza-id from the same entity: a
// conforming server strips forged ones, so two with one by mean that
// something along the way does not, and neither can be trusted.
func (ids *IDs) Add(s StanzaID) error {
	by := s.By.Bare()
	for _, have := range ids.Stanza {
		if have.By.Equal(by) {
			return fmt.Errorf("%w: two stanza-ids by %s", xmlutil.ErrDuplicate, by)
		}
	}
	ids.Stanza = append(ids.Stanza, s)
	return nil
}

// From reads a whole stanza from r and returns its XEP-0359 IDs, and
// whether there were any. Only direct children of the stanza count: the IDs
// of a message forwarded inside it belong to that message.
func From(r xml.TokenReader) (IDs, bool, error) {
	var (
		ids       IDs
		hasOrigin bool
	)
	_, err := xmlutil.EachChild(r, xmlutil.Limits{}, func(start xml.StartElement, r *xmlutil.Reader) error {
		if start.Name.Space != NS {
			return nil
		}
		switch start.Name.Local {
		case "origin-id":
			if hasOrigin {
				return fmt.Errorf("%w: two origin-ids", xmlutil.ErrDuplicate)
			}
			o, err := DecodeOriginID(start, r)
			ids.Origin, hasOrigin = o.ID, true
			return err
		case "stanza-id":
			s, err := DecodeStanzaID(start, r)
			if err != nil {
				return err
			}
			return ids.Add(s)
		}
		return nil
	})
	if err != nil {
		return IDs{}, false, err
	}
	return ids, hasOrigin || len(ids.Stanza) > 0, nil
}

// New returns a fresh random ID suitable for an origin-id or a stanza's id
// attribute: 128 bits from crypto/rand, so IDs never collide in practice and
// cannot be predicted by someone who would like to pre-empt one.
func New() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program instead if the system's source fails.
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// idEncoding is unpadded base32: 26 characters, safe in XML attributes, URLs
// and KV store keys alike.
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)
