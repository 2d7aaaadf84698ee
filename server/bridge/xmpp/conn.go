package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/dial"
	"mellium.im/xmpp/jid"
)

// dialSession connects and negotiates a stream as the bridge: a client
// session for the account in client mode, a component session otherwise.
func (c Config) dialSession(ctx context.Context) (*xmpp.Session, error) {
	if c.Mode == ModeComponent {
		return c.dialComponent(ctx)
	}
	return c.dialClient(ctx, c.JID, c.Password)
}

func (c Config) dialTCP(ctx context.Context, addr jid.JID) (net.Conn, error) {
	if c.Address == "" {
		// No address: find the server through the domain's SRV records.
		d := dial.Dialer{NoTLS: c.TLSMode != TLSDirect}
		if c.TLSMode == TLSDirect {
			tc, err := c.tlsConfig(addr.Domainpart())
			if err != nil {
				return nil, err
			}
			d.TLSConfig = tc
		}
		return d.Dial(ctx, "tcp", addr)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.Address, err)
	}
	if c.TLSMode != TLSDirect {
		return conn, nil
	}
	tc, err := c.tlsConfig(addr.Domainpart())
	if err != nil {
		conn.Close()
		return nil, err
	}
	tconn := tls.Client(conn, tc)
	if err = tconn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, explainTLS(addr.Domainpart(), err)
	}
	return tconn, nil
}

// mechanisms lists SASL mechanisms strongest first. PLAIN is offered only on
// an encrypted stream: the SASL feature is negotiated after TLS, and a plain
// loopback stream never offers it.
func (c Config) mechanisms() []sasl.Mechanism {
	m := []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha256, sasl.ScramSha1Plus, sasl.ScramSha1}
	if c.TLSMode != TLSPlainLoopback {
		m = append(m, sasl.Plain)
	}
	return m
}

// dialClient logs in as account; ghosts in client mode use it too.
//
// The -PLUS mechanisms (SCRAM with channel binding) come first when the
// server allows them: when it names its channel-binding types (XEP-0440),
// only if the type this TLS connection binds with is among them. A server
// that names none may still be unable to bind (ejabberd 23.01 offers
// SCRAM-SHA-1-PLUS on TLS 1.3 without tls-exporter), and a TLS-terminating
// proxy in front of any server makes binding fail: after a refused -PLUS
// login the bridge logs in once more without binding, and, if that works,
// keeps to it for this server and says so in status. If it fails too, its
// error is the one reported: a wrong password is named as such, a binding
// failure never is.
func (c Config) dialClient(ctx context.Context, account jid.JID, password string) (*xmpp.Session, error) {
	noPlus := c.logins.plusRefused()
	s, l, err := c.dialClientOnce(ctx, account, password, noPlus)
	if err == nil {
		c.logins.record(l, "")
		return s, nil
	}
	if noPlus || !l.plus() || ctx.Err() != nil || lostConnection(err) {
		return nil, err
	}
	s, l2, err2 := c.dialClientOnce(ctx, account, password, true)
	if err2 != nil {
		return nil, err2
	}
	c.logins.record(l2, fmt.Sprintf("the server refused %s (%v)", l.describe(), err))
	return s, nil
}

// dialClientOnce connects and logs in, without -PLUS mechanisms if noPlus.
// The login it returns says what SASL chose, also when the login failed.
func (c Config) dialClientOnce(ctx context.Context, account jid.JID, password string, noPlus bool) (*xmpp.Session, *saslLogin, error) {
	l := &saslLogin{}
	conn, err := c.dialTCP(ctx, account)
	if err != nil {
		return nil, l, err
	}
	features := []xmpp.StreamFeature{channelBindingTypes(l), c.saslFeature(password, l, noPlus), xmpp.BindResource()}
	var state xmpp.SessionState
	switch c.TLSMode {
	case TLSStartTLS:
		tc, terr := c.tlsConfig(account.Domainpart())
		if terr != nil {
			conn.Close()
			return nil, l, terr
		}
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(tc)}, features...)
	default:
		// Direct TLS is already secure; a plain loopback stream is treated as
		// such so SCRAM can run, with PLAIN left out above.
		state = xmpp.Secure
	}
	s, err := xmpp.NewSession(ctx, account.Domain(), account, conn, state, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	}))
	if err != nil {
		conn.Close()
		return nil, l, explainNegotiation(account.Domainpart(), err)
	}
	return s, l, nil
}

