package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Archived channels. Slack keeps an archived channel's history but takes
// nothing new in it (chat.postMessage answers is_archived), and unarchiving
// it makes it whole again. So an archived linked channel makes its link
// read-only: what Mattermost and the other networks say meanwhile is
// dropped for Slack at once, as bridge.ReasonArchived (counted, logged,
// never sent, never retried, so it holds up nothing behind it), and
// channel_unarchive resumes the link. Slack's own side has nothing to say
// meanwhile: nobody can post in an archived channel.
//
// The state is a per-link cursor in the store (archivedValue, or empty),
// so it survives a restart and goes away with the link. It is learnt from
// channel_archive and group_archive (private channels) and their unarchive
// twins, from an is_archived answer, and at every catch-up (the start, a
// dropped socket) from conversations.info, so what happened while the
// plugin was off or the socket was down is known too.

const (
	archivedName  = "slack-archived" // cursor name, per channel
	archivedValue = "archived"
)

func archivedKey(channel string) string { return archivedName + ":" + channel }

// isArchived reports whether a linked channel is known to be archived.
func (b *Bridge) isArchived(channel string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.archived[channel]
}

// loadArchived reads which linked channels were archived when the bridge
// last knew, so nothing is sent to them before Slack is asked again.
func (b *Bridge) loadArchived() map[string]bool {
	out := map[string]bool{}
	channels, err := b.linkedChannels()
	if err != nil {
		b.log.Warn("Could not read which linked Slack channels are archived", "error", err.Error())
		return out
	}
	for ch, linkID := range channels {
		v, ok, err := b.store.GetCursor(linkID, archivedKey(ch))
		if err != nil {
			b.log.Warn("Could not read whether a Slack channel is archived", "channel", ch, "error", err.Error())
			continue
		}
		if ok && v == archivedValue {
			out[ch] = true
		}
	}
	return out
}

// setArchived records a linked channel's archived state, in memory and in
// the store. An unlinked channel's is not kept (linking checks it anew):
// the error then wraps bridge.ErrNotLinked.
func (b *Bridge) setArchived(channel string, archived bool) error {
	linkID, err := b.linkOf(channel)
	if err != nil {
		return err
	}
	b.mu.Lock()
	was := b.archived[channel]
	if archived {
		b.archived[channel] = true
	} else {
		delete(b.archived, channel)
	}
	b.mu.Unlock()
	value := ""
	if archived {
		value = archivedValue
	}
	if err := b.store.SetCursor(linkID, archivedKey(channel), value); err != nil {
		return fmt.Errorf("saving whether Slack channel %s is archived: %w", channel, err)
	}
	if was != archived {
		if archived {
			b.log.Info("A linked Slack channel was archived; its link is read-only until it is unarchived", "channel", channel)
		} else {
			b.log.Info("A linked Slack channel was unarchived; its link relays again", "channel", channel)
		}
	}
	return nil
}

// onArchive handles channel_archive, group_archive and their unarchive
// twins.
func (b *Bridge) onArchive(raw []byte, archived bool) error {
	var ev struct {
		Channel string `json:"channel"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil || ev.Channel == "" {
		return fmt.Errorf("%w: an archive event without its channel", errMalformed)
	}
	if _, err := ParseChannel(ev.Channel); err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	return b.setArchived(ev.Channel, archived)
}

// refreshArchived asks conversations.info whether a linked channel is
// archived and records the answer; a failure keeps what was known.
func (b *Bridge) refreshArchived(ctx context.Context, channel string) {
	ch, err := b.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("Could not check whether a linked Slack channel is archived", "channel", channel, "error", b.wrap("conversations.info", err).Error())
		}
		return
	}
	b.mu.Lock()
	b.chNames[channel] = nameEntry{name: ch.Name, at: time.Now()}
	b.mu.Unlock()
	if ch.IsArchived == b.isArchived(channel) {
		return
	}
	if err := b.setArchived(channel, ch.IsArchived); err != nil && !errors.Is(err, bridge.ErrNotLinked) {
		b.log.Warn("Could not record whether a Slack channel is archived", "channel", channel, "error", err.Error())
	}
}

// archivedDrop is the drop of a delivery for an archived channel.
func (b *Bridge) archivedDrop(ctx context.Context, channel string, cause error) error {
	name := b.channelName(ctx, channel)
	if name != "" {
		name = " (#" + name + ")"
	}
	err := fmt.Errorf("slack: channel %s%s is archived in Slack; the link is read-only until the channel is unarchived, so this is not relayed there", channel, name)
	if cause != nil {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return bridge.Drop(bridge.ReasonArchived, err)
}

// DescribeRoom names a linked channel and says when it is archived, for
// status and list.
func (b *Bridge) DescribeRoom(ctx context.Context, room string) bridge.RoomInfo {
	info := bridge.RoomInfo{Archived: b.isArchived(room)}
	if name := b.channelName(ctx, room); name != "" {
		info.Name = "#" + name
	}
	return info
}

// archivedNote is the health line listing the archived linked channels.
func (b *Bridge) archivedNote() string {
	b.mu.Lock()
	ids := slices.Sorted(maps.Keys(b.archived))
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id
		if e, ok := b.chNames[id]; ok && e.name != "" {
			names[i] = "#" + e.name + " (" + id + ")"
		}
	}
	b.mu.Unlock()
	if len(names) == 0 {
		return ""
	}
	return "archived in Slack, links read-only: " + strings.Join(names, ", ")
}
