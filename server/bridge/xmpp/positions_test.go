package xmpp

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// heldSink accepts events without delivering them: the test settles them,
// or refuses them as a full queue would.
type heldSink struct {
	mu      sync.Mutex
	events  []bridge.Event
	refuse  func(ev bridge.Event) error
	refused int
}

func (s *heldSink) Receive(_ context.Context, ev bridge.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		if err := s.refuse(ev); err != nil {
			s.refused++
			return err
		}
	}
	s.events = append(s.events, ev)
	return nil
}

func (s *heldSink) get(i int) bridge.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events[i]
}

func (s *heldSink) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range s.events {
		out = append(out, ev.Text)
	}
	return out
}

func roomMessage(room, nick, stanzaID, body string) []byte {
	return fmt.Appendf(nil, `<message from="%s/%s" type="groupchat" id="o-%s"><body>%s</body><stanza-id xmlns="urn:xmpp:sid:0" id=%q by=%q/></message>`,
		room, nick, stanzaID, body, stanzaID, room)
}

// Issue 9 item 2: the archive position, where the next catch-up starts,
// moves past a message only once the core settled it (delivered or dropped
// for good everywhere), and never past an earlier one still on its way.
func TestArchivePositionMovesOnlyAfterDelivery(t *testing.T) {
	ctx := context.Background()
	b, st, _ := newInProcessBridge(t)
	sink := &heldSink{}
	b.sink = sink
	cursor := func() string {
		v, _, _ := st.GetCursor(string(b.Network()), archiveCursorName(testRoom.String()))
		return v
	}
	b.saveArchivePosition(testRoom.String(), "s0")
	for i := 1; i <= 3; i++ {
		b.handleMessage(ctx, roomMessage(testRoom.String(), "Carol", fmt.Sprint("s", i), fmt.Sprint("m", i)))
	}
	if got := sink.texts(); len(got) != 3 {
		t.Fatalf("handed on %v", got)
	}
	if got := cursor(); got != "s0" {
		t.Fatalf("position = %q before anything was delivered, want s0", got)
	}
	sink.get(1).Settled()
	if got := cursor(); got != "s0" {
		t.Fatalf("position = %q with m1 still on its way, want s0", got)
	}
	sink.get(0).Settled()
	if got := cursor(); got != "s2" {
		t.Fatalf("position = %q after m1 and m2 settled, want s2", got)
	}
	sink.get(2).Settled()
	if got := cursor(); got != "s3" {
		t.Fatalf("position = %q, want s3", got)
	}
}

// Issue 9 item 8: a full queue holds the room back instead of losing what
// follows: nothing more of the room is handed on (it will be read again
// from the archive), its position stays before the refused message, and
// other rooms keep flowing.
func TestFullQueueHoldsTheRoomBack(t *testing.T) {
	ctx := context.Background()
	b, st, _ := newInProcessBridge(t)
	other := b.roomState(jid.MustParse("other@conference.example.com"))
	other.catchingUp = false
	otherRoom := other.jid.String()
	space := make(chan struct{})
	sink := &heldSink{refuse: func(ev bridge.Event) error {
		if ev.Text == "m2" {
			return &bridge.QueueFullError{Key: bridge.QueueKey{Link: "c", Dest: "matrix|!r"}, Items: 1000, Space: space}
		}
		return nil
	}}
	b.sink = sink
	cursor := func(room string) string {
		v, _, _ := st.GetCursor(string(b.Network()), archiveCursorName(room))
		return v
	}
	b.handleMessage(ctx, roomMessage(testRoom.String(), "Carol", "s1", "m1"))
	b.handleMessage(ctx, roomMessage(testRoom.String(), "Carol", "s2", "m2"))
	b.handleMessage(ctx, roomMessage(testRoom.String(), "Carol", "s3", "m3"))
	b.handleMessage(ctx, roomMessage(otherRoom, "Dave", "o1", "elsewhere"))
	if got := sink.texts(); len(got) != 2 || got[0] != "m1" || got[1] != "elsewhere" {
		t.Fatalf("handed on %v, want m1 and the other room's message", got)
	}
	sink.get(0).Settled()
	sink.get(1).Settled()
	if got := cursor(testRoom.String()); got != "s1" {
		t.Fatalf("position = %q, want s1 (m2 must be read again)", got)
	}
	if got := cursor(otherRoom); got != "o1" {
		t.Fatalf("other room's position = %q", got)
	}
	b.mu.Lock()
	r := b.rooms[testRoom.String()]
	behind, fed := r.behind, r.fed
	b.mu.Unlock()
	if !behind || fed != "s1" {
		t.Fatalf("behind = %v, fed = %q; want held back, reading again after s1", behind, fed)
	}
}
