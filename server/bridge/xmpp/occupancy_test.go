package xmpp

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Issue 9 item 9: in component mode the bot and the ghosts are occupants
// on one stream. Each room message reaches the bridge once, and neither a
// restart nor a crash nor a dropped stream leaves a ghost behind.

var bob = bridge.Sender{Network: bridge.NetworkMattermost, ID: "bob-user-id", Username: "bob", DisplayName: "Bob Builder"}

// componentBridge starts a component-mode bridge on p with st, where room
// is linked, and waits until it is in the room.
func componentBridge(ctx context.Context, t *testing.T, p xmpptest.Server, room jid.JID, st *memStore) (*Bridge, *eventRecorder) {
	t.Helper()
	b, rec := startComponentBridge(ctx, t, p, room, st)
	// The link in the store is joined on connecting.
	for deadline := time.Now().Add(30 * time.Second); !joinedRoom(b, room); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bridge did not join the linked room")
		}
	}
	return b, rec
}

// startComponentBridge starts a component-mode bridge on p with st, where
// room is linked.
func startComponentBridge(ctx context.Context, t *testing.T, p xmpptest.Server, room jid.JID, st *memStore) (*Bridge, *eventRecorder) {
	t.Helper()
	st.mu.Lock()
	st.links = []store.Link{{ChannelID: "channel", Remotes: []store.RemoteRoom{{Network: bridge.NetworkXMPP, Room: room.String()}}}}
	st.mu.Unlock()
	rec := &eventRecorder{}
	return startComponent(ctx, t, p, st, rec, nil, nil), rec
}

// startComponent starts a component-mode bridge on p, over direct TLS,
// with the config tweak makes; it stops when the test ends.
func startComponent(ctx context.Context, t *testing.T, srv xmpptest.Server, st Store, sink bridge.Sink, log bridge.Logger, tweak func(*Config)) *Bridge {
	t.Helper()
	p := srv.Reach()
	cfg := Config{
		Mode: ModeComponent, Address: p.ComponentTLSAddr(), TLSMode: TLSDirect, CAPEM: p.CACertPEM,
		ComponentDomain: jid.MustParse(p.ComponentDomain), ComponentSecret: p.ComponentSecret,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	return startBridge(ctx, t, cfg, st, sink, log)
}

// startBridge starts a bridge with cfg over st, handing what it reads to
// sink; it stops when the test ends.
func startBridge(ctx context.Context, t *testing.T, cfg Config, st Store, sink bridge.Sink, log bridge.Logger) *Bridge {
	t.Helper()
	b, err := New(cfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if err = b.Start(ctx, sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Stop(sctx)
	})
	return b
}

// joinedRoom reports whether b is in room.
func joinedRoom(b *Bridge, room jid.JID) bool {
	b.mu.Lock()
	r, ok := b.rooms[room.String()]
	b.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-r.joined:
		return true
	default:
		return false
	}
}

// crash ends b's stream the way a killed process does: no leave, no
// closing of the stream.
func crash(b *Bridge) {
	b.mu.Lock()
	cancel, s, done := b.cancel, b.session, b.done
	b.mu.Unlock()
	cancel()
	if s != nil {
		_ = s.Conn().Close()
	}
	<-done
}

// waitOccupants waits until c sees exactly want in room.
func waitOccupants(t *testing.T, c *prosodytest.Client, room jid.JID, what string, want ...string) {
	t.Helper()
	slices.Sort(want)
	var got []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got = slices.Sorted(maps.Keys(inRoom(c, room)))
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the room holds %q, want %q", what, got, want)
		}
	}
}

// ghostsSpeak has alice and bob say something through b, so their ghosts
// join, and waits until carol saw both.
func ghostsSpeak(ctx context.Context, t *testing.T, b *Bridge, room jid.JID, carol *prosodytest.Client, tag string) {
	t.Helper()
	for _, who := range []bridge.Sender{alice, bob} {
		text := who.Username + " " + tag
		if _, err := say(ctx, b, room, who, text); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		m, err := carol.WaitMessage(wctx, func(m prosodytest.Message) bool { return m.Body == text && m.Forwarded == nil })
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if m.From.Resourcepart() != who.DisplayName {
			t.Fatalf("%q came from %s", text, m.From)
		}
	}
}

// carolSaysOnce has carol say each text, then a marker, and fails unless
// the bridge handed each text to the core exactly once.
func carolSaysOnce(ctx context.Context, t *testing.T, carol *prosodytest.Client, room jid.JID, rec *eventRecorder, texts ...string) {
	t.Helper()
	marker := "marker after " + texts[len(texts)-1]
	for _, text := range append(slices.Clone(texts), marker) {
		if _, err := carol.Say(ctx, room, text); err != nil {
			t.Fatal(err)
		}
	}
	expectOnceBefore(t, rec, marker, texts...)
}

