package xmpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// dyingStore is the store as a bridge that died sees it: once dead, what it
// writes is lost, as when the process was killed before writing. Once
// behind, the room's archive position no longer moves, as when the bridge
// died before it handled the echoes of what it sent.
type dyingStore struct {
	*memStore
	dead, behind atomic.Bool
}

func (s *dyingStore) die() { s.dead.Store(true) }

func (s *dyingStore) SetCursor(linkID, name, value string) error {
	if s.dead.Load() || s.behind.Load() {
		return nil
	}
	return s.memStore.SetCursor(linkID, name, value)
}

func (s *dyingStore) SetAlias(namespace, key, value string) error {
	if s.dead.Load() {
		return nil
	}
	return s.memStore.SetAlias(namespace, key, value)
}

// slowStore holds the reads of archive positions until released: a
// catch-up that has not got far yet (a busy room, a loaded server).
type slowStore struct {
	*memStore
	release chan struct{}
}

func (s *slowStore) GetCursor(linkID, name string) (string, bool, error) {
	if strings.HasPrefix(name, archiveCursorName("")) {
		<-s.release
	}
	return s.memStore.GetCursor(linkID, name)
}

// deaths has two holders of room die in turn on a server of kind: the
// first as it was about to send a post (nothing went out), the second right
// after sending one, before it recorded anything of it (not the room's echo,
// not the archive position, not the counterpart). What the survivors share
// is st.
type deaths struct {
	start        starter
	room         jid.JID
	carol        *xmpptest.Client
	st           *memStore
	sent, unsent *bridge.Delivery
	sentID       string
}

func twoDeaths(ctx context.Context, t *testing.T, kind testservers.Kind, mode string) *deaths {
	t.Helper()
	srv, room, carol := serverWithCarol(ctx, t, kind, testservers.Options{})
	start := starters(t, srv)[mode]
	st := linkedStore(room)
	post := func(id, text string) *bridge.Delivery {
		return &bridge.Delivery{Room: room.String(), Event: bridge.Event{
			Kind: bridge.KindMessage, Sender: alice, Text: text, Time: time.Now(),
			Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: id},
		}}
	}

	// The first holder dies as a post is about to go out.
	dying := &dyingStore{memStore: st}
	first := start(ctx, t, dying, &eventRecorder{})
	waitJoined(t, first, room, "the first bridge")
	// One of alice's posts goes out before, so her ghost is in the
	// room and the archive has something of the bridge's.
	if _, err := first.Deliver(ctx, post("post-0", "before the deaths")); err != nil {
		t.Fatal(err)
	}
	unsent := post("post-1", "the holder died before sending")
	first.testHookBeforeSend = func() error {
		dying.die()
		return errors.New("killed")
	}
	if _, err := first.Deliver(ctx, unsent); err == nil {
		t.Fatal("the send went on after the death")
	}
	crashWithGhosts(first)

	// The next dies right after a post went out.
	dying2 := &dyingStore{memStore: st}
	second := start(ctx, t, dying2, &eventRecorder{})
	waitJoined(t, second, room, "the second bridge")
	sent := post("post-2", "sent, then the holder died")
	second.testHookBeforeSend = func() error {
		dying2.die()
		return nil
	}
	sentID, err := second.Deliver(ctx, sent)
	if err != nil {
		t.Fatalf("the first attempt: %v", err)
	}
	crashWithGhosts(second)

	return &deaths{start: start, room: room, carol: carol, st: st, sent: sent, unsent: unsent, sentID: sentID}
}

// starter starts a bridge over st, which links the room, that hands what
// it reads to sink; it stops when the test ends.
type starter func(ctx context.Context, t *testing.T, st Store, sink bridge.Sink) *Bridge

