// Package msgparse reads everything the bridge needs from a message stanza
// in one pass over its tokens.
//
// The per-XEP packages each have a From function, but each of those reads
// the whole stanza, and a mellium handler's token reader can only be read
// once. Parse instead walks the stanza once, hands each payload it knows to
// that package's Decode, and skips the rest, so unknown extensions cost
// nothing but the walk.
//
// # Using it from a mellium mux handler
//
// The reader a mux.MessageHandler gets yields the message's start element
// and then its content, which is what Parse expects:
//
//	func (h handler) HandleMessage(_ stanza.Message, t xmlstream.TokenReadEncoder) error {
//		m, err := msgparse.Parse(t, msgparse.Limits{})
//		...
//	}
//
// A mux calls a handler once per child element it is registered for, so
// register it for one payload name (or dedupe on the message), not for
// several. An xmpp.Handler gets the start element separately; pass it to
// ParseElement instead.
//
// # Trust
//
// Parse reports what the stanza says, not whether to believe it. In
// particular: a stanza-id is only meaningful from the entity named in its by
// (see Parsed.StanzaID); an occupant-id only from a room that advertises
// XEP-0421; a moderation only from the room's bare JID; a MAM result only
// from the archive that was queried (the user's own account, whose address
// a mellium session reports as an empty From, or the room); and a
// correction, retraction or reaction only from the author of the message it
// refers to.
package msgparse

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"time"

	"mellium.im/xmpp/delay"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/oob"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/correction"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/fallback"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmlutil"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/occupantid"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/reactions"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/reply"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/retract"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/stanzaid"
)

// Namespaces read here that have no package of their own in xmppext.
const (
	// NSMAM is XEP-0313 Message Archive Management's.
	NSMAM = "urn:xmpp:mam:2"
	// NSForward is XEP-0297 Stanza Forwarding's.
	NSForward = "urn:xmpp:forward:0"
)

// ErrBodyTooLarge is returned for a body (or subject) over Limits.MaxBody. It
// wraps xmppext.ErrTooLarge.
var ErrBodyTooLarge = fmt.Errorf("%w: body over limit", xmppext.ErrTooLarge)

// Limits bound the work Parse does. A zero field takes its value from
// DefaultLimits.
type Limits struct {
	// MaxBody is the largest body or subject, in bytes, accepted.
	MaxBody int
	// MaxDepth is how deep elements may nest; a MAM result needs 6 or so.
	MaxDepth int
	// MaxTokens is how many XML tokens the stanza may have.
	MaxTokens int
	// MaxText is how many bytes of text the stanza may have in all. It
	// defaults to enough for a few bodies (in different languages) of MaxBody.
	MaxText int
}

// DefaultLimits match the bridge's own: a body of 256 KiB is far beyond
// what a Mattermost post can hold, and far below what would strain memory.
var DefaultLimits = Limits{
	MaxBody:   256 << 10,
	MaxDepth:  xmlutil.DefaultLimits.MaxDepth,
	MaxTokens: xmlutil.DefaultLimits.MaxTokens,
}

func (l Limits) withDefaults() Limits {
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultLimits.MaxBody
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultLimits.MaxTokens
	}
	if l.MaxText <= 0 {
		l.MaxText = max(xmlutil.DefaultLimits.MaxText, 4*l.MaxBody)
	}
	return l
}

func (l Limits) xmlLimits() xmlutil.Limits {
	return xmlutil.Limits{MaxDepth: l.MaxDepth, MaxTokens: l.MaxTokens, MaxText: l.MaxText}
}

// Repeatable payloads are capped at this many: enough for every legitimate
// use (bodies in a few languages, a stanza-id per hop, a couple of
// attachments), few enough that a stanza cannot make the bridge build long
// lists.
const maxRepeat = 32

