package slack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Each linked channel keeps a cursor in the store: the ts of the last new
// message handed on and settled. It moves only once what it covers reached
// every linked room (bridge.Watermark), so after a restart or a dropped
// socket the history from the cursor on is read again and nothing falls
// through; what was handed on already is recognised by its ts.

type channelMarks struct {
	w *bridge.Watermark

	mu        sync.Mutex
	committed string
}

func (b *Bridge) beginMark(linkID, channel, ts string) *bridge.Mark {
	key := linkID + "|" + channel
	b.mu.Lock()
	cm := b.marks[key]
	if cm == nil {
		cm = &channelMarks{}
		cm.w = bridge.NewWatermark(func(pos string) { b.commitCursor(cm, linkID, channel, pos) })
		b.marks[key] = cm
	}
	b.mu.Unlock()
	return cm.w.Begin(ts)
}

// commitCursor has pos saved (soon: see bridge.Positions) unless a later
// ts was already: a redelivered older message settles after newer ones.
func (b *Bridge) commitCursor(cm *channelMarks, linkID, channel, pos string) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.committed != "" && !tsLess(cm.committed, pos) {
		return
	}
	cm.committed = pos
	b.positions.Load().Note(linkID+"|"+channel, func() {
		if err := b.store.SetCursor(linkID, cursorKey(channel), pos); err != nil {
			b.log.Warn("Could not save a Slack channel's position", "channel", channel, "error", err.Error())
		}
	})
}

func cursorKey(channel string) string { return cursorName + ":" + channel }

// nowTS is the current time as a Slack ts.
func nowTS() string {
	t := time.Now()
	return strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%06d", t.Nanosecond()/1000)
}

// startCursor sets a newly linked channel's cursor to now, so a catch-up
// reads what came after the link and never the channel's whole past.
func (b *Bridge) startCursor(channel string) error {
	linkID, err := b.linkOf(channel)
	if err != nil {
		return err
	}
	if _, ok, err := b.store.GetCursor(linkID, cursorKey(channel)); err != nil || ok {
		return err
	}
	return b.store.SetCursor(linkID, cursorKey(channel), nowTS())
}

// linkedChannels lists the linked Slack channels and their links.
func (b *Bridge) linkedChannels() (map[string]string, error) {
	links, err := b.store.ListLinks()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range links {
		for _, r := range l.Remotes {
			if r.Network == bridge.NetworkSlack {
				out[r.Room] = l.ChannelID
			}
		}
	}
	return out, nil
}

// catchUpAll reads every linked channel's history from its cursor.
func (b *Bridge) catchUpAll(ctx context.Context) {
	// Portals still to open first: the channels they link are caught up
	// with the others below.
	b.retryPortals(ctx)
	channels, err := b.linkedChannels()
	if err != nil {
		b.log.Warn("Could not list the linked Slack channels for a catch-up", "error", err.Error())
		return
	}
	ids := make([]string, 0, len(channels))
	for ch := range channels {
		ids = append(ids, ch)
	}
	slices.Sort(ids)
	defer b.catchUps.Add(1)
	for _, ch := range ids {
		if ctx.Err() != nil {
			return
		}
		// What was archived or unarchived while the bridge was away.
		b.refreshArchived(ctx, ch)
		if err := b.catchUp(ctx, ch, channels[ch]); err != nil && ctx.Err() == nil {
			b.health.Failed(fmt.Errorf("catching up on Slack channel %s: %w", ch, err))
			b.log.Warn("Could not catch up on a Slack channel", "channel", ch, "error", err.Error())
		}
	}
}

// catchUp hands on, in ts order, the messages and thread replies posted
// in channel after its cursor.
func (b *Bridge) catchUp(ctx context.Context, channel, linkID string) error {
	cursor, ok, err := b.store.GetCursor(linkID, cursorKey(channel))
	if err != nil {
		return err
	}
	if !ok || !validTS(cursor) {
		return b.store.SetCursor(linkID, cursorKey(channel), nowTS())
	}
	msgs, err := b.missed(ctx, channel, cursor)
	if err != nil {
		return err
	}
	for i := range msgs {
		m := &msgs[i]
		m.Channel = channel
		handOn := func() error { return b.onNewMessage(ctx, m, linkID) }
		if m.Subtype == "message_changed" {
			handOn = func() error { return b.onEdit(ctx, m) }
		}
		for attempt := 0; ; attempt++ {
			err := handOn()
			if err == nil || errors.Is(err, errMalformed) || errors.Is(err, bridge.ErrInvalidEvent) {
				break
			}
			if errors.Is(err, bridge.ErrNotLinked) || errors.Is(err, store.ErrNotFound) || ctx.Err() != nil {
				return err
			}
			if !sleep(ctx, backoff(min(attempt, 4))) {
				return ctx.Err()
			}
		}
	}
	return nil
}

// threadLookback is how many messages before the cursor a catch-up looks
// at for threads that got replies meanwhile.
const threadLookback = 200

