package xmpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// memGhosts keeps ghost records in memory.
type memGhosts struct {
	mu     sync.Mutex
	ghosts map[string]store.Ghost
}

func (m *memGhosts) GetGhost(network bridge.Network, userID string) (*store.Ghost, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.ghosts[string(network)+"|"+userID]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &g, nil
}

func (m *memGhosts) SaveGhost(g store.Ghost) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ghosts == nil {
		m.ghosts = map[string]store.Ghost{}
	}
	m.ghosts[string(g.Network)+"|"+g.UserID] = g
	return nil
}

// clearSealer stands in for the secret box; these tests are not about it.
type clearSealer struct{}

func (clearSealer) Seal(b []byte) ([]byte, error) { return append([]byte("sealed:"), b...), nil }
func (clearSealer) Open(b []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(string(b), "sealed:")
	if !ok {
		return nil, errors.New("not sealed here")
	}
	return []byte(rest), nil
}

// clientBridge is a client-mode bridge with ghost accounts, connected to
// p and sitting in room.
func clientBridge(ctx context.Context, t *testing.T, srv xmpptest.Server, room jid.JID, ghosts *memGhosts) (*Bridge, *eventRecorder) {
	t.Helper()
	srv.CreateUser(t, "bridge", "bridge-pw")
	p := srv.Reach()
	b, err := New(Config{
		Mode: ModeClient, Address: p.C2SAddr(), JID: p.JID(t, "bridge"), Password: "bridge-pw",
		TLSMode: TLSStartTLS, CAPEM: p.CACertPEM, Ghosts: ghosts, Secrets: clearSealer{}, GhostNameKey: testGhostNameKey,
	}, newMemStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &eventRecorder{}
	if err = b.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Stop(sctx)
	})
	if err = b.RoomLinked(ctx, room.String()); err != nil {
		t.Fatal(err)
	}
	return b, rec
}

var testGhostNameKey = []byte("this installation's secret key")

var alice = bridge.Sender{Network: bridge.NetworkMattermost, ID: "alice-user-id", Username: "alice", DisplayName: "Alice Liddell"}

func say(ctx context.Context, b *Bridge, room jid.JID, who bridge.Sender, text string) (string, error) {
	return b.Deliver(ctx, &bridge.Delivery{Room: room.String(), Event: bridge.Event{
		Kind: bridge.KindMessage, Sender: who, Text: text, Time: time.Now(),
		Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: "post-" + text},
	}})
}

// inRoom lists the nicks c last saw available in room.
func inRoom(c *prosodytest.Client, room jid.JID) map[string]bool {
	in := map[string]bool{}
	for _, p := range c.Presences() {
		if !p.From.Bare().Equal(room) {
			continue
		}
		in[p.From.Resourcepart()] = p.Type != "unavailable"
	}
	for nick, here := range in {
		if !here {
			delete(in, nick)
		}
	}
	return in
}

// Issue 8 item 10: closing idle ghost connections never races a delivery
// into an orphaned connection, and a nick the bridge stopped using is
// forgotten, so a real occupant who takes it is relayed.
func TestIdleGhostsCloseCleanlyAndFreeTheirNicks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, room, carol := prosodyWithCarol(ctx, t)
	b, rec := clientBridge(ctx, t, p, room, &memGhosts{})

	// Every delivery finds its ghost just as idle connections are closed
	// (with no idle time at all, every ghost not in use is idle).
	b.testHookGhostLookedUp = func() { b.closeIdleGhosts(0) }
	for i := range 4 {
		text := fmt.Sprintf("alice %d", i)
		if _, err := say(ctx, b, room, alice, text); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		m, err := carol.WaitMessage(wctx, func(m prosodytest.Message) bool { return m.Body == text && m.Forwarded == nil })
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
		if m.From.Resourcepart() != "Alice Liddell" {
			t.Fatalf("delivery %d came from %q: a second connection of alice's ghost was in the room", i, m.From.Resourcepart())
		}
	}
	b.testHookGhostLookedUp = nil

	// Idle: the ghost goes, and no connection of it stays behind.
	b.closeIdleGhosts(0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ghosts []string
		for nick := range inRoom(carol, room) {
			if strings.HasPrefix(nick, "Alice Liddell") {
				ghosts = append(ghosts, nick)
			}
		}
		if len(ghosts) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing idle ghosts, still in the room: %q (orphaned connections)", ghosts)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Someone real takes the nick the ghost had: they are relayed.
	p.CreateUser(t, "dave", "dave-pw")
	dave := p.Client(t, "dave", "dave-pw")
	if err := dave.JoinRoom(ctx, room, "Alice Liddell"); err != nil {
		t.Fatal(err)
	}
	if _, err := dave.Say(ctx, room, "a real person named like alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Say(ctx, room, "carol after dave"); err != nil {
		t.Fatal(err)
	}
	var got []bridge.Event
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got = append(got, rec.take()...)
		var texts []string
		for _, ev := range got {
			texts = append(texts, ev.Sender.DisplayName+": "+ev.Text)
		}
		joined := strings.Join(texts, "\n")
		if strings.Contains(joined, "Alice Liddell: a real person named like alice") {
			break
		}
		if strings.Contains(joined, "Carol: carol after dave") || time.Now().After(deadline) {
			t.Fatalf("the real occupant using the ghost's old nick was not relayed; got:\n%s", joined)
		}
	}
}