// starters start bridges on srv: "component", "client" with ghost
// accounts, and "account" (client mode without ghosts: the bridge's
// account speaks for everyone, the name in front).
func starters(t *testing.T, srv xmpptest.Server) map[string]starter {
	srv.CreateUser(t, "bridge", "bridge-pw")
	ghosts := &memGhosts{}
	return map[string]starter{
		"component": func(ctx context.Context, t *testing.T, st Store, sink bridge.Sink) *Bridge {
			return startComponent(ctx, t, srv, st, sink, nil, nil)
		},
		"client": func(ctx context.Context, t *testing.T, st Store, sink bridge.Sink) *Bridge {
			p := srv.Reach()
			return startBridge(ctx, t, Config{
				Mode: ModeClient, Address: p.C2SAddr(), JID: p.JID(t, "bridge"), Password: "bridge-pw",
				TLSMode: TLSStartTLS, CAPEM: p.CACertPEM, Ghosts: ghosts, Secrets: clearSealer{}, GhostNameKey: testGhostNameKey,
			}, st, sink, nil)
		},
		"account": func(ctx context.Context, t *testing.T, st Store, sink bridge.Sink) *Bridge {
			p := srv.Reach()
			return startBridge(ctx, t, Config{
				Mode: ModeClient, Address: p.C2SAddr(), JID: p.JID(t, "bridge"), Password: "bridge-pw",
				TLSMode: TLSStartTLS, CAPEM: p.CACertPEM,
			}, st, sink, nil)
		},
	}
}

// crashWithGhosts ends b's streams, its ghosts' too, the way a killed
// process does.
func crashWithGhosts(b *Bridge) {
	crash(b)
	p := &b.ghostPool
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.ghosts {
		g.mu.Lock()
		if g.session != nil {
			_ = g.session.Conn().Close()
		}
		g.mu.Unlock()
	}
}

// linkedStore is a store where room is linked with "channel".
func linkedStore(room jid.JID) *memStore {
	st := newMemStore()
	st.links = []store.Link{{ChannelID: "channel", Remotes: []store.RemoteRoom{{Network: bridge.NetworkXMPP, Room: room.String()}}}}
	return st
}

// waitJoined waits until b is in room.
func waitJoined(t *testing.T, b *Bridge, room jid.JID, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !joinedRoom(b, room); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not join the linked room", what)
		}
	}
}

// Issue 12 check 2: after the deaths (twoDeaths) the next holder (a
// takeover, a restart) replays both posts from the Mattermost cursor.
// XMPP rooms have no dedup: before, the room got the post sent before the
// death twice. The one whose holder died before it went out is sent once.
func TestReplayAfterADeathSendsOnceOnEachServer(t *testing.T) {
	for _, kind := range testservers.All {
		for _, mode := range []string{"component", "client", "account"} {
			t.Run(kind.Name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				testReplayAfterADeath(t, kind, mode)
			})
		}
	}
}

func testReplayAfterADeath(t *testing.T, kind testservers.Kind, mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := twoDeaths(ctx, t, kind, mode)
	room, carol, st, sent, unsent := d.room, d.carol, d.st, d.sent, d.unsent
	// The next replays both, its catch-up of the room still behind:
	// the replay must not wait for it nor count on it.
	rec := &eventRecorder{}
	slow := &slowStore{memStore: st, release: make(chan struct{})}
	third := d.start(ctx, t, slow, rec)
	waitJoined(t, third, room, "the third bridge")
	id, err := third.Deliver(ctx, sent)
	if err != nil {
		t.Fatalf("the replay: %v", err)
	}
	if id != d.sentID {
		t.Errorf("the replay returned %q, the room's ID of the first copy is %q", id, d.sentID)
	}
	if _, err := third.Deliver(ctx, unsent); err != nil {
		t.Fatalf("the replay of the unsent post: %v", err)
	}

	close(slow.release)

	marker := "carol's marker"
	if _, err := carol.Say(ctx, room, marker); err != nil {
		t.Fatal(err)
	}
	waitRoom(ctx, t, carol, "carol's marker", func(m xmpptest.Message) bool { return m.Body == marker })
	count := map[string]int{}
	for _, m := range carol.Messages() {
		if m.Type == "groupchat" && m.Forwarded == nil {
			// The bridge's account puts the name in front.
			count[strings.TrimPrefix(m.Body, "<"+alice.DisplayName+"> ")]++
		}
	}
	for _, text := range []string{"before the deaths", sent.Text, unsent.Text} {
		if count[text] != 1 {
			t.Errorf("the room got %q %d times (all: %v)", text, count[text], count)
		}
	}

	// Nor does the catch-up take the bridge's own message for
	// someone else's.
	onlyCarolsMarker(t, rec, marker)
}