// missed lists what channel got after cursor, oldest first: top-level
// messages from conversations.history, and the replies in their threads
// from conversations.replies.
func (b *Bridge) missed(ctx context.Context, channel, cursor string) ([]message, error) {
	var out []message
	seen := map[string]bool{}
	add := func(m message) {
		if validTS(m.TS) && tsLess(cursor, m.TS) && !seen[m.TS] {
			seen[m.TS] = true
			out = append(out, m)
		}
	}
	// An edit made since the cursor of a message bridged before it: Slack
	// gives up on the message_changed event after a few retries, and the
	// message, in the history, says when it was edited last.
	edits := map[string]bool{}
	addEdit := func(m message) {
		if m.Edited == nil || !validTS(m.Edited.TS) || !tsLess(cursor, m.Edited.TS) || edits[m.Edited.TS] {
			return
		}
		if tsLess(cursor, m.TS) && !b.seen(nsMessage, channel+"|"+m.TS) {
			return // new to the bridge: it is handed on as it reads now
		}
		edits[m.Edited.TS] = true
		m.Channel = channel
		out = append(out, message{Type: "message", Subtype: "message_changed", Channel: channel, TS: m.Edited.TS, Message: &m})
	}
	var threads []string
	page := ""
	for {
		var res *slack.GetConversationHistoryResponse
		err := b.withRetry(ctx, "conversations.history", func() error {
			var err error
			res, err = b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: channel, Oldest: cursor, Cursor: page, Limit: 200, IncludeAllMetadata: true,
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, sm := range res.Messages {
			m := fromSlack(sm.Msg)
			add(m)
			addEdit(m)
			if m.ReplyCount > 0 || m.ThreadTS == m.TS && m.TS != "" {
				threads = append(threads, m.TS)
			}
		}
		page = res.ResponseMetaData.NextCursor
		if !res.HasMore || page == "" {
			break
		}
	}
	// Threads started before the cursor may have got replies since: the
	// messages just before it say so with their latest_reply. One page
	// back bounds the cost; older threads' replies arrive live only.
	var before *slack.GetConversationHistoryResponse
	err := b.withRetry(ctx, "conversations.history", func() error {
		var err error
		before, err = b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: channel, Latest: cursor, Inclusive: true, Limit: threadLookback,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, sm := range before.Messages {
		addEdit(fromSlack(sm.Msg))
		if sm.ReplyCount > 0 && validTS(sm.LatestReply) && tsLess(cursor, sm.LatestReply) && !slices.Contains(threads, sm.Timestamp) {
			threads = append(threads, sm.Timestamp)
		}
	}
	for _, parent := range threads {
		page := ""
		for {
			var replies []slack.Message
			var more bool
			var next string
			err := b.withRetry(ctx, "conversations.replies", func() error {
				var err error
				replies, more, next, err = b.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
					ChannelID: channel, Timestamp: parent, Oldest: cursor, Cursor: page, Limit: 200, IncludeAllMetadata: true,
				})
				return err
			})
			if err != nil {
				return nil, err
			}
			for _, sm := range replies {
				add(fromSlack(sm.Msg))
			}
			if !more || next == "" {
				break
			}
			page = next
		}
	}
	slices.SortFunc(out, func(a, c message) int {
		switch {
		case tsLess(a.TS, c.TS):
			return -1
		case tsLess(c.TS, a.TS):
			return 1
		}
		return 0
	})
	return out, nil
}

// withRetry calls a read method again after a rate limit or a transient
// failure, a few times.
func (b *Bridge) withRetry(ctx context.Context, method string, call func() error) error {
	for attempt := 0; ; attempt++ {
		err := b.wrap(method, call())
		if err == nil {
			return nil
		}
		if _, limited := bridge.RetryDelay(err); !limited && (codeOf(err) != "" || attempt >= 4) {
			return err
		}
		if !sleep(ctx, retryWait(err, attempt)) {
			return ctx.Err()
		}
	}
}

// fromSlack converts a history message to the bridge's own shape.
func fromSlack(sm slack.Msg) message {
	m := message{
		Type: sm.Type, Subtype: sm.SubType, Channel: sm.Channel, User: sm.User, BotID: sm.BotID,
		Username: sm.Username, Text: sm.Text, TS: sm.Timestamp, ThreadTS: sm.ThreadTimestamp,
		ReplyCount: sm.ReplyCount,
	}
	if sm.Edited != nil {
		m.Edited = &edited{User: sm.Edited.User, TS: sm.Edited.Timestamp}
	}
	if sm.BotProfile != nil {
		m.BotProfile = &botProfile{ID: sm.BotProfile.ID, AppID: sm.BotProfile.AppID, Name: sm.BotProfile.Name}
		m.AppID = sm.BotProfile.AppID
	}
	for _, f := range sm.Files {
		m.Files = append(m.Files, file{
			ID: f.ID, Name: f.Name, Title: f.Title, Mimetype: f.Mimetype, Size: int64(f.Size),
			URLPrivateDownload: f.URLPrivateDownload, URLPrivate: f.URLPrivate,
		})
	}
	return m
}
