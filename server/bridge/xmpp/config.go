// Package xmpp is the XMPP side of the bridge: it keeps a connection to an
// XMPP server (as a client account or as an XEP-0114 component), sits in
// every linked multi-user chat room and turns groupchat messages into
// events and events into messages.
package xmpp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"mellium.im/xmpp/jid"
)

// Connection modes.
const (
	ModeClient    = "client"
	ModeComponent = "component"
)

// TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSDirect   = "tls"
	// TLSPlainLoopback allows an unencrypted stream, and only to a loopback
	// address: for a server on the same host.
	TLSPlainLoopback = "plain-loopback-only"
)

// Config is what the bridge needs to connect.
type Config struct {
	Mode string
	// Address is host:port. Empty in client mode means the JID's domain,
	// found through DNS SRV records as usual.
	Address string
	// JID and Password are the bridge account's, in client mode.
	JID      jid.JID
	Password string
	// ComponentDomain and ComponentSecret are the component's, in component
	// mode; ghosts get JIDs under the domain.
	ComponentDomain jid.JID
	ComponentSecret string
	TLSMode         string
	// CAPEM, when set, is trusted in addition to the system roots.
	CAPEM              string
	InsecureSkipVerify bool
	// PostSubjects relays room subject changes as messages.
	PostSubjects bool
	// Nick is the bridge's own nickname in rooms.
	Nick string
	// MaxFileSize bounds attachments fetched from XMPP, in bytes.
	MaxFileSize int64
	// Keepalive is the interval of pings to the server; 0 means a minute.
	Keepalive time.Duration
	// Ghosts and Secrets, in client mode, let the bridge register an XMPP
	// account per Mattermost user (XEP-0077) and keep its password sealed.
	// Without them messages go out from the bridge account.
	Ghosts  GhostStore
	Secrets Sealer
	// GhostNameKey keys the names of ghost accounts (see ghostLocalpart):
	// a per-installation secret, so nobody can register them first.
	GhostNameKey []byte

	// observeTLS, when set, is told each TLS connection's state once its
	// handshake verified (the doctor reports the certificate).
	observeTLS func(tls.ConnectionState)

	// logins is shared by the copies of a bridge's Config (New sets it):
	// how logging in to this server went (see dialClient).
	logins *logins
}

func (c Config) tlsConfig(serverName string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if c.CAPEM != "" && !pool.AppendCertsFromPEM([]byte(c.CAPEM)) {
		return nil, errors.New("the CA certificate setting holds no PEM certificate")
	}
	tc := &tls.Config{
		ServerName:         serverName,
		RootCAs:            pool,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // an explicit, documented admin choice, shown in status
	}
	if observe := c.observeTLS; observe != nil {
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			observe(cs)
			return nil
		}
	}
	return tc, nil
}

// Validate checks the settings this package depends on.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeClient:
		if c.JID.Localpart() == "" || c.Password == "" {
			return errors.New("client mode needs an account JID and password")
		}
		if c.Ghosts != nil && len(c.GhostNameKey) < 16 {
			return errors.New("ghost accounts need a key of at least 16 bytes for their names")
		}
	case ModeComponent:
		if c.ComponentDomain.String() == "" || c.ComponentSecret == "" || c.Address == "" {
			return errors.New("component mode needs a domain, a secret and the server's component address")
		}
	default:
		return fmt.Errorf("unknown mode %q", c.Mode)
	}
	switch c.TLSMode {
	case TLSDirect:
	case TLSStartTLS:
		if c.Mode == ModeComponent {
			// XEP-0114 streams have no STARTTLS: this would be plaintext.
			return errors.New(`XMPPTLSMode: "starttls" is not possible in component mode (XEP-0114 has no STARTTLS); ` +
				`use "tls" with the server's direct-TLS component port, or "plain-loopback-only" with a loopback XMPPServerAddress`)
		}
	case TLSPlainLoopback:
		if !isLoopback(c.Address) {
			return errors.New(`XMPPTLSMode: "plain-loopback-only" needs a loopback XMPPServerAddress such as 127.0.0.1:5222`)
		}
	default:
		return fmt.Errorf("XMPPTLSMode: unknown TLS mode %q", c.TLSMode)
	}
	return nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// transport says how the stream to the server is protected.
func (c Config) transport() string {
	switch c.TLSMode {
	case TLSPlainLoopback:
		return "plaintext (loopback)"
	case TLSStartTLS:
		return "TLS (STARTTLS)"
	}
	return "TLS (direct)"
}

// detail is the status note about security choices an admin should see.
func (c Config) detail() []string {
	notes := []string{"transport: " + c.transport()}
	if n := c.logins.note(); n != "" {
		notes = append(notes, n)
	}
	if c.InsecureSkipVerify && c.TLSMode != TLSPlainLoopback {
		notes = append(notes, "TLS certificate verification is DISABLED (XMPPInsecureSkipVerify)")
	}
	return notes
}
