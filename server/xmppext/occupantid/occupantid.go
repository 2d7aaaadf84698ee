// Package occupantid implements XEP-0421: Anonymous unique occupant
// identifiers for MUCs.
//
// A room that supports it stamps every message and presence it relays with
// an <occupant-id/> that stays the same for one user across nickname changes
// and reconnections, without revealing the user's real JID. It is what lets
// the bridge tell that a correction, retraction or reaction comes from the
// author of the original message.
//
// The id is only trustworthy if the room advertises NS in its service
// discovery features: such a room removes occupant-ids that clients put in
// their own stanzas, any other room passes them through untouched.
package occupantid

import (
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmlutil"
)

// NS is the namespace of the occupant-id element, also the service discovery
// feature.
const NS = "urn:xmpp:occupant-id:0"

// OccupantID is the <occupant-id/> element.
type OccupantID struct {
	XMLName xml.Name `xml:"urn:xmpp:occupant-id:0 occupant-id"`
	ID      string   `xml:"id,attr"`
}

// TokenReader implements xmlstream.Marshaler.
func (o OccupantID) TokenReader() xml.TokenReader {
	return xmlutil.Empty(NS, "occupant-id", xmlutil.A("id", o.ID))
}

// WriteXML implements xmlstream.WriterTo.
func (o OccupantID) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, o.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (o OccupantID) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, o)
}

// Decode decodes an <occupant-id/> element whose start has just been read
// from r, consuming r up to and including its end.
func Decode(start xml.StartElement, r xml.TokenReader) (OccupantID, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return OccupantID{}, err
	}
	return OccupantID{XMLName: start.Name, ID: id}, xmlutil.Skip(xmlutil.Within(r, start))
}

// From reads a whole stanza (message or presence) from r and returns its
// occupant-id, and whether it has one. Only a direct child of the stanza
// counts: occupant-ids nested deeper (in a XEP-0425 moderation notice, say)
// identify someone else. Two are an error, since a room that rewrites them
// leaves exactly one.
func From(r xml.TokenReader) (OccupantID, bool, error) {
	var (
		occ   OccupantID
		found bool
	)
	_, err := xmlutil.EachChild(r, xmlutil.Limits{}, func(start xml.StartElement, r *xmlutil.Reader) error {
		if start.Name.Space != NS || start.Name.Local != "occupant-id" {
			return nil
		}
		if found {
			return fmt.Errorf("%w: two occupant-ids", xmlutil.ErrDuplicate)
		}
		var err error
		occ, err = Decode(start, r)
		found = true
		return err
	})
	if err != nil {
		return OccupantID{}, false, err
	}
	return occ, found, nil
}