// lostConnection reports whether err is the connection failing rather
// than the server answering: no reason to think binding was refused.
func lostConnection(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// nsSASLCB is XEP-0440's namespace: the channel-binding types a server
// supports, listed beside its SASL mechanisms.
const nsSASLCB = "urn:xmpp:sasl-cb:0"

// saslLogin is what one login learned: the channel-binding types the server
// named, the mechanism chosen and the binding type it used.
type saslLogin struct {
	cbNamed   bool
	cbTypes   []string
	mechanism string
	binding   string
}

func (l *saslLogin) plus() bool { return strings.HasSuffix(l.mechanism, "-PLUS") }

// describe is the mechanism and its binding, for status.
func (l *saslLogin) describe() string {
	if !l.plus() {
		return l.mechanism
	}
	how := "not named by the server"
	if l.cbNamed {
		how = "named by the server"
	}
	return fmt.Sprintf("%s with %s channel binding (%s)", l.mechanism, l.binding, how)
}

// channelBindingTypes reads the server's XEP-0440 list into l. It is only
// informational: nothing to negotiate.
func channelBindingTypes(l *saslLogin) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsSASLCB, Local: "sasl-channel-binding"},
		Necessary:  xmpp.Secure,
		Prohibited: xmpp.Authn,
		Parse: func(_ context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			var list struct {
				Types []struct {
					Type string `xml:"type,attr"`
				} `xml:"channel-binding"`
			}
			err := d.DecodeElement(&list, start)
			l.cbNamed = true
			for _, t := range list.Types {
				l.cbTypes = append(l.cbTypes, t.Type)
			}
			return false, nil, err
		},
	}
}

// bindingType is the channel binding mellium's SCRAM-*-PLUS uses on a TLS
// connection: tls-exporter (RFC 9266) on TLS 1.3, tls-unique before.
func bindingType(cs tls.ConnectionState) string {
	if cs.Version >= tls.VersionTLS13 {
		return "tls-exporter"
	}
	return "tls-unique"
}

// chooseMechanisms is what to offer on a connection: all of them, without
// the -PLUS ones when noPlus, when there is no TLS to bind to, or when the
// server named its channel-binding types and ours is not among them.
func chooseMechanisms(all []sasl.Mechanism, l *saslLogin, cs tls.ConnectionState, noPlus bool) []sasl.Mechanism {
	plusOK := !noPlus && cs.Version != 0 && (!l.cbNamed || slices.Contains(l.cbTypes, bindingType(cs)))
	if plusOK {
		return all
	}
	out := make([]sasl.Mechanism, 0, len(all))
	for _, m := range all {
		if !strings.HasSuffix(m.Name, "-PLUS") {
			out = append(out, m)
		}
	}
	return out
}

// saslFeature is mellium's SASL feature, with the mechanisms chosen when the
// server's features are known (chooseMechanisms), and the choice kept in l.
func (c Config) saslFeature(password string, l *saslLogin, noPlus bool) xmpp.StreamFeature {
	f := xmpp.SASL("", password, c.mechanisms()...)
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		cs := s.ConnectionState()
		mechs := chooseMechanisms(c.mechanisms(), l, cs, noPlus)
		// mellium takes the first of ours the server offers; so do we.
		offered, _ := data.([]string)
	pick:
		for _, m := range mechs {
			for _, name := range offered {
				if name == m.Name {
					l.mechanism = m.Name
					break pick
				}
			}
		}
		if l.plus() {
			l.binding = bindingType(cs)
		}
		return xmpp.SASL("", password, mechs...).Negotiate(ctx, s, data)
	}
	return f
}