// The next holder's catch-up reads, after its position, the messages the
// dead ones sent and did not record: they are the bridge's own, not
// someone's to relay back to Mattermost. Before, the one sent right before
// the death came back as a message from alice's ghost, when the catch-up
// got to it before the ghost joined again.
func TestCatchUpAfterADeathRelaysNoOwnMessageOnEachServer(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			d := twoDeaths(ctx, t, kind, "component")
			rec := &eventRecorder{}
			third := d.start(ctx, t, d.st, rec)
			waitJoined(t, third, d.room, "the third bridge")
			if _, err := d.carol.Say(ctx, d.room, "hello"); err != nil {
				t.Fatal(err)
			}
			onlyCarolsMarker(t, rec, "hello")
		})
	}
}

// onlyCarolsMarker waits until the bridge handed carol's marker to the
// core and fails if it handed anything else before it.
func onlyCarolsMarker(t *testing.T, rec *eventRecorder, marker string) {
	t.Helper()
	relayed := map[string]int{}
	for deadline := time.Now().Add(30 * time.Second); relayed[marker] == 0; time.Sleep(50 * time.Millisecond) {
		for _, ev := range rec.take() {
			relayed[ev.Text]++
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol's marker never reached the core; got %v", relayed)
		}
	}
	if len(relayed) != 1 {
		t.Errorf("relayed to the core: %v, want carol's marker only", relayed)
	}
}

// Edits, retractions and reactions the holder sent right before it died,
// before it handled their echoes: the next holder's catch-up does not relay
// them back (before, alice's reaction came back as her ghost's), and their
// replays (the edit and the delete from the Mattermost cursor, a reaction
// delivered again) find them in the archive and send nothing.
func TestActionsAfterADeathOnEachServer(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			srv, room, carol := serverWithCarol(ctx, t, kind, testservers.Options{})
			st := linkedStore(room)
			dying := &dyingStore{memStore: st}
			first := startComponent(ctx, t, srv, dying, &eventRecorder{}, nil, nil)
			waitJoined(t, first, room, "the first bridge")
			msg := &bridge.Delivery{Room: room.String(), Event: bridge.Event{
				Kind: bridge.KindMessage, Sender: alice, Text: "to be edited", Time: time.Now(),
				Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: "post-1"},
			}}
			id, err := first.Deliver(ctx, msg)
			if err != nil {
				t.Fatal(err)
			}
			waitRoom(ctx, t, carol, "the message", func(m xmpptest.Message) bool { return m.Body == msg.Text })
			actions := []*bridge.Delivery{
				{Room: room.String(), TargetID: id, Event: bridge.Event{Kind: bridge.KindEdit, Text: "edited"}},
				{Room: room.String(), TargetID: id, Event: bridge.Event{Kind: bridge.KindReactionAdd, Emoji: "tada"}},
				{Room: room.String(), TargetID: id, Event: bridge.Event{Kind: bridge.KindDelete}},
			}
			for i, d := range actions {
				d.Sender, d.Time = alice, time.Now()
				d.Origin = bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: fmt.Sprintf("post-1-%d", i)}
				if d.Kind == bridge.KindReactionAdd {
					d.Target, d.Origin.ID = "post-1", "post-1:alice:tada"
				}
			}
			first.testHookBeforeSend = func() error {
				dying.behind.Store(true)
				return nil
			}
			for _, d := range actions {
				if _, err := first.Deliver(ctx, d); err != nil {
					t.Fatalf("%s: %v", d.Kind, err)
				}
			}
			waitRoom(ctx, t, carol, "the retraction", func(m xmpptest.Message) bool { return strings.Contains(m.Raw, "urn:xmpp:message-retract:1") })
			crash(first)

			rec := &eventRecorder{}
			second := startComponent(ctx, t, srv, st, rec, nil, nil)
			waitJoined(t, second, room, "the second bridge")
			marker := "carol's marker"
			if _, err := carol.Say(ctx, room, marker); err != nil {
				t.Fatal(err)
			}
			onlyCarolsMarker(t, rec, marker)
			for _, d := range actions {
				if _, err := second.Deliver(ctx, d); err != nil {
					t.Fatalf("the replay of the %s: %v", d.Kind, err)
				}
			}
			again := "carol's second marker"
			if _, err := carol.Say(ctx, room, again); err != nil {
				t.Fatal(err)
			}
			waitRoom(ctx, t, carol, again, func(m xmpptest.Message) bool { return m.Body == again })
			count := map[string]int{}
			for _, m := range carol.Messages() {
				if m.Type != "groupchat" || m.Forwarded != nil {
					continue
				}
				for _, ns := range []string{"urn:xmpp:message-correct:0", "urn:xmpp:reactions:0", "urn:xmpp:message-retract:1"} {
					if strings.Contains(m.Raw, ns) {
						count[ns]++
					}
				}
			}
			for _, ns := range []string{"urn:xmpp:message-correct:0", "urn:xmpp:reactions:0", "urn:xmpp:message-retract:1"} {
				if count[ns] != 1 {
					t.Errorf("the room got %d %s stanzas, want 1", count[ns], ns)
				}
			}
		})
	}
}