// Parsed is what a message stanza says.
type Parsed struct {
	Type stanza.MessageType
	From jid.JID
	To   jid.JID
	ID   string
	Lang string

	// Body is the body in the message's language (one without xml:lang, or
	// whose xml:lang is the message's); failing that, the first. It still
	// holds any XEP-0428 fallback text; see BodyWithoutFallbacks.
	Body string
	// Subject is chosen like Body. HasSubject tells an empty subject, which
	// in a MUC clears the room's subject, from none.
	Subject    string
	HasSubject bool

	// Thread is the message's thread ID (RFC 6121 <thread/>, XEP-0201),
	// "" if it has none.
	Thread string

	// OriginID is the XEP-0359 origin-id, and StanzaIDs the stanza-ids.
	OriginID  string
	StanzaIDs []stanzaid.StanzaID

	// Replace is set for a XEP-0308 correction.
	Replace *correction.Replace
	// Retract is set for a XEP-0424 retraction, in either form; for one by a
	// moderator (XEP-0425) Retract.Moderated is set too.
	Retract *retract.Retract
	// Reactions is set for a XEP-0444 reactions update.
	Reactions *reactions.Reactions
	// Reply is set for a XEP-0461 reply.
	Reply *reply.Reply
	// Fallbacks are the XEP-0428 fallback elements.
	Fallbacks []fallback.Fallback
	// OOB are the XEP-0066 out-of-band data (attached URLs).
	OOB []oob.Data
	// OccupantID is the XEP-0421 occupant-id of the sender.
	OccupantID string
	// Delay is the XEP-0203 delay with the earliest stamp, if any: when
	// several entities delayed a message, that is when it was first sent.
	Delay *delay.Delay
	// MUCUser is the XEP-0045 muc#user payload, which in messages mostly
	// appears in non-anonymous rooms' archives and in status notices.
	MUCUser *MUCUser
	// Error is set for a message of type error.
	Error *stanza.Error

	// MAM is set if this message is a XEP-0313 archive result; the archived
	// message is MAM.Message.
	MAM *MAMResult
}

// MUCUser is the part of a muc#user <x/> that matters to the bridge.
type MUCUser struct {
	// JID is the sender's real JID, if the room reveals it.
	JID         jid.JID
	Nick        string
	Affiliation string
	Role        string
	// Status are the status codes.
	Status []int
}

// MAMResult is a XEP-0313 archive result wrapper.
type MAMResult struct {
	// QueryID is the ID of the query this is a result of.
	QueryID string
	// ID is the archive's ID of the message. For a room's archive it is
	// also the room's stanza-id of the message, which is what retractions,
	// reactions and replies in the room refer to, even if Message itself
	// carries no stanza-id.
	ID string
	// Delay is when the archive received the message.
	Delay *delay.Delay
	// Message is the archived message. It is never nil.
	Message *Parsed
}

// Unwrap returns the archived message if p is a MAM result, else p.
func (p *Parsed) Unwrap() *Parsed {
	if p.MAM != nil {
		return p.MAM.Message
	}
	return p
}

// StanzaID returns the stanza-id that by assigned, or "" if none; by is
// compared as a bare JID. In a groupchat, pass the room's JID.
func (p *Parsed) StanzaID(by jid.JID) string {
	return stanzaid.IDs{Stanza: p.StanzaIDs}.StanzaID(by)
}

// BodyWithoutFallbacks returns the body without the XEP-0428 fallback text
// for extensions this message uses and Parse understands: the quote of a
// reply, the notice of a retraction, the emoji of a reaction. Whether to
// show a reply's quote anyway (when the message replied to is unknown) is
// the caller's choice; fallback.Strip removes one kind at a time.
func (p *Parsed) BodyWithoutFallbacks() string {
	body := p.Body
	if len(p.Fallbacks) == 0 {
		return body
	}
	if p.Reply != nil {
		body = fallback.Strip(body, reply.NS, p.Fallbacks)
	}
	if p.Retract != nil {
		body = fallback.Strip(body, retract.NS, p.Fallbacks)
		if p.Retract.Legacy {
			body = fallback.Strip(body, retract.NSLegacy, p.Fallbacks)
		}
	}
	if p.Reactions != nil {
		body = fallback.Strip(body, reactions.NS, p.Fallbacks)
	}
	return body
}

// Parse reads a whole message stanza from r: its start element, then its
// content up to its end element. Anything else than a message, or a message
// that is malformed or over lim, is an error wrapping one of xmppext's
// errors (ErrBodyTooLarge for a long body); it never returns a partial
// result.
func Parse(r xml.TokenReader, lim Limits) (*Parsed, error) {
	lim = lim.withDefaults()
	xr := xmlutil.NewReader(r, lim.xmlLimits())
	start, err := xmlutil.ReadStart(xr)
	if err != nil {
		return nil, err
	}
	return parseMessage(start, xr, lim, false)
}

