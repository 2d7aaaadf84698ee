package xmpptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/internal/servertest"
)

// nsSID is XEP-0359's namespace (origin-id, stanza-id).
const nsSID = "urn:xmpp:sid:0"

// Message is one message stanza a Client received.
type Message struct {
	// Raw is the stanza as XML, re-encoded from the parsed tokens (the
	// namespaces are declared on each element that has one).
	Raw  string
	Type stanza.MessageType
	From jid.JID
	To   jid.JID
	ID   string
	// Body is the first <body/>, "" if there is none.
	Body string
	// OriginID is the XEP-0359 origin-id the sender put in.
	OriginID string
	// StanzaID is the XEP-0359 stanza-id whose "by" is the sender's bare
	// JID: the room's archive id of a groupchat message.
	StanzaID string
	// OccupantID is the XEP-0421 occupant-id the room put in.
	OccupantID string
	// Delayed is true when the message carries a XEP-0203 delay (room
	// history on join, offline messages); Stamp is then the delay's time.
	Delayed bool
	Stamp   time.Time
	// ErrorCondition is the condition of a type="error" message.
	ErrorCondition string

	// MAMQueryID and ArchiveID are set on XEP-0313 result messages (the
	// query's id and the archived message's id); Forwarded is the archived
	// message, whose Stamp is the time it was archived.
	MAMQueryID string
	ArchiveID  string
	Forwarded  *Message
}

// Presence is one presence stanza a Client received.
type Presence struct {
	Raw        string
	Type       stanza.PresenceType
	From       jid.JID
	To         jid.JID
	ID         string
	OccupantID string
	// MUCStatus lists the muc#user status codes (110 is self-presence).
	MUCStatus []int
	// RealJID is the muc#user item's jid (only when the room shows it).
	RealJID string
	// ErrorCondition is the condition of a type="error" presence.
	ErrorCondition string
}

// Client is a logged-in XMPP client of a test server, for a second room
// occupant in tests. It records every message and presence it receives.
type Client struct {
	// JID is the full JID the server bound.
	JID jid.JID

	session *xmpp.Session
	muc     *muc.Client
	mux     *mux.ServeMux

	mu        sync.Mutex
	messages  []Message
	presences []Presence
	notify    chan struct{} // closed and replaced on every new stanza
	channels  map[string]*muc.Channel

	done      chan struct{}
	serveErr  error
	closeOnce sync.Once
}

// DialOptions tune Endpoints.Dial.
type DialOptions struct {
	// TLSConfig replaces Endpoints.TLSConfig() (which trusts only CACertPEM).
	TLSConfig *tls.Config
	// DirectTLS connects to DirectTLSAddr() and starts TLS at once instead
	// of STARTTLS on C2SAddr().
	DirectTLS bool
	// Plain connects to C2SAddr() without TLS (the server must allow it).
	Plain bool
	// Mechanisms replaces the SASL mechanisms offered, strongest first.
	Mechanisms []sasl.Mechanism
}

