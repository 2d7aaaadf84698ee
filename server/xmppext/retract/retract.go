// Package retract implements XEP-0424: Message Retraction, and XEP-0425:
// Moderated Message Retraction.
//
// A sender retracts one of its messages with a new message carrying
// <retract id='...'/>, where id is the origin-id of the message (in a
// groupchat: the room's stanza-id of it). Receivers must only honour it from
// the original sender. A room moderator instead asks the room to retract
// someone else's message with a <moderate/> IQ, and the room announces the
// retraction to everyone with a <retract/> that has a <moderated/> child
// naming the moderator, and perhaps a reason. Such announcements are only to
// be trusted when they come from the room's own bare JID.
//
// Both exist in an older form (namespaces ending in :0) wrapped in a XEP-0422
// <apply-to/> fastening, still sent by some clients and servers; Decode
// understands it too, and Retract.LegacyTokenReader writes it.
package retract

import (
	"encoding/xml"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/fallback"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmlutil"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/occupantid"
)

// Namespaces used by this package. NS and NSModerate are also service
// discovery features: a client's and a room's, respectively.
const (
	NS         = "urn:xmpp:message-retract:1"
	NSModerate = "urn:xmpp:message-moderate:1"

	// The older fastening-based forms.
	NSLegacy         = "urn:xmpp:message-retract:0"
	NSModerateLegacy = "urn:xmpp:message-moderate:0"
	NSFasten         = "urn:xmpp:fasten:0"
)

// DefaultFallback is the body Message uses when given none, for clients that
// know nothing of retractions.
const DefaultFallback = "/me retracted a previous message, but your client does not support retractions."

// Retract is the <retract/> element: the message with the given id is to be
// removed.
type Retract struct {
	XMLName xml.Name `xml:"urn:xmpp:message-retract:1 retract"`
	ID      string   `xml:"id,attr"`
	// Moderated is set when a moderator retracted the message (XEP-0425).
	Moderated *Moderated `xml:"urn:xmpp:message-moderate:1 moderated,omitempty"`
	// Legacy reports that the retraction came in the older <apply-to/> form.
	Legacy bool `xml:"-"`
}

// Moderated says who retracted someone else's message, and why.
type Moderated struct {
	// By is the moderator's occupant JID (room@service/nick). It may be empty.
	By jid.JID `xml:"by,attr,omitempty"`
	// OccupantID is the moderator's XEP-0421 occupant-id, if the room gave
	// one.
	OccupantID string `xml:"-"`
	// Reason is the moderator's reason, if any. It is written as a <reason/>
	// child of <retract/>, beside <moderated/>.
	Reason string `xml:"-"`
}

// TokenReader implements xmlstream.Marshaler.
func (r Retract) TokenReader() xml.TokenReader {
	var inner xml.TokenReader
	if m := r.Moderated; m != nil {
		inner = xmlstream.MultiReader(m.tokenReader(NSModerate), reason(NS, m.Reason))
	}
	return xmlstream.Wrap(inner, xml.StartElement{
		Name: xml.Name{Space: NS, Local: "retract"},
		Attr: []xml.Attr{xmlutil.A("id", r.ID)},
	})
}

// LegacyTokenReader returns r in the older form, an <apply-to/> fastening
// holding a retract (or moderated) element in the :0 namespaces. Sending it
// beside the current form lets clients that only know the old one act on a
// retraction too.
func (r Retract) LegacyTokenReader() xml.TokenReader {
	inner := xmlutil.Empty(NSLegacy, "retract")
	if m := r.Moderated; m != nil {
		inner = xmlstream.Wrap(
			xmlstream.MultiReader(inner, reason(NSModerateLegacy, m.Reason)),
			m.start(NSModerateLegacy),
		)
	}
	return xmlstream.Wrap(inner, xml.StartElement{
		Name: xml.Name{Space: NSFasten, Local: "apply-to"},
		Attr: []xml.Attr{xmlutil.A("id", r.ID)},
	})
}

func (m *Moderated) start(space string) xml.StartElement {
	start := xml.StartElement{Name: xml.Name{Space: space, Local: "moderated"}}
	if !m.By.Equal(jid.JID{}) {
		start.Attr = []xml.Attr{xmlutil.A("by", m.By.String())}
	}
	return start
}