// ParseElement is Parse for a message whose start element has already been
// read from r.
func ParseElement(start xml.StartElement, r xml.TokenReader, lim Limits) (*Parsed, error) {
	lim = lim.withDefaults()
	return parseMessage(start, xmlutil.NewReaderIn(r, start, lim.xmlLimits()), lim, false)
}

func isStanzaNS(space string) bool {
	// Empty for stanzas decoded from text without a stream around them;
	// jabber:component:accept on an XEP-0114 component's stream.
	return space == "" || space == stanza.NSClient || space == stanza.NSServer || space == nsComponent
}

const nsComponent = "jabber:component:accept"

// Names of the payloads, for the switch in parseMessage.
var (
	nameOriginID   = xml.Name{Space: stanzaid.NS, Local: "origin-id"}
	nameStanzaID   = xml.Name{Space: stanzaid.NS, Local: "stanza-id"}
	nameReplace    = xml.Name{Space: correction.NS, Local: "replace"}
	nameRetract    = xml.Name{Space: retract.NS, Local: "retract"}
	nameApplyTo    = xml.Name{Space: retract.NSFasten, Local: "apply-to"}
	nameReactions  = xml.Name{Space: reactions.NS, Local: "reactions"}
	nameReply      = xml.Name{Space: reply.NS, Local: "reply"}
	nameFallback   = xml.Name{Space: fallback.NS, Local: "fallback"}
	nameFallbackV0 = xml.Name{Space: fallback.NSLegacy, Local: "fallback"}
	nameOOB        = xml.Name{Space: oob.NS, Local: "x"}
	nameOccupantID = xml.Name{Space: occupantid.NS, Local: "occupant-id"}
	nameDelay      = xml.Name{Space: delay.NS, Local: "delay"}
	nameMUCUser    = xml.Name{Space: muc.NSUser, Local: "x"}
	nameMAMResult  = xml.Name{Space: NSMAM, Local: "result"}
	nameForwarded  = xml.Name{Space: NSForward, Local: "forwarded"}
)

// texts chooses among bodies (or subjects) in several languages.
type texts struct {
	langs  []string
	chosen string
	exact  bool // chosen is in the message's own language
	seen   bool
}

func (t *texts) add(what, lang, msgLang, text string) error {
	for _, l := range t.langs {
		if l == lang {
			// RFC 6121 §5.2.3: one per language.
			return fmt.Errorf("%w: two %ss in language %q", xmppext.ErrDuplicate, what, lang)
		}
	}
	if len(t.langs) >= maxRepeat {
		return fmt.Errorf("%w: more than %d %ss", xmppext.ErrTooLarge, maxRepeat, what)
	}
	t.langs = append(t.langs, lang)
	switch {
	case !t.seen:
		t.chosen, t.exact, t.seen = text, lang == msgLang, true
	case !t.exact && lang == msgLang:
		t.chosen, t.exact = text, true
	}
	return nil
}

