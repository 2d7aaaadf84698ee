package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Automatic portals (Config.PortalTeam): when the bot is invited to a
// channel no Mattermost channel is linked with, the plugin makes one for
// it and links the two (bridge.Portals). Only an invitation of the bot
// itself counts, never someone else joining a channel the bot was in
// already, and the channel must say the bot is a member. A failure is
// logged and shown in status; it never holds up the events behind it.
//
// An invitation is kept in the store (nsPortal) until its portal is open,
// so that neither a failure nor a restart forgets it: the next message in
// the channel tries again (at once the first time, then backing off), and
// so does every (re)connection. The plugin takes each try up where the
// last one stopped. Once the portal opens, what was said in the channel
// since the invitation is read from the history into it.

const nsPortal = "slack-portal" // pending records: channel -> portalPending

// portalPending is a channel the bot was invited to whose portal is not
// open yet.
type portalPending struct {
	// Since is the invitation's ts.
	Since   string `json:"since"`
	Name    string `json:"name,omitempty"`
	Private bool   `json:"private,omitempty"`

	failures int       // tries failed since the bridge started
	next     time.Time // no try at a message before then
}

// memberJoined is member_joined_channel.
type memberJoined struct {
	User    string `json:"user"`
	Channel string `json:"channel"`
	Inviter string `json:"inviter"`
	EventTS string `json:"event_ts"`
}

func (b *Bridge) portalsOn() bool { return b.cfg.PortalTeam != "" && b.cfg.Portals != nil }

func (b *Bridge) onMemberJoined(ctx context.Context, j *memberJoined) error {
	if !b.portalsOn() || j.User == "" || j.User != b.identity().userID {
		return nil
	}
	channel, err := ParseChannel(j.Channel)
	if err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	if _, err := b.linkOf(channel); !errors.Is(err, bridge.ErrNotLinked) {
		return err // linked already (nil), or the store failed (retried)
	}
	p := &portalPending{Since: j.EventTS}
	if !validTS(p.Since) {
		p.Since = nowTS()
	}
	if err := b.keepPortal(channel, p); err != nil {
		return err // the event comes again
	}
	b.tryPortal(ctx, channel, p, false)
	return nil
}

// portalAtMessage tries again to open the portal of channel, if its
// invitation is pending and a try is due.
func (b *Bridge) portalAtMessage(ctx context.Context, channel string) {
	if !b.portalsOn() {
		return
	}
	b.mu.Lock()
	p := b.portalRetry[channel]
	due := p != nil && !time.Now().Before(p.next)
	b.mu.Unlock()
	if due {
		b.tryPortal(ctx, channel, p, false)
	}
}

// retryPortals tries every pending invitation again, at a (re)connection:
// those kept in the store by an earlier run too.
func (b *Bridge) retryPortals(ctx context.Context) {
	if !b.portalsOn() {
		return
	}
	list, err := b.store.ListPending(nsPortal)
	if err != nil {
		b.log.Warn("Could not list the Slack channels waiting for a portal", "error", err.Error())
		return
	}
	var channels []string
	b.mu.Lock()
	for _, rec := range list {
		if b.portalRetry[rec.ID] != nil {
			channels = append(channels, rec.ID)
			continue
		}
		var p portalPending
		if err := json.Unmarshal(rec.Value, &p); err != nil || !validTS(p.Since) {
			b.log.Warn("Ignoring an unreadable Slack portal record", "channel", rec.ID)
			continue
		}
		b.portalRetry[rec.ID] = &p
		channels = append(channels, rec.ID)
	}
	b.mu.Unlock()
	slices.Sort(channels)
	for _, ch := range channels {
		if ctx.Err() != nil {
			return
		}
		b.mu.Lock()
		p := b.portalRetry[ch]
		b.mu.Unlock()
		if p != nil {
			b.tryPortal(ctx, ch, p, true)
		}
	}
}

