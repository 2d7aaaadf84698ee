package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/slackext/emoji"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/slackext/mrkdwn"
)

// metadataType marks the bridge's posts (chat.postMessage metadata), so
// they are recognised as its own besides by bot and app ID.
const metadataType = "mattermost_bridge_message"

// maxUsername is Slack's limit for a message's username.
const maxUsername = 80

// Deliver carries one event into a Slack channel. Errors are transient
// unless Slack's answer cannot change on a retry (see deliveryError).
func (b *Bridge) Deliver(ctx context.Context, d *bridge.Delivery) (string, error) {
	if b.fatal.Load() {
		// Slack refused a token; the queue waits for a new one.
		return "", errors.New("slack: the bridge is stopped until its token is replaced")
	}
	if b.isArchived(d.Room) {
		return "", b.archivedDrop(ctx, d.Room, nil)
	}
	var id string
	var err error
	switch d.Kind {
	case bridge.KindMessage:
		id, err = b.post(ctx, d)
	case bridge.KindEdit:
		id, err = b.update(ctx, d)
	case bridge.KindDelete:
		id, err = b.remove(ctx, d)
	case bridge.KindReactionAdd, bridge.KindReactionRemove:
		id, err = b.react(ctx, d)
	default:
		return "", bridge.Dropf(bridge.ReasonUnsupported, "slack: cannot carry %s", d.Kind)
	}
	if codeOf(err) == "is_archived" {
		// Archived without the bridge hearing of it (the event was lost).
		if serr := b.setArchived(d.Room, true); serr != nil {
			b.log.Warn("Could not record that a Slack channel is archived", "channel", d.Room, "error", serr.Error())
		}
		return "", b.archivedDrop(ctx, d.Room, err)
	}
	if err != nil {
		return "", b.deliveryError(err)
	}
	b.health.Touch(d.Time)
	return id, nil
}

// mrkdwnText converts the text, writing the mentions of people with a
// Slack identity in this workspace as <@U...>.
func (b *Bridge) mrkdwnText(d *bridge.Delivery) string {
	ids := map[string]string{}
	for _, m := range d.Mentions {
		if m.Person.Network != bridge.NetworkSlack {
			continue
		}
		if user, ok := b.slackUser(m.Person.ID); ok {
			ids[strings.TrimPrefix(m.Text, "@")] = user
		}
	}
	return mrkdwn.FromMarkdown(d.Text, ids)
}

// authorName is the Mattermost author's name on the Slack message.
func authorName(s bridge.Sender) string {
	name := strings.TrimSpace(s.DisplayName)
	if name == "" {
		name = s.Username
	}
	if name == "" {
		name = "Mattermost user"
	}
	if r := []rune(name); len(r) > maxUsername {
		name = string(r[:maxUsername])
	}
	return name
}

// iconURL is the picture Slack shows beside a bridged message: the
// plugin's public URL of a Mattermost author's picture, else the sender's
// own picture when it is a web URL Slack can fetch; "" leaves the app's.
func (b *Bridge) iconURL(s bridge.Sender) string {
	if b.cfg.AvatarURL != nil {
		if u := b.cfg.AvatarURL(s); strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			return u
		}
	}
	if strings.HasPrefix(s.AvatarURL, "https://") {
		return s.AvatarURL
	}
	return ""
}

func (b *Bridge) post(ctx context.Context, d *bridge.Delivery) (string, error) {
	text := b.mrkdwnText(d)
	if len(d.Attachments) > 0 {
		return b.postFiles(ctx, d, text)
	}
	opts := []slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionUsername(authorName(d.Sender)),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metadataType, EventPayload: originPayload(d)}),
	}
	if u := b.iconURL(d.Sender); u != "" {
		opts = append(opts, slack.MsgOptionIconURL(u))
	}
	if d.ParentID != "" {
		opts = append(opts, slack.MsgOptionTS(d.ParentID))
	}
	key := postKey(d)
	if p, ok, err := b.unsurePost(key); err != nil {
		return "", err
	} else if ok {
		ts, found, err := b.findPosted(ctx, d, p)
		if err != nil {
			return "", err
		}
		if found {
			b.sent(key)
			return ts, nil
		}
	}
	since := nowTS()
	var ts string
	var raw error
	err := pace(ctx, b.postPace.get(d.Room), func() error {
		if err := b.markSending(key, unsurePost{Since: since}); err != nil {
			return err
		}
		_, ts, raw = b.api.PostMessageContext(ctx, d.Room, opts...)
		return b.wrap("chat.postMessage", raw)
	})
	switch {
	case err == nil:
		b.sent(key)
		return ts, nil
	case raw != nil && !unsure(raw):
		b.settled(key)
	}
	return "", err
}

