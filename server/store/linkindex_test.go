package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Listing the links costs the same however many other records the store
// holds: the soak's takeover spent 15 to 50 s in starts that listed the
// links by walking every key (each bridged message leaves several).
func TestListLinksDoesNotWalkTheStore(t *testing.T) {
	s, kv := newTestStore(t)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 3 {
		ch := model.NewId()
		want = append(want, ch)
		if _, err := s.AddRemote(ch, model.NewId(), RemoteRoom{Network: bridge.NetworkXMPP, Room: fmt.Sprintf("r%d@conf", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2000 {
		if _, err := kv.KVSetWithOptions(fmt.Sprintf("m:%d", i), []byte("x"), model.PluginKVSetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The last link's only room goes: the link with it.
	if _, err := s.RemoveRemote(want[2], bridge.NetworkXMPP, "r2@conf"); err != nil {
		t.Fatal(err)
	}
	want = want[:2]
	before := s.KVRoundTrips()
	links, err := s.ListLinks()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range links {
		got = append(got, l.ChannelID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ListLinks = %v, want %v", got, want)
	}
	after := s.KVRoundTrips()
	if n := after[KVList] - before[KVList]; n != 0 {
		t.Fatalf("ListLinks listed keys %d times", n)
	}
	if n := after[KVGet] - before[KVGet]; n > int64(len(want))+1 {
		t.Fatalf("ListLinks read %d keys for %d links", n, len(want))
	}
}

// A store of schema 1 (links, no index) is migrated: its links are listed
// afterwards, and links added later too.
func TestLinkIndexMigration(t *testing.T) {
	s, kv := newTestStore(t)
	old := New(kv)
	old.schema, old.migrations = 1, nil
	if err := old.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := model.NewId()
	if _, err := old.AddRemote(first, model.NewId(), RemoteRoom{Network: bridge.NetworkMatrix, Room: "!a:hs"}); err != nil {
		t.Fatal(err)
	}
	if err := kv.KVDelete(keyLinkIndex); err != nil { // schema 1 had none
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := model.NewId()
	if _, err := s.AddRemote(second, model.NewId(), RemoteRoom{Network: bridge.NetworkMatrix, Room: "!b:hs"}); err != nil {
		t.Fatal(err)
	}
	links, err := s.ListLinks()
	if err != nil || len(links) != 2 {
		t.Fatalf("after the migration: %+v, %v", links, err)
	}
}