// tryPortal asks the plugin to open channel's portal. reconnected: the
// bridge is catching up after a (re)connection, which reads the channel's
// history itself once it is linked, and the channel may have changed
// while the bridge was away.
func (b *Bridge) tryPortal(ctx context.Context, channel string, p *portalPending, reconnected bool) {
	if _, err := b.linkOf(channel); err == nil {
		b.dropPortal(channel) // linked meanwhile (an admin's /slackbridge map)
		return
	}
	if p.Name == "" || reconnected {
		ch, err := b.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
		if err != nil {
			err = b.wrap("conversations.info", err)
			switch {
			case ctx.Err() != nil:
			case codeOf(err) == "channel_not_found":
				b.dropPortal(channel) // deleted, or private and the bot removed
			default:
				b.portalLater(channel, p, err, true)
			}
			return
		}
		if !ch.IsMember || ch.IsArchived || ch.IsIM || ch.IsMpIM {
			b.dropPortal(channel) // removed, archived, or no channel
			return
		}
		b.mu.Lock()
		b.chNames[channel] = nameEntry{name: ch.Name}
		p.Name, p.Private = ch.Name, ch.IsPrivate
		b.mu.Unlock()
	}
	_, created, err := b.cfg.Portals.OpenPortal(ctx, bridge.PortalRequest{
		Network: bridge.NetworkSlack, Room: channel, Name: p.Name, Private: p.Private, Team: b.cfg.PortalTeam,
	})
	switch {
	case ctx.Err() != nil:
		return // stopping: the record stays for the next start
	case errors.Is(err, bridge.ErrPortalInProgress):
		b.portalLater(channel, p, err, false)
		return
	case err != nil:
		b.portalLater(channel, p, fmt.Errorf("%w (SlackPortalTeam is %q)", err, b.cfg.PortalTeam), true)
		return
	}
	// Open (by this call or another), or made once and unlinked since:
	// nothing is left to try either way.
	b.dropPortal(channel)
	linkID, err := b.linkOf(channel)
	if err != nil || !created {
		return
	}
	b.mu.Lock()
	b.portalNote = ""
	b.mu.Unlock()
	// The portal's history starts at the invitation.
	if _, ok, err := b.store.GetCursor(linkID, cursorKey(channel)); err == nil && !ok {
		if err := b.store.SetCursor(linkID, cursorKey(channel), p.Since); err != nil {
			b.log.Warn("Could not start a new portal's history position", "channel", channel, "error", err.Error())
		}
	}
	if err := b.RoomLinked(ctx, channel); err != nil {
		b.log.Warn("Could not start a new portal's history position", "channel", channel, "error", err.Error())
	}
	if !reconnected {
		if err := b.catchUp(ctx, channel, linkID); err != nil && ctx.Err() == nil {
			b.log.Warn("Could not read what a new portal's Slack channel said since the invitation", "channel", channel, "error", err.Error())
		}
	}
}

// keepPortal records a pending invitation, in the store and in memory.
func (b *Bridge) keepPortal(channel string, p *portalPending) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := b.store.SavePending(nsPortal, channel, raw); err != nil {
		return err
	}
	b.mu.Lock()
	b.portalRetry[channel] = p
	b.mu.Unlock()
	return nil
}

// dropPortal forgets a pending invitation.
func (b *Bridge) dropPortal(channel string) {
	b.mu.Lock()
	delete(b.portalRetry, channel)
	b.mu.Unlock()
	if err := b.store.DeletePending(nsPortal, channel); err != nil {
		// At worst the next connection asks the plugin once more, which
		// finds the channel linked.
		b.log.Warn("Could not forget a Slack channel's portal invitation", "channel", channel, "error", err.Error())
	}
}

// portalLater schedules the next try at a message in the channel: at
// once after the first failure (the next message), then backing off, so a
// busy channel does not ask for every message while the cause lasts.
// failed: the try failed (logged and shown in status), rather than found
// another call at it.
func (b *Bridge) portalLater(channel string, p *portalPending, err error, failed bool) {
	b.mu.Lock()
	p.failures++
	p.next = time.Now()
	if p.failures > 1 {
		p.next = p.next.Add(backoff(p.failures - 2))
	}
	b.mu.Unlock()
	if !failed {
		b.log.Debug("Another call is opening a Slack channel's portal; trying again later", "channel", channel)
		return
	}
	msg := b.redact(err.Error())
	b.log.Error("Could not create a Mattermost channel for a Slack channel the bot was invited to; trying again later", "channel", channel, "error", msg)
	b.mu.Lock()
	b.portalNote = fmt.Sprintf("the automatic portal for Slack channel %s failed: %s", channel, msg)
	b.mu.Unlock()
}
