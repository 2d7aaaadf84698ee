//go:build !slackunpaced

package main

import (
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
)

// slackDescriptor is the Slack bridge as every bundle has it: keeping to
// Slack's documented rates (see slackpace_unpaced.go for the exception).
func slackDescriptor() connector.Descriptor { return slack.Descriptor() }
