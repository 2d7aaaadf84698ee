package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"

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
func (c Config) dialClient(ctx context.Context, account jid.JID, password string) (*xmpp.Session, error) {
	conn, err := c.dialTCP(ctx, account)
	if err != nil {
		return nil, err
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", password, c.mechanisms()...), xmpp.BindResource()}
	var state xmpp.SessionState
	switch c.TLSMode {
	case TLSStartTLS:
		tc, terr := c.tlsConfig(account.Domainpart())
		if terr != nil {
			conn.Close()
			return nil, terr
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
		return nil, explainNegotiation(account.Domainpart(), err)
	}
	return s, nil
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

// ErrUntrustedCert means the server's certificate did not verify.
var ErrUntrustedCert = errors.New("the XMPP server's TLS certificate is not trusted")

func explainTLS(server string, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	switch {
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
