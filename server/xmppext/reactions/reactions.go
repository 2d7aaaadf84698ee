// Package reactions implements XEP-0444: Message Reactions.
//
// A reactions message carries the complete set of one user's reactions to
// one message: each new one replaces the previous, and an empty set removes
// them all. So a receiver must compare it with what it has seen from the same
// user before to work out what was added and removed.
//
// The id names the message reacted to: in a groupchat the room's XEP-0359
// stanza-id of it, otherwise its origin-id or id attribute.
package reactions

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmlutil"
)

// NS is the namespace of the reactions element, also the service discovery
// feature.
const NS = "urn:xmpp:reactions:0"

// Limits on what Decode accepts. An emoji is one grapheme cluster, and the
// longest standard ones (ZWJ sequences with skin tones) take about 35 bytes;
// the slack allows for the odd custom sequence. Nobody reacts with hundreds
// of different emoji to one message.
const (
	MaxReactionLen = 128
	MaxReactions   = 64
)

// Reactions is the <reactions/> element: the set of emoji one user reacts
// with to the message with the given id.
type Reactions struct {
	XMLName   xml.Name `xml:"urn:xmpp:reactions:0 reactions"`
	ID        string   `xml:"id,attr"`
	Reactions []string `xml:"reaction"`
}

// TokenReader implements xmlstream.Marshaler.
func (r Reactions) TokenReader() xml.TokenReader {
	var inner []xml.TokenReader
	if len(r.Reactions) > 0 {
		inner = make([]xml.TokenReader, 0, len(r.Reactions))
	}
	for _, e := range r.Reactions {
		inner = append(inner, xmlstream.Wrap(
			xmlstream.Token(xml.CharData(e)),
			xml.StartElement{Name: xml.Name{Space: NS, Local: "reaction"}},
		))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{
		Name: xml.Name{Space: NS, Local: "reactions"},
		Attr: []xml.Attr{xmlutil.A("id", r.ID)},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (r Reactions) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Reactions) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, r)
}

// Message returns msg carrying r, with a XEP-0334 store hint so that servers
// archive it although it has no body, followed by any extra payloads.
func Message(msg stanza.Message, r Reactions, extra ...xml.TokenReader) xml.TokenReader {
	return msg.Wrap(xmlstream.MultiReader(append([]xml.TokenReader{
		r.TokenReader(),
		xmlutil.StoreHint(),
	}, extra...)...))
}

// Decode decodes a <reactions/> element whose start has just been read from
// r, consuming r up to and including its end. Surrounding white space is
// trimmed from each reaction (no emoji starts or ends with any), empty ones
// are dropped, and repeats are kept once, in the order first seen, since the
// element stands for a set.
func Decode(start xml.StartElement, r xml.TokenReader) (Reactions, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return Reactions{}, err
	}
	out := Reactions{XMLName: start.Name, ID: id}
	xr := xmlutil.Within(r, start)
	err = xmlutil.Children(xr, func(child xml.StartElement) error {
		if child.Name.Space != NS || child.Name.Local != "reaction" {
			return nil
		}
		e, err := xmlutil.Text(xr, MaxReactionLen)
		if err != nil {
			return err
		}
		e = strings.TrimSpace(e)
		if e == "" || slices.Contains(out.Reactions, e) {
			return nil
		}
		if len(out.Reactions) >= MaxReactions {
			return fmt.Errorf("%w: more than %d reactions", xmlutil.ErrTooLarge, MaxReactions)
		}
		out.Reactions = append(out.Reactions, e)
		return nil
	})
	if err != nil {
		return Reactions{}, err
	}
	return out, nil
}

// From reads a whole message stanza from r and returns its <reactions/>, and
// whether it has one. Two in one message are ambiguous and an error.
func From(r xml.TokenReader) (Reactions, bool, error) {
	var (
		re    Reactions
		found bool
	)
	_, err := xmlutil.EachChild(r, xmlutil.Limits{}, func(start xml.StartElement, r *xmlutil.Reader) error {
		if start.Name.Space != NS || start.Name.Local != "reactions" {
			return nil
		}
		if found {
			return fmt.Errorf("%w: two reactions elements", xmlutil.ErrDuplicate)
		}
		var err error
		re, err = Decode(start, r)
		found = true
		return err
	})
	if err != nil {
		return Reactions{}, false, err
	}
	return re, found, nil
}
