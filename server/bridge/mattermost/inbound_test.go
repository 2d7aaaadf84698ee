package mattermost

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// A node that dies after creating a post but before recording it leaves
// the next holder to deliver the same message again: it must find the
// post the first one made rather than make a second. The second bridge
// here is that next holder: same server, nothing in memory.
func TestDeliveringAMessageAgainMakesNoSecondPost(t *testing.T) {
	h := newLagHarness(t)
	api := h.n.API(pluginID)
	next := New(api, store.New(api), h.b.opts)
	d := &bridge.Delivery{
		Event: bridge.Event{
			Kind:   bridge.KindMessage,
			Origin: bridge.Ref{Network: bridge.NetworkXMPP, Room: "town@conference.example.org", ID: "stanza-1"},
			Sender: bridge.Sender{Network: bridge.NetworkXMPP, ID: "carol@example.org", Username: "carol", DisplayName: "Carol"},
			Text:   "said once",
		},
		Room: h.ch.Id,
	}
	ctx := context.Background()
	first, err := h.b.Deliver(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	again, err := next.Deliver(ctx, d)
	if err != nil {
		t.Fatalf("the second delivery: %v", err)
	}
	if again != first {
		t.Errorf("the second delivery made post %s, the first %s", again, first)
	}
	var copies []*model.Post
	for _, p := range h.s.ChannelPosts(h.ch.Id) {
		if p.Message == "said once" {
			copies = append(copies, p)
		}
	}
	if len(copies) != 1 {
		t.Fatalf("%d posts say it, want 1", len(copies))
	}
}

// The parts of a message split for Mattermost's length limit are posts of
// their own, each made once.
func TestPartsOfASplitMessageAreSeparatePosts(t *testing.T) {
	h := newLagHarness(t)
	ctx := context.Background()
	ids := map[string]bool{}
	for part, text := range []string{"part one", "part two"} {
		d := &bridge.Delivery{
			Event: bridge.Event{
				Kind:   bridge.KindMessage,
				Origin: bridge.Ref{Network: bridge.NetworkXMPP, Room: "town@conference.example.org", ID: "long-1"},
				Sender: bridge.Sender{Network: bridge.NetworkXMPP, ID: "carol@example.org", Username: "carol"},
				Text:   text,
			},
			Room: h.ch.Id, Part: part,
		}
		id, err := h.b.Deliver(ctx, d)
		if err != nil {
			t.Fatalf("part %d: %v", part, err)
		}
		ids[id] = true
	}
	if len(ids) != 2 {
		t.Fatalf("two parts made %d posts", len(ids))
	}
}

// channelReads counts GetChannel calls.
type channelReads struct {
	plugin.API
	n atomic.Int64
}

func (c *channelReads) GetChannel(id string) (*model.Channel, *model.AppError) {
	c.n.Add(1)
	return c.API.GetChannel(id)
}

// Messages into one channel read it once, not once each: every read is a
// round trip over the RPC boundary.
func TestDeliveriesReadTheirChannelOnce(t *testing.T) {
	h := newLagHarness(t)
	api := &channelReads{API: h.n.API(pluginID)}
	b := New(api, store.New(api), h.b.opts)
	for i := range 3 {
		d := &bridge.Delivery{
			Event: bridge.Event{
				Kind:   bridge.KindMessage,
				Origin: bridge.Ref{Network: bridge.NetworkXMPP, Room: "town@conference.example.org", ID: fmt.Sprintf("stanza-%d", i)},
				Sender: bridge.Sender{Network: bridge.NetworkXMPP, ID: "carol@example.org", Username: "carol", DisplayName: "Carol"},
				Text:   "hello",
			},
			Room: h.ch.Id,
		}
		if _, err := b.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	if n := api.n.Load(); n != 1 {
		t.Errorf("three messages read their channel %d times", n)
	}
}
