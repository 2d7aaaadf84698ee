package slack

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Automatic portals (Config.PortalTeam): when the bot is invited to a
// channel no Mattermost channel is linked with, the plugin makes one for
// it and links the two (bridge.Portals). Only an invitation of the bot
// itself counts, never someone else joining a channel the bot was in
// already, and the channel must say the bot is a member. A failure is
// logged and shown in status; it never holds up the events behind it.

// memberJoined is member_joined_channel.
type memberJoined struct {
	User    string `json:"user"`
	Channel string `json:"channel"`
	Inviter string `json:"inviter"`
}

func (b *Bridge) onMemberJoined(ctx context.Context, j *memberJoined) error {
	if b.cfg.PortalTeam == "" || b.cfg.Portals == nil || j.User == "" || j.User != b.identity().userID {
		return nil
	}
	channel, err := ParseChannel(j.Channel)
	if err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	if _, err := b.linkOf(channel); !errors.Is(err, bridge.ErrNotLinked) {
		return err // linked already (nil), or the store failed (retried)
	}
	ch, err := b.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
	if err != nil {
		b.portalFailed(channel, b.wrap("conversations.info", err))
		return nil
	}
	if !ch.IsMember || ch.IsArchived || ch.IsIM || ch.IsMpIM {
		return nil
	}
	b.mu.Lock()
	b.chNames[channel] = nameEntry{name: ch.Name}
	b.mu.Unlock()
	_, created, err := b.cfg.Portals.OpenPortal(ctx, bridge.PortalRequest{
		Network: bridge.NetworkSlack, Room: channel, Name: ch.Name, Private: ch.IsPrivate, Team: b.cfg.PortalTeam,
	})
	if err != nil {
		b.portalFailed(channel, fmt.Errorf("%w (SlackPortalTeam is %q)", err, b.cfg.PortalTeam))
		return nil
	}
	if created {
		b.mu.Lock()
		b.portalNote = ""
		b.mu.Unlock()
		if err := b.RoomLinked(ctx, channel); err != nil {
			b.log.Warn("Could not start a new portal's history position", "channel", channel, "error", err.Error())
		}
	}
	return nil
}

func (b *Bridge) portalFailed(channel string, err error) {
	msg := b.redact(err.Error())
	b.log.Error("Could not create a Mattermost channel for a Slack channel the bot was invited to", "channel", channel, "error", msg)
	b.mu.Lock()
	b.portalNote = fmt.Sprintf("the automatic portal for Slack channel %s failed: %s", channel, msg)
	b.mu.Unlock()
}