// A room that keeps no archive cannot say whether it has a message: the
// next holder sends it again and the room shows it twice (README,
// "Setting up XMPP"). The replay does not fail or wait for an archive that
// is not there, whether the room refuses the query (Prosody without
// muc_mam: the log says so) or answers it from an empty archive (ejabberd,
// mam off in the room's options).
func TestReplayInARoomWithoutArchiveOnEachServer(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			srv, room, carol := serverWithCarol(ctx, t, kind, testservers.Options{NoRoomArchive: true})
			st := linkedStore(room)
			dying := &dyingStore{memStore: st}
			first := startComponent(ctx, t, srv, dying, &eventRecorder{}, nil, nil)
			waitJoined(t, first, room, "the first bridge")
			sent := &bridge.Delivery{Room: room.String(), Event: bridge.Event{
				Kind: bridge.KindMessage, Sender: alice, Text: "sent, then the holder died", Time: time.Now(),
				Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: "post-1"},
			}}
			first.testHookBeforeSend = func() error {
				dying.die()
				return nil
			}
			if _, err := first.Deliver(ctx, sent); err != nil {
				t.Fatalf("the first attempt: %v", err)
			}
			crashWithGhosts(first)

			second := startComponent(ctx, t, srv, st, &eventRecorder{}, nil, nil)
			waitJoined(t, second, room, "the second bridge")
			if _, err := second.Deliver(ctx, sent); err != nil {
				t.Fatalf("the replay: %v", err)
			}
			marker := "carol's marker"
			if _, err := carol.Say(ctx, room, marker); err != nil {
				t.Fatal(err)
			}
			waitRoom(ctx, t, carol, "carol's marker", func(m xmpptest.Message) bool { return m.Body == marker })
			n := 0
			for _, m := range carol.Messages() {
				if m.Type == "groupchat" && m.Forwarded == nil && m.Body == sent.Text {
					n++
				}
			}
			if n != 2 {
				t.Errorf("the room got the message %d times; without an archive to look in, the replay sends it again", n)
			}
		})
	}
}