// Issue 8 item 5: a ghost account's name cannot be derived from the
// Mattermost username, so nobody can register it first.
func TestGhostAccountNamesCannotBePreRegistered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, room, carol := prosodyWithCarol(ctx, t)
	// Mallory registers every name she can derive from "alice".
	taken := map[string]bool{}
	for _, name := range []string{"mm-alice", "mm-alice-2", "mm-alice-3", "mm-alice-4", "mm-alice-5", "alice"} {
		p.CreateUser(t, name, "mallory-pw")
		taken[name] = true
	}
	ghosts := &memGhosts{}
	b, _ := clientBridge(ctx, t, p, room, ghosts)
	if _, err := say(ctx, b, room, alice, "alice speaks"); err != nil {
		t.Fatalf("alice's delivery: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	m, err := carol.WaitMessage(wctx, func(m prosodytest.Message) bool { return m.Body == "alice speaks" && m.Forwarded == nil })
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ghosts.GetGhost(bridge.NetworkXMPP, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	account := jid.MustParse(rec.RemoteID)
	if m.From.Resourcepart() != "Alice Liddell" || taken[account.Localpart()] || !strings.HasPrefix(account.Localpart(), "mm-alice-") {
		t.Fatalf("alice spoke as %s through account %s", m.From, account)
	}

	// If the keyed name is taken anyway (it leaked), a random one is used
	// and status says so.
	bob := bridge.Sender{Network: bridge.NetworkMattermost, ID: "bob-user-id", Username: "bob", DisplayName: "Bob Builder"}
	leaked := ghostLocalpart(testGhostNameKey, bob)
	p.CreateUser(t, leaked, "mallory-pw")
	if _, err = say(ctx, b, room, bob, "bob speaks"); err != nil {
		t.Fatalf("bob's delivery: %v", err)
	}
	if rec, _ = ghosts.GetGhost(bridge.NetworkXMPP, bob.ID); rec == nil || strings.HasPrefix(rec.RemoteID, leaked+"@") || !strings.HasPrefix(rec.RemoteID, "mm-bob-") {
		t.Fatalf("bob's ghost record: %+v", rec)
	}
	if d := b.Health().Detail; !strings.Contains(d, "1 ghost account names were already registered by someone else") {
		t.Fatalf("status does not tell about the taken name: %q", d)
	}

	// A ghost registered under the old, predictable scheme keeps its
	// account: the record names it.
	dora := bridge.Sender{Network: bridge.NetworkMattermost, ID: "dora-user-id", Username: "dora", DisplayName: "Dora"}
	old := p.CreateUser(t, "mm-dora", "dora-ghost-pw")
	sealed, _ := clearSealer{}.Seal([]byte("dora-ghost-pw"))
	if err = ghosts.SaveGhost(store.Ghost{Network: bridge.NetworkXMPP, UserID: dora.ID, RemoteID: old.String(), Secret: sealed}); err != nil {
		t.Fatal(err)
	}
	if _, err = say(ctx, b, room, dora, "dora speaks"); err != nil {
		t.Fatalf("dora's delivery: %v", err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 15*time.Second)
	m, err = carol.WaitMessage(wctx, func(m prosodytest.Message) bool { return m.Body == "dora speaks" && m.Forwarded == nil })
	wcancel()
	if err != nil || m.From.Resourcepart() != "Dora" {
		t.Fatalf("dora's message: %v from %s", err, m.From)
	}
	if rec, _ = ghosts.GetGhost(bridge.NetworkXMPP, dora.ID); rec.RemoteID != old.String() {
		t.Fatalf("dora's existing ghost was replaced by %s", rec.RemoteID)
	}
}

// prosodyWithCarol starts Prosody with a room "dev" where carol is.
func prosodyWithCarol(ctx context.Context, t *testing.T) (*prosodytest.Server, jid.JID, *prosodytest.Client) {
	t.Helper()
	srv, room, carol := serverWithCarol(ctx, t, testservers.Prosody, testservers.Options{})
	return srv.(*prosodytest.Server), room, carol
}

// serverWithCarol starts a server of kind with a room "dev" where carol is.
func serverWithCarol(ctx context.Context, t *testing.T, kind testservers.Kind, o testservers.Options) (xmpptest.Server, jid.JID, *xmpptest.Client) {
	t.Helper()
	srv := kind.Start(t, o)
	srv.CreateUser(t, "carol", "carol-pw")
	p := srv.Reach()
	room := p.RoomJID(t, "dev")
	carol := p.Client(t, "carol", "carol-pw")
	if err := carol.JoinRoom(ctx, room, "Carol"); err != nil {
		t.Fatal(err)
	}
	return srv, room, carol
}

// countingLog counts the warnings a bridge logs, by message.
type countingLog struct {
	bridge.NopLogger
	mu    sync.Mutex
	warns map[string]int
}

func (l *countingLog) Warn(msg string, kv ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.warns == nil {
		l.warns = map[string]int{}
	}
	l.warns[msg]++
}

func (l *countingLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warns[msg]
}

// A component's keepalive must be a stanza the server routes (with a from
// and a to): Prosody closed the stream at every ping, once a minute.
func TestComponentKeepaliveKeepsTheStream(t *testing.T) {
	p := prosodytest.Start(t, prosodytest.Options{})
	log := &countingLog{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Pings time out after half the interval: long enough for a loaded
	// machine, short enough to see several.
	b := startComponent(ctx, t, p, newMemStore(), &eventRecorder{}, log, func(c *Config) { c.Keepalive = 2 * time.Second })
	if _, err := b.currentSession(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(7 * time.Second) // three keepalives
	if n := log.count("XMPP session ended"); n != 0 || b.Health().State != bridge.StateConnected {
		t.Fatalf("the session ended %d times over three keepalives (state %s)", n, b.Health().State)
	}
}
