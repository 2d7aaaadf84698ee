package main

import (
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func validXMPP() map[string]any {
	return map[string]any{
		"XMPPEnabled": true, "XMPPMode": "client", "XMPPJID": "bridge@example.com",
		"XMPPPassword": "s3cret-pass", "XMPPServerAddress": "xmpp.example.com:5222",
	}
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := parseConfiguration(map[string]any{}, defaultNetworks())
	if err != nil {
		t.Fatal(err)
	}
	if err = cfg.validate(); err != nil {
		t.Fatalf("empty settings should be valid with defaults: %v", err)
	}
	if !cfg.EnableBridge || cfg.MessageMapRetentionDays != defaultRetentionDays || cfg.QueueSize != defaultQueueSize {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

func TestLowerCaseKeysAsTheServerStoresThem(t *testing.T) {
	cfg, err := parseConfiguration(map[string]any{"queuesize": 3, "enablebridge": false}, defaultNetworks())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QueueSize != 3 || cfg.EnableBridge {
		t.Fatalf("lower-case keys ignored: QueueSize=%d EnableBridge=%v", cfg.QueueSize, cfg.EnableBridge)
	}
	if err = cfg.validate(); err == nil || !strings.Contains(err.Error(), "QueueSize") {
		t.Fatalf("validate = %v", err)
	}
}

func TestNumberSettingsAcceptStrings(t *testing.T) {
	cfg, err := parseConfiguration(map[string]any{"QueueSize": "250", "MaxFileSizeMB": 10.0}, defaultNetworks())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QueueSize != 250 || cfg.MaxFileSizeMB != 10 {
		t.Fatalf("got QueueSize=%d MaxFileSizeMB=%d", cfg.QueueSize, cfg.MaxFileSizeMB)
	}
	if _, err = parseConfiguration(map[string]any{"QueueSize": "lots"}, defaultNetworks()); err == nil {
		t.Fatal("a non-numeric QueueSize was accepted")
	}
}

func TestInvalidSettingsNameTheSettingAndHideSecrets(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(map[string]any)
		setting string
	}{
		{"bad JID", func(m map[string]any) { m["XMPPJID"] = "not a jid@@" }, "XMPPJID"},
		{"no password", func(m map[string]any) { m["XMPPPassword"] = "" }, "XMPPPassword"},
		{"bad mode", func(m map[string]any) { m["XMPPMode"] = "telepathy" }, "XMPPMode"},
		{"bad address", func(m map[string]any) { m["XMPPServerAddress"] = "no-port" }, "XMPPServerAddress"},
		{"bad CA", func(m map[string]any) { m["XMPPCACertificate"] = "-----BEGIN nothing" }, "XMPPCACertificate"},
		{"queue too small", func(m map[string]any) { m["QueueSize"] = 1 }, "QueueSize"},
		{"negative retention", func(m map[string]any) { m["MessageMapRetentionDays"] = -1 }, "MessageMapRetentionDays"},
		{"matrix url", func(m map[string]any) {
			m["MatrixEnabled"], m["MatrixHomeserverURL"], m["MatrixServerName"] = true, "ftp://x", "example.com"
			m["MatrixASToken"], m["MatrixHSToken"] = "as-token-0123456789", "hs-token-0123456789"
		}, "MatrixHomeserverURL"},
		{"matrix invite servers", func(m map[string]any) {
			m["MatrixEnabled"], m["MatrixHomeserverURL"], m["MatrixServerName"] = true, "https://matrix.example.com", "example.com"
			m["MatrixASToken"], m["MatrixHSToken"] = "as-token-0123456789", "hs-token-0123456789"
			m["MatrixInviteServers"] = "matrix.org, evil server"
		}, "MatrixInviteServers"},
		{"slack token", func(m map[string]any) {
			m["SlackEnabled"], m["SlackBotToken"], m["SlackAppToken"] = true, "xoxp-user-token-secret", "xapp-1"
		}, "SlackBotToken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := validXMPP()
			tc.mutate(raw)
			cfg, err := parseConfiguration(raw, defaultNetworks())
			if err == nil {
				err = cfg.validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.setting) {
				t.Fatalf("error %q does not name %s", err, tc.setting)
			}
			for _, secret := range []string{"s3cret-pass", "xoxp-user-token-secret", "as-token-0123456789"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q leaks a secret", err)
				}
			}
		})
	}
}

func TestWrongTypeErrorDoesNotEchoValue(t *testing.T) {
	_, err := parseConfiguration(map[string]any{"XMPPPassword": 12345678}, defaultNetworks())
	if err == nil || !strings.Contains(err.Error(), "XMPPPassword") || strings.Contains(err.Error(), "12345678") {
		t.Fatalf("err = %v", err)
	}
}

// Saving one network's settings rebuilds that network's bridge only.
func TestASettingRebuildsOnlyItsNetwork(t *testing.T) {
	a, err := parseConfiguration(validXMPP(), defaultNetworks())
	if err != nil {
		t.Fatal(err)
	}
	changed := validXMPP()
	changed["SlackAPIURL"] = "http://localhost:1"
	b, err := parseConfiguration(changed, defaultNetworks())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range defaultNetworks() {
		if got, want := bridgeSettingsChanged(n, a, b), n.Network() == bridge.NetworkSlack; got != want {
			t.Errorf("%s rebuilt: %v, want %v", n.Command.Title, got, want)
		}
	}
}
