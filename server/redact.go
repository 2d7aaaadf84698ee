package main

import (
	"strings"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// redactingLogger removes the configured secrets from every message and
// string value before it is logged. Code should never log a secret in the
// first place; this catches the cases where a library quotes one back, such
// as an error echoing a server's reply.
type redactingLogger struct {
	base    bridge.Logger
	secrets func() []string
}

func (l redactingLogger) clean(msg string, kv []any) (string, []any) {
	secrets := l.secrets()
	if len(secrets) == 0 {
		return msg, kv
	}
	scrub := func(s string) string { return redact(s, secrets) }
	out := make([]any, len(kv))
	for i, v := range kv {
		switch x := v.(type) {
		case string:
			out[i] = scrub(x)
		case error:
			out[i] = scrub(x.Error())
		default:
			out[i] = v
		}
	}
	return scrub(msg), out
}

// redact replaces every secret in s with "[redacted]", for what leaves the
// plugin: log lines and API answers.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

func (l redactingLogger) Debug(msg string, kv ...any) {
	msg, kv = l.clean(msg, kv)
	l.base.Debug(msg, kv...)
}
func (l redactingLogger) Info(msg string, kv ...any) {
	msg, kv = l.clean(msg, kv)
	l.base.Info(msg, kv...)
}
func (l redactingLogger) Warn(msg string, kv ...any) {
	msg, kv = l.clean(msg, kv)
	l.base.Warn(msg, kv...)
}
func (l redactingLogger) Error(msg string, kv ...any) {
	msg, kv = l.clean(msg, kv)
	l.base.Error(msg, kv...)
}
