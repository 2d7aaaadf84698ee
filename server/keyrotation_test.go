package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/secret"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

// ghostWritesFailAfter lets n ghost writes through, then fails the rest like
// a database that went away halfway through the re-sealing.
type ghostWritesFailAfter struct {
	*memkv.PluginKV
	left atomic.Int64
}

func (k *ghostWritesFailAfter) KVSetWithOptions(key string, value []byte, o model.PluginKVSetOptions) (bool, *model.AppError) {
	if strings.HasPrefix(key, "gh:") && k.left.Add(-1) < 0 {
		return false, model.NewAppError("KVSetWithOptions", "test.down", nil, "", http.StatusInternalServerError)
	}
	return k.PluginKV.KVSetWithOptions(key, value, o)
}

// A plugin stopped halfway through re-sealing (as by a crash) loses no ghost
// password: the next activation, which knows only the new key, finishes the
// work, and the old key opens nothing afterwards.
func TestKeyRotationStoppedHalfwayFinishesOnActivation(t *testing.T) {
	const oldKey, newKey = "old-key-0123456789", "new-key-9876543210"
	kv := &ghostWritesFailAfter{PluginKV: memkv.New(nil).Plugin(manifest.Id)}
	kv.left.Store(1 << 30)
	st := store.New(kv)
	ctx := context.Background()

	before, err := newKeyRotator(st, bridge.NopLogger{}, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	users := []string{model.NewId(), model.NewId(), model.NewId()}
	for i, id := range users {
		sealed, serr := before.keys.Seal([]byte(fmt.Sprint("password ", i)))
		if serr != nil {
			t.Fatal(serr)
		}
		if err = st.SaveGhost(store.Ghost{Network: bridge.NetworkXMPP, UserID: id, RemoteID: fmt.Sprintf("mm-%d@example.com", i), Secret: sealed}); err != nil {
			t.Fatal(err)
		}
	}

	// The new key is saved; one record is re-sealed, then writes fail and
	// the plugin stops.
	kv.left.Store(1)
	if err = before.rotateTo(ctx, newKey); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for kv.left.Load() >= 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	before.stop()
	oldBox, _ := secret.New(oldKey)
	newBox, _ := secret.New(newKey)
	count := func(b *secret.Box) (n int) {
		for _, id := range users {
			g, gerr := st.GetGhost(bridge.NetworkXMPP, id)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if _, oerr := b.Open(g.Secret); oerr == nil {
				n++
			}
		}
		return n
	}
	if got := count(newBox); got != 1 {
		t.Fatalf("%d records under the new key after the stop, want 1", got)
	}
	if rec, _ := st.GetKeyRotation(); rec == nil || rec.To != newBox.ID() {
		t.Fatalf("no record of the unfinished rotation: %+v", rec)
	}

	// The next activation only has the new key.
	kv.left.Store(1 << 30)
	after, err := newKeyRotator(st, bridge.NopLogger{}, newKey)
	if err != nil {
		t.Fatal(err)
	}
	if err = after.resume(ctx); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for rec, _ := st.GetKeyRotation(); rec != nil; rec, _ = st.GetKeyRotation() {
		if time.Now().After(deadline) {
			t.Fatal("the rotation did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	after.stop()
	if n, o := count(newBox), count(oldBox); n != len(users) || o != 0 {
		t.Fatalf("after the resumed rotation: %d under the new key, %d still open with the old one", n, o)
	}
	for i, id := range users {
		g, _ := st.GetGhost(bridge.NetworkXMPP, id)
		if got, oerr := after.keys.Open(g.Secret); oerr != nil || string(got) != fmt.Sprint("password ", i) || g.RemoteID != fmt.Sprintf("mm-%d@example.com", i) {
			t.Fatalf("ghost %d: %q, %v, %s", i, got, oerr, g.RemoteID)
		}
	}
	if len(after.keys.Retiring()) != 0 {
		t.Fatal("the old key is still in the keyring")
	}
}
