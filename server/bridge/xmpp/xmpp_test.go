package xmpp

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func TestConfigValidate(t *testing.T) {
	account := jid.MustParse("bridge@example.com")
	good := Config{Mode: ModeClient, JID: account, Password: "pw", TLSMode: TLSStartTLS}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	cases := map[string]Config{
		"no password":          {Mode: ModeClient, JID: account, TLSMode: TLSStartTLS},
		"component, no secret": {Mode: ModeComponent, ComponentDomain: jid.MustParse("bridge.example.com"), Address: "x:5347", TLSMode: TLSStartTLS},
		"unknown mode":         {Mode: "telepathy", TLSMode: TLSStartTLS},
		"plain, not loopback":  {Mode: ModeClient, JID: account, Password: "pw", TLSMode: TLSPlainLoopback, Address: "192.0.2.1:5222"},
		"unknown TLS mode":     {Mode: ModeClient, JID: account, Password: "pw", TLSMode: "maybe"},
	}
	for name, c := range cases {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	plain := Config{Mode: ModeClient, JID: account, Password: "pw", TLSMode: TLSPlainLoopback, Address: "127.0.0.1:5222"}
	if err := plain.Validate(); err != nil {
		t.Fatalf("plain loopback refused: %v", err)
	}
	for _, m := range plain.mechanisms() {
		if m.Name == "PLAIN" {
			t.Fatal("PLAIN offered on an unencrypted stream")
		}
	}
}

func TestDeliveryIDIsStableAcrossRetries(t *testing.T) {
	d := &bridge.Delivery{Event: bridge.Event{Kind: bridge.KindMessage, Origin: bridge.Ref{Network: "mattermost", Room: "c", ID: "p1"}, Time: time.Unix(5, 0)}, Room: "r@muc.example"}
	again := *d
	if deliveryID(d) != deliveryID(&again) {
		t.Fatal("the same delivery got two IDs")
	}
	other := *d
	other.Room = "other@muc.example"
	edit := *d
	edit.Kind = bridge.KindEdit
	second := *d
	second.Part = 1
	if deliveryID(d) == deliveryID(&other) || deliveryID(d) == deliveryID(&edit) || deliveryID(d) == deliveryID(&second) {
		t.Fatal("different deliveries share an ID")
	}
	// The first part keeps the ID deliveries had before parts counted, so
	// one begun before an upgrade is still recognised after it.
	if got := deliveryID(d); got != "mm-603d4c9e0ae09880d3f51c71" {
		t.Fatalf("first part's ID changed: %s", got)
	}
	for _, id := range []string{deliveryID(d), deliveryID(&second)} {
		if !isDeliveryID(id) {
			t.Fatalf("%q is not recognised as the bridge's", id)
		}
	}
	for _, id := range []string{"", "mm-", "mm-xyz", "c1", "mm-0123456789abcdef0123456", "mm-0123456789abcdef0123456789"} {
		if isDeliveryID(id) {
			t.Fatalf("%q taken for the bridge's", id)
		}
	}
}

func TestReplaceWordsOnlyWholeWords(t *testing.T) {
	got := replaceWords("@bob and @bobby, ask @Bob.", []string{"@bob", "Bob Builder"})
	if got != "Bob Builder and @bobby, ask Bob Builder." {
		t.Fatalf("got %q", got)
	}
	if got := replaceWords("cost $5", []string{"cost", "price $1"}); got != "price $1 $5" {
		t.Fatalf("dollar signs in replacements must stay literal: %q", got)
	}
}

func TestGhostLocalpart(t *testing.T) {
	key := []byte("installation key one")
	alice := bridge.Sender{Username: "Al.Ice_9", ID: "id1"}
	name := ghostLocalpart(key, alice)
	if !strings.HasPrefix(name, "mm-al.ice_9-") || len(name) != len("mm-al.ice_9-")+16 {
		t.Fatalf("ghostLocalpart = %q", name)
	}
	if ghostLocalpart(key, alice) != name {
		t.Fatal("the same user got two names")
	}
	renamed := alice
	renamed.Username = "alice"
	if got := ghostLocalpart(key, renamed); got[len(got)-16:] != name[len(name)-16:] {
		t.Fatalf("the tag should follow the user ID, not the username: %q and %q", got, name)
	}
	if ghostLocalpart([]byte("installation key two"), alice) == name {
		t.Fatal("another installation's key gave the same name")
	}
	other := alice
	other.ID = "id2"
	if ghostLocalpart(key, other) == name {
		t.Fatal("another user with the same username got the same name")
	}
	for in, want := range map[string]string{"ünï cödé": "mm-n-c-d-", "!!!": "mm-user-", strings.Repeat("a", 80): "mm-" + strings.Repeat("a", 32) + "-"} {
		if got := ghostLocalpart(key, bridge.Sender{Username: in, ID: "id1"}); !strings.HasPrefix(got, want) {
			t.Errorf("ghostLocalpart(%q) = %q, want prefix %q", in, got, want)
		}
	}
	if a, b := ghostFallbackLocalpart(alice), ghostFallbackLocalpart(alice); a == b || a == name {
		t.Fatalf("fallback names %q and %q should be random", a, b)
	}
}

func TestExplainErrors(t *testing.T) {
	err := explainNegotiation("example.com", errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"))
	if !errors.Is(err, ErrUntrustedCert) && !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("TLS failure explained as %v", err)
	}
	if _, ok := saslFailure(errors.New("plain error")); ok {
		t.Fatal("a plain error taken for a SASL failure")
	}
}

func TestBackoffGrowsWithJitterAndCaps(t *testing.T) {
	for attempt := range 12 {
		d := backoff(attempt)
		ceiling := time.Second << min(attempt, 7)
		if ceiling > 2*time.Minute {
			ceiling = 2 * time.Minute
		}
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("attempt %d waits %v, want within [%v, %v]", attempt, d, ceiling/2, ceiling)
		}
	}
}

// ejabberd answers a failed channel binding with not-authorized, as for a
// wrong password; its text tells them apart, and so does status.
func TestBindingFailureIsNoWrongPassword(t *testing.T) {
	if _, ok := saslFailure(errors.New("x")); ok {
		t.Fatal("not a SASL failure")
	}
	for _, tc := range []struct {
		failure string
		want    error
	}{
		{`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>Invalid channel binding</text></failure>`, ErrChannelBinding},
		{`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>Invalid username or password</text></failure>`, ErrAuth},
	} {
		err := explainNegotiation("example.com", saslFailureError(t, tc.failure))
		if !errors.Is(err, tc.want) || (tc.want == ErrChannelBinding && errors.Is(err, ErrAuth)) {
			t.Errorf("%s explained as %v", tc.failure, err)
		}
	}
}

// saslFailureError stands for mellium's SASL failure error: its text as
// Error(), the element as TokenReader().
type fakeSASLFailure struct{ raw, text string }

func (f fakeSASLFailure) Error() string { return f.text }
func (f fakeSASLFailure) TokenReader() xml.TokenReader {
	return xml.NewDecoder(strings.NewReader(f.raw))
}

func saslFailureError(t *testing.T, raw string) error {
	t.Helper()
	var v struct {
		Text string `xml:"text"`
	}
	if err := xml.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	return fakeSASLFailure{raw: raw, text: v.Text}
}
