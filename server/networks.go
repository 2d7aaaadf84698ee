package main

import (
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
)

// network is everything the plugin knows about one remote network: its
// slash command, the shared-channels remote it shows up as, and how to build
// its bridge from the settings. Adding a network means adding one of these.
type network struct {
	Command command.Spec
	// SettingsPrefix is the prefix of the network's setting names; the bridge
	// is rebuilt when one of those changes.
	SettingsPrefix string
	// BuiltFrom returns what the network's bridge is built from; the bridge is
	// also rebuilt when that changes, so a shared setting it reads (such as
	// MaxFileSizeMB) reaches it too. Nil when only SettingsPrefix counts.
	BuiltFrom func(*configuration) any
	// Enabled reports whether the settings turn the network on.
	Enabled func(*configuration) bool
	// New builds the bridge from valid settings.
	New func(rt *runtime, cfg *configuration) (bridge.Bridge, error)
	// Extra returns the network's own slash subcommands, if any.
	Extra func(p *Plugin) []command.Subcommand
}

// siteURL is the stable identity of the network's shared-channels remote.
func (n network) siteURL(pluginID string) string {
	return string(n.Command.Network) + "://" + pluginID
}

func defaultNetworks() []network {
	return []network{
		{
			Command: command.Spec{
				Trigger: "xmppbridge", Network: bridge.NetworkXMPP, Title: "XMPP",
				RoomArg: "room-jid", RoomExample: "room@conference.example.com", ParseRoom: parseRoomJID,
			},
			SettingsPrefix: "XMPP",
			Enabled:        func(c *configuration) bool { return c.XMPPEnabled },
			BuiltFrom: func(c *configuration) any {
				cfg, _ := xmppConfig(c) // settings are validated; the prefix covers the rest
				return cfg
			},
			New: newXMPPBridge,
		},
		{
			Command: command.Spec{
				Trigger: "matrixbridge", Network: bridge.NetworkMatrix, Title: "Matrix",
				RoomArg: "room-id-or-alias", RoomExample: "#room:example.com", ParseRoom: parseMatrixRoom,
			},
			SettingsPrefix: "Matrix",
			Enabled:        func(c *configuration) bool { return c.MatrixEnabled },
			BuiltFrom:      func(c *configuration) any { return matrixConfig(c) },
			New:            newMatrixBridge,
			Extra:          (*Plugin).matrixSubcommands,
		},
		{
			Command: command.Spec{
				Trigger: "slackbridge", Network: bridge.NetworkSlack, Title: "Slack",
				RoomArg: "channel-id", RoomExample: "C0123456789", ParseRoom: parseSlackChannel,
			},
			SettingsPrefix: "Slack",
			Enabled:        func(c *configuration) bool { return c.SlackEnabled },
			New:            notYet("Slack"),
		},
	}
}

// notYet stands in for a network whose bridge this version does not have:
// enabling it reports so instead of pretending to work.
func notYet(title string) func(*runtime, *configuration) (bridge.Bridge, error) {
	return func(*runtime, *configuration) (bridge.Bridge, error) {
		return nil, fmt.Errorf("the %s bridge is not implemented in this version of the plugin: %w", title, bridge.ErrNotImplemented)
	}
}

// xmppConfig is the XMPP bridge's view of the settings, without the ghost
// store and keyring the runtime adds.
func xmppConfig(c *configuration) (xmpp.Config, error) {
	cfg := xmpp.Config{
		Mode:               c.XMPPMode,
		Address:            c.XMPPServerAddress,
		Password:           c.XMPPPassword,
		ComponentSecret:    c.XMPPComponentSecret,
		TLSMode:            c.XMPPTLSMode,
		CAPEM:              c.XMPPCACertificate,
		InsecureSkipVerify: c.XMPPInsecureSkipVerify,
		PostSubjects:       c.XMPPPostSubjects,
		MaxFileSize:        int64(c.MaxFileSizeMB) << 20,
	}
	var err error
	if c.XMPPJID != "" {
		if cfg.JID, err = jid.Parse(c.XMPPJID); err != nil {
			return cfg, fmt.Errorf("XMPPJID: %w", err)
		}
	}
	if c.XMPPComponentDomain != "" {
		if cfg.ComponentDomain, err = jid.Parse(c.XMPPComponentDomain); err != nil {
			return cfg, fmt.Errorf("XMPPComponentDomain: %w", err)
		}
	}
	return cfg, nil
}

func newXMPPBridge(rt *runtime, c *configuration) (bridge.Bridge, error) {
	cfg, err := xmppConfig(c)
	if err != nil {
		return nil, err
	}
	if cfg.Mode == xmpp.ModeClient {
		// The runtime's keyring, not a copy: a regenerated EncryptionKey
		// reaches the running bridge (see keyRotator).
		cfg.Ghosts, cfg.Secrets = rt.store, rt.keys.keys
		// Ghost account names are keyed by the installation's own secret,
		// which never changes (EncryptionKey may be regenerated).
		nameKey, kerr := rt.store.InstanceSecret()
		if kerr != nil {
			return nil, fmt.Errorf("read the instance secret: %w", kerr)
		}
		cfg.GhostNameKey = []byte(nameKey)
	}
	return xmpp.New(cfg, rt.store, rt.logger)
}

func newMatrixBridge(rt *runtime, c *configuration) (bridge.Bridge, error) {
	return matrix.New(matrixConfig(c), rt.store, rt.logger)
}

// parseRoomJID accepts a bare room JID such as room@conference.example.com.
func parseRoomJID(s string) (string, error) {
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

// parseMatrixRoom accepts a room ID (!opaque:server) or alias (#name:server).
func parseMatrixRoom(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 255 {
		return "", errors.New("longer than the 255 bytes Matrix allows")
	}
	if len(s) < 4 || (s[0] != '!' && s[0] != '#') {
		return "", errors.New("a Matrix room is a room ID like !abc:example.com or an alias like #room:example.com")
	}
	local, server, ok := strings.Cut(s[1:], ":")
	if !ok || local == "" || !validServerName(server) {
		return "", errors.New("a Matrix room ID or alias needs a :server part, as in #room:example.com")
	}
	return s, nil
}

// parseSlackChannel accepts a Slack channel ID such as C0123456789.
func parseSlackChannel(s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) < 9 || len(s) > 21 || (s[0] != 'C' && s[0] != 'G') {
		return "", errors.New("a Slack channel ID looks like C0123456789 (copy it from the channel's details)")
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return "", errors.New("a Slack channel ID has only letters and digits")
		}
	}
	return s, nil
}
