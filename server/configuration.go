// Package main is the plugin's server side: the hooks Mattermost calls,
// wired to the bridge core.
package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
)

// configuration holds the plugin's settings as the System Console saves them
// (see plugin.json). Field names are the setting keys.
//
// A configuration is never mutated after it is published with
// setConfiguration: readers take a pointer and may keep it.
type configuration struct {
	EnableBridge            bool
	ShareLinkedChannels     bool
	MessageMapRetentionDays flexInt
	MaxFileSizeMB           flexInt
	QueueSize               flexInt
	EncryptionKey           string

	// networks are each network's settings, as its descriptor's Configure
	// read them; problems are what Configure found wrong with them.
	networks map[bridge.Network]connector.Config
	problems []error
}

// flexInt accepts both JSON numbers and numeric strings: the System Console
// has saved number settings both ways across server versions.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n != float64(int64(n)) {
		return fmt.Errorf("%s is not a whole number", string(b))
	}
	*f = flexInt(n)
	return nil
}

const (
	defaultRetentionDays = 90
	defaultMaxFileSizeMB = 50
	defaultQueueSize     = 1000
)

// withDefaults fills settings an older configuration never saved. The
// server stores setting keys in lower case, so keys are compared that way.
func (c *configuration) withDefaults(raw map[string]any) *configuration {
	out := *c
	has := func(key string) bool {
		for k := range raw {
			if strings.EqualFold(k, key) {
				return true
			}
		}
		return false
	}
	if !has("MessageMapRetentionDays") {
		out.MessageMapRetentionDays = defaultRetentionDays
	}
	if !has("MaxFileSizeMB") {
		out.MaxFileSizeMB = defaultMaxFileSizeMB
	}
	if !has("QueueSize") {
		out.QueueSize = defaultQueueSize
	}
	if !has("EnableBridge") {
		out.EnableBridge = true
	}
	if !has("ShareLinkedChannels") {
		out.ShareLinkedChannels = true
	}
	return &out
}

// validate reports every problem at once. Messages name the setting, never
// a secret's value.
func (c *configuration) validate() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	if c.MessageMapRetentionDays < 0 || c.MessageMapRetentionDays > 3650 {
		bad("MessageMapRetentionDays", "must be between 0 (keep forever) and 3650, got %d", c.MessageMapRetentionDays)
	}
	if c.MaxFileSizeMB < 1 || c.MaxFileSizeMB > 1024 {
		bad("MaxFileSizeMB", "must be between 1 and 1024, got %d", c.MaxFileSizeMB)
	}
	if c.QueueSize < 10 || c.QueueSize > 100000 {
		bad("QueueSize", "must be between 10 and 100000, got %d", c.QueueSize)
	}

	errs = append(errs, c.problems...)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid plugin configuration: %w", errors.Join(errs...))
}

// secrets lists the values that must never reach a log line or an error.
func (c *configuration) secrets() []string {
	out := connector.Secrets(c.EncryptionKey)
	for _, nc := range c.networks {
		if nc != nil {
			out = append(out, nc.Secrets()...)
		}
	}
	return out
}

// parseConfiguration decodes the raw settings map the server hands out:
// the plugin-wide settings here, each network's by its descriptor.
func parseConfiguration(raw map[string]any, networks []connector.Descriptor) (*configuration, error) {
	var c configuration
	if err := connector.Decode(raw, &c); err != nil {
		return nil, err
	}
	out := c.withDefaults(raw)
	out.networks = make(map[bridge.Network]connector.Config, len(networks))
	shared := connector.Shared{MaxFileSize: int64(out.MaxFileSizeMB) << 20}
	for _, n := range networks {
		nc, err := n.Configure(raw, shared)
		if nc == nil {
			return nil, err
		}
		out.networks[n.Network()] = nc
		if err != nil {
			out.problems = append(out.problems, err)
		}
	}
	return out, nil
}