// Client logs localpart@Domain in over STARTTLS, trusting CACertPEM, and
// fails the test if it cannot. t.Cleanup closes it.
func (e *Endpoints) Client(t testing.TB, localpart, password string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := e.Dial(ctx, localpart, password, DialOptions{})
	if err != nil {
		t.Fatalf("xmpptest: log in as %s@%s: %v", localpart, e.Domain, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Dial logs localpart@Domain in and serves the session in a goroutine. It
// returns the error instead of failing a test, for tests that expect a
// refusal; the caller must Close the client.
func (e *Endpoints) Dial(ctx context.Context, localpart, password string, o DialOptions) (*Client, error) {
	origin, err := jid.New(localpart, e.Domain, "")
	if err != nil {
		return nil, err
	}
	tlsConfig := o.TLSConfig
	if tlsConfig == nil {
		tlsConfig = e.TLSConfig()
	}
	mechanisms := o.Mechanisms
	if len(mechanisms) == 0 {
		mechanisms = []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha256, sasl.ScramSha1Plus, sasl.ScramSha1, sasl.Plain}
	}
	addr := e.C2SAddr()
	if o.DirectTLS {
		addr = e.DirectTLSAddr()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", password, mechanisms...), xmpp.BindResource()}
	var rw io.ReadWriter = conn
	switch {
	case o.DirectTLS:
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		rw = tc
	case !o.Plain:
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(tlsConfig)}, features...)
	}
	var session *xmpp.Session
	if o.Plain {
		// mellium negotiates SASL only on a secure stream: declare the
		// plain loopback stream secure, as the bridge does.
		session, err = xmpp.NewSession(ctx, origin.Domain(), origin, rw, xmpp.Secure,
			xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
				return xmpp.StreamConfig{Features: features}
			}))
	} else {
		session, err = xmpp.NewClientSession(ctx, origin, rw, features...)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{
		JID:      session.LocalAddr(),
		session:  session,
		muc:      &muc.Client{},
		notify:   make(chan struct{}),
		channels: make(map[string]*muc.Channel),
		done:     make(chan struct{}),
	}
	c.mux = mux.New(stanza.NSClient, muc.HandleClient(c.muc), ping.Handle())
	go func() {
		err := session.Serve(c)
		c.mu.Lock()
		c.serveErr = err
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// Session is the underlying mellium session, to use other XEPs. Do not
// call Serve on it.
func (c *Client) Session() *xmpp.Session { return c.session }

// Done is closed when the session ends (Close, server shutdown, stream
// error); Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the error the session ended with, nil while it runs or after a
// clean close.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serveErr
}

// Close ends the stream and waits (up to 3s) for the server to end its side.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		_ = c.session.Close()
		select {
		case <-c.done:
		case <-time.After(3 * time.Second):
			_ = c.session.Conn().Close()
			<-c.done
		}
	})
}

// HandleXMPP implements xmpp.Handler: it records messages and presences and
// passes presences and IQs on to the multiplexer (MUC joins, pings).
func (c *Client) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "message" && start.Name.Local != "presence" {
		return c.mux.HandleXMPP(t, start)
	}
	toks := []xml.Token{start.Copy()}
	for {
		tok, err := t.Token()
		if tok != nil {
			toks = append(toks, xml.CopyToken(tok))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if end, ok := toks[len(toks)-1].(xml.EndElement); !ok || end.Name != start.Name {
		toks = append(toks, start.End())
	}
	if start.Name.Local == "message" {
		c.record(parseMessage(toks), nil)
		return nil
	}
	c.record(nil, parsePresence(toks))
	inner := &sliceReader{toks: toks[1:]}
	return c.mux.HandleXMPP(struct {
		xml.TokenReader
		xmlstream.Encoder
	}{inner, t}, start)
}

func (c *Client) record(m *Message, p *Presence) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m != nil {
		c.messages = append(c.messages, *m)
	}
	if p != nil {
		c.presences = append(c.presences, *p)
	}
	close(c.notify)
	c.notify = make(chan struct{})
}

// Messages returns every message received so far, oldest first.
func (c *Client) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.messages...)
}

// MessagesAfter returns the messages received after the first n, and the
// count to pass next time: a watcher that reads only what is new.
func (c *Client) MessagesAfter(n int) ([]Message, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.messages[min(n, len(c.messages)):]...), len(c.messages)
}

// Presences returns every presence received so far, oldest first.
func (c *Client) Presences() []Presence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Presence(nil), c.presences...)
}

