package xmpp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
)

// Namespaces of the message extensions the bridge speaks.
const (
	nsCorrection = "urn:xmpp:message-correct:0" // XEP-0308
	nsRetract    = "urn:xmpp:message-retract:1" // XEP-0424
	nsFallback   = "urn:xmpp:fallback:0"        // XEP-0428
	nsReactions  = "urn:xmpp:reactions:0"       // XEP-0444
	nsReply      = "urn:xmpp:reply:0"           // XEP-0461
	nsStanzaID   = "urn:xmpp:sid:0"             // XEP-0359
	nsOccupantID = "urn:xmpp:occupant-id:0"     // XEP-0421
	nsMAM        = "urn:xmpp:mam:2"             // XEP-0313
	nsForward    = "urn:xmpp:forward:0"         // XEP-0297
	nsDelay      = "urn:xmpp:delay"             // XEP-0203
	nsOOB        = "jabber:x:oob"               // XEP-0066
	nsHints      = "urn:xmpp:hints"             // XEP-0334
)

// inMsg is what the bridge reads from a message stanza.
type inMsg struct {
	Type, ID, OriginID string
	From               jid.JID
	Body               string
	stanzaIDs          []stanzaID
	Replace            string
	Retract            string
	ReactionsTo        string
	Reactions          []string
	ReplyTo            string
	OOB                []string
	OccupantID         string
	Delay              time.Time
	ErrorText          string
	// Archived is the message inside a MAM result.
	Archived *inMsg
	// ArchiveID is the archive's ID of Archived; QueryID the query's.
	ArchiveID, QueryID string
}

type stanzaID struct{ By, ID string }

// StanzaID returns the ID that by (the room) assigned to the message.
func (m *inMsg) StanzaID(by jid.JID) string {
	for _, s := range m.stanzaIDs {
		if s.By == by.String() {
			return s.ID
		}
	}
	return ""
}

