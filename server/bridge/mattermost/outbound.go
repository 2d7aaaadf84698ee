package mattermost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"strconv"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// relayable reports whether a post is a person's message in a linked channel
// that did not come from the bridge itself.
func (b *Bridge) relayable(post *model.Post) bool {
	if post == nil || post.IsSystemMessage() || post.Type == model.PostTypeEphemeral {
		return false
	}
	if b.isOwnUser(post.UserId) {
		return false
	}
	return b.linked(post.ChannelId)
}

// OnPost handles MessageHasBeenPosted.
func (b *Bridge) OnPost(post *model.Post) {
	if !b.relayable(post) {
		return
	}
	b.emit(b.messageEvent(post))
}

// OnPostUpdated handles MessageHasBeenUpdated. Updates that leave the text
// and files alone (pins, reactions, previews) are not edits.
func (b *Bridge) OnPostUpdated(newPost, oldPost *model.Post) {
	if !b.relayable(newPost) {
		return
	}
	if oldPost != nil && newPost.Message == oldPost.Message && sameFiles(newPost.FileIds, oldPost.FileIds) {
		return
	}
	b.emit(b.editEvent(newPost))
}

// OnPostDeleted handles MessageHasBeenDeleted.
func (b *Bridge) OnPostDeleted(post *model.Post) {
	if !b.relayable(post) {
		return
	}
	b.emit(b.deleteEvent(post))
}

// OnReaction handles ReactionHasBeenAdded and ReactionHasBeenRemoved.
func (b *Bridge) OnReaction(r *model.Reaction, added bool) {
	if r == nil || b.isOwnUser(r.UserId) {
		return
	}
	channelID := r.ChannelId
	if channelID == "" {
		post, appErr := b.api.GetPost(r.PostId)
		if appErr != nil {
			return
		}
		channelID = post.ChannelId
	}
	if !b.linked(channelID) {
		return
	}
	kind := bridge.KindReactionAdd
	at := r.CreateAt
	if !added {
		kind = bridge.KindReactionRemove
		at = max(r.DeleteAt, r.UpdateAt)
	}
	if at == 0 {
		at = model.GetMillis()
	}
	b.emit(bridge.Event{
		Kind:   kind,
		Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: channelID, ID: r.PostId + ":" + r.UserId + ":" + r.EmojiName},
		Target: r.PostId,
		Sender: b.sender(r.UserId),
		Emoji:  r.EmojiName,
		Time:   millis(at),
	})
}

func sameFiles(a, b model.StringArray) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (b *Bridge) sender(userID string) bridge.Sender {
	s := bridge.Sender{Network: bridge.NetworkMattermost, ID: userID}
	user, appErr := b.api.GetUser(userID)
	if appErr != nil {
		return s
	}
	s.Username = user.Username
	s.DisplayName = user.GetDisplayName(model.ShowNicknameFullName)
	s.AvatarHash = strconv.FormatInt(user.LastPictureUpdate, 10)
	api := b.api
	s.Avatar = func(context.Context) ([]byte, error) {
		data, appErr := api.GetProfileImage(userID)
		if appErr != nil {
			return nil, appErr
		}
		return data, nil
	}
	return s
}

func (b *Bridge) attachments(fileIDs []string) []bridge.Attachment {
	out := make([]bridge.Attachment, 0, len(fileIDs))
	for _, id := range fileIDs {
		info, appErr := b.api.GetFileInfo(id)
		if appErr != nil {
			b.log.Warn("Could not read an attachment's info", "file_id", id, "error", appErr.Error())
			continue
		}
		api, fileID := b.api, id
		out = append(out, bridge.Attachment{
			Name: info.Name, MIMEType: info.MimeType, Size: info.Size,
			Open: func(context.Context) (io.ReadCloser, error) {
				data, appErr := api.GetFile(fileID)
				if appErr != nil {
					return nil, appErr
				}
				return io.NopCloser(bytes.NewReader(data)), nil
			},
		})
	}
	return out
}

func (b *Bridge) messageEvent(post *model.Post) bridge.Event {
	return bridge.Event{
		Kind:        bridge.KindMessage,
		Origin:      bridge.Ref{Network: bridge.NetworkMattermost, Room: post.ChannelId, ID: post.Id},
		Parent:      post.RootId,
		Sender:      b.sender(post.UserId),
		Text:        post.Message,
		Attachments: b.attachments(post.FileIds),
		Time:        millis(max(post.UpdateAt, post.CreateAt)),
	}
}