// postFiles uploads the attachments (files.getUploadURLExternal, the
// upload, files.completeUploadExternal) and shares them in one message.
// An upload cannot carry a custom name, so the author's name leads the
// comment.
func (b *Bridge) postFiles(ctx context.Context, d *bridge.Delivery, text string) (string, error) {
	key := postKey(d)
	if p, ok, err := b.unsurePost(key); err != nil {
		return "", err
	} else if ok {
		for _, id := range p.Files {
			ts, found, err := b.findShared(ctx, d, id)
			if err != nil {
				return "", err
			}
			if found {
				b.sent(key)
				return ts, nil
			}
		}
	}
	var files []slack.FileSummary
	for _, a := range d.Attachments {
		data, err := b.readAttachment(ctx, a)
		if err != nil {
			return "", err
		}
		up, err := b.api.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: a.Name, FileSize: len(data)})
		if err != nil {
			return "", b.wrap("files.getUploadURLExternal", err)
		}
		if err := b.api.UploadToURL(ctx, slack.UploadToURLParameters{UploadURL: up.UploadURL, Reader: bytes.NewReader(data), Filename: a.Name}); err != nil {
			return "", b.wrap("file upload", err)
		}
		files = append(files, slack.FileSummary{ID: up.FileID, Title: a.Name})
	}
	comment := "*" + escapeMrkdwn(authorName(d.Sender)) + "*"
	if text != "" {
		comment += ": " + text
	}
	sending := unsurePost{Since: nowTS()}
	for _, f := range files {
		sending.Files = append(sending.Files, f.ID)
	}
	if err := b.markSending(key, sending); err != nil {
		return "", err
	}
	if _, raw := b.api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
		Files: files, Channel: d.Room, InitialComment: comment, ThreadTimestamp: d.ParentID,
	}); raw != nil {
		if !unsure(raw) {
			b.settled(key)
		}
		return "", b.wrap("files.completeUploadExternal", raw)
	}
	b.sent(key)
	// The answer names the files, not the message sharing them: look it up.
	ts, err := b.findFileMessage(ctx, d.Room, d.ParentID, files[0].ID)
	if err != nil {
		b.log.Warn("Could not find the Slack message of an upload; edits and replies to it will not bridge", "error", err.Error())
		return "", nil
	}
	return ts, nil
}

func escapeMrkdwn(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "*", "").Replace(s)
}

func (b *Bridge) readAttachment(ctx context.Context, a bridge.Attachment) ([]byte, error) {
	if a.Open == nil {
		return nil, bridge.Permanentf("slack: attachment %s has no content", a.Name)
	}
	limit := b.cfg.MaxFileSize
	if limit > 0 && a.Size > limit {
		return nil, bridge.Dropf(bridge.ReasonTooLarge, "slack: %s is larger than %d bytes", a.Name, limit)
	}
	rc, err := a.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	r := io.Reader(rc)
	if limit > 0 {
		r = io.LimitReader(rc, limit+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if limit > 0 && int64(len(data)) > limit {
		return nil, bridge.Dropf(bridge.ReasonTooLarge, "slack: %s is larger than %d bytes", a.Name, limit)
	}
	if len(data) == 0 {
		return nil, bridge.Permanentf("slack: attachment %s is empty", a.Name)
	}
	return data, nil
}

// findFileMessage finds the message that shares fileID: the newest in the
// channel, or in the thread when the upload went to one.
func (b *Bridge) findFileMessage(ctx context.Context, channel, thread, fileID string) (string, error) {
	for attempt := 0; attempt < 5; attempt++ {
		var msgs []slack.Message
		var err error
		if thread != "" {
			msgs, _, _, err = b.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: channel, Timestamp: thread, Limit: 1000})
			slices.Reverse(msgs)
		} else {
			var res *slack.GetConversationHistoryResponse
			res, err = b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: 50})
			if err == nil {
				msgs = res.Messages
			}
		}
		if err != nil {
			return "", b.wrap("conversations.history", err)
		}
		for _, m := range msgs {
			for _, f := range m.Files {
				if f.ID == fileID {
					return m.Timestamp, nil
				}
			}
		}
		// Slack shares an upload a moment after completing it.
		if !sleep(ctx, backoff(attempt)/4) {
			return "", ctx.Err()
		}
	}
	return "", fmt.Errorf("slack: the message sharing file %s did not appear", fileID)
}

