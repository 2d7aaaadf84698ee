package slack

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"
)

// CheckRoom checks a channel before it is linked: it must exist for the
// bot (a private one only does once the bot was invited) and have the bot
// as a member, since Slack sends a bot only its own channels' events.
func (b *Bridge) CheckRoom(ctx context.Context, room string) (string, error) {
	id, err := ParseChannel(room)
	if err != nil {
		return "", err
	}
	ch, err := b.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if err != nil {
		err = b.wrap("conversations.info", err)
		if codeOf(err) == "channel_not_found" {
			return "", fmt.Errorf("channel %s does not exist in Slack, or it is private and the bot was not invited: in Slack, run /invite @%s in the channel, then try again", id, b.botName())
		}
		return "", err
	}
	if !ch.IsMember {
		return "", fmt.Errorf("the bot is not a member of Slack channel #%s (%s): in Slack, run /invite @%s in the channel, then try again", ch.Name, id, b.botName())
	}
	if ch.IsArchived {
		return "", fmt.Errorf("channel #%s (%s) is archived in Slack", ch.Name, id)
	}
	b.mu.Lock()
	b.chNames[id] = nameEntry{name: ch.Name}
	b.mu.Unlock()
	return id, nil
}

// RoomName is a channel's name ("general"), to show next to its ID.
func (b *Bridge) RoomName(ctx context.Context, room string) string { return b.channelName(ctx, room) }

func (b *Bridge) botName() string {
	if n := b.identity().user; n != "" {
		return n
	}
	return "<the app's bot>"
}

// RoomLinked starts the channel's history cursor at the link, so a later
// catch-up reads only what came after it. CheckRoom refused an archived
// channel, so a mark left by an earlier link (its cursors outlive it while
// other networks stay linked) is cleared.
func (b *Bridge) RoomLinked(_ context.Context, room string) error {
	if err := b.setArchived(room, false); err != nil {
		return err
	}
	return b.startCursor(room)
}

// RoomUnlinked forgets the channel's archived state (its store record went
// with the link); the bot stays in the channel (people invited it) and
// events from unlinked channels are ignored.
func (b *Bridge) RoomUnlinked(_ context.Context, room string) error {
	b.mu.Lock()
	delete(b.archived, room)
	b.mu.Unlock()
	return nil
}
