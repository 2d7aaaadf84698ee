package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type lineLogger struct{ lines []string }

func (l *lineLogger) add(level, msg string, kv ...any) {
	l.lines = append(l.lines, fmt.Sprint(level, " ", msg, " ", kv))
}
func (l *lineLogger) Debug(msg string, kv ...any) { l.add("debug", msg, kv...) }
func (l *lineLogger) Info(msg string, kv ...any)  { l.add("info", msg, kv...) }
func (l *lineLogger) Warn(msg string, kv ...any)  { l.add("warn", msg, kv...) }
func (l *lineLogger) Error(msg string, kv ...any) { l.add("error", msg, kv...) }

func TestRedactingLoggerScrubsSecrets(t *testing.T) {
	// Secrets of networks that are off are secrets too.
	cfg, err := parseConfiguration(map[string]any{"XMPPPassword": "pa55word", "SlackBotToken": "xoxb-123-secret"}, defaultNetworks())
	if err != nil {
		t.Fatal(err)
	}
	base := &lineLogger{}
	log := redactingLogger{base: base, secrets: cfg.secrets}
	log.Warn("login as bridge with pa55word failed", "error", errors.New("server said: bad token xoxb-123-secret"), "attempt", 3)
	line := strings.Join(base.lines, "\n")
	if strings.Contains(line, "pa55word") || strings.Contains(line, "xoxb-123-secret") {
		t.Fatalf("secret logged: %s", line)
	}
	if !strings.Contains(line, "[redacted]") || !strings.Contains(line, "attempt 3") {
		t.Fatalf("log line lost its content: %s", line)
	}
}
