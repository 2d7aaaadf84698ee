package matrix

import (
	"context"
	"math/rand/v2"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// redactionPollGap is the least time between two /sync requests.
const redactionPollGap = 2 * time.Second

// redactionFilter asks /sync for redactions only.
const redactionFilter = `{"presence":{"types":[]},"account_data":{"types":[]},` +
	`"room":{"timeline":{"types":["m.room.redaction"],"limit":100},"state":{"types":[]},"ephemeral":{"types":[]},"account_data":{"types":[]}}}`

// followRedactions reads redactions from the bot's /sync as well as from
// transactions: Dendrite (0.15) never pushes redaction events to
// application services. The sync position is kept in KV, so redactions made
// while the plugin was down are caught up; the first start begins at the
// present. Homeservers that do push redactions cost one idle long poll.
func (b *Bridge) followRedactions(ctx context.Context) {
	since, _, err := b.store.Alias(nsSync, string(b.bot))
	if err != nil {
		b.log.Warn("Could not read the Matrix sync position", "error", err.Error())
	}
	delay := time.Second
	// A request is never cancelled halfway: Dendrite on SQLite can be left
	// with a locked database by a /sync cut off mid-query. Stopping ends
	// the loop within one short long-poll instead.
	reqCtx := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		timeout := 10000
		if since == "" {
			timeout = 0
		}
		resp, err := b.as.BotClient().SyncRequest(reqCtx, timeout, since, redactionFilter, false, event.PresenceOffline)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Debug("Matrix sync failed", "error", err.Error(), "retry_in", delay.String())
			}
			if !sleep(ctx, delay/2+rand.N(delay/2+1)) {
				return
			}
			delay = min(delay*2, time.Minute)
			continue
		}
		delay = time.Second
		// A busy room would otherwise wake this loop for every message,
		// adding a /sync per event to the homeserver's load, for events
		// it filters out anyway; redactions can wait a moment.
		if !sleep(ctx, redactionPollGap) {
			return
		}
		if since != "" && !b.handleSynced(ctx, resp.Rooms.Join) {
			// Not handed on: read the same batch again later.
			sleep(ctx, 5*time.Second)
			continue
		}
		since = resp.NextBatch
		if err := b.store.SetAlias(nsSync, string(b.bot), since); err != nil {
			b.log.Warn("Could not save the Matrix sync position", "error", err.Error())
		}
	}
}

// handleSynced hands on the redactions of one sync batch, like a
// transaction's, after the catch-up; false means the batch must be read
// again.
func (b *Bridge) handleSynced(ctx context.Context, rooms map[id.RoomID]*mautrix.SyncJoinedRoom) bool {
	b.txnMu.Lock()
	defer b.txnMu.Unlock()
	sink := b.currentSink()
	if sink == nil {
		return false
	}
	if err := b.catchUpLocked(ctx, sink); err != nil {
		b.log.Debug("Matrix redactions wait for the catch-up", "error", err.Error())
		return false
	}
	var redactions []*event.Event
	for roomID, room := range rooms {
		for _, evt := range room.Timeline.Events {
			evt.RoomID = roomID
			if evt.Type == event.EventRedaction {
				redactions = append(redactions, evt)
			}
		}
	}
	if err := b.acceptEvents(ctx, sink, "sync", redactions); err != nil {
		b.log.Warn("Could not hand on Matrix redactions", "error", err.Error())
		return false
	}
	return true
}