// WaitMessage returns the first message received (already, or until ctx
// ends) for which match is true.
func (c *Client) WaitMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	for i := 0; ; {
		c.mu.Lock()
		msgs, notify := c.messages, c.notify
		c.mu.Unlock()
		for ; i < len(msgs); i++ {
			if match(msgs[i]) {
				return msgs[i], nil
			}
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("no matching message among %d received: %w%s", len(msgs), ctx.Err(), summary(msgs))
		case <-c.done:
			if c.count() == len(msgs) {
				return Message{}, fmt.Errorf("session ended (%v) with no matching message among %d received%s", c.Err(), len(msgs), summary(msgs))
			}
		}
	}
}

func (c *Client) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.messages)
}

// summary lists the last few messages for a failure message.
func summary(msgs []Message) string {
	const last = 5
	if len(msgs) > last {
		msgs = msgs[len(msgs)-last:]
	}
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("\n  ")
		b.WriteString(m.Raw)
	}
	return b.String()
}

// WaitPresence returns the first presence received (already, or until ctx
// ends) for which match is true.
func (c *Client) WaitPresence(ctx context.Context, match func(Presence) bool) (Presence, error) {
	for i := 0; ; {
		c.mu.Lock()
		ps, notify := c.presences, c.notify
		c.mu.Unlock()
		for ; i < len(ps); i++ {
			if match(ps[i]) {
				return ps[i], nil
			}
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return Presence{}, fmt.Errorf("no matching presence among %d received: %w", len(ps), ctx.Err())
		case <-c.done:
			c.mu.Lock()
			n := len(c.presences)
			c.mu.Unlock()
			if n == len(ps) {
				return Presence{}, fmt.Errorf("session ended (%v) with no matching presence", c.Err())
			}
		}
	}
}

// JoinRoom joins room (a bare JID) as nick, creating the room if it does
// not exist (rooms are unlocked, persistent and public by default). It asks
// for no history unless opts say otherwise (muc.MaxHistory).
func (c *Client) JoinRoom(ctx context.Context, room jid.JID, nick string, opts ...muc.Option) error {
	full, err := room.Bare().WithResource(nick)
	if err != nil {
		return err
	}
	opts = append([]muc.Option{muc.MaxHistory(0)}, opts...)
	ch, err := c.muc.Join(ctx, full, c.session, opts...)
	if err != nil {
		return fmt.Errorf("join %s: %w", full, err)
	}
	c.mu.Lock()
	c.channels[room.Bare().String()] = ch
	c.mu.Unlock()
	return nil
}

// LeaveRoom leaves a room joined with JoinRoom.
func (c *Client) LeaveRoom(ctx context.Context, room jid.JID) error {
	c.mu.Lock()
	ch := c.channels[room.Bare().String()]
	delete(c.channels, room.Bare().String())
	c.mu.Unlock()
	if ch == nil {
		return fmt.Errorf("not in %s", room)
	}
	return ch.Leave(ctx, "")
}

// Say sends a groupchat message with body to room; the returned id is both
// the stanza's id and its XEP-0359 origin-id.
func (c *Client) Say(ctx context.Context, room jid.JID, body string) (string, error) {
	id := servertest.RandomString()
	msg := stanza.Message{To: room.Bare(), Type: stanza.GroupChatMessage, ID: id}
	err := c.session.Send(ctx, msg.Wrap(xmlstream.MultiReader(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}}),
		xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: nsSID, Local: "origin-id"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: id}},
		}),
	)))
	return id, err
}

// SendRaw sends one top-level element written as XML, such as
//
//	<message to='room@conference.localhost' type='groupchat' id='r1'>
//	  <reactions xmlns='urn:xmpp:reactions:0' id='...'><reaction>👍</reaction></reactions>
//	</message>
//
// The XML must be well-formed (it is parsed and re-encoded; a stanza with
// no namespace is in the stream's jabber:client). Servers check stanzas
// only loosely, so semantically odd ones (unknown payloads, missing ids,
// bad references) reach the room and its occupants.
func (c *Client) SendRaw(ctx context.Context, raw string) error {
	d := xml.NewDecoder(strings.NewReader(raw))
	var toks []xml.Token
	depth, elements := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("SendRaw: %w", err)
		}
		switch tt := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				elements++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 {
				if len(bytes.TrimSpace(tt)) != 0 {
					return errors.New("SendRaw: text outside the element")
				}
				continue
			}
		case xml.ProcInst, xml.Comment, xml.Directive:
			continue
		}
		toks = append(toks, cleanToken(xml.CopyToken(tok)))
	}
	if elements != 1 {
		return fmt.Errorf("SendRaw: want exactly one element, got %d", elements)
	}
	return c.session.Send(ctx, &sliceReader{toks: toks})
}