// The parts of a message split for the room's length limit are separate
// messages: each has its own ID, and none is taken for an earlier attempt
// of another (all parts had one ID, so a part found the part before it).
func TestPartsOfASplitMessageEachGoOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, room, carol := serverWithCarol(ctx, t, testservers.Prosody, testservers.Options{})
	b := startComponent(ctx, t, srv, linkedStore(room), &eventRecorder{}, nil, nil)
	waitJoined(t, b, room, "the bridge")
	ev := bridge.Event{
		Kind: bridge.KindMessage, Sender: alice, Time: time.Now(),
		Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: "post-1"},
	}
	ids := map[string]bool{}
	for part, text := range []string{"the first part", "the second part", "the third part"} {
		d := &bridge.Delivery{Room: room.String(), Event: ev, Part: part}
		d.Text = text
		id, err := b.Deliver(ctx, d)
		if err != nil {
			t.Fatalf("part %d: %v", part, err)
		}
		waitRoom(ctx, t, carol, text, func(m xmpptest.Message) bool { return m.Body == text })
		ids[id] = true
	}
	if len(ids) != 3 {
		t.Errorf("three parts, %d IDs", len(ids))
	}
}

// markReads counts the reads that look for an earlier attempt of a
// delivery: its sending mark, and the origin-id its echo was recorded by.
type markReads struct {
	*memStore
	reads atomic.Int64
}

func (s *markReads) Alias(namespace, key string) (string, bool, error) {
	if strings.HasPrefix(namespace, sendingNS("")) || strings.HasPrefix(namespace, originNS("")) {
		s.reads.Add(1)
	}
	return s.memStore.Alias(namespace, key)
}

// A post from after the bridge started, tried for the first time, cannot
// have been sent yet: it goes out without looking for an earlier attempt
// (two reads per message), but is still marked as being sent, which is
// what a holder after a death finds it by. A post whose attempt failed in
// this process, and one from before the start, are looked for.
func TestAFreshDeliveryGoesOutWithoutLookingForAnEarlierOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, room, _ := serverWithCarol(ctx, t, testservers.Prosody, testservers.Options{})
	st := &markReads{memStore: linkedStore(room)}
	b := starters(t, srv)["component"](ctx, t, st, &eventRecorder{})
	waitJoined(t, b, room, "the bridge")
	b.mu.Lock()
	startedAt := b.started.Add(-2 * freshAfter)
	b.started = startedAt
	b.mu.Unlock()
	post := func(id string, at time.Time) *bridge.Delivery {
		return &bridge.Delivery{Room: room.String(), Event: bridge.Event{
			Kind: bridge.KindMessage, Sender: alice, Text: "post " + id, Time: at,
			Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: id},
		}}
	}
	deliver := func(d *bridge.Delivery) int64 {
		t.Helper()
		st.reads.Store(0)
		if _, err := b.Deliver(ctx, d); err != nil {
			t.Fatalf("%s: %v", d.Text, err)
		}
		return st.reads.Load()
	}

	fresh := post("post-1", time.Now())
	if n := deliver(fresh); n != 0 {
		t.Errorf("a fresh post looked for an earlier attempt (%d reads)", n)
	}
	if _, ok, _ := st.memStore.Alias(sendingNS(room.String()), deliveryID(fresh)); !ok {
		t.Error("a fresh post went out unmarked: a holder after a death would send it again")
	}

	retried := post("post-2", time.Now())
	b.testHookBeforeSend = func() error { return errors.New("the connection broke") }
	if _, err := b.Deliver(ctx, retried); err == nil {
		t.Fatal("the failing attempt succeeded")
	}
	b.testHookBeforeSend = nil
	if n := deliver(retried); n == 0 {
		t.Error("the attempt after a failure did not look for the first")
	}
	if n := deliver(post("post-3", startedAt.Add(-time.Second))); n == 0 {
		t.Error("a post from before the bridge started did not look for an earlier attempt")
	}
}
