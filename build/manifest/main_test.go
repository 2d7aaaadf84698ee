package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
)

// repoManifest is plugin.json at the repository root (tests run in build/manifest).
const repoManifest = "../../plugin.json"

func TestPluginJSONIsValid(t *testing.T) {
	t.Setenv("MM_PLUGIN_VERSION", "")
	m, err := readManifest(repoManifest)
	if err != nil {
		t.Fatal(err)
	}
	if m.Id != "com.mattermost.bridge" {
		t.Errorf("id = %q", m.Id)
	}

	wantExecutables := []string{"linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64", "windows-amd64"}
	if m.Server == nil || len(m.Server.Executables) != len(wantExecutables) {
		t.Fatalf("server executables = %v, want %v", m.Server, wantExecutables)
	}
	for _, p := range wantExecutables {
		want := "server/dist/plugin-" + p
		if strings.HasPrefix(p, "windows") {
			want += ".exe"
		}
		if got := m.Server.Executables[p]; got != want {
			t.Errorf("executable for %s = %q, want %q", p, got, want)
		}
	}
	if m.Webapp == nil || m.Webapp.BundlePath != "webapp/dist/main.js" {
		t.Errorf("webapp = %+v", m.Webapp)
	}
	if _, err := os.Stat(filepath.Join("..", "..", m.IconPath)); err != nil {
		t.Errorf("icon: %v", err)
	}
}

// TestSettings pins every setting key, its type, its default and whether it
// is secret: the server's configuration struct uses the same names.
func TestSettings(t *testing.T) {
	m, err := readManifest(repoManifest)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		section, typ string
		def          any
		secret       bool
	}
	wantSettings := map[string]want{
		"BridgeStatus": {"Status", "custom", nil, false},

		"EnableBridge":            {"General", "bool", true, false},
		"ShareLinkedChannels":     {"General", "bool", true, false},
		"MessageMapRetentionDays": {"General", "number", 90.0, false},
		"MaxFileSizeMB":           {"General", "number", 50.0, false},
		"QueueSize":               {"General", "number", 1000.0, false},
		"EncryptionKey":           {"General", "generated", "", true},

		"XMPPEnabled":            {"XMPP", "bool", false, false},
		"XMPPMode":               {"XMPP", "dropdown", "client", false},
		"XMPPServerAddress":      {"XMPP", "text", "", false},
		"XMPPJID":                {"XMPP", "text", "", false},
		"XMPPPassword":           {"XMPP", "text", "", true},
		"XMPPComponentDomain":    {"XMPP", "text", "", false},
		"XMPPComponentSecret":    {"XMPP", "text", "", true},
		"XMPPTLSMode":            {"XMPP", "dropdown", "starttls", false},
		"XMPPCACertificate":      {"XMPP", "longtext", "", false},
		"XMPPInsecureSkipVerify": {"XMPP", "bool", false, false},
		"XMPPPostSubjects":       {"XMPP", "bool", false, false},

		"MatrixEnabled":       {"Matrix", "bool", false, false},
		"MatrixHomeserverURL": {"Matrix", "text", "", false},
		"MatrixServerName":    {"Matrix", "text", "", false},
		"MatrixASToken":       {"Matrix", "generated", "", true},
		"MatrixHSToken":       {"Matrix", "generated", "", true},
		"MatrixUserPrefix":    {"Matrix", "text", "mm_", false},
		"MatrixBotLocalpart":  {"Matrix", "text", "mattermostbridge", false},
		"MatrixInviteServers": {"Matrix", "text", "", false},
		"MatrixRegistration":  {"Matrix", "custom", nil, false},

		"SlackEnabled":    {"Slack", "bool", false, false},
		"SlackBotToken":   {"Slack", "text", "", true},
		"SlackAppToken":   {"Slack", "text", "", true},
		"SlackAPIURL":     {"Slack", "text", "", false},
		"SlackPortalTeam": {"Slack", "text", "", false},
	}

	if len(m.SettingsSchema.Settings) != 0 {
		t.Errorf("settings outside sections: %d", len(m.SettingsSchema.Settings))
	}
	var sections []string
	seen := map[string]bool{}
	for _, sec := range m.SettingsSchema.Sections {
		sections = append(sections, sec.Key)
		for _, s := range sec.Settings {
			seen[s.Key] = true
			w, ok := wantSettings[s.Key]
			if !ok {
				t.Errorf("unexpected setting %q", s.Key)
				continue
			}
			if sec.Key != w.section || s.Type != w.typ || s.Default != w.def || s.Secret != w.secret {
				t.Errorf("%s: section %s type %s default %#v secret %v; want %s %s %#v %v",
					s.Key, sec.Key, s.Type, s.Default, s.Secret, w.section, w.typ, w.def, w.secret)
			}
			if s.DisplayName == "" || s.HelpText == "" {
				t.Errorf("%s: needs a display name and help text", s.Key)
			}
			if s.Type == "dropdown" {
				found := false
				for _, o := range s.Options {
					found = found || o.Value == s.Default
				}
				if !found {
					t.Errorf("%s: default %v is not one of its options", s.Key, s.Default)
				}
			}
		}
	}
	for k := range wantSettings {
		if !seen[k] {
			t.Errorf("missing setting %q", k)
		}
	}
	if got := strings.Join(sections, ","); got != "Status,General,XMPP,Matrix,Slack" {
		t.Errorf("sections = %s", got)
	}
}

func TestReadManifestRejects(t *testing.T) {
	t.Setenv("MM_PLUGIN_VERSION", "")
	cases := map[string]string{
		"unknown field":   `{"id": "com.example.x", "name": "X", "version": "1.0.0", "bogus": 1}`,
		"bad id":          `{"id": "x y", "name": "X", "version": "1.0.0"}`,
		"bad type":        `{"id": "com.example.x", "name": "X", "version": "1.0.0", "settings_schema": {"sections": [{"key": "A", "settings": [{"key": "K", "type": "boolean"}]}]}}`,
		"duplicate key":   `{"id": "com.example.x", "name": "X", "version": "1.0.0", "settings_schema": {"sections": [{"key": "A", "settings": [{"key": "K", "type": "bool"}]}, {"key": "B", "settings": [{"key": "k", "type": "bool"}]}]}}`,
		"section w/o key": `{"id": "com.example.x", "name": "X", "version": "1.0.0", "settings_schema": {"sections": [{"settings": []}]}}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "plugin.json")
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := readManifest(path); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestApplyGeneratesValidGo(t *testing.T) {
	m := &model.Manifest{Id: "com.example.x", Name: "X `quoted`", Version: "1.2.3", Server: &model.ManifestServer{Executable: "x"}}
	t.Chdir(t.TempDir())

	if err := applyManifest(m); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(serverGoFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.ParseFile(token.NewFileSet(), serverGoFile, src, 0); err != nil {
		t.Fatalf("generated Go does not parse: %v\n%s", err, src)
	}
	if !strings.Contains(string(src), "\"name\": \"X ` + \"`\" + `quoted` + \"`\" + `\"") {
		t.Errorf("backquotes not spliced:\n%s", src)
	}
	if _, err := os.Stat(webappTSFile); err == nil {
		t.Error("wrote webapp manifest for a plugin without a webapp")
	}
}
