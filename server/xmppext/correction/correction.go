// Package correction implements XEP-0308: Last Message Correction.
//
// A correction is a new message whose body replaces the body of an earlier
// one, marked with <replace id='...'/> naming the id attribute of the
// message being corrected. Receivers must only accept a correction from the
// sender of the original message (in a MUC: the same occupant, best checked
// with its XEP-0421 occupant-id); this package only carries the data.
package correction

import (
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmlutil"
)

// NS is the namespace of the replace element, also the service discovery
// feature.
const NS = "urn:xmpp:message-correct:0"

// Replace marks a message as a correction of the message with the given id.
type Replace struct {
	XMLName xml.Name `xml:"urn:xmpp:message-correct:0 replace"`
	ID      string   `xml:"id,attr"`
}

// TokenReader implements xmlstream.Marshaler.
func (r Replace) TokenReader() xml.TokenReader {
	return xmlutil.Empty(NS, "replace", xmlutil.A("id", r.ID))
}

// WriteXML implements xmlstream.WriterTo.
func (r Replace) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Replace) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, r)
}

// Message returns msg carrying body as a correction of the message with id
// id, followed by any extra payloads (an origin-id, say).
func Message(msg stanza.Message, id, body string, extra ...xml.TokenReader) xml.TokenReader {
	return msg.Wrap(xmlstream.MultiReader(append([]xml.TokenReader{
		xmlutil.Body(body),
		Replace{ID: id}.TokenReader(),
	}, extra...)...))
}

// Decode decodes a <replace/> element whose start has just been read from
// r, consuming r up to and including its end.
func Decode(start xml.StartElement, r xml.TokenReader) (Replace, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return Replace{}, err
	}
	return Replace{XMLName: start.Name, ID: id}, xmlutil.Skip(xmlutil.Within(r, start))
}

// From reads a whole message stanza from r and returns its <replace/>, and
// whether it has one. A message with two is ambiguous and an error.
func From(r xml.TokenReader) (Replace, bool, error) {
	var (
		rep   Replace
		found bool
	)
	_, err := xmlutil.EachChild(r, xmlutil.Limits{}, func(start xml.StartElement, r *xmlutil.Reader) error {
		if start.Name.Space != NS || start.Name.Local != "replace" {
			return nil
		}
		if found {
			return fmt.Errorf("%w: two replace elements", xmlutil.ErrDuplicate)
		}
		var err error
		rep, err = Decode(start, r)
		found = true
		return err
	})
	if err != nil {
		return Replace{}, false, err
	}
	return rep, found, nil
}
