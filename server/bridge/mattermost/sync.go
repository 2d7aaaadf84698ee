package mattermost

import (
	"errors"
	"strconv"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// A channel shared with a network's shared-channels remote gets its posts,
// edits, deletes and reactions twice: from the post and reaction hooks,
// and from the server's sync service (OnSharedChannelsSyncMsg) a couple of
// seconds later. Both are triggers for the same relaying, so each change
// goes out once:
//   - a new post is relayed by pull, which walks the channel in creation
//     order under the channel's lock and remembers what it handed on (the
//     router also skips a message a destination already has);
//   - an edit, a delete or a reaction is claimed in the KV store
//     (insert-if-absent, so of two sources on any nodes one wins) before it
//     is relayed, and the claim is given back when it could not be queued,
//     so the other source or the next one can still relay it.
// The start-up replay stays as it was: it relays from the durable cursors
// and does not look at claims.

const (
	// nsChange names the claims of edits, deletes and reactions.
	nsChange = "mm_change"
	// changeClaimTTL is how long a claim stops the other source; the sync
	// service sends a change within seconds of its hook, or retries for a
	// few more.
	changeClaimTTL = 24 * time.Hour
)

// emitOnce relays ev unless the change key names was relayed by the other
// source; handled is false when it could not be queued now (the claim is
// given back).
func (b *Bridge) emitOnce(key string, ev bridge.Event) (handled bool) {
	release, first, err := b.store.Claim(nsChange, key, changeClaimTTL)
	if err != nil {
		// Relaying twice is better than never: the KV store will say
		// again next time.
		b.log.Warn("Could not claim a change; relaying it anyway", "key", key, "error", err.Error())
	} else if !first {
		return true
	}
	err = b.emit(ev)
	if err == nil || errors.Is(err, bridge.ErrNotLinked) {
		return true
	}
	if release != nil {
		if rerr := release(); rerr != nil {
			b.log.Warn("Could not give back the claim of a change", "key", key, "error", rerr.Error())
		}
	}
	// An invalid event will never go: do not ask for it again.
	return errors.Is(err, bridge.ErrInvalidEvent)
}

func editKey(p *model.Post) string { return "e|" + p.Id + "|" + strconv.FormatInt(p.EditAt, 10) }

func deleteKey(p *model.Post) string { return "d|" + p.Id }

// reactionKey names one adding or removal of a reaction: a reaction added
// again after its removal keeps its CreateAt, so each is told by its
// UpdateAt (the same in the hook's copy and in the store's).
func reactionKey(r *model.Reaction, added bool) string {
	op, at := "add", max(r.UpdateAt, r.CreateAt)
	if !added {
		op, at = "remove", max(r.DeleteAt, r.UpdateAt)
	}
	return "r|" + r.PostId + "|" + r.UserId + "|" + r.EmojiName + "|" + op + "|" + strconv.FormatInt(at, 10)
}

// OnSyncMsg handles a shared-channels sync message for a network's remote.
// The response names what was handled: PostErrors the posts that could not
// be handed on yet (the server sends those again alone), and the
// *LastUpdateAt fields the newest change up to which everything in the
// message was handled, never further: the first post not handed on stops
// it.
func (b *Bridge) OnSyncMsg(msg *model.SyncMsg) model.SyncResponse {
	var resp model.SyncResponse
	if msg == nil {
		return resp
	}
	ready := b.awaitReady()
	for id, u := range msg.Users {
		// Nothing to keep: a person's name and picture travel with each of
		// their messages.
		if u != nil {
			resp.UsersSyncd = append(resp.UsersSyncd, id)
			resp.UsersLastUpdateAt = max(resp.UsersLastUpdateAt, u.UpdateAt)
		}
	}
	resp.PostErrors, resp.PostsLastUpdateAt = handleInOrder(msg.Posts,
		func(p *model.Post) bool { return ready && b.syncPost(msg.ChannelId, p) },
		func(p *model.Post) (string, int64) { return p.Id, p.UpdateAt })
	resp.ReactionErrors, resp.ReactionsLastUpdateAt = handleInOrder(msg.Reactions,
		func(r *model.Reaction) bool { return ready && b.syncReaction(msg.ChannelId, r) },
		func(r *model.Reaction) (string, int64) { return r.PostId, r.UpdateAt })
	return resp
}

// syncPost relays what the sync service says changed about p, once with
// the hooks; false when it could not be handed on now.
func (b *Bridge) syncPost(channelID string, p *model.Post) bool {
	if p.ChannelId != channelID || p.IsSystemMessage() || p.Type == model.PostTypeEphemeral {
		return true // nothing to relay
	}
	if !b.linked(p.ChannelId) {
		// Only linked channels are shared, so a read replica that does not
		// have the link yet is the likelier story: ask for it again.
		return false
	}
	if p.DeleteAt > 0 {
		if p.OriginalId != "" {
			return true // the old text an edit kept
		}
		ev, ok := b.deleteEvent(p, b.deleter(p, ""))
		if !ok {
			return true
		}
		return b.emitOnce(deleteKey(p), ev)
	}
	if b.isOwnUser(p.UserId) {
		return true
	}
	if !b.pull(p.ChannelId, p) {
		return false
	}
	if p.EditAt > 0 {
		return b.emitOnce(editKey(p), b.editEvent(p))
	}
	return true
}

// syncReaction relays a reaction the sync service sent, once with the
// hooks.
func (b *Bridge) syncReaction(channelID string, r *model.Reaction) bool {
	if r.ChannelId != "" && r.ChannelId != channelID {
		return true
	}
	c := *r
	c.ChannelId = channelID
	r = &c
	added := r.DeleteAt == 0
	if b.isOwnUser(r.UserId) {
		return true
	}
	if !b.linked(channelID) {
		return false // as for a post: the read is likelier behind than the link gone
	}
	ev, post, ok := b.reactionEvent(r, added)
	if !ok {
		return true
	}
	if post != nil && !b.pull(channelID, post) {
		return false
	}
	return b.emitOnce(reactionKey(r, added), ev)
}

// SyncAttachment answers OnSharedChannelsAttachmentSyncMsg: a file goes
// with its post's message, so it is handled once the post is.
func (b *Bridge) SyncAttachment(post *model.Post) bool {
	if post == nil || !b.relayable(post) {
		return true
	}
	return b.awaitReady() && b.pull(post.ChannelId, post)
}

// handleInOrder handles items in order and returns the IDs of those not
// handled, and the newest update time before the first of them: a cursor
// never passes what was not handled.
func handleInOrder[T any](items []*T, handle func(*T) bool, idAt func(*T) (string, int64)) (failed []string, last int64) {
	blocked := false
	for _, it := range items {
		if it == nil {
			continue
		}
		id, at := idAt(it)
		if !handle(it) {
			failed = append(failed, id)
			blocked = true
			continue
		}
		if !blocked {
			last = max(last, at)
		}
	}
	return failed, last
}
