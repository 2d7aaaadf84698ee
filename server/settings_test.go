package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
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
	"ShareLinkedChannels":     "read at each map and unmap; turned on, every link is shared at once (reconfigure)",
}

// fullSettings turns every network on with valid settings.
func fullSettings(t *testing.T) map[string]any {
	t.Helper()
	raw := validXMPP()
	for k, v := range map[string]any{
		"EncryptionKey": "an-encryption-key-0123456789",
		"MatrixEnabled": true, "MatrixHomeserverURL": "https://matrix.example.com", "MatrixServerName": "example.com",
		"MatrixASToken": "as-token-0123456789abcdef", "MatrixHSToken": "hs-token-0123456789abcdef",
		"SlackEnabled": true, "SlackBotToken": "xoxb-1", "SlackAppToken": "xapp-1",
		// Valid in either XMPP mode, so the audit can switch modes.
		"XMPPComponentDomain": "bridge.example.com", "XMPPComponentSecret": "component-secret",
	} {
		raw[k] = v
	}
	parse(t, raw)
	return raw
}

// parse reads and checks settings as the plugin does.
func parse(t *testing.T, raw map[string]any) *configuration {
	t.Helper()
	cfg, err := parseConfiguration(raw, defaultNetworks())
	if err == nil {
		err = cfg.validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// changed returns a copy of raw with the setting s set to another valid
// value.
func changed(t *testing.T, raw map[string]any, s *model.PluginSetting) map[string]any {
	t.Helper()
	out := maps.Clone(raw)
	switch s.Type {
	case "bool":
		b, _ := out[s.Key].(bool)
		if _, set := out[s.Key]; !set {
			b, _ = s.Default.(bool)
		}
		out[s.Key] = !b
	case "number":
		n := parse(t, raw)
		v := reflect.ValueOf(*n).FieldByName(s.Key)
		if !v.IsValid() {
			t.Fatalf("number setting %s is not a plugin-wide setting", s.Key)
		}
		out[s.Key] = v.Int() + 1
	case "text", "generated", "longtext", "radio", "dropdown":
		alternatives := map[string]string{
			"XMPPMode": "component", "XMPPTLSMode": "tls", "XMPPJID": "other@example.com",
			"XMPPServerAddress": "other.example.com:5222", "XMPPComponentDomain": "bridge2.example.com",
			"MatrixHomeserverURL": "https://other.example.com", "MatrixServerName": "other.example.com",
			"MatrixInviteServers": "matrix.org", "MatrixUserPrefix": "mx_", "MatrixBotLocalpart": "otherbot",
			"SlackBotToken": "xoxb-2", "SlackAppToken": "xapp-2", "SlackAPIURL": "https://slack.example.com/api/",
			"XMPPCACertificate": selfSignedPEM(t),
		}
		v, ok := alternatives[s.Key]
		if !ok {
			cur, _ := out[s.Key].(string)
			v = cur + "-changed-0123456789"
		}
		out[s.Key] = v
	default:
		t.Fatalf("setting %s has a type the audit does not know: %s", s.Key, s.Type)
	}
	return out
}

// Every setting in plugin.json reaches the running code when it is saved:
// either the plugin applies it in place, or the bridges that read it are
// rebuilt. A new setting nobody applies fails here.
func TestEverySettingAppliesWhenSaved(t *testing.T) {
	raw := fullSettings(t)
	base := parse(t, raw)
	networks := defaultNetworks()
	for _, section := range manifest.SettingsSchema.Sections {
		for _, s := range section.Settings {
			if s.Type == "custom" {
				continue // a System Console component, not a stored setting
			}
			next := parse(t, changed(t, raw, s))
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
	next := parse(t, changed(t, raw, &model.PluginSetting{Key: "MaxFileSizeMB", Type: "number"}))
	for _, n := range networks {
		if !bridgeSettingsChanged(n, base, next) {
			t.Errorf("the %s bridge keeps the old MaxFileSizeMB", n.Command.Title)
		}
	}
}

// selfSignedPEM is a certificate for settings that must hold one.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
