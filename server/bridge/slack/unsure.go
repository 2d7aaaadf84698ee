package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// A post whose answer was lost (a reset connection, a timeout, an HTTP
// 5xx, Slack's own internal_error) may have been carried out: posting it
// again blindly would show it twice. So may one whose bridge stopped
// before the core recorded it (a node of a cluster that died right after
// the answer; the next holder is handed the delivery again). So each post
// is marked in the store before it goes out (the next attempt may come
// from a bridge started afresh), the mark stays once it went out, and
// goes only when Slack said for sure that it did not; an attempt that
// finds a mark first looks for the message: a text post by the origin the
// bridge writes in its metadata, an upload by the files it shared. Only
// when it is not there is it sent again. The core hands a delivery on
// again only when it has no record of it, so a mark costs one store
// write per post and a lookup only where it is needed.

// nsPosting keeps the posts whose last attempt ended unsure:
// room|origin network|origin ID -> unsurePost as JSON.
const nsPosting = "slack-posting"

// unsureLookback: Slack's ts comes from Slack's clock, not this host's,
// so the search starts well before the first attempt by this one.
const unsureLookback = 2 * time.Minute

// maxUnsurePages bounds the search in a busy channel (200 messages each).
const maxUnsurePages = 10

// unsurePost is what is known of a post whose answer was lost.
type unsurePost struct {
	// Since is a ts just before the first attempt.
	Since string `json:"since"`
	// Files are the IDs an upload shared, or tried to.
	Files []string `json:"files,omitempty"`
}

// unsureCodes are Slack answers that say the call may have done its
// work: "It's possible some aspect of the operation succeeded before the
// error was raised" (internal_error, fatal_error in every method's error
// table).
var unsureCodes = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true, "request_timeout": true,
}

// unsure reports whether a failed call, as slack-go returned it, may have
// been carried out by Slack. A 429 and Slack's other answers say it was
// not; a transport failure, a timeout or a 5xx say nothing.
func unsure(err error) bool {
	if err == nil {
		return false
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return false
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return unsureCodes[se.Err]
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return sc.Code >= 500
	}
	return true
}

func postKey(d *bridge.Delivery) string {
	key := d.Room + "|" + string(d.Origin.Network) + "|" + d.Origin.ID
	if d.Part > 0 {
		key += "|" + strconv.Itoa(d.Part)
	}
	return key
}

// originPayload is the metadata that names a post's origin: the network
// and ID of the message it copies, and which part of it when it was split.
func originPayload(d *bridge.Delivery) map[string]any {
	p := map[string]any{"origin_network": string(d.Origin.Network), "origin_id": d.Origin.ID}
	if d.Part > 0 {
		p["origin_part"] = strconv.Itoa(d.Part)
	}
	return p
}

// formatTS writes t as a Slack ts.
func formatTS(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%06d", t.Nanosecond()/1000)
}

// unsurePost returns what an earlier unsure attempt of the post left.
func (b *Bridge) unsurePost(key string) (unsurePost, bool, error) {
	b.mu.Lock()
	p, ok := b.unsure[key]
	b.mu.Unlock()
	if ok {
		return p, true, nil
	}
	raw, found, err := b.store.Alias(nsPosting, key)
	if err != nil || !found {
		return unsurePost{}, false, err
	}
	if json.Unmarshal([]byte(raw), &p) != nil || !validTS(p.Since) {
		return unsurePost{}, false, nil
	}
	b.mu.Lock()
	b.unsure[key] = p
	b.mu.Unlock()
	return p, true, nil
}

// markSending marks a post as going out, in memory and in the store;
// nothing is sent unless the mark is made.
func (b *Bridge) markSending(key string, p unsurePost) error {
	b.mu.Lock()
	if old, ok := b.unsure[key]; ok && tsLess(old.Since, p.Since) {
		p.Since = old.Since
		p.Files = append(slices.Clone(old.Files), p.Files...)
	}
	b.unsure[key] = p
	b.mu.Unlock()
	raw, _ := json.Marshal(p)
	if err := b.store.SetAlias(nsPosting, key, string(raw)); err != nil {
		return fmt.Errorf("slack: record the post before sending it: %w", err)
	}
	return nil
}

