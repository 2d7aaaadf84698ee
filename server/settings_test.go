package main

import (
	"reflect"
	"testing"
)

// liveSettings are the settings the running plugin takes in place, without
// rebuilding a bridge (see Plugin.applyLive); every other setting must
// change what some network's bridge is built from, so that saving it
// rebuilds that bridge.
var liveSettings = map[string]string{
	"EnableBridge":            "reconfigure starts or stops every network's bridge",
	"MessageMapRetentionDays": "store.SetMessageRetention, for maps written from then on",
	"QueueSize":               "bus.SetQueueCapacity, for existing and new queues",
	"MaxFileSizeMB":           "the Mattermost bridge's limit in place; XMPP and Matrix are rebuilt (their view changes)",
	"EncryptionKey":           "the ghost keyring is rotated in place and ghost passwords re-sealed",
}

// fullConfiguration turns every network on with valid settings.
func fullConfiguration(t *testing.T) *configuration {
	t.Helper()
	raw := validXMPP()
	for k, v := range map[string]any{
		"EncryptionKey": "an-encryption-key-0123456789",
		"MatrixEnabled": true, "MatrixHomeserverURL": "https://matrix.example.com", "MatrixServerName": "example.com",
		"MatrixASToken": "as-token-0123456789abcdef", "MatrixHSToken": "hs-token-0123456789abcdef",
		"SlackEnabled": true, "SlackBotToken": "xoxb-1", "SlackAppToken": "xapp-1",
	} {
		raw[k] = v
	}
	cfg, err := parseConfiguration(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err = cfg.validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// changed returns a copy of cfg with the setting key set to another valid
// value.
func changed(t *testing.T, cfg *configuration, key string) *configuration {
	t.Helper()
	out := *cfg
	f := reflect.ValueOf(&out).Elem().FieldByName(key)
	switch f.Kind() {
	case reflect.Bool:
		f.SetBool(!f.Bool())
	case reflect.Int:
		f.SetInt(f.Int() + 1)
	case reflect.String:
		alternatives := map[string]string{
			"XMPPMode": "component", "XMPPTLSMode": "tls", "XMPPJID": "other@example.com",
			"XMPPServerAddress": "other.example.com:5222", "XMPPComponentDomain": "bridge.example.com",
			"MatrixHomeserverURL": "https://other.example.com", "MatrixServerName": "other.example.com",
			"SlackBotToken": "xoxb-2", "SlackAppToken": "xapp-2", "SlackAPIURL": "https://slack.example.com/api/",
		}
		v, ok := alternatives[key]
		if !ok {
			v = f.String() + "-changed-0123456789"
		}
		f.SetString(v)
	default:
		t.Fatalf("setting %s has a type the audit does not know: %s", key, f.Kind())
	}
	return &out
}

// Every setting in plugin.json reaches the running code when it is saved:
// either the plugin applies it in place, or the bridges that read it are
// rebuilt. A new setting nobody applies fails here.
func TestEverySettingAppliesWhenSaved(t *testing.T) {
	base := fullConfiguration(t)
	networks := defaultNetworks()
	for _, section := range manifest.SettingsSchema.Sections {
		for _, s := range section.Settings {
			if s.Type == "custom" {
				continue // a System Console component, not a stored setting
			}
			if _, ok := reflect.TypeOf(configuration{}).FieldByName(s.Key); !ok {
				t.Errorf("setting %s is in plugin.json but not in the configuration", s.Key)
				continue
			}
			next := changed(t, base, s.Key)
			var rebuilt []string
			for _, n := range networks {
				if bridgeSettingsChanged(n, base, next) {
					rebuilt = append(rebuilt, n.Command.Title)
				}
			}
			if _, live := liveSettings[s.Key]; !live && len(rebuilt) == 0 {
				t.Errorf("saving %s neither applies in place nor rebuilds a bridge", s.Key)
			}
		}
	}
	// A bridge built with the file-size limit is rebuilt when it changes.
	next := changed(t, base, "MaxFileSizeMB")
	for _, n := range networks {
		if n.Command.Title == "Slack" {
			continue // not implemented: nothing is built
		}
		if !bridgeSettingsChanged(n, base, next) {
			t.Errorf("the %s bridge keeps the old MaxFileSizeMB", n.Command.Title)
		}
	}
}