func (b *Bridge) editEvent(post *model.Post) bridge.Event {
	return bridge.Event{
		Kind:   bridge.KindEdit,
		Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: post.ChannelId, ID: post.Id},
		Target: post.Id,
		Parent: post.RootId,
		Sender: b.sender(post.UserId),
		Text:   post.Message,
		Time:   millis(max(post.UpdateAt, post.EditAt)),
	}
}

func (b *Bridge) deleteEvent(post *model.Post) bridge.Event {
	return bridge.Event{
		Kind:   bridge.KindDelete,
		Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: post.ChannelId, ID: post.Id},
		Target: post.Id,
		Sender: b.sender(post.UserId),
		Time:   millis(max(post.UpdateAt, post.DeleteAt)),
	}
}

// replay relays what happened in linked channels while the plugin was not
// running: for each link, posts since the oldest of its destinations'
// cursors. The router skips messages a destination already has, so replaying
// a little too much never doubles anything.
func (b *Bridge) replay(ctx context.Context, done chan struct{}) {
	defer close(done)
	links, err := b.store.ListLinks()
	if err != nil {
		b.log.Error("Could not list links to replay missed posts", "error", err.Error())
		b.setError(err)
	}
	for _, link := range links {
		if ctx.Err() != nil {
			break
		}
		b.replayLink(ctx, link)
	}
	// Release the events held during the replay, in order, and go live.
	for {
		b.mu.Lock()
		held := b.held
		b.held = nil
		if len(held) == 0 || ctx.Err() != nil {
			b.replaying = false
			b.mu.Unlock()
			return
		}
		sink := b.sink
		b.mu.Unlock()
		for _, ev := range held {
			b.send(ctx, sink, ev)
		}
	}
}

func (b *Bridge) replayLink(ctx context.Context, link store.Link) {
	since := int64(-1)
	for _, r := range link.Remotes {
		dest := bridge.Ref{Network: r.Network, Room: r.Room}
		c := r.LinkedAt.UnixMilli()
		if v, ok, err := b.store.GetCursor(link.ChannelID, cursorName(dest)); err == nil && ok {
			if n, perr := strconv.ParseInt(v, 10, 64); perr == nil {
				c = n
			}
		}
		if since < 0 || c < since {
			since = c
		}
	}
	if since < 0 {
		return
	}
	list, appErr := b.api.GetPostsSince(link.ChannelID, since)
	if appErr != nil {
		b.log.Warn("Could not read posts to replay", "channel_id", link.ChannelID, "error", appErr.Error())
		b.setError(appErr)
		return
	}
	posts := make([]*model.Post, 0, len(list.Posts))
	for _, p := range list.Posts {
		posts = append(posts, p)
	}
	sort.Slice(posts, func(i, j int) bool {
		if posts[i].CreateAt != posts[j].CreateAt {
			return posts[i].CreateAt < posts[j].CreateAt
		}
		return posts[i].Id < posts[j].Id
	})
	// Two passes keep the order a reader saw: first the messages, then what
	// later happened to older messages.
	var later []bridge.Event
	for _, p := range posts {
		if p.IsSystemMessage() || p.Type == model.PostTypeEphemeral || b.isOwnUser(p.UserId) {
			continue
		}
		created := p.CreateAt > since
		switch {
		case p.DeleteAt > 0 && created:
			// Made and removed while we were away: nothing to relay.
		case p.DeleteAt > 0:
			later = append(later, b.deleteEvent(p))
		case created:
			ev := b.messageEvent(p)
			ev.Time = millis(p.CreateAt)
			b.sendReplayed(ctx, ev) // carries any later edit already
		case p.EditAt > since:
			later = append(later, b.editEvent(p))
		}
	}
	sort.SliceStable(later, func(i, j int) bool { return later[i].Time.Before(later[j].Time) })
	for _, ev := range later {
		b.sendReplayed(ctx, ev)
	}
}

func (b *Bridge) sendReplayed(ctx context.Context, ev bridge.Event) {
	b.mu.Lock()
	sink := b.sink
	b.mu.Unlock()
	if err := sink.Receive(ctx, ev); err != nil && !errors.Is(err, bridge.ErrNotLinked) {
		b.log.Warn("Could not replay a missed post", "channel_id", ev.Origin.Room, "post_id", ev.Origin.ID, "error", err.Error())
	}
}