func (b *Bridge) update(ctx context.Context, d *bridge.Delivery) (string, error) {
	text := b.mrkdwnText(d)
	if text == "" {
		return "", bridge.Permanentf("slack: an edit without text")
	}
	_, _, _, err := b.api.UpdateMessageContext(ctx, d.Room, d.TargetID, slack.MsgOptionText(text, false))
	if err != nil {
		err = b.wrap("chat.update", err)
		if codeOf(err) == "message_not_found" {
			return "", bridge.Drop(bridge.ReasonUnknownTarget, err)
		}
		return "", err
	}
	return d.TargetID, nil
}

func (b *Bridge) remove(ctx context.Context, d *bridge.Delivery) (string, error) {
	if d.Moderate {
		return "", bridge.Dropf(bridge.ReasonNoRights, "slack: the bot deletes only the messages it posted, not Slack people's")
	}
	_, _, err := b.api.DeleteMessageContext(ctx, d.Room, d.TargetID)
	if err != nil {
		err = b.wrap("chat.delete", err)
		switch codeOf(err) {
		case "message_not_found":
			return d.TargetID, nil // gone already
		case "cant_delete_message":
			return "", bridge.Drop(bridge.ReasonNoRights, fmt.Errorf("%w: the bot deletes only the messages it posted", err))
		}
		return "", err
	}
	return d.TargetID, nil
}

// react adds or removes the bot's reaction. Slack has one reaction per
// user and emoji, and every Mattermost person reacts through the bot: the
// store keeps who reacted, so the bot's reaction goes when the last of
// them takes theirs back.
func (b *Bridge) react(ctx context.Context, d *bridge.Delivery) (string, error) {
	name := emoji.ToSlack(d.Emoji)
	key := d.Room + "|" + d.TargetID + "|" + name
	who, err := b.reactors(key)
	if err != nil {
		return "", err
	}
	me := d.Sender.Identity()
	item := slack.ItemRef{Channel: d.Room, Timestamp: d.TargetID}
	if d.Kind == bridge.KindReactionAdd {
		if len(who) == 0 {
			if err := b.api.AddReactionContext(ctx, name, item); err != nil {
				if err = b.wrap("reactions.add", err); codeOf(err) != "already_reacted" {
					return "", reactionError(err)
				}
			}
		}
		if !slices.Contains(who, me) {
			who = append(who, me)
		}
	} else {
		who = slices.DeleteFunc(who, func(s string) bool { return s == me })
		if len(who) == 0 {
			if err := b.api.RemoveReactionContext(ctx, name, item); err != nil {
				if err = b.wrap("reactions.remove", err); codeOf(err) != "no_reaction" {
					return "", reactionError(err)
				}
			}
		}
	}
	raw, _ := json.Marshal(who)
	if err := b.store.SetAlias(nsReaction, key, string(raw)); err != nil {
		return "", err
	}
	return d.TargetID, nil
}

func reactionError(err error) error {
	if codeOf(err) == "message_not_found" {
		return bridge.Drop(bridge.ReasonUnknownTarget, err)
	}
	return err
}

func (b *Bridge) reactors(key string) ([]string, error) {
	raw, ok, err := b.store.Alias(nsReaction, key)
	if err != nil || !ok {
		return nil, err
	}
	var who []string
	if json.Unmarshal([]byte(raw), &who) != nil {
		return nil, nil
	}
	return who, nil
}