func parseMessage(start xml.StartElement, xr *xmlutil.Reader, lim Limits, inMAM bool) (*Parsed, error) {
	if start.Name.Local != "message" || !isStanzaNS(start.Name.Space) {
		return nil, fmt.Errorf("%w: <%s xmlns=%q> is not a message stanza", xmppext.ErrMalformed, start.Name.Local, start.Name.Space)
	}
	msg, err := stanza.NewMessage(start)
	if err != nil {
		return nil, fmt.Errorf("%w: message address: %w", xmppext.ErrMalformed, err)
	}
	if len(msg.ID) > xmlutil.MaxID {
		return nil, fmt.Errorf("%w: message id over %d bytes", xmppext.ErrTooLarge, xmlutil.MaxID)
	}
	p := &Parsed{Type: msg.Type, From: msg.From, To: msg.To, ID: msg.ID, Lang: msg.Lang}

	var (
		bodies, subjects texts
		ids              stanzaid.IDs
		hasOrigin        bool
		hasOccupant      bool
		legacyRetract    bool
		legacyModerator  jid.JID // the moderator the older form names
		legacyTarget     string
	)
	err = xmlutil.Children(xr, func(child xml.StartElement) error {
		if child.Name.Space == start.Name.Space {
			switch child.Name.Local {
			case "body", "subject":
				return parseText(child, xr, lim, p.Lang, &bodies, &subjects)
			case "thread":
				if p.Thread != "" {
					// RFC 6121 §5.2.5: at most one.
					return fmt.Errorf("%w: two threads", xmppext.ErrDuplicate)
				}
				var err error
				p.Thread, err = xmlutil.Text(xr, xmlutil.MaxID)
				return err
			case "error":
				if p.Error != nil {
					return fmt.Errorf("%w: two errors", xmppext.ErrDuplicate)
				}
				var err error
				p.Error, err = parseError(child, xr)
				return err
			}
			return nil
		}
		switch child.Name {
		case nameOriginID:
			if hasOrigin {
				return fmt.Errorf("%w: two origin-ids", xmppext.ErrDuplicate)
			}
			o, err := stanzaid.DecodeOriginID(child, xr)
			p.OriginID, hasOrigin = o.ID, true
			return err
		case nameStanzaID:
			if len(ids.Stanza) >= maxRepeat {
				return fmt.Errorf("%w: more than %d stanza-ids", xmppext.ErrTooLarge, maxRepeat)
			}
			s, err := stanzaid.DecodeStanzaID(child, xr)
			if err != nil {
				return err
			}
			return ids.Add(s)
		case nameReplace:
			if p.Replace != nil {
				return fmt.Errorf("%w: two replace elements", xmppext.ErrDuplicate)
			}
			rep, err := correction.Decode(child, xr)
			p.Replace = &rep
			return err
		case nameRetract:
			if p.Retract != nil && !legacyRetract {
				return fmt.Errorf("%w: two retract elements", xmppext.ErrDuplicate)
			}
			rt, err := retract.Decode(child, xr)
			// The current form wins over an older one sent alongside it.
			p.Retract, legacyRetract = &rt, false
			return err
		case nameApplyTo:
			rt, ok, err := retract.DecodeApplyTo(child, xr)
			switch {
			case err != nil || !ok:
				return err
			case legacyTarget != "":
				return fmt.Errorf("%w: two legacy retractions", xmppext.ErrDuplicate)
			}
			legacyTarget = rt.ID
			if rt.Moderated != nil {
				legacyModerator = rt.Moderated.By
			}
			if p.Retract == nil {
				p.Retract, legacyRetract = &rt, true
			}
			return nil
		case nameReactions:
			if p.Reactions != nil {
				return fmt.Errorf("%w: two reactions elements", xmppext.ErrDuplicate)
			}
			re, err := reactions.Decode(child, xr)
			p.Reactions = &re
			return err
		case nameReply:
			if p.Reply != nil {
				return fmt.Errorf("%w: two reply elements", xmppext.ErrDuplicate)
			}
			rep, err := reply.Decode(child, xr)
			p.Reply = &rep
			return err
		case nameFallback, nameFallbackV0:
			if len(p.Fallbacks) >= maxRepeat {
				return fmt.Errorf("%w: more than %d fallbacks", xmppext.ErrTooLarge, maxRepeat)
			}
			f, err := fallback.Decode(child, xr)
			p.Fallbacks = append(p.Fallbacks, f)
			return err
		case nameOOB:
			if len(p.OOB) >= maxRepeat {
				return fmt.Errorf("%w: more than %d out-of-band URLs", xmppext.ErrTooLarge, maxRepeat)
			}
			d, err := parseOOB(xr)
			if err == nil && d.URL != "" {
				p.OOB = append(p.OOB, d)
			}
			return err
		case nameOccupantID:
			if hasOccupant {
				return fmt.Errorf("%w: two occupant-ids", xmppext.ErrDuplicate)
			}
			o, err := occupantid.Decode(child, xr)
			p.OccupantID, hasOccupant = o.ID, true
			return err
		case nameDelay:
			d, err := parseDelay(child, xr)
			if err == nil && (p.Delay == nil || d.Time.Before(p.Delay.Time)) {
				p.Delay = &d
			}
			return err
		case nameMUCUser:
			if p.MUCUser != nil {
				return fmt.Errorf("%w: two muc#user elements", xmppext.ErrDuplicate)
			}
			var err error
			p.MUCUser, err = parseMUCUser(xr)
			return err
		case nameMAMResult:
			switch {
			case inMAM:
				// Archives do not archive their own results; a result inside
				// one is an attempt to smuggle a second layer past checks on
				// the first.
				return fmt.Errorf("%w: MAM result inside a MAM result", xmppext.ErrMalformed)
			case p.MAM != nil:
				return fmt.Errorf("%w: two MAM results", xmppext.ErrDuplicate)
			}
			var err error
			p.MAM, err = parseMAM(child, xr, lim)
			return err
		}
		return nil
	})
	// XEP-0425 0.3 names the moderator by occupant-id and lets the room
	// leave out its room JID (Prosody 13's mod_muc_moderation does); the
	// older form sent beside it, about the same message, names it.
	if rt := p.Retract; err == nil && rt != nil && !rt.Legacy && rt.Moderated != nil && rt.Moderated.By.Equal(jid.JID{}) && legacyTarget == rt.ID {
		rt.Moderated.By = legacyModerator
	}
	if err != nil {
		return nil, err
	}
	p.Body = bodies.chosen
	p.Subject, p.HasSubject = subjects.chosen, subjects.seen
	p.StanzaIDs = ids.Stanza
	return p, nil
}

