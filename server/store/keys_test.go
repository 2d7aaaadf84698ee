package store

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// longJID is a JID at the 3071-byte maximum.
func longJID(fill string) string {
	local := strings.Repeat("a", 1023)
	domain := strings.Repeat("d", 1019) + ".org"
	resource := strings.Repeat(fill, 1023/len(fill))
	jid := local + "@" + domain + "/" + resource
	return jid[:min(len(jid), 3071)]
}

func TestKeysFitWithLongValues(t *testing.T) {
	id := model.NewId()
	long := longJID("r")
	unicodeLong := strings.Repeat("é", 1535) // 3070 bytes, 1535 runes
	keys := map[string]string{
		"schema":        keySchemaVersion,
		"lock":          keyMigrateLock,
		"link":          linkKey(id),
		"room":          roomKey(bridge.NetworkXMPP, long),
		"room unicode":  roomKey(bridge.NetworkMatrix, unicodeLong),
		"remote user":   remoteUserKey(bridge.NetworkXMPP, long),
		"user by mm":    userByMMKey(id),
		"ghost":         ghostKey(bridge.NetworkMatrix, id),
		"ghost prefix":  ghostPrefix(bridge.NetworkMatrix),
		"message":       messageKey(bridge.Ref{Network: bridge.NetworkXMPP, Room: long, ID: long}),
		"group":         groupKey(bridge.Ref{Network: bridge.NetworkXMPP, Room: long, ID: unicodeLong}),
		"cursor":        cursorKey(long, unicodeLong),
		"cursor prefix": cursorPrefix(long),
		"seen":          seenKey(unicodeLong, long),
	}
	for name, k := range keys {
		if n := utf8.RuneCountInString(k); n > model.KeyValueKeyMaxRunes || n == 0 {
			t.Errorf("%s key has %d runes (max %d): %q", name, n, model.KeyValueKeyMaxRunes, k)
		}
		kv := model.PluginKeyValue{PluginId: pluginID, Key: k}
		if err := kv.IsValid(); err != nil {
			t.Errorf("%s key invalid: %v", name, err)
		}
	}
}

func TestComponent(t *testing.T) {
	id := model.NewId()
	if got := component(id); got != id {
		t.Errorf("Mattermost ID %q encoded as %q, want verbatim", id, got)
	}
	if got := component("room@conference.example.org"); got != "room@conference.example.org" {
		t.Errorf("short lower-case JID not verbatim: %q", got)
	}
	hashed := []string{
		"",
		"!AbC:matrix.org",                  // upper case and ':'
		"C024BE91L",                        // Slack IDs are upper case
		"#room:server",                     // starts with '#'
		"café",                             // non-ASCII
		strings.Repeat("a", maxVerbatim+1), // too long
		"a b",
	}
	for _, s := range hashed {
		got := component(s)
		if !strings.HasPrefix(got, "#") || len(got) != 65 || strings.ToLower(got) != got {
			t.Errorf("component(%q) = %q, want '#' and 64 lower-case hex digits", s, got)
		}
		if component(s) != got {
			t.Errorf("component(%q) is not deterministic", s)
		}
	}
	// Case matters but keys are distinct under case folding.
	a, b := roomKey(bridge.NetworkSlack, "C0ABC"), roomKey(bridge.NetworkSlack, "c0abc")
	if strings.EqualFold(a, b) {
		t.Errorf("keys of rooms differing in case collide under case folding: %q %q", a, b)
	}
	// Long values differing only at the end get different keys.
	if roomKey(bridge.NetworkXMPP, longJID("a")) == roomKey(bridge.NetworkXMPP, longJID("b")) {
		t.Error("long JIDs differing in the resource share a key")
	}
	// Two components: the split is unambiguous.
	if cursorKey("a", "b:c") == cursorKey("a:b", "c") {
		t.Error("cursor keys collide")
	}
	// Message refs are hashed with length prefixes: '|' cannot collide.
	r1 := bridge.Ref{Network: bridge.NetworkXMPP, Room: "a|b", ID: "c"}
	r2 := bridge.Ref{Network: bridge.NetworkXMPP, Room: "a", ID: "b|c"}
	if r1.Key() != r2.Key() {
		t.Fatal("test refs should share Ref.Key")
	}
	if messageKey(r1) == messageKey(r2) {
		t.Error("message keys collide for refs with the same Ref.Key")
	}
}

func TestKeyPrefixesDisjoint(t *testing.T) {
	prefixes := []string{prefixLink, prefixRoom, prefixRemoteUser, prefixUserByMM, prefixGhost, prefixMessage, prefixGroup, prefixCursor, prefixSeen, prefixAlias, prefixPending, prefixBarrier, prefixLease, "lock:"}
	for i, a := range prefixes {
		for j, b := range prefixes {
			if i != j && strings.HasPrefix(a, b) {
				t.Errorf("prefix %q starts with prefix %q", a, b)
			}
		}
	}
}
