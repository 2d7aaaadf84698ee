package store

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func TestRemoteUsers(t *testing.T) {
	s, _, clock := newClockedStore(t)
	jid := longJID("x")
	if _, err := s.GetRemoteUser(bridge.NetworkXMPP, jid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetRemoteUser: %v, want ErrNotFound", err)
	}
	u1 := model.NewId()
	must(t, s.SaveRemoteUser(RemoteUser{Network: bridge.NetworkXMPP, RemoteID: jid, UserID: u1, Username: "alice", DisplayName: "Alice", AvatarHash: "abc"}))
	got, err := s.GetRemoteUser(bridge.NetworkXMPP, jid)
	must(t, err)
	if got.RemoteID != jid || got.UserID != u1 || got.Username != "alice" || got.DisplayName != "Alice" || got.AvatarHash != "abc" || !got.UpdatedAt.Equal(clock.Now()) {
		t.Fatalf("GetRemoteUser = %+v", got)
	}
	byMM, err := s.RemoteUserByMattermostID(u1)
	must(t, err)
	if byMM.RemoteID != jid {
		t.Fatalf("RemoteUserByMattermostID = %+v", byMM)
	}

	// Re-pointing the remote user moves the reverse lookup.
	u2 := model.NewId()
	must(t, s.SaveRemoteUser(RemoteUser{Network: bridge.NetworkXMPP, RemoteID: jid, UserID: u2}))
	if _, err := s.RemoteUserByMattermostID(u1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old user still maps: %v", err)
	}
	if got, err := s.RemoteUserByMattermostID(u2); err != nil || got.RemoteID != jid {
		t.Fatalf("RemoteUserByMattermostID(new) = %+v, %v", got, err)
	}

	// The same remote ID on another network is another user.
	if _, err := s.GetRemoteUser(bridge.NetworkMatrix, jid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("network not part of the key: %v", err)
	}

	must(t, s.DeleteRemoteUser(bridge.NetworkXMPP, jid))
	if _, err := s.GetRemoteUser(bridge.NetworkXMPP, jid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := s.RemoteUserByMattermostID(u2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reverse after delete: %v", err)
	}
	must(t, s.DeleteRemoteUser(bridge.NetworkXMPP, jid))
}

func TestClaimRemoteUserRace(t *testing.T) {
	s, kv := newTestStore(t)
	const n = 8
	users := make([]string, n)
	existing := make([]string, n)
	won := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		users[i] = model.NewId()
		node := New(kv)
		wg.Go(func() {
			var err error
			existing[i], won[i], err = node.ClaimRemoteUser(bridge.NetworkMatrix, "@bob:hs", users[i])
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	winner := ""
	for i := range n {
		if won[i] {
			if winner != "" {
				t.Fatalf("two winners: %s and %s", winner, users[i])
			}
			winner = users[i]
		}
	}
	if winner == "" {
		t.Fatal("no winner")
	}
	for i := range n {
		if existing[i] != winner {
			t.Errorf("caller %d told %q, want winner %q", i, existing[i], winner)
		}
	}
	u, err := s.RemoteUserByMattermostID(winner)
	must(t, err)
	if u.RemoteID != "@bob:hs" || u.UserID != winner {
		t.Fatalf("RemoteUserByMattermostID = %+v", u)
	}
	// A retry by the winner is a win; by a loser, not.
	if ex, ok, err := s.ClaimRemoteUser(bridge.NetworkMatrix, "@bob:hs", winner); err != nil || !ok || ex != winner {
		t.Fatalf("winner retry = %q, %v, %v", ex, ok, err)
	}
	loser := users[0]
	if loser == winner {
		loser = users[1]
	}
	if ex, ok, err := s.ClaimRemoteUser(bridge.NetworkMatrix, "@bob:hs", loser); err != nil || ok || ex != winner {
		t.Fatalf("loser retry = %q, %v, %v", ex, ok, err)
	}
	if _, err := s.RemoteUserByMattermostID(loser); !errors.Is(err, ErrNotFound) {
		t.Fatalf("loser maps to a remote user: %v", err)
	}
}

func TestGhosts(t *testing.T) {
	s, _, clock := newClockedStore(t)
	s.pageSize = 4
	var xmppUsers []string
	for i := range 10 {
		u := model.NewId()
		xmppUsers = append(xmppUsers, u)
		must(t, s.SaveGhost(Ghost{Network: bridge.NetworkXMPP, UserID: u, RemoteID: fmt.Sprintf("u%d@mm.example.org", i), Secret: []byte{0, 1, 2, byte(i)}, Data: map[string]string{"n": fmt.Sprint(i)}}))
	}
	mu := model.NewId()
	must(t, s.SaveGhost(Ghost{Network: bridge.NetworkMatrix, UserID: mu, RemoteID: "@_mm_x:hs"}))

	g, err := s.GetGhost(bridge.NetworkXMPP, xmppUsers[3])
	must(t, err)
	if g.RemoteID != "u3@mm.example.org" || string(g.Secret) != "\x00\x01\x02\x03" || g.Data["n"] != "3" || !g.UpdatedAt.Equal(clock.Now()) {
		t.Fatalf("GetGhost = %+v", g)
	}
	if _, err := s.GetGhost(bridge.NetworkMatrix, xmppUsers[3]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetGhost on another network: %v", err)
	}
	xs, err := s.ListGhosts(bridge.NetworkXMPP)
	must(t, err)
	ms, err := s.ListGhosts(bridge.NetworkMatrix)
	must(t, err)
	if len(xs) != 10 || len(ms) != 1 || ms[0].UserID != mu {
		t.Fatalf("ListGhosts: %d xmpp, %+v matrix", len(xs), ms)
	}

	must(t, s.DeleteGhost(bridge.NetworkXMPP, xmppUsers[0]))
	must(t, s.DeleteGhost(bridge.NetworkXMPP, xmppUsers[0]))
	if xs, _ := s.ListGhosts(bridge.NetworkXMPP); len(xs) != 9 {
		t.Fatalf("after delete: %d ghosts", len(xs))
	}
}

func TestUpdateGhostConcurrent(t *testing.T) {
	s, kv, clock := newClockedStore(t)
	u := model.NewId()
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		node := New(kv)
		node.now = clock.Now
		wg.Go(func() {
			_, err := node.UpdateGhost(bridge.NetworkMatrix, u, func(g *Ghost) (*Ghost, error) {
				if g == nil {
					g = &Ghost{Network: bridge.NetworkMatrix, UserID: u}
				}
				if g.Data == nil {
					g.Data = map[string]string{}
				}
				g.Data[fmt.Sprintf("k%d", i)] = "v"
				return g, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	g, err := s.GetGhost(bridge.NetworkMatrix, u)
	must(t, err)
	if len(g.Data) != n {
		t.Fatalf("ghost data has %d keys, want %d: %v", len(g.Data), n, g.Data)
	}
	clock.Advance(time.Minute)
	if _, err := s.UpdateGhost(bridge.NetworkMatrix, u, func(g *Ghost) (*Ghost, error) {
		g.UserID = model.NewId()
		return g, nil
	}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("changing the user ID: %v, want ErrInvalidInput", err)
	}
	if g, err := s.UpdateGhost(bridge.NetworkMatrix, u, func(*Ghost) (*Ghost, error) { return nil, nil }); err != nil || g != nil {
		t.Fatalf("deleting via UpdateGhost = %+v, %v", g, err)
	}
	if _, err := s.GetGhost(bridge.NetworkMatrix, u); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// CountPeople counts remote users and ghosts per network from the keys
// alone, whatever their records hold.
func TestCountPeople(t *testing.T) {
	s, _ := newTestStore(t)
	for i := range 3 {
		must(t, s.SaveRemoteUser(RemoteUser{Network: bridge.NetworkXMPP, RemoteID: fmt.Sprintf("Person-%d@Example.org/with a long resource that makes the key hashed %d", i, i), UserID: model.NewId()}))
	}
	must(t, s.SaveRemoteUser(RemoteUser{Network: bridge.NetworkMatrix, RemoteID: "@carol:example.org", UserID: model.NewId()}))
	for range 2 {
		must(t, s.SaveGhost(Ghost{Network: bridge.NetworkMatrix, UserID: model.NewId(), RemoteID: "@_mm_x:example.org"}))
	}
	got, err := s.CountPeople()
	must(t, err)
	want := map[bridge.Network]People{bridge.NetworkXMPP: {RemoteUsers: 3}, bridge.NetworkMatrix: {RemoteUsers: 1, Ghosts: 2}}
	if !maps.Equal(got, want) {
		t.Fatalf("CountPeople = %v, want %v", got, want)
	}
}
