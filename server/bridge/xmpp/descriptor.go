package xmpp

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
)

// Descriptor plugs the XMPP bridge into the plugin: /xmppbridge, the XMPP
// settings, and how the bridge is built from them.
func Descriptor() connector.Descriptor {
	return connector.Descriptor{
		Command: command.Spec{
			Trigger: "xmppbridge", Network: bridge.NetworkXMPP, Title: "XMPP",
			RoomArg: "room-jid", RoomExample: "room@conference.example.com", ParseRoom: ParseRoomJID,
		},
		Configure: configure,
		Build:     build,
		Doctor:    Doctor,
	}
}

// settings are the XMPP settings as plugin.json names them.
type settings struct {
	XMPPEnabled            bool
	XMPPMode               string
	XMPPServerAddress      string
	XMPPJID                string
	XMPPPassword           string
	XMPPComponentDomain    string
	XMPPComponentSecret    string
	XMPPTLSMode            string
	XMPPCACertificate      string
	XMPPInsecureSkipVerify bool
	XMPPPostSubjects       bool
}

// configured is what the bridge is built from: the settings in the
// bridge's own terms, without the ghost store and keyring Build adds.
type configured struct {
	enabled bool
	cfg     Config
}

func (c configured) Enabled() bool { return c.enabled }

func (c configured) Secrets() []string {
	return connector.Secrets(c.cfg.Password, c.cfg.ComponentSecret)
}

func configure(raw map[string]any, shared connector.Shared) (connector.Config, error) {
	var s settings
	if err := connector.Decode(raw, &s); err != nil {
		return nil, err
	}
	if s.XMPPMode == "" {
		s.XMPPMode = ModeClient
	}
	if s.XMPPTLSMode == "" {
		s.XMPPTLSMode = "starttls"
	}
	c := configured{enabled: s.XMPPEnabled, cfg: Config{
		Mode:               s.XMPPMode,
		Address:            s.XMPPServerAddress,
		Password:           s.XMPPPassword,
		ComponentSecret:    s.XMPPComponentSecret,
		TLSMode:            s.XMPPTLSMode,
		CAPEM:              s.XMPPCACertificate,
		InsecureSkipVerify: s.XMPPInsecureSkipVerify,
		PostSubjects:       s.XMPPPostSubjects,
		MaxFileSize:        shared.MaxFileSize,
	}}
	// A JID that does not parse is refused below when XMPP is on; when it
	// is off, it stays unparsed until it is needed.
	c.cfg.JID, _ = jid.Parse(s.XMPPJID)
	c.cfg.ComponentDomain, _ = jid.Parse(s.XMPPComponentDomain)
	if !s.XMPPEnabled {
		return c, nil
	}
	return c, s.validate()
}

// validate reports every problem at once.
func (s settings) validate() error {
	var p connector.Problems
	switch s.XMPPMode {
	case ModeClient:
		if _, err := jid.Parse(s.XMPPJID); err != nil || s.XMPPJID == "" || !strings.Contains(s.XMPPJID, "@") {
			p.Add("XMPPJID", "must be an account JID such as bridge@example.com")
		}
		if s.XMPPPassword == "" {
			p.Add("XMPPPassword", "is required in client mode")
		}
	case ModeComponent:
		if _, err := jid.Parse(s.XMPPComponentDomain); err != nil || s.XMPPComponentDomain == "" || strings.ContainsAny(s.XMPPComponentDomain, "@/") {
			p.Add("XMPPComponentDomain", "must be a domain such as bridge.example.com")
		}
		if s.XMPPComponentSecret == "" {
			p.Add("XMPPComponentSecret", "is required in component mode")
		}
	default:
		p.Add("XMPPMode", `must be "client" or "component", got %q`, s.XMPPMode)
	}
	if s.XMPPServerAddress != "" {
		if host, port, err := net.SplitHostPort(s.XMPPServerAddress); err != nil || host == "" || !validPort(port) {
			p.Add("XMPPServerAddress", "must be host:port, got %q", s.XMPPServerAddress)
		}
	} else if s.XMPPMode == ModeComponent {
		p.Add("XMPPServerAddress", "is required in component mode")
	}
	switch s.XMPPTLSMode {
	case "starttls", "tls", "plain-loopback-only":
	default:
		p.Add("XMPPTLSMode", `must be "starttls", "tls" or "plain-loopback-only", got %q`, s.XMPPTLSMode)
	}
	if s.XMPPCACertificate != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(s.XMPPCACertificate)) {
		p.Add("XMPPCACertificate", "contains no PEM certificate")
	}
	return p.Err()
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

func build(env connector.Env, c connector.Config) (bridge.Bridge, error) {
	cfg := c.(configured).cfg
	if cfg.Mode == ModeClient {
		// The plugin's keyring, not a copy: a regenerated EncryptionKey
		// reaches the running bridge.
		cfg.Ghosts, cfg.Secrets = env.Store, env.Keys
		// Ghost account names are keyed by the installation's own secret,
		// which never changes (EncryptionKey may be regenerated).
		nameKey, err := env.InstanceSecret()
		if err != nil {
			return nil, fmt.Errorf("read the instance secret: %w", err)
		}
		cfg.GhostNameKey = []byte(nameKey)
	}
	return New(cfg, env.Store, env.Logger)
}

// ParseRoomJID accepts a bare room JID such as room@conference.example.com.
func ParseRoomJID(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "xmpp:")
	s = strings.TrimSuffix(s, "?join")
	j, err := jid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a JID (%v)", err)
	}
	if j.Localpart() == "" {
		return "", errors.New("a room JID needs a room name before the @, as in room@conference.example.com")
	}
	if j.Resourcepart() != "" {
		return "", errors.New("a room JID has no /resource part")
	}
	if !strings.Contains(j.Domainpart(), ".") && j.Domainpart() != "localhost" {
		return "", fmt.Errorf("%q is not a fully qualified domain", j.Domainpart())
	}
	return j.Bare().String(), nil
}