func parseText(child xml.StartElement, xr *xmlutil.Reader, lim Limits, msgLang string, bodies, subjects *texts) error {
	text, err := xmlutil.Text(xr, lim.MaxBody)
	if err != nil {
		if errors.Is(err, xmppext.ErrTooLarge) {
			return fmt.Errorf("%w: %s over %d bytes", ErrBodyTooLarge, child.Name.Local, lim.MaxBody)
		}
		return err
	}
	lang := msgLang
	for _, a := range child.Attr {
		if a.Name.Space == xmlNS && a.Name.Local == "lang" {
			lang = a.Value
		}
	}
	if child.Name.Local == "body" {
		return bodies.add("body", lang, msgLang, text)
	}
	return subjects.add("subject", lang, msgLang, text)
}

// xmlNS is the namespace of xml:lang.
const xmlNS = "http://www.w3.org/XML/1998/namespace"

func parseError(start xml.StartElement, xr *xmlutil.Reader) (*stanza.Error, error) {
	se := &stanza.Error{XMLName: start.Name}
	typ, _ := xmlutil.Attr(start, "type")
	se.Type = stanza.ErrorType(typ)
	if by, ok := xmlutil.Attr(start, "by"); ok && by != "" {
		var err error
		if se.By, err = jid.Parse(by); err != nil {
			return nil, fmt.Errorf("%w: error by: %w", xmppext.ErrMalformed, err)
		}
	}
	err := xmlutil.Children(xr, func(child xml.StartElement) error {
		if child.Name.Space != stanza.NSError {
			return nil
		}
		if child.Name.Local != "text" {
			if se.Condition == "" {
				se.Condition = stanza.Condition(child.Name.Local)
			}
			return nil
		}
		text, err := xmlutil.Text(xr, xmlutil.MaxShortText)
		if err != nil {
			return err
		}
		lang := ""
		for _, a := range child.Attr {
			if a.Name.Space == xmlNS && a.Name.Local == "lang" {
				lang = a.Value
			}
		}
		if se.Text == nil {
			se.Text = make(map[string]string, 1)
		} else if len(se.Text) >= maxRepeat {
			return fmt.Errorf("%w: more than %d error texts", xmppext.ErrTooLarge, maxRepeat)
		}
		se.Text[lang] = text
		return nil
	})
	if err != nil {
		return nil, err
	}
	return se, nil
}

func parseOOB(xr *xmlutil.Reader) (oob.Data, error) {
	var d oob.Data
	err := xmlutil.Children(xr, func(child xml.StartElement) error {
		if child.Name.Space != oob.NS {
			return nil
		}
		var err error
		switch child.Name.Local {
		case "url":
			d.URL, err = xmlutil.Text(xr, xmlutil.MaxShortText)
		case "desc":
			d.Desc, err = xmlutil.Text(xr, xmlutil.MaxShortText)
		}
		return err
	})
	d.XMLName = nameOOB
	return d, err
}