func (m *Moderated) tokenReader(space string) xml.TokenReader {
	var inner xml.TokenReader
	if m.OccupantID != "" {
		inner = occupantid.OccupantID{ID: m.OccupantID}.TokenReader()
	}
	return xmlstream.Wrap(inner, m.start(space))
}

// reason returns a <reason/> in the namespace of its parent, given
// explicitly so that the tokens mean the same before and after a trip
// through text.
func reason(space, text string) xml.TokenReader {
	if text == "" {
		return nil
	}
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Space: space, Local: "reason"}})
}

// WriteXML implements xmlstream.WriterTo.
func (r Retract) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Retract) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, r)
}

// Message returns msg retracting the message with the given id: the retract
// element, a fallback element marking the body as fallback text, the body
// (DefaultFallback if fallbackBody is empty), a store hint so that servers
// archive the retraction, then any extra payloads (an origin-id, or
// Retract{ID: id}.LegacyTokenReader() for older clients).
func Message(msg stanza.Message, id, fallbackBody string, extra ...xml.TokenReader) xml.TokenReader {
	if fallbackBody == "" {
		fallbackBody = DefaultFallback
	}
	return msg.Wrap(xmlstream.MultiReader(append([]xml.TokenReader{
		Retract{ID: id}.TokenReader(),
		fallback.Fallback{For: NS}.TokenReader(),
		xmlutil.Body(fallbackBody),
		xmlutil.StoreHint(),
	}, extra...)...))
}

// Moderate is the <moderate/> payload of the IQ a moderator sends to a room
// to retract the message with the room's stanza-id ID.
type Moderate struct {
	XMLName xml.Name `xml:"urn:xmpp:message-moderate:1 moderate"`
	ID      string   `xml:"id,attr"`
	Reason  string   `xml:"reason,omitempty"`
}

// TokenReader implements xmlstream.Marshaler.
func (m Moderate) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.MultiReader(xmlutil.Empty(NS, "retract"), reason(NSModerate, m.Reason)),
		xml.StartElement{
			Name: xml.Name{Space: NSModerate, Local: "moderate"},
			Attr: []xml.Attr{xmlutil.A("id", m.ID)},
		},
	)
}

// WriteXML implements xmlstream.WriterTo.
func (m Moderate) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, m.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (m Moderate) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, m)
}

// ModerateIQ is a moderation request. IQ.To must be the room's bare JID; the
// type is always set, whatever IQ.Type says.
type ModerateIQ struct {
	stanza.IQ
	Moderate Moderate
}

// TokenReader implements xmlstream.Marshaler.
func (iq ModerateIQ) TokenReader() xml.TokenReader {
	iq.Type = stanza.SetIQ
	return iq.Wrap(iq.Moderate.TokenReader())
}

// WriteXML implements xmlstream.WriterTo.
func (iq ModerateIQ) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, iq.TokenReader())
}

// MarshalXML implements xml.Marshaler. Without it encoding/xml would marshal
// the struct field by field, with whatever type IQ.Type has.
func (iq ModerateIQ) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, iq)
}

// Decode decodes a <retract/> element (in NS) whose start has just been read
// from r, consuming r up to and including its end.
func Decode(start xml.StartElement, r xml.TokenReader) (Retract, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return Retract{}, err
	}
	out := Retract{XMLName: start.Name, ID: id}
	var why string
	xr := xmlutil.Within(r, start)
	err = xmlutil.Children(xr, func(child xml.StartElement) error {
		switch {
		case child.Name.Space == NSModerate && child.Name.Local == "moderated":
			if out.Moderated != nil {
				return fmt.Errorf("%w: two moderated elements", xmlutil.ErrDuplicate)
			}
			m, err := decodeModerated(child, xr, "")
			out.Moderated = m
			return err
		case child.Name.Local == "reason" && (child.Name.Space == NS || child.Name.Space == NSModerate):
			// The reason belongs to <retract/>, but putting it inside
			// <moderate/>'s namespace is an easy mistake; accept both.
			var err error
			why, err = xmlutil.Text(xr, xmlutil.MaxShortText)
			return err
		}
		return nil
	})
	if err != nil {
		return Retract{}, err
	}
	// XEP-0424 gives a plain retraction no reason; only keep one that a
	// moderator gave.
	if out.Moderated != nil && out.Moderated.Reason == "" {
		out.Moderated.Reason = why
	}
	return out, nil
}