// logins remembers, across the connections of one bridge, how logging in
// went: whether the server refused channel binding (then no -PLUS is tried
// again) and what the last login used, for status. A nil *logins
// remembers nothing.
type logins struct {
	mu      sync.Mutex
	refused string // why -PLUS is not used, once it failed
	last    string // the last successful login's mechanism
}

func (m *logins) plusRefused() bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused != ""
}

func (m *logins) record(l *saslLogin, refused string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if refused != "" {
		m.refused = refused
	}
	m.last = l.describe()
}

// note is the status line about SASL, "" before the first login.
func (m *logins) note() string {
	if m == nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.last == "":
		return ""
	case m.refused != "":
		return "login: " + m.last + "; channel binding is not used because " + m.refused
	}
	return "login: " + m.last
}

func (c Config) dialComponent(ctx context.Context) (*xmpp.Session, error) {
	conn, err := c.dialTCP(ctx, c.ComponentDomain)
	if err != nil {
		return nil, err
	}
	s, err := component.NewSession(ctx, c.ComponentDomain, []byte(c.ComponentSecret), conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("component handshake for %s failed (check the component secret and domain): %w", c.ComponentDomain, err)
	}
	return s, nil
}

// ErrAuth means the server refused the credentials.
var ErrAuth = errors.New("the XMPP server refused the credentials")

// ErrChannelBinding means the server refused SCRAM's TLS channel binding
// (a -PLUS mechanism), not the credentials.
var ErrChannelBinding = errors.New("channel binding failed")

// ErrUntrustedCert means the server's certificate did not verify.
var ErrUntrustedCert = errors.New("the XMPP server's TLS certificate is not trusted")

func explainTLS(server string, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("%w: the certificate of %s has expired or is not valid yet (%v)", ErrUntrustedCert, server, err)
	case errors.As(err, &unknown), errors.As(err, &certErr) && errors.As(certErr.Err, &unknown):
		return fmt.Errorf("%w: %s presents a certificate from an unknown authority; add its CA in XMPPCACertificate (%v)", ErrUntrustedCert, server, err)
	case errors.As(err, &hostErr):
		return fmt.Errorf("%w: the certificate is not valid for %s (%v)", ErrUntrustedCert, server, err)
	case errors.As(err, &certErr):
		return fmt.Errorf("%w: %v", ErrUntrustedCert, err)
	}
	return fmt.Errorf("TLS with %s failed: %w", server, err)
}

func explainNegotiation(server string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:") {
		return explainTLS(server, err)
	}
	if cond, ok := saslFailure(err); ok {
		if text := strings.ToLower(msg); strings.Contains(text, "channel binding") || strings.Contains(text, "channel-binding") {
			// Not the password: ejabberd says not-authorized for this too.
			return fmt.Errorf("%w: %s refused the TLS channel binding (%s: %v)", ErrChannelBinding, server, cond, err)
		}
		switch cond {
		case "not-authorized", "account-disabled", "credentials-expired", "invalid-authzid":
			return fmt.Errorf("%w (%s: %v)", ErrAuth, cond, err)
		}
		return fmt.Errorf("XMPP login to %s failed (%s): %w", server, cond, err)
	}
	if errors.Is(err, sasl.ErrAuthn) {
		return fmt.Errorf("%w (%v)", ErrAuth, err)
	}
	return fmt.Errorf("XMPP stream negotiation with %s failed: %w", server, err)
}

// saslFailure returns the condition of a SASL <failure/> from the server.
// mellium keeps its SASL error type internal, but the error still renders
// as the failure element, which is read here.
func saslFailure(err error) (string, bool) {
	var x interface {
		error
		TokenReader() xml.TokenReader
	}
	if !errors.As(err, &x) {
		return "", false
	}
	r := x.TokenReader()
	tok, terr := r.Token()
	start, ok := tok.(xml.StartElement)
	if terr != nil || !ok || start.Name.Space != nsSASL || start.Name.Local != "failure" {
		return "", false
	}
	for {
		tok, terr = r.Token()
		if terr != nil {
			return "", true
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local != "text" {
			return se.Name.Local, true
		}
	}
}

const nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
