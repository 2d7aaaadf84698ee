//go:build slackunpaced

package main

import (
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
)

// slackDescriptor, in a plugin built with the slackunpaced tag (only the
// soak builds one, against the Slack test server without Slack's limits):
// the bridge does not pace itself, so ten thousand messages take minutes,
// not Slack's one a second per channel. Never in a release bundle.
func slackDescriptor() connector.Descriptor { return slack.UnpacedDescriptor() }
