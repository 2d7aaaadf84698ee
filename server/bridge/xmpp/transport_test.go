package xmpp

import (
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

// Issue 8 item 4: XEP-0114 has no STARTTLS, so component mode takes direct
// TLS, or plaintext only to a loopback address; never plaintext by accident.
func TestComponentModeIsNeverSilentlyPlaintext(t *testing.T) {
	component := func(tlsMode, addr string) Config {
		return Config{Mode: ModeComponent, ComponentDomain: jid.MustParse("bridge.example.com"), ComponentSecret: "component-secret-value", Address: addr, TLSMode: tlsMode}
	}
	for name, c := range map[string]Config{
		"starttls":             component(TLSStartTLS, "xmpp.example.com:5347"),
		"starttls to loopback": component(TLSStartTLS, "127.0.0.1:5347"),
		"plain, not loopback":  component(TLSPlainLoopback, "192.0.2.1:5347"),
		"plain, by name":       component(TLSPlainLoopback, "xmpp.example.com:5347"),
	} {
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "XMPPTLSMode") || strings.Contains(err.Error(), "component-secret-value") {
			t.Errorf("%s: the error should name the setting and no secret: %v", name, err)
		}
	}
	for name, c := range map[string]Config{
		"direct TLS":          component(TLSDirect, "xmpp.example.com:5347"),
		"plain to loopback":   component(TLSPlainLoopback, "127.0.0.1:5347"),
		"plain to localhost":  component(TLSPlainLoopback, "localhost:5347"),
		"plain to loopback 6": component(TLSPlainLoopback, "[::1]:5347"),
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}

// Status names the transport in every mode.
func TestStatusNamesTheTransport(t *testing.T) {
	account := jid.MustParse("bridge@example.com")
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Mode: ModeClient, JID: account, Password: "pw", TLSMode: TLSStartTLS}, "transport: TLS (STARTTLS)"},
		{Config{Mode: ModeClient, JID: account, Password: "pw", TLSMode: TLSDirect}, "transport: TLS (direct)"},
		{Config{Mode: ModeClient, JID: account, Password: "pw", TLSMode: TLSPlainLoopback, Address: "127.0.0.1:5222"}, "transport: plaintext (loopback)"},
		{Config{Mode: ModeComponent, ComponentDomain: jid.MustParse("b.example.com"), ComponentSecret: "s", Address: "x.example.com:5347", TLSMode: TLSDirect}, "transport: TLS (direct)"},
		{Config{Mode: ModeComponent, ComponentDomain: jid.MustParse("b.example.com"), ComponentSecret: "s", Address: "127.0.0.1:5347", TLSMode: TLSPlainLoopback}, "transport: plaintext (loopback)"},
	} {
		b, err := New(tc.cfg, newMemStore(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Health().Detail; !strings.Contains(got, tc.want) {
			t.Errorf("%s/%s: status detail %q, want %q", tc.cfg.Mode, tc.cfg.TLSMode, got, tc.want)
		}
	}
}