func parseDelay(start xml.StartElement, xr *xmlutil.Reader) (delay.Delay, error) {
	d := delay.Delay{XMLName: start.Name}
	stamp, ok := xmlutil.Attr(start, "stamp")
	if !ok {
		return d, fmt.Errorf("%w: delay without stamp", xmppext.ErrMalformed)
	}
	var err error
	if d.Time, err = time.Parse(time.RFC3339, stamp); err != nil {
		return d, fmt.Errorf("%w: delay stamp: %w", xmppext.ErrMalformed, err)
	}
	if from, ok := xmlutil.Attr(start, "from"); ok && from != "" {
		if d.From, err = jid.Parse(from); err != nil {
			return d, fmt.Errorf("%w: delay from: %w", xmppext.ErrMalformed, err)
		}
	}
	d.Reason, err = xmlutil.Text(xr, xmlutil.MaxShortText)
	return d, err
}

func parseMUCUser(xr *xmlutil.Reader) (*MUCUser, error) {
	u := &MUCUser{}
	hasItem := false
	err := xmlutil.Children(xr, func(child xml.StartElement) error {
		if child.Name.Space != muc.NSUser {
			return nil
		}
		switch child.Name.Local {
		case "item":
			if hasItem {
				return fmt.Errorf("%w: two muc#user items", xmppext.ErrDuplicate)
			}
			hasItem = true
			if j, ok := xmlutil.Attr(child, "jid"); ok && j != "" {
				var err error
				if u.JID, err = jid.Parse(j); err != nil {
					return fmt.Errorf("%w: muc#user item jid: %w", xmppext.ErrMalformed, err)
				}
			}
			u.Nick, _ = xmlutil.Attr(child, "nick")
			u.Affiliation, _ = xmlutil.Attr(child, "affiliation")
			u.Role, _ = xmlutil.Attr(child, "role")
			if len(u.Nick)+len(u.Affiliation)+len(u.Role) > xmlutil.MaxShortText {
				return fmt.Errorf("%w: muc#user item attributes", xmppext.ErrTooLarge)
			}
		case "status":
			code, _ := xmlutil.Attr(child, "code")
			// Status codes are three digits (XEP-0045 §15.6).
			n, err := strconv.Atoi(code)
			if err != nil || n < 100 || n > 999 {
				return fmt.Errorf("%w: muc#user status code %q", xmppext.ErrMalformed, code)
			}
			if len(u.Status) >= maxRepeat {
				return fmt.Errorf("%w: more than %d status codes", xmppext.ErrTooLarge, maxRepeat)
			}
			u.Status = append(u.Status, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func parseMAM(start xml.StartElement, xr *xmlutil.Reader, lim Limits) (*MAMResult, error) {
	id, err := xmlutil.ID(start, "id")
	if err != nil {
		return nil, err
	}
	res := &MAMResult{ID: id}
	res.QueryID, _ = xmlutil.Attr(start, "queryid")
	if len(res.QueryID) > xmlutil.MaxID {
		return nil, fmt.Errorf("%w: MAM queryid over %d bytes", xmppext.ErrTooLarge, xmlutil.MaxID)
	}
	hasForwarded := false
	err = xmlutil.Children(xr, func(child xml.StartElement) error {
		if child.Name != nameForwarded {
			return nil
		}
		if hasForwarded {
			return fmt.Errorf("%w: two forwarded elements in a MAM result", xmppext.ErrDuplicate)
		}
		hasForwarded = true
		return xmlutil.Children(xr, func(inner xml.StartElement) error {
			switch {
			case inner.Name == nameDelay:
				if res.Delay != nil {
					return fmt.Errorf("%w: two delays in a MAM result", xmppext.ErrDuplicate)
				}
				d, err := parseDelay(inner, xr)
				res.Delay = &d
				return err
			case inner.Name.Local == "message" && isStanzaNS(inner.Name.Space):
				if res.Message != nil {
					return fmt.Errorf("%w: two messages in a MAM result", xmppext.ErrDuplicate)
				}
				var err error
				res.Message, err = parseMessage(inner, xr, lim, true)
				return err
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if res.Message == nil {
		return nil, fmt.Errorf("%w: MAM result without a message", xmppext.ErrMalformed)
	}
	return res, nil
}
