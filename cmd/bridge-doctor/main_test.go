package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

func writeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The CLI runs the networks' doctors from the plugin's settings, given
// flat or as the server's config.json holds them, and fails when a check
// fails.
func TestCLIRunsTheDoctorFromTheSettings(t *testing.T) {
	s := slacktest.Start(t, slacktest.Options{})
	ch := s.AddChannel(slacktest.Channel{Name: "general", Members: []string{s.BotUserID()}})
	settings := map[string]any{"SlackEnabled": true, "SlackBotToken": s.BotToken(), "SlackAppToken": s.AppToken(), "SlackAPIURL": s.APIURL()}

	var out bytes.Buffer
	if code := run([]string{"-settings", writeJSON(t, settings), "-rooms", ch.ID}, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "all 5 checks passed") || strings.Contains(out.String(), "xmpp") {
		t.Fatalf("output:\n%s", out.String())
	}

	settings["SlackBotToken"] = "xoxb-not-a-real-token"
	config := map[string]any{"PluginSettings": map[string]any{"Plugins": map[string]any{"com.mattermost.bridge": settings}}}
	out.Reset()
	if code := run([]string{"-settings", writeJSON(t, config), "-network", "slack", "-json"}, &out); code != 1 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	var reports []map[string]any
	if err := json.Unmarshal(out.Bytes(), &reports); err != nil || len(reports) != 1 || reports[0]["passed"] != false {
		t.Fatalf("JSON output %v:\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "xoxb-not-a-real-token") {
		t.Fatal("the output quotes the token")
	}

	out.Reset()
	if code := run([]string{"-settings", writeJSON(t, map[string]any{}), "-network", "irc"}, &out); code != 2 || !strings.Contains(out.String(), "irc") {
		t.Fatalf("unknown network: exit %d:\n%s", code, out.String())
	}
}
