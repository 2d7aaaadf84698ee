package xmpp

import (
	"bytes"
	"encoding/xml"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/msgparse"
)

// Namespaces the bridge writes that have no package of their own.
const (
	nsMAM   = msgparse.NSMAM
	nsHints = "urn:xmpp:hints" // XEP-0334
)

// inMsg is the bridge's view of a message stanza: msgparse's result reduced
// to what relaying needs.
type inMsg struct {
	Type, ID, OriginID string
	From               jid.JID
	Body               string
	Subject            *string // set when the message changes the subject
	parsed             *msgparse.Parsed
	Replace            string
	Retract            string
	ReactionsTo        string
	Reactions          []string
	ReplyTo            string
	Thread             string
	OOB                []string
	OccupantID         string
	Delay              time.Time
	ErrorText          string
	// Archived is the message inside a MAM result; ArchiveID and QueryID
	// are the archive's ID for it and the query's.
	Archived           *inMsg
	ArchiveID, QueryID string
}

// senderID is the ID the sender gave the message: its XEP-0359 origin-id,
// else the stanza's id attribute.
func (m *inMsg) senderID() string {
	if m.OriginID != "" {
		return m.OriginID
	}
	return m.ID
}

// StanzaID returns the ID that by (the room) assigned to the message.
func (m *inMsg) StanzaID(by jid.JID) string {
	if id := m.parsed.StanzaID(by); id != "" {
		return id
	}
	if m.ArchiveID != "" {
		// The archive's ID of a room message is the room's stanza ID.
		return m.ArchiveID
	}
	return ""
}

// maxBody is the largest message body the bridge reads.
const maxBody = 256 << 10

// parseMessage decodes a message stanza, refusing bodies over maxBody bytes
// and malformed extensions.
func parseMessage(raw []byte) (*inMsg, error) {
	lim := msgparse.DefaultLimits
	lim.MaxBody = maxBody
	p, err := msgparse.Parse(xml.NewDecoder(bytes.NewReader(raw)), lim)
	if err != nil {
		return nil, err
	}
	m := fromParsed(p)
	if p.MAM != nil && p.MAM.Message != nil {
		m.Archived = fromParsed(p.MAM.Message)
		m.Archived.ArchiveID, m.QueryID = p.MAM.ID, p.MAM.QueryID
		if m.Archived.Delay.IsZero() && p.MAM.Delay != nil {
			m.Archived.Delay = p.MAM.Delay.Time
		}
	}
	return m, nil
}

func fromParsed(p *msgparse.Parsed) *inMsg {
	m := &inMsg{
		Type: string(p.Type), ID: p.ID, OriginID: p.OriginID, From: p.From,
		Body: p.BodyWithoutFallbacks(), OccupantID: p.OccupantID, Thread: p.Thread, parsed: p,
	}
	if m.Type == "" {
		m.Type = "normal"
	}
	if p.HasSubject {
		subject := p.Subject
		m.Subject = &subject
	}
	if p.Replace != nil {
		m.Replace = p.Replace.ID
	}
	if p.Retract != nil {
		m.Retract = p.Retract.ID
	}
	if p.Reactions != nil {
		m.ReactionsTo, m.Reactions = p.Reactions.ID, p.Reactions.Reactions
	}
	if p.Reply != nil {
		m.ReplyTo = p.Reply.ID
	}
	for _, o := range p.OOB {
		if o.URL != "" {
			m.OOB = append(m.OOB, o.URL)
		}
	}
	if p.Delay != nil {
		m.Delay = p.Delay.Time
	}
	if p.Error != nil {
		m.ErrorText = string(p.Error.Condition)
		for _, text := range p.Error.Text {
			m.ErrorText += ": " + text
			break
		}
	}
	return m
}
