package xmpptest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// registerFeature stands for the in-band registration stream feature:
// negotiating it lets the stream become ready unauthenticated, so the
// registration IQ can be sent.
var registerFeature = xmpp.StreamFeature{
	Name:       xml.Name{Space: "http://jabber.org/features/iq-register", Local: "register"},
	Necessary:  xmpp.Secure,
	Prohibited: xmpp.Authn,
	Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
		return false, nil, d.Skip()
	},
	Negotiate: func(context.Context, *xmpp.Session, any) (xmpp.SessionState, io.ReadWriter, error) {
		return xmpp.Ready, nil, nil
	},
}

// Register creates localpart@Domain with XEP-0077 in-band registration,
// as a client does, over STARTTLS: the server's registration limits apply.
// A refusal is the server's stanza.Error.
func (e *Endpoints) Register(ctx context.Context, localpart, password string) error {
	account, err := jid.New(localpart, e.Domain, "")
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.C2SAddr())
	if err != nil {
		return err
	}
	defer conn.Close()
	features := []xmpp.StreamFeature{xmpp.StartTLS(e.TLSConfig()), registerFeature}
	s, err := xmpp.NewSession(ctx, account.Domain(), account, conn, 0, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	}))
	if err != nil {
		return fmt.Errorf("register: stream: %w", err)
	}
	defer s.Close()
	go func() { _ = s.Serve(nil) }()
	field := func(name, value string) xml.TokenReader {
		return xmlstream.Wrap(xmlstream.Token(xml.CharData(value)), xml.StartElement{Name: xml.Name{Local: name}})
	}
	query := xmlstream.Wrap(xmlstream.MultiReader(field("username", localpart), field("password", password)),
		xml.StartElement{Name: xml.Name{Space: "jabber:iq:register", Local: "query"}})
	return s.UnmarshalIQElement(ctx, query, stanza.IQ{Type: stanza.SetIQ, To: account.Domain()}, nil)
}