type rawMessage struct {
	XMLName xml.Name
	Type    string `xml:"type,attr"`
	ID      string `xml:"id,attr"`
	From    string `xml:"from,attr"`
	Body    []struct {
		Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
		Text string `xml:",chardata"`
	} `xml:"body"`
	StanzaIDs []struct {
		By string `xml:"by,attr"`
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:sid:0 stanza-id"`
	OriginID *struct {
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:sid:0 origin-id"`
	Replace *struct {
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:message-correct:0 replace"`
	Retract *struct {
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:message-retract:1 retract"`
	Reactions *struct {
		ID        string   `xml:"id,attr"`
		Reactions []string `xml:"reaction"`
	} `xml:"urn:xmpp:reactions:0 reactions"`
	Reply *struct {
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:reply:0 reply"`
	Fallbacks []struct {
		For    string `xml:"for,attr"`
		Bodies []struct {
			Start *int `xml:"start,attr"`
			End   *int `xml:"end,attr"`
		} `xml:"body"`
	} `xml:"urn:xmpp:fallback:0 fallback"`
	OOB []struct {
		URL string `xml:"url"`
	} `xml:"jabber:x:oob x"`
	OccupantID *struct {
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:occupant-id:0 occupant-id"`
	Delay *struct {
		Stamp string `xml:"stamp,attr"`
	} `xml:"urn:xmpp:delay delay"`
	Error *struct {
		Text string `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text"`
		Any  []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
	Result *struct {
		ID        string `xml:"id,attr"`
		QueryID   string `xml:"queryid,attr"`
		Forwarded struct {
			Delay *struct {
				Stamp string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:delay delay"`
			Message *rawMessage `xml:"message"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	} `xml:"urn:xmpp:mam:2 result"`
}

// parseMessage decodes a message stanza, refusing bodies over maxBody bytes.
func parseMessage(raw []byte, maxBody int) (*inMsg, error) {
	var r rawMessage
	if err := xml.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("malformed message: %w", err)
	}
	return convert(&r, maxBody)
}

func convert(r *rawMessage, maxBody int) (*inMsg, error) {
	m := &inMsg{Type: r.Type, ID: r.ID}
	if m.Type == "" {
		m.Type = "normal"
	}
	if r.From != "" {
		from, err := jid.Parse(r.From)
		if err != nil {
			return nil, fmt.Errorf("bad from address: %w", err)
		}
		m.From = from
	}
	for _, b := range r.Body {
		if m.Body == "" || b.Lang == "" {
			m.Body = b.Text
		}
	}
	if maxBody > 0 && len(m.Body) > maxBody {
		return nil, fmt.Errorf("body of %d bytes is over the %d-byte limit", len(m.Body), maxBody)
	}
	for _, s := range r.StanzaIDs {
		m.stanzaIDs = append(m.stanzaIDs, stanzaID{By: s.By, ID: s.ID})
	}
	if r.OriginID != nil {
		m.OriginID = r.OriginID.ID
	}
	// A reference without its ID is malformed: acting on it as a plain
	// message would show, say, a correction as a new message.
	if r.Replace != nil {
		if m.Replace = r.Replace.ID; m.Replace == "" {
			return nil, errors.New("correction without the id of the corrected message")
		}
	}
	if r.Retract != nil {
		if m.Retract = r.Retract.ID; m.Retract == "" {
			return nil, errors.New("retraction without the id of the retracted message")
		}
	}
	if r.Reactions != nil {
		if m.ReactionsTo, m.Reactions = r.Reactions.ID, r.Reactions.Reactions; m.ReactionsTo == "" {
			return nil, errors.New("reactions without the id of the message reacted to")
		}
	}
	if r.Reply != nil {
		m.ReplyTo = r.Reply.ID
		m.Body = stripFallback(m.Body, r, nsReply)
	}
	for _, o := range r.OOB {
		if o.URL != "" {
			m.OOB = append(m.OOB, o.URL)
		}
	}
	if r.OccupantID != nil {
		m.OccupantID = r.OccupantID.ID
	}
	if r.Delay != nil {
		m.Delay, _ = time.Parse(time.RFC3339Nano, r.Delay.Stamp)
	}
	if r.Error != nil {
		m.ErrorText = r.Error.Text
		for _, a := range r.Error.Any {
			if m.ErrorText == "" && a.XMLName.Local != "text" {
				m.ErrorText = a.XMLName.Local
			}
		}
	}
	if r.Result != nil && r.Result.Forwarded.Message != nil {
		inner, err := convert(r.Result.Forwarded.Message, maxBody)
		if err != nil {
			return nil, err
		}
		if d := r.Result.Forwarded.Delay; d != nil && inner.Delay.IsZero() {
			inner.Delay, _ = time.Parse(time.RFC3339Nano, d.Stamp)
		}
		m.Archived, m.ArchiveID, m.QueryID = inner, r.Result.ID, r.Result.QueryID
		if inner.StanzaID(inner.From.Bare()) == "" && inner.From.String() != "" {
			// The archive ID is the room's stanza ID for the message.
			inner.stanzaIDs = append(inner.stanzaIDs, stanzaID{By: inner.From.Bare().String(), ID: r.Result.ID})
		}
	}
	return m, nil
}

// stripFallback removes the part of a body that a fallback element marks as
// being for clients without the extension (e.g. a quoted reply).
func stripFallback(body string, r *rawMessage, forNS string) string {
	runes := []rune(body)
	for _, f := range r.Fallbacks {
		if f.For != forNS {
			continue
		}
		for _, b := range f.Bodies {
			if b.Start == nil || b.End == nil {
				continue
			}
			start, end := *b.Start, *b.End
			if start < 0 || end > len(runes) || start > end {
				continue
			}
			return string(append(append([]rune{}, runes[:start]...), runes[end:]...))
		}
	}
	return body
}
