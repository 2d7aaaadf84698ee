// Package slack is the Slack side of the bridge: a Slack app that gets
// its channels' events over Socket Mode (app-level token) and acts through
// the Web API (bot token), posting Mattermost people's messages under
// their names.
package slack

import (
	"errors"
	"net/url"
	"strings"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
)

// Descriptor plugs Slack into the plugin: /slackbridge and the Slack
// settings.
func Descriptor() connector.Descriptor { return descriptor(false) }

// UnpacedDescriptor is Descriptor for a Slack-compatible server without
// Slack's rate limits (Config.Unpaced): benchmarks use it to measure the
// bridge rather than Slack's one message a second per channel.
func UnpacedDescriptor() connector.Descriptor { return descriptor(true) }

func descriptor(unpaced bool) connector.Descriptor {
	return connector.Descriptor{
		Command: command.Spec{
			Trigger: "slackbridge", Network: bridge.NetworkSlack, Title: "Slack",
			RoomArg: "channel-id", RoomExample: "C0123456789", ParseRoom: ParseChannel,
		},
		Configure: configure,
		Doctor:    Doctor,
		Build: func(env connector.Env, c connector.Config) (bridge.Bridge, error) {
			cc := c.(configured)
			return New(Config{
				BotToken: cc.SlackBotToken, AppToken: cc.SlackAppToken, APIURL: cc.SlackAPIURL,
				MaxFileSize: cc.maxFileSize, AvatarURL: env.AvatarURL,
				PortalTeam: cc.SlackPortalTeam, Portals: env.Portals, Unpaced: unpaced,
			}, env.Store, env.Logger)
		},
	}
}

// settings are the Slack settings as plugin.json names them.
type settings struct {
	SlackEnabled  bool
	SlackBotToken string
	SlackAppToken string
	SlackAPIURL   string
	// SlackPortalTeam names the Mattermost team automatic portals are
	// made in; empty turns them off.
	SlackPortalTeam string
}

type configured struct {
	settings
	maxFileSize int64
}

func (c configured) Enabled() bool { return c.SlackEnabled }

func (c configured) Secrets() []string { return connector.Secrets(c.SlackBotToken, c.SlackAppToken) }

func configure(raw map[string]any, shared connector.Shared) (connector.Config, error) {
	c := configured{maxFileSize: shared.MaxFileSize}
	if err := connector.Decode(raw, &c.settings); err != nil {
		return nil, err
	}
	c.SlackPortalTeam = strings.TrimSpace(c.SlackPortalTeam)
	if !c.SlackEnabled {
		return c, nil
	}
	var p connector.Problems
	if !strings.HasPrefix(c.SlackBotToken, "xoxb-") {
		p.Add("SlackBotToken", `must be a bot token starting with "xoxb-"`)
	}
	if !strings.HasPrefix(c.SlackAppToken, "xapp-") {
		p.Add("SlackAppToken", `must be an app-level token starting with "xapp-"`)
	}
	if c.SlackAPIURL != "" {
		if u, err := url.Parse(c.SlackAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.Add("SlackAPIURL", "must be an http(s) URL or empty")
		}
	}
	return c, p.Err()
}

// ParseChannel accepts a Slack channel ID such as C0123456789.
func ParseChannel(s string) (string, error) {
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
