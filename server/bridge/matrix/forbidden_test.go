package matrix

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// forbiddingHomeserver refuses the first refused sends with M_FORBIDDEN,
// as Synapse does for a puppet that is no longer in the room, and counts
// what the bridge asks.
type forbiddingHomeserver struct {
	mu                      sync.Mutex
	refused                 int // sends still to refuse
	sends, registers, joins int
}

func (h *forbiddingHomeserver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case strings.Contains(r.URL.Path, "/send/"):
		h.sends++
		if h.refused > 0 {
			h.refused--
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errcode":"M_FORBIDDEN","error":"User @mm_alice:example.org not in room !room:example.org"}`))
			return
		}
		_, _ = w.Write([]byte(`{"event_id":"$sent"}`))
	case strings.HasSuffix(r.URL.Path, "/register"):
		h.registers++
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"errcode":"M_USER_IN_USE","error":"taken"}`))
	case strings.Contains(r.URL.Path, "/join"):
		h.joins++
		_, _ = w.Write([]byte(`{"room_id":"!room:example.org"}`))
	default:
		_, _ = w.Write([]byte(`{}`))
	}
}

func (h *forbiddingHomeserver) counts() (sends, registers, joins int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sends, h.registers, h.joins
}

// A puppet refused once is registered and joined afresh and tried again:
// it may have been removed from the room, or forgotten by the homeserver.
// Refused again, the message is refused for good.
func TestRefusedPuppetIsCheckedAndTriedAgainOnce(t *testing.T) {
	hs := &forbiddingHomeserver{refused: 1}
	b, _, _ := newTestBridge(t, hs)
	d := aliceSays("hi", time.Now())
	eventID, err := b.Deliver(context.Background(), d)
	if err != nil || eventID != "$sent" {
		t.Fatalf("Deliver after one refusal: %q, %v", eventID, err)
	}
	sends, registers, joins := hs.counts()
	if sends != 2 || registers < 2 || joins < 2 {
		t.Fatalf("%d sends, %d registrations, %d joins; want 2 sends and the puppet registered and joined again", sends, registers, joins)
	}

	hs.mu.Lock()
	hs.refused = 2
	hs.mu.Unlock()
	d2 := aliceSays("refused", time.Now())
	d2.Origin.ID = "p2"
	if _, err := b.Deliver(context.Background(), d2); !bridge.IsPermanent(err) {
		t.Fatalf("Deliver refused twice: %v, want a permanent error", err)
	}
	if sends2, _, _ := hs.counts(); sends2 != sends+2 {
		t.Fatalf("%d sends for a message refused twice, want 2", sends2-sends)
	}
}