// RoomExists asks room for disco#info: false if the MUC service answers
// item-not-found.
func (c *Client) RoomExists(ctx context.Context, room jid.JID) (bool, error) {
	_, err := disco.GetInfo(ctx, "", room.Bare(), c.session)
	var se stanza.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &se) && se.Condition == stanza.ItemNotFound:
		return false, nil
	default:
		return false, err
	}
}

// Features returns the disco#info features of to (a room, a service, an
// account).
func (c *Client) Features(ctx context.Context, to jid.JID) ([]string, error) {
	info, err := disco.GetInfo(ctx, "", to, c.session)
	if err != nil {
		return nil, err
	}
	vars := make([]string, 0, len(info.Features))
	for _, f := range info.Features {
		vars = append(vars, f.Var)
	}
	return vars, nil
}

// FetchHistory queries the XEP-0313 archive of archive (a room's bare JID,
// or the zero JID for the account's own archive) and returns the archived
// messages, oldest first unless q says otherwise. Set q.Limit for more than
// the server's default page of 20 (this server allows up to 1000).
func (c *Client) FetchHistory(ctx context.Context, archive jid.JID, q history.Query) ([]Message, history.Result, error) {
	if q.ID == "" {
		q.ID = servertest.RandomString()
	}
	res, err := history.Fetch(ctx, q, archive, c.session)
	if err != nil {
		return nil, res, err
	}
	var out []Message
	for _, m := range c.Messages() {
		if m.MAMQueryID == q.ID && m.Forwarded != nil {
			fw := *m.Forwarded
			fw.ArchiveID = m.ArchiveID
			out = append(out, fw)
		}
	}
	return out, res, nil
}

// sliceReader is an xml.TokenReader over recorded tokens.
type sliceReader struct {
	toks []xml.Token
}

func (r *sliceReader) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	tok := r.toks[0]
	r.toks = r.toks[1:]
	return tok, nil
}

// cleanToken drops namespace declarations from a start element: the
// decoder already put namespaces in the names, and encoding/xml would
// declare them a second time.
func cleanToken(tok xml.Token) xml.Token {
	start, ok := tok.(xml.StartElement)
	if !ok {
		return tok
	}
	attrs := start.Attr[:0:0]
	for _, a := range start.Attr {
		if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
			continue
		}
		attrs = append(attrs, a)
	}
	start.Attr = attrs
	return start
}

func encodeTokens(toks []xml.Token) string {
	var b strings.Builder
	e := xml.NewEncoder(&b)
	for _, tok := range toks {
		if err := e.EncodeToken(cleanToken(tok)); err != nil {
			return fmt.Sprintf("(cannot encode: %v)", err)
		}
	}
	if err := e.Flush(); err != nil {
		return fmt.Sprintf("(cannot encode: %v)", err)
	}
	return b.String()
}

type idAttr struct {
	ID string `xml:"id,attr"`
}

type delayElem struct {
	Stamp string `xml:"stamp,attr"`
}