// decodeModerated decodes <moderated/>. In the legacy form the retract and
// reason are its children; legacyNS is their namespace then, and "" for the
// current form, where it has no children but an occupant-id.
func decodeModerated(start xml.StartElement, xr *xmlutil.Reader, legacyNS string) (*Moderated, error) {
	m := &Moderated{}
	if by, ok := xmlutil.Attr(start, "by"); ok && by != "" {
		var err error
		if m.By, err = jid.Parse(by); err != nil {
			return nil, fmt.Errorf("%w: moderated by: %w", xmlutil.ErrMalformed, err)
		}
	}
	retracted := legacyNS == ""
	err := xmlutil.Children(xr, func(child xml.StartElement) error {
		switch {
		case child.Name.Space == occupantid.NS && child.Name.Local == "occupant-id":
			o, err := occupantid.Decode(child, xr)
			m.OccupantID = o.ID
			return err
		case legacyNS == "":
			return nil
		case child.Name.Space == NSLegacy && child.Name.Local == "retract":
			retracted = true
		case child.Name.Space == legacyNS && child.Name.Local == "reason":
			var err error
			m.Reason, err = xmlutil.Text(xr, xmlutil.MaxShortText)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !retracted {
		// A legacy moderation that is not a retraction (the old XEP-0425
		// left room for others) is none of this package's business.
		return nil, nil
	}
	return m, nil
}

// DecodeApplyTo decodes an older-form <apply-to/> fastening whose start has
// just been read from r, consuming r up to and including its end. It
// reports false if the fastening is not a retraction: <apply-to/> can carry
// other things too.
func DecodeApplyTo(start xml.StartElement, r xml.TokenReader) (Retract, bool, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return Retract{}, false, err
	}
	out := Retract{XMLName: start.Name, ID: id, Legacy: true}
	found := false
	xr := xmlutil.Within(r, start)
	err = xmlutil.Children(xr, func(child xml.StartElement) error {
		switch {
		case child.Name.Space == NSLegacy && child.Name.Local == "retract":
			found = true
		case child.Name.Space == NSModerateLegacy && child.Name.Local == "moderated":
			m, err := decodeModerated(child, xr, NSModerateLegacy)
			if m != nil {
				out.Moderated, found = m, true
			}
			return err
		}
		return nil
	})
	if err != nil || !found {
		return Retract{}, false, err
	}
	return out, true, nil
}

// IsApplyTo reports whether name is that of an older-form fastening, which
// DecodeApplyTo decodes.
func IsApplyTo(name xml.Name) bool {
	return name.Space == NSFasten && name.Local == "apply-to"
}

// From reads a whole message stanza from r and returns its retraction, and
// whether it has one. Senders may include both forms for older clients;
// then the current one wins. Two of the same form are an error.
func From(r xml.TokenReader) (Retract, bool, error) {
	var (
		cur, old       Retract
		hasCur, hasOld bool
	)
	_, err := xmlutil.EachChild(r, xmlutil.Limits{}, func(start xml.StartElement, r *xmlutil.Reader) error {
		switch {
		case start.Name.Space == NS && start.Name.Local == "retract":
			if hasCur {
				return fmt.Errorf("%w: two retract elements", xmlutil.ErrDuplicate)
			}
			var err error
			cur, err = Decode(start, r)
			hasCur = true
			return err
		case IsApplyTo(start.Name):
			rt, ok, err := DecodeApplyTo(start, r)
			if err != nil || !ok {
				return err
			}
			if hasOld {
				return fmt.Errorf("%w: two legacy retractions", xmlutil.ErrDuplicate)
			}
			old, hasOld = rt, true
		}
		return nil
	})
	switch {
	case err != nil:
		return Retract{}, false, err
	case hasCur:
		return cur, true, nil
	}
	return old, hasOld, nil
}