// expectOnceBefore waits until the bridge handed marker to the core and
// fails unless it handed each of texts exactly once. The copies of a
// message come right behind it on the stream, and a catch-up's results
// before the live messages held meanwhile, so once the marker is handled,
// every copy of what was said before it has been too.
func expectOnceBefore(t *testing.T, rec *eventRecorder, marker string, texts ...string) {
	t.Helper()
	count := map[string]int{}
	for deadline := time.Now().Add(30 * time.Second); count[marker] == 0; time.Sleep(50 * time.Millisecond) {
		for _, ev := range rec.take() {
			if ev.Kind == bridge.KindMessage {
				count[ev.Text]++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol's marker never reached the core; got %v", count)
		}
	}
	for _, text := range texts {
		if count[text] != 1 {
			t.Fatalf("carol's %q reached the core %d times (all: %v)", text, count[text], count)
		}
	}
}

// With ghosts in the room, the room sends each message to each of them
// too, on the bridge's one stream: only the bot's copy is relayed.
func TestComponentGhostsCopiesAreNotRelayed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, room, carol := prosodyWithCarol(ctx, t)
	b, rec := componentBridge(ctx, t, p, room, newMemStore())
	ghostsSpeak(ctx, t, b, room, carol, "speaking")
	waitOccupants(t, carol, room, "with the ghosts in", "Alice Liddell", "Bob Builder", "Carol", "Mattermost")
	carolSaysOnce(ctx, t, carol, room, rec, "one", "two", "three")
}

// Stop takes the ghosts and the bot out of the rooms before the stream
// closes.
func TestComponentStopLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, room, carol := prosodyWithCarol(ctx, t)
	st := newMemStore()
	b, _ := componentBridge(ctx, t, p, room, st)
	ghostsSpeak(ctx, t, b, room, carol, "speaking")
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := b.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	waitOccupants(t, carol, room, "after Stop", "Carol")

	b2, rec := componentBridge(ctx, t, p, room, st)
	waitOccupants(t, carol, room, "after the next start", "Carol", "Mattermost")
	carolSaysOnce(ctx, t, carol, room, rec, "after the restart")
	ghostsSpeak(ctx, t, b2, room, carol, "back")
}

// When Stop did not run (a crash) or the stream dropped, the ghosts of the
// earlier session are still in the room; the next session takes them out,
// relays each message once meanwhile, and its own ghosts join as usual.
func TestComponentLeftoversAreRemoved(t *testing.T) {
	for _, how := range []string{"crash", "dropped stream"} {
		t.Run(strings.ReplaceAll(how, " ", "_"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			p, room, carol := prosodyWithCarol(ctx, t)
			st := newMemStore()
			b, rec := componentBridge(ctx, t, p, room, st)
			ghostsSpeak(ctx, t, b, room, carol, "speaking")
			waitOccupants(t, carol, room, "with the ghosts in", "Alice Liddell", "Bob Builder", "Carol", "Mattermost")

			switch how {
			case "crash":
				crash(b)
				if got := slices.Sorted(maps.Keys(inRoom(carol, room))); len(got) != 4 {
					t.Fatalf("a crash is no leave, yet the room holds %q", got)
				}
				b, rec = componentBridge(ctx, t, p, room, st)
			case "dropped stream":
				b.mu.Lock()
				s := b.session
				b.mu.Unlock()
				_ = s.Conn().Close()
			}
			waitOccupants(t, carol, room, "after "+how, "Carol", "Mattermost")
			carolSaysOnce(ctx, t, carol, room, rec, fmt.Sprintf("after the %s 1", how), fmt.Sprintf("after the %s 2", how))
			ghostsSpeak(ctx, t, b, room, carol, "back")
			waitOccupants(t, carol, room, "with the ghosts back", "Alice Liddell", "Bob Builder", "Carol", "Mattermost")
			carolSaysOnce(ctx, t, carol, room, rec, "with the ghosts back")
		})
	}
}

// On connecting, the linked rooms are joined while deliveries and new
// links want the same rooms: the bot joins once, and what was said while
// it was away is caught up once.
func TestConcurrentJoinsCatchUpOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, room, carol := prosodyWithCarol(ctx, t)
	st := newMemStore()
	b, _ := componentBridge(ctx, t, p, room, st)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok, _ := st.GetCursor(string(bridge.NetworkXMPP), archiveCursorName(room.String())); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bridge saved no archive position")
		}
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := b.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"while away 1", "while away 2"} {
		if _, err := carol.Say(ctx, room, text); err != nil {
			t.Fatal(err)
		}
	}

	b, rec := startComponentBridge(ctx, t, p, room, st)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := b.RoomLinked(ctx, room.String()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		if _, err := say(ctx, b, room, alice, "alice is back"); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if _, err := carol.Say(ctx, room, "marker"); err != nil {
		t.Fatal(err)
	}
	expectOnceBefore(t, rec, "marker", "while away 1", "while away 2")
	if n := strings.Count(strings.Join(slices.Collect(maps.Keys(inRoom(carol, room))), "|"), "Mattermost"); n != 1 {
		t.Fatalf("the bot is in the room %d times", n)
	}
}
