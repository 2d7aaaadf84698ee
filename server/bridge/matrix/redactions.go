package matrix

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// redactionPollGap is the least time between two /sync requests.
const redactionPollGap = 2 * time.Second

// refusedSyncDelay is the longest wait before asking again for a sync the
// homeserver refused: Synapse answers 500 to an application service's own
// /sync (it pushes redactions instead, and the probe soon proves it).
const refusedSyncDelay = 10 * time.Minute

// redactionFilter asks /sync for redactions only.
const redactionFilter = `{"presence":{"types":[]},"account_data":{"types":[]},` +
	`"room":{"timeline":{"types":["m.room.redaction"],"limit":100},"state":{"types":[]},"ephemeral":{"types":[]},"account_data":{"types":[]}}}`

// probeEventType is the event the bot sends, and redacts, in its
// self-check room to find out whether the homeserver pushes redactions.
const probeEventType = "com.mattermost.bridge.probe"

// followRedactions reads redactions from the bot's /sync as well as from
// transactions, where the homeserver does not push them: Dendrite (0.15)
// never pushes redaction events to application services; Synapse does.
// Which one it is, nothing says but the pushing itself: at each start,
// until it is proved, the bot redacts an event of its own
// (probeRedactions), and that redaction arriving in a transaction proves
// it (notePushedRedactions); the proof, kept in KV per homeserver URL,
// ends the sync for good. The sync position is kept in KV, so redactions
// made while the plugin was down are caught up; the first start begins at
// the present.
func (b *Bridge) followRedactions(ctx context.Context) {
	if b.redactionsPushed() {
		return
	}
	go b.probeRedactions(ctx)
	// The poll ends once redactions are proved pushed.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-b.pushed:
			cancel()
		case <-ctx.Done():
		}
	}()
	since, _, err := b.store.Alias(nsSync, string(b.bot))
	if err != nil {
		b.log.Warn("Could not read the Matrix sync position", "error", err.Error())
	}
	delay := time.Second
	refused := false
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
			limit := time.Minute
			var httpErr mautrix.HTTPError
			if errors.As(err, &httpErr) && httpErr.Response != nil {
				// Refused, not unreachable: ask again rarely, and say so
				// once.
				limit = refusedSyncDelay
				if !refused && ctx.Err() == nil {
					b.log.Warn("The Matrix homeserver refuses the bot's /sync; redactions reach Mattermost only if it pushes them", "error", err.Error())
				}
				refused = true
			}
			if ctx.Err() == nil {
				b.log.Debug("Matrix sync failed", "error", err.Error(), "retry_in", delay.String())
			}
			if !sleep(ctx, delay/2+rand.N(delay/2+1)) {
				return
			}
			delay = min(delay*2, limit)
			continue
		}
		delay, refused = time.Second, false
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

// pushedKey names the proof that the homeserver at this URL pushes
// redactions; another homeserver behind the plugin must prove it again.
func (b *Bridge) pushedKey() string { return "pushes-redactions|" + b.cfg.HomeserverURL }

// redactionsPushed reports whether the homeserver is known to push
// redactions, from this run or the KV store.
func (b *Bridge) redactionsPushed() bool {
	select {
	case <-b.pushed:
		return true
	default:
	}
	if _, ok, err := b.store.Alias(nsSync, b.pushedKey()); err == nil && ok {
		b.pushedOnce.Do(func() { close(b.pushed) })
		return true
	}
	return false
}

// notePushedRedactions records that a transaction carried the redaction
// of the self-check (see probeRedactions): the homeserver pushes
// redactions, and the bot's sync is not needed. Only the bot's own
// redaction in its own room counts: it is the one the bridge knows the
// homeserver has to push, if it pushes any.
func (b *Bridge) notePushedRedactions(events []*event.Event) {
	b.mu.Lock()
	probeRoom := b.probeRoom
	b.mu.Unlock()
	if probeRoom == "" || !slices.ContainsFunc(events, func(evt *event.Event) bool {
		return evt != nil && evt.Type == event.EventRedaction && evt.Sender == b.bot && evt.RoomID == probeRoom
	}) {
		return
	}
	first := false
	b.pushedOnce.Do(func() {
		close(b.pushed)
		first = true
	})
	if !first {
		return
	}
	b.log.Info("The Matrix homeserver pushes redactions to the plugin: the bot's sync is not read for them")
	if err := b.store.SetAlias(nsSync, b.pushedKey(), "yes"); err != nil {
		b.log.Warn("Could not record that the Matrix homeserver pushes redactions; the next start finds out again", "error", err.Error())
	}
}

// probeRedactions has the bot redact an event of its own in a room of its
// own (made once, kept in KV): where the homeserver pushes redactions,
// this one arrives in a transaction and ends the sync at once, instead of
// on the first redaction someone makes. Where it does not, the room gets
// two events per start.
func (b *Bridge) probeRedactions(ctx context.Context) {
	// The client, not the intent: the intent reads its membership cache
	// first, which mautrix's memory store does not guard against a
	// concurrent join.
	bot := b.as.BotClient()
	key := "probe-room|" + b.cfg.HomeserverURL
	room, ok, err := b.store.Alias(nsSync, key)
	if err != nil {
		b.log.Debug("Could not read the Matrix self-check room", "error", err.Error())
		return
	}
	if !ok {
		resp, err := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
			Preset: "private_chat", Visibility: "private",
			Name:  "Mattermost bridge self-check",
			Topic: "The Mattermost bridge's bot checks here whether the homeserver pushes redactions to it. Nobody else needs to be here.",
		})
		if err != nil {
			b.log.Debug("Could not make the Matrix self-check room; redactions are read from the bot's sync until one is pushed", "error", err.Error())
			return
		}
		room = string(resp.RoomID)
		if err := b.store.SetAlias(nsSync, key, room); err != nil {
			b.log.Debug("Could not keep the Matrix self-check room", "error", err.Error())
		}
	}
	b.mu.Lock()
	b.probeRoom = id.RoomID(room)
	b.mu.Unlock()
	sent, err := bot.SendMessageEvent(ctx, id.RoomID(room), event.Type{Type: probeEventType, Class: event.MessageEventType}, map[string]any{})
	if err == nil {
		_, err = bot.RedactEvent(ctx, id.RoomID(room), sent.EventID)
	}
	if err != nil && ctx.Err() == nil {
		b.log.Debug("The Matrix self-check failed; redactions are read from the bot's sync until one is pushed", "error", err.Error())
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
