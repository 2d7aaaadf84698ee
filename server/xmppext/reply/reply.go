// Package reply implements XEP-0461: Message Replies, with the XEP-0428
// fallback that quotes the message replied to for clients that do not
// support replies.
//
// The <reply/> element names the message replied to by id: in a groupchat
// the room's XEP-0359 stanza-id of that message (the id attribute there is
// the sender's and not reliable), otherwise its origin-id or id attribute.
// Its to attribute is the author's full JID (in a room, their occupant JID).
package reply

import (
	"encoding/xml"
	"fmt"
	"strings"
	"unicode/utf8"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/fallback"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmlutil"
)

// NS is the namespace of the reply element, also the service discovery
// feature and the for of the reply fallback.
const NS = "urn:xmpp:reply:0"

// maxFallbacks bounds the fallback elements From collects; a real message
// has one per extension it uses.
const maxFallbacks = 32

// Reply is the <reply/> element.
type Reply struct {
	XMLName xml.Name `xml:"urn:xmpp:reply:0 reply"`
	// To is the author of the message replied to; it may be empty.
	To jid.JID `xml:"to,attr,omitempty"`
	// ID identifies the message replied to.
	ID string `xml:"id,attr"`
}

// TokenReader implements xmlstream.Marshaler.
func (r Reply) TokenReader() xml.TokenReader {
	if r.To.Equal(jid.JID{}) {
		return xmlutil.Empty(NS, "reply", xmlutil.A("id", r.ID))
	}
	return xmlutil.Empty(NS, "reply", xmlutil.A("to", r.To.String()), xmlutil.A("id", r.ID))
}

// WriteXML implements xmlstream.WriterTo.
func (r Reply) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Reply) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, r)
}

// Quote returns the body of a reply: a XEP-0393 quote of the message
// replied to, attributed to nick, followed by text. It also returns the
// fallback element marking the quote, so that clients that show replies
// their own way can hide it:
//
//	> nick wrote:
//	> first line of quoted
//	> second line of quoted
//	text
//
// Empty quoted lines become a bare ">", since a trailing space is invisible
// and some clients trim it. With no nick the attribution line is left out.
// quoted is used as given; shortening a long message is up to the caller.
func Quote(nick, quoted, text string) (string, fallback.Fallback) {
	var b strings.Builder
	// Every quoted line gains at most two bytes, plus the attribution.
	b.Grow(len(nick) + len(" wrote:\n> ") + len(quoted) + 2*strings.Count(quoted, "\n") + 3 + len(text))
	if nick != "" {
		b.WriteString("> ")
		b.WriteString(nick)
		b.WriteString(" wrote:\n")
	}
	quoted = strings.TrimRight(quoted, "\n")
	for line := range strings.SplitSeq(quoted, "\n") {
		if quoted == "" {
			break
		}
		if line == "" {
			b.WriteString(">\n")
			continue
		}
		b.WriteString("> ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	end := utf8.RuneCountInString(b.String())
	b.WriteString(text)
	return b.String(), fallback.Fallback{
		For:  NS,
		Body: []fallback.Range{{Start: 0, End: end}},
	}
}

// Message returns msg as a reply to rep: its body is text after a quote of
// quoted by nick (see Quote), followed by the reply and fallback elements and
// any extra payloads (an origin-id, say).
func Message(msg stanza.Message, rep Reply, nick, quoted, text string, extra ...xml.TokenReader) xml.TokenReader {
	body, fb := Quote(nick, quoted, text)
	return msg.Wrap(xmlstream.MultiReader(append([]xml.TokenReader{
		xmlutil.Body(body),
		rep.TokenReader(),
		fb.TokenReader(),
	}, extra...)...))
}

// StripFallback returns body without the reply fallback that fbs mark in
// it. Clients should only do that when they show the message replied to in
// some other way; when it is unknown the quote is the only context there is.
func StripFallback(body string, fbs []fallback.Fallback) string {
	return fallback.Strip(body, NS, fbs)
}

// Decode decodes a <reply/> element whose start has just been read from r,
// consuming r up to and including its end.
func Decode(start xml.StartElement, r xml.TokenReader) (Reply, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return Reply{}, err
	}
	rep := Reply{XMLName: start.Name, ID: id}
	if to, ok := xmlutil.Attr(start, "to"); ok && to != "" {
		if rep.To, err = jid.Parse(to); err != nil {
			return Reply{}, fmt.Errorf("%w: reply to: %w", xmlutil.ErrMalformed, err)
		}
	}
	return rep, xmlutil.Skip(xmlutil.Within(r, start))
}

// From reads a whole message stanza from r and returns its <reply/>, and
// whether it has one, together with its fallback elements (for
// StripFallback). A message replying twice is ambiguous and an error.
func From(r xml.TokenReader) (Reply, []fallback.Fallback, bool, error) {
	var (
		rep   Reply
		fbs   []fallback.Fallback
		found bool
	)
	_, err := xmlutil.EachChild(r, xmlutil.Limits{}, func(start xml.StartElement, r *xmlutil.Reader) error {
		switch {
		case fallback.IsFallback(start.Name):
			if len(fbs) >= maxFallbacks {
				return fmt.Errorf("%w: more than %d fallback elements", xmlutil.ErrTooLarge, maxFallbacks)
			}
			f, err := fallback.Decode(start, r)
			fbs = append(fbs, f)
			return err
		case start.Name.Space != NS || start.Name.Local != "reply":
			return nil
		case found:
			return fmt.Errorf("%w: two reply elements", xmlutil.ErrDuplicate)
		}
		var err error
		rep, err = Decode(start, r)
		found = true
		return err
	})
	if err != nil {
		return Reply{}, nil, false, err
	}
	return rep, fbs, found, nil
}
