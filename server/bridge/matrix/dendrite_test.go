package matrix

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/dendritetest"
)

// Against a real Dendrite: a retry finds the event an earlier attempt
// created by its delivery mark, so it is not sent twice even when the
// homeserver has forgotten the transaction ID (here: a restart).
func TestRetryAfterHomeserverRestartFindsTheEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, d, carol, created := startDendriteRoom(ctx, t)
	st := newMemStore()
	b, err := New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	del := aliceSays("only once", time.Now())
	del.Room = string(created.RoomID)
	first, err := b.Deliver(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	// As if the answer to the first attempt had been lost.
	b.settled(txnID(del, 0), false)
	again, err := b.Deliver(ctx, del)
	if err != nil || again != first {
		t.Fatalf("retry gave %q (%v), want the first event %q", again, err, first)
	}
	if n := countInRoom(ctx, t, carol, created.RoomID, "only once"); n != 1 {
		t.Fatalf("the message is in the room %d times", n)
	}
}

// Against a real Dendrite: the next holder of a cluster delivering again a
// message the dead one sent but did not record finds the event, although
// it saw the message at another time. An XMPP message seen live has the
// time it arrived, the same one replayed from the room's archive has the
// archive's stamp; the delivery's transaction ID may not depend on that,
// or the next holder looks for an event under another mark and sends the
// message twice.
func TestNextHolderFindsAMessageSeenAtAnotherTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, _, carol, created := startDendriteRoom(ctx, t)
	st := newMemStore()
	dead, err := New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().Add(-time.Second)
	live := eveSays("x 8", stamp.Add(300*time.Millisecond))
	live.Room = string(created.RoomID)
	first, err := dead.Deliver(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	next, err := New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	replayed := eveSays("x 8", stamp)
	replayed.Room = string(created.RoomID)
	again, err := next.Deliver(ctx, replayed)
	if err != nil || again != first {
		t.Fatalf("the next holder's delivery gave %q (%v), want the first event %q", again, err, first)
	}
	if n := countInRoom(ctx, t, carol, created.RoomID, "x 8"); n != 1 {
		t.Fatalf("the message is in the room %d times", n)
	}
}

// eveSays is a message from an XMPP room, seen at at.
func eveSays(text string, at time.Time) *bridge.Delivery {
	return &bridge.Delivery{
		Event: bridge.Event{Kind: bridge.KindMessage, Origin: bridge.Ref{Network: bridge.NetworkXMPP, Room: "dev@conference.localhost", ID: "stanza-8"},
			Sender: bridge.Sender{Network: bridge.NetworkXMPP, ID: "eve@localhost", Username: "eve", DisplayName: "Eve"}, Text: text, Time: at},
	}
}

// startDendriteRoom starts Dendrite with the bridge registered and carol
// in a room of her own.
func startDendriteRoom(ctx context.Context, t *testing.T) (Config, *dendritetest.Server, *mautrix.Client, *mautrix.RespCreateRoom) {
	t.Helper()
	cfg := testConfig("")
	cfg.ServerName = "localhost"
	reg := Registration(cfg, "")
	as := &dendritetest.AppService{ID: reg.ID, ASToken: cfg.ASToken, HSToken: cfg.HSToken, SenderLocalpart: cfg.BotLocalpart}
	for _, ns := range reg.Namespaces.UserIDs {
		as.Users = append(as.Users, dendritetest.Namespace{Regex: ns.Regex, Exclusive: ns.Exclusive})
	}
	d := dendritetest.Start(t, dendritetest.Options{ServerName: "localhost", AppService: as})
	cfg.HomeserverURL = d.URL
	userID, token := d.RegisterUser(t, "carol", "carol-password")
	carol, err := mautrix.NewClient(d.URL, id.UserID(userID), token)
	if err != nil {
		t.Fatal(err)
	}
	created, err := carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, d, carol, created
}

// countInRoom counts the messages saying body among the room's latest.
func countInRoom(ctx context.Context, t *testing.T, c *mautrix.Client, room id.RoomID, body string) int {
	t.Helper()
	msgs, err := c.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range msgs.Chunk {
		if e.Type == event.EventMessage && e.Content.Raw["body"] == body {
			n++
		}
	}
	return n
}
