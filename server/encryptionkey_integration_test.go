package main

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/secret"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// ghostRecord reads a user's XMPP ghost straight from the KV store.
func (h *xmppHarness) ghostRecord(userID string) store.Ghost {
	h.t.Helper()
	raw, appErr := h.s.KV().KVGet("gh:xmpp:" + userID)
	if appErr != nil || raw == nil {
		h.t.Fatalf("no ghost record for %s: %v", userID, appErr)
	}
	var g store.Ghost
	if err := json.Unmarshal(raw, &g); err != nil {
		h.t.Fatal(err)
	}
	return g
}

// opensWith reports whether the ghost's sealed password opens under key.
func opensWith(t *testing.T, g store.Ghost, key string) bool {
	t.Helper()
	box, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = box.Open(g.Secret)
	if err != nil && !errors.Is(err, secret.ErrWrongKey) {
		t.Fatal(err)
	}
	return err == nil
}

// speaks has user post text and waits until the room sees it from the
// user's own ghost.
func (h *xmppHarness) speaks(user *model.User, nick, text string) {
	h.t.Helper()
	h.post(user, text, "")
	m := h.roomMessage(text, func(m prosodytest.Message) bool { return strings.HasSuffix(m.Body, text) })
	if m.From.Resourcepart() != nick || m.Body != text {
		h.t.Fatalf("room got %q from %s, want it from %s's ghost", m.Body, m.From, nick)
	}
}

// Settings apply when saved: a regenerated EncryptionKey re-seals every
// stored ghost password under the new key, the old key opens none of them
// afterwards, and the ghosts log in with their own accounts again.
func TestXMPPRegeneratedEncryptionKeyResealsGhosts(t *testing.T) {
	h := newXMPPHarness(t, "client") // no EncryptionKey: the instance secret seals
	h.speaks(h.alice, "Alice Liddell", "alice before")
	h.speaks(h.bob, "Bob Builder", "bob before")
	instanceSecret, appErr := h.s.KV().KVGet("instance_secret")
	if appErr != nil || len(instanceSecret) == 0 {
		t.Fatalf("instance secret: %v", appErr)
	}
	before := map[string]store.Ghost{}
	for _, u := range []*model.User{h.alice, h.bob} {
		g := h.ghostRecord(u.Id)
		if !opensWith(t, g, string(instanceSecret)) {
			t.Fatalf("%s's ghost is not sealed under the instance secret", u.Username)
		}
		before[u.Id] = g
	}

	settings := xmppSettings(h.xmpp, "client")
	rotate := func(key string) {
		t.Helper()
		settings["EncryptionKey"] = key
		h.Must(h.s.SetPluginSettings(maps.Clone(settings)))
	}
	resealed := func(newKey string, oldKeys ...string) {
		t.Helper()
		testhost.WaitFor(t, wait, func() bool {
			for id := range before {
				if !opensWith(t, h.ghostRecord(id), newKey) {
					return false
				}
			}
			return true
		}, "every ghost password re-sealed under the new key")
		for id, was := range before {
			g := h.ghostRecord(id)
			if g.RemoteID != was.RemoteID {
				t.Fatalf("the ghost account changed from %s to %s", was.RemoteID, g.RemoteID)
			}
			for _, old := range oldKeys {
				if opensWith(t, g, old) {
					t.Fatalf("the ghost of %s still opens under an old key", id)
				}
			}
		}
	}

	const key1, key2 = "regenerated-key-1-AbCdEfGh0123456789", "regenerated-key-2-ZyXwVu9876543210"
	rotate(key1)
	resealed(key1, string(instanceSecret))
	// A restart closes the ghosts' connections: they must log in again with
	// the passwords read under the new key, not register new accounts.
	h.Must(h.n.Restart())
	h.speaks(h.alice, "Alice Liddell", "alice after key 1")

	// A second regeneration with the plugin restarted right after the save:
	// whatever was left is finished on activation (stopped surely halfway in
	// TestKeyRotationStoppedHalfwayFinishesOnActivation).
	rotate(key2)
	h.Must(h.n.Restart())
	resealed(key2, string(instanceSecret), key1)
	h.speaks(h.bob, "Bob Builder", "bob after key 2")
	h.speaks(h.alice, "Alice Liddell", "alice after key 2")
	for id, was := range before {
		if g := h.ghostRecord(id); g.RemoteID != was.RemoteID {
			t.Fatalf("the ghost account changed from %s to %s", was.RemoteID, g.RemoteID)
		}
	}
}