// sent forgets in memory a post that went out; its mark stays in the
// store (expiring with the message maps) for a bridge handed it again.
func (b *Bridge) sent(key string) {
	b.mu.Lock()
	delete(b.unsure, key)
	b.mu.Unlock()
}

// settled forgets a post known not to have gone out (Slack refused it),
// or found there, in memory and in the store.
func (b *Bridge) settled(key string) {
	b.mu.Lock()
	_, ok := b.unsure[key]
	delete(b.unsure, key)
	b.mu.Unlock()
	if !ok {
		return
	}
	// The store keeps no empty value: "{}" reads as nothing pending.
	if err := b.store.SetAlias(nsPosting, key, "{}"); err != nil {
		b.log.Warn("Could not forget a Slack post whose answer was lost", "error", err.Error())
	}
}

// findPosted looks for the bridge's own message carrying d's origin in
// its metadata, posted since p.Since (less the lookback), in the channel
// or in d's thread.
func (b *Bridge) findPosted(ctx context.Context, d *bridge.Delivery, p unsurePost) (string, bool, error) {
	oldest := formatTS(tsTime(p.Since).Add(-unsureLookback))
	me := b.identity()
	mine := func(m slack.Message) bool {
		md := m.Metadata
		want := originPayload(d)
		part, _ := md.EventPayload["origin_part"].(string)
		wantPart, _ := want["origin_part"].(string)
		return m.BotID != "" && m.BotID == me.botID && md.EventType == metadataType &&
			fmt.Sprint(md.EventPayload["origin_id"]) == d.Origin.ID &&
			fmt.Sprint(md.EventPayload["origin_network"]) == string(d.Origin.Network) && part == wantPart
	}
	page := ""
	for range maxUnsurePages {
		var msgs []slack.Message
		var more bool
		var next string
		var err error
		if d.ParentID != "" {
			err = b.withRetry(ctx, "conversations.replies", func() error {
				var err error
				msgs, more, next, err = b.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
					ChannelID: d.Room, Timestamp: d.ParentID, Oldest: oldest, Cursor: page, Limit: 200, IncludeAllMetadata: true,
				})
				return err
			})
		} else {
			err = b.withRetry(ctx, "conversations.history", func() error {
				res, err := b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
					ChannelID: d.Room, Oldest: oldest, Cursor: page, Limit: 200, IncludeAllMetadata: true,
				})
				if err == nil {
					msgs, more, next = res.Messages, res.HasMore, res.ResponseMetaData.NextCursor
				}
				return err
			})
		}
		if err != nil {
			return "", false, err
		}
		for _, m := range msgs {
			if mine(m) {
				return m.Timestamp, true, nil
			}
		}
		if !more || next == "" {
			break
		}
		page = next
	}
	return "", false, nil
}

// findShared looks for the message an earlier, unsure upload shared:
// files.info says whether the file was shared into the channel, and the
// channel (or thread) which message carries it.
func (b *Bridge) findShared(ctx context.Context, d *bridge.Delivery, fileID string) (string, bool, error) {
	var f *slack.File
	err := b.withRetry(ctx, "files.info", func() error {
		var err error
		f, _, _, err = b.api.GetFileInfoContext(ctx, fileID, 0, 0)
		return err
	})
	switch {
	case codeOf(err) == "file_not_found":
		return "", false, nil
	case err != nil:
		return "", false, err
	case !slices.Contains(f.Channels, d.Room) && !slices.Contains(f.Groups, d.Room):
		return "", false, nil
	}
	ts, err := b.findFileMessage(ctx, d.Room, d.ParentID, fileID)
	if err != nil {
		// Shared, so not to be shared again; only the message is unknown.
		b.log.Warn("Could not find the Slack message of an upload; edits and replies to it will not bridge", "error", err.Error())
		return "", true, nil
	}
	return ts, true, nil
}