type wireMessage struct {
	stanza.Message
	Bodies     []string   `xml:"body"`
	OriginID   *idAttr    `xml:"urn:xmpp:sid:0 origin-id"`
	OccupantID *idAttr    `xml:"urn:xmpp:occupant-id:0 occupant-id"`
	Delay      *delayElem `xml:"urn:xmpp:delay delay"`
	StanzaIDs  []struct {
		ID string `xml:"id,attr"`
		By string `xml:"by,attr"`
	} `xml:"urn:xmpp:sid:0 stanza-id"`
	Error *struct {
		Inner []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
	Result *struct {
		QueryID   string `xml:"queryid,attr"`
		ID        string `xml:"id,attr"`
		Forwarded struct {
			Delay *delayElem `xml:"urn:xmpp:delay delay"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	} `xml:"urn:xmpp:mam:2 result"`
}

func parseMessage(toks []xml.Token) *Message {
	m := &Message{Raw: encodeTokens(toks)}
	var w wireMessage
	if err := xml.NewTokenDecoder(&sliceReader{toks: toks}).Decode(&w); err != nil {
		return m
	}
	m.Type, m.From, m.To, m.ID = w.Type, w.From, w.To, w.ID
	if len(w.Bodies) > 0 {
		m.Body = w.Bodies[0]
	}
	if w.OriginID != nil {
		m.OriginID = w.OriginID.ID
	}
	if w.OccupantID != nil {
		m.OccupantID = w.OccupantID.ID
	}
	for _, sid := range w.StanzaIDs {
		if sid.By == w.From.Bare().String() {
			m.StanzaID = sid.ID
		}
	}
	if w.Delay != nil {
		m.Delayed = true
		m.Stamp, _ = time.Parse(time.RFC3339, w.Delay.Stamp)
	}
	if w.Error != nil {
		for _, el := range w.Error.Inner {
			if el.XMLName.Space == stanza.NSError {
				m.ErrorCondition = el.XMLName.Local
			}
		}
	}
	if w.Result != nil {
		m.MAMQueryID, m.ArchiveID = w.Result.QueryID, w.Result.ID
		if inner := innerMessage(toks); inner != nil {
			m.Forwarded = parseMessage(inner)
			if d := w.Result.Forwarded.Delay; d != nil {
				m.Forwarded.Stamp, _ = time.Parse(time.RFC3339, d.Stamp)
			}
		}
	}
	return m
}

// innerMessage returns the tokens of the first <message/> nested in the
// stanza (the archived message of a MAM result).
func innerMessage(toks []xml.Token) []xml.Token {
	depth, begin := 0, -1
	for i, tok := range toks {
		switch tt := tok.(type) {
		case xml.StartElement:
			if begin < 0 && i > 0 && tt.Name.Local == "message" {
				begin, depth = i, 0
			}
			depth++
		case xml.EndElement:
			depth--
			if begin >= 0 && depth == 0 {
				return toks[begin : i+1]
			}
		}
	}
	return nil
}

func parsePresence(toks []xml.Token) *Presence {
	p := &Presence{Raw: encodeTokens(toks)}
	var w struct {
		stanza.Presence
		OccupantID *idAttr `xml:"urn:xmpp:occupant-id:0 occupant-id"`
		X          *struct {
			Item struct {
				JID string `xml:"jid,attr"`
			} `xml:"item"`
			Status []struct {
				Code int `xml:"code,attr"`
			} `xml:"status"`
		} `xml:"http://jabber.org/protocol/muc#user x"`
		Error *struct {
			Inner []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if err := xml.NewTokenDecoder(&sliceReader{toks: toks}).Decode(&w); err != nil {
		return p
	}
	p.Type, p.From, p.To, p.ID = w.Type, w.From, w.To, w.ID
	if w.OccupantID != nil {
		p.OccupantID = w.OccupantID.ID
	}
	if w.X != nil {
		p.RealJID = w.X.Item.JID
		for _, s := range w.X.Status {
			p.MUCStatus = append(p.MUCStatus, s.Code)
		}
	}
	if w.Error != nil {
		for _, el := range w.Error.Inner {
			if el.XMLName.Space == stanza.NSError {
				p.ErrorCondition = el.XMLName.Local
			}
		}
	}
	return p
}
