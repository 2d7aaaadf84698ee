package testhost

import (
	"net/http"
	"slices"
	"sort"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// origin says who asked for a change: a plugin through the API, a user
// through a (simulated) REST request, or the server itself (system
// messages). Hooks fire the same way for all three, on the node handling
// the request.
type origin struct {
	pluginID string
	userID   string
	system   bool
}

func (o origin) user() bool { return o.userID != "" }

func forbidden(where, detail string) *model.AppError {
	return appErr(where, "api.context.permissions.app_error", http.StatusForbidden, detail)
}

// createPost follows app.CreatePost: validate, run MessageWillBePosted
// synchronously, save (PreSave + IsValid, files attached like the file
// store does), then run MessageHasBeenPosted in a goroutine.
func (n *Node) createPost(in *model.Post, o origin) (*model.Post, *model.AppError) {
	const where = "CreatePost"
	if in == nil {
		return nil, badRequest(where, "api.context.invalid_body_param.app_error", "post is nil")
	}
	s := n.s
	post := copyPost(in)
	post.Metadata = nil
	if o.pluginID != "" {
		post.AddProp(model.PostPropsFromPlugin, "true")
	}
	if o.user() {
		post.SanitizeInput()
		post.UserId = o.userID
	}
	post.SanitizeProps()

	s.mu.RLock()
	ch := s.st.channels[post.ChannelId]
	user := s.st.users[post.UserId]
	var root *model.Post
	if post.RootId != "" {
		root = s.livePostLocked(post.RootId)
	}
	isBot := s.st.bots[post.UserId] != nil
	allowed := !o.user() || (ch != nil && (s.hasPermissionToChannelLocked(o.userID, ch.Id, model.PermissionCreatePost) ||
		(ch.Type == model.ChannelTypeOpen && s.hasPermissionToTeamLocked(o.userID, ch.TeamId, model.PermissionCreatePostPublic))))
	s.mu.RUnlock()

	if ch == nil {
		if o.user() {
			return nil, badRequest(where, "api.context.invalid_param.app_error", "channel_id="+post.ChannelId)
		}
		return nil, notFound(where, "app.channel.get.existing.app_error", "channel_id="+post.ChannelId)
	}
	if o.user() {
		if post.IsSystemMessage() {
			return nil, badRequest(where, "api.context.invalid_param.app_error", "post.type="+post.Type)
		}
		if ch.DeleteAt != 0 {
			return nil, badRequest(where, "api.post.create_post.can_not_post_to_deleted.error", "")
		}
		if !allowed {
			return nil, forbidden(where, "user "+o.userID+" may not post in channel "+ch.Id)
		}
	}
	if user == nil {
		return nil, notFound(where, "app.user.missing_account.const", "user_id="+post.UserId)
	}
	if isBot {
		post.AddProp(model.PostPropsFromBot, "true")
	}
	if post.RootId != "" {
		if root == nil {
			return nil, badRequest(where, "api.post.create_post.root_id.app_error", "root_id="+post.RootId)
		}
		if root.ChannelId != post.ChannelId {
			return nil, appErr(where, "api.post.create_post.channel_root_id.app_error", http.StatusBadRequest, "")
		}
		if root.RootId != "" {
			return nil, badRequest(where, "api.post.create_post.root_id.app_error", "the root post is a reply")
		}
	}
	post.Hashtags, _ = model.ParseHashtags(post.Message)

	pctx := n.s.userPluginContext(o.userID)
	var rejection *model.AppError
	n.runHook(plugin.MessageWillBePostedID, func(h plugin.Hooks, _ *model.Manifest) bool {
		replacement, reason := h.MessageWillBePosted(pctx, post.ForPlugin())
		if reason != "" {
			id := "Post rejected by plugin. " + reason
			if reason == plugin.DismissPostError {
				id = plugin.DismissPostError
			}
			rejection = model.NewAppError("createPost", id, nil, "", http.StatusBadRequest)
			return false
		}
		if replacement != nil {
			post = replacement
		}
		return true
	})
	if rejection != nil {
		return nil, rejection
	}

	s.mu.Lock()
	if post.Id != "" && (!post.IsRemote() || s.st.posts[post.Id] != nil) {
		s.mu.Unlock()
		return nil, badRequest(where, "app.post.save.existing.app_error", "id="+post.Id)
	}
	if post.CreateAt == 0 {
		post.CreateAt = s.now()
	}
	fileIDs := slices.Clone(post.FileIds)
	post.PreSave()
	if err := post.IsValid(model.PostMessageMaxRunesV2); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if len(fileIDs) > 0 {
		attached := s.attachFilesLocked(post, fileIDs)
		if len(attached) != len(fileIDs) && !post.IsRemote() {
			if attached == nil {
				attached = []string{}
			}
			post.FileIds = attached
		}
	}
	if post.RootId != "" {
		if r := s.st.posts[post.RootId]; r != nil && r.UpdateAt < post.UpdateAt {
			r.UpdateAt = post.UpdateAt
			s.versionPostLocked(r)
		}
	}
	s.storePostLocked(post)
	hookPost := copyPost(post).ForPlugin()
	out := copyPost(post).ForPlugin()
	s.mu.Unlock()

	n.s.notifyChannelChanged(post.ChannelId)
	n.goHook(plugin.MessageHasBeenPostedID, func(h plugin.Hooks) { h.MessageHasBeenPosted(pctx, hookPost) })
	return out, nil
}

// updatePost follows app.UpdatePost with SafeUpdate false (what both the
// plugin API and the REST API use).
func (n *Node) updatePost(in *model.Post, o origin) (*model.Post, *model.AppError) {
	const where = "UpdatePost"
	if in == nil {
		return nil, badRequest(where, "api.context.invalid_body_param.app_error", "post is nil")
	}
	s := n.s
	received := copyPost(in)
	received.SanitizeProps()

	s.mu.RLock()
	stored := s.livePostLocked(received.Id)
	var oldPost *model.Post
	var ch *model.Channel
	allowed := true
	if stored != nil {
		oldPost = copyPost(stored)
		ch = s.st.channels[oldPost.ChannelId]
		if o.user() {
			perm := model.PermissionEditPost
			if oldPost.UserId != o.userID {
				perm = model.PermissionEditOthersPosts
			}
			allowed = s.hasPermissionToChannelLocked(o.userID, oldPost.ChannelId, perm)
		}
	}
	s.mu.RUnlock()

	if oldPost == nil {
		return nil, notFound(where, "app.post.get.app_error", "id="+received.Id)
	}
	if !allowed {
		return nil, forbidden(where, "user "+o.userID+" may not edit post "+oldPost.Id)
	}
	if oldPost.IsSystemMessage() {
		return nil, badRequest(where, "api.post.update_post.system_message.app_error", "id="+received.Id)
	}
	if ch == nil || ch.DeleteAt != 0 {
		return nil, badRequest(where, "api.post.update_post.can_not_update_post_in_deleted.error", "")
	}

	newPost := copyPost(oldPost)
	if newPost.Message != received.Message {
		newPost.Message = received.Message
		newPost.EditAt = s.now()
		newPost.Hashtags, _ = model.ParseHashtags(received.Message)
	}
	newPost.IsPinned = received.IsPinned
	newPost.HasReactions = received.HasReactions
	newPost.SetProps(received.GetProps())
	newPost.PreserveIdentityPropsFrom(oldPost)
	newPost.FileIds = slices.Clone(received.FileIds)
	if newPost.EditAt == oldPost.EditAt && (!oldPost.FileIds.Equals(newPost.FileIds) || !oldPost.AttachmentsEqual(newPost)) {
		newPost.EditAt = s.now()
	}
	if received.IsRemote() {
		oldPost.RemoteId = model.NewPointer(*received.RemoteId)
	}

	pctx := n.s.userPluginContext(o.userID)
	var rejectReason string
	rejected := false
	n.runHook(plugin.MessageWillBeUpdatedID, func(h plugin.Hooks, _ *model.Manifest) bool {
		replacement, reason := h.MessageWillBeUpdated(pctx, newPost.ForPlugin(), oldPost.ForPlugin())
		if replacement == nil {
			rejected, rejectReason = true, reason
			return false
		}
		newPost = replacement
		return true
	})
	if rejected {
		return nil, badRequest(where, "Post rejected by plugin. "+rejectReason, "")
	}

	s.mu.Lock()
	if s.livePostLocked(oldPost.Id) == nil {
		s.mu.Unlock()
		return nil, notFound(where, "app.post.get.app_error", "id="+oldPost.Id)
	}
	// What the post store's Update does: the new version gets a new
	// UpdateAt, the old version is kept as a deleted edit-history row with
	// a new ID and OriginalId pointing at the post. The server hands that
	// row (not the pre-edit post under its own ID) to MessageHasBeenUpdated
	// as the old post.
	newPost.Id = oldPost.Id
	newPost.UpdateAt = s.now()
	newPost.PreCommit()
	if err := newPost.IsValid(model.PostMessageMaxRunesV2); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	history := copyPost(oldPost)
	history.DeleteAt = newPost.UpdateAt
	history.UpdateAt = newPost.UpdateAt
	history.OriginalId = oldPost.Id
	history.Id = model.NewId()
	history.PreCommit()

	var added []string
	for _, id := range newPost.FileIds {
		if !slices.Contains(oldPost.FileIds, id) {
			added = append(added, id)
		}
	}
	attached := s.attachFilesLocked(newPost, added)
	kept := []string{}
	for _, id := range newPost.FileIds {
		if slices.Contains(oldPost.FileIds, id) || slices.Contains(attached, id) {
			kept = append(kept, id)
		}
	}
	if !newPost.IsRemote() {
		newPost.FileIds = kept
	}
	for _, id := range oldPost.FileIds {
		if fi := s.st.files[id]; fi != nil && !slices.Contains(newPost.FileIds, id) && fi.DeleteAt == 0 {
			fi.DeleteAt = newPost.UpdateAt
			fi.UpdateAt = newPost.UpdateAt
		}
	}
	if newPost.RootId != "" {
		if r := s.st.posts[newPost.RootId]; r != nil && r.UpdateAt < newPost.UpdateAt {
			r.UpdateAt = newPost.UpdateAt
			s.versionPostLocked(r)
		}
	}
	newPost.Metadata = nil
	s.storePostLocked(newPost)
	s.storePostLocked(history)
	hookNew := copyPost(newPost).ForPlugin()
	hookOld := copyPost(history).ForPlugin()
	out := copyPost(newPost).ForPlugin()
	s.mu.Unlock()

	n.s.notifyChannelChanged(hookNew.ChannelId)
	n.goHook(plugin.MessageHasBeenUpdatedID, func(h plugin.Hooks) { h.MessageHasBeenUpdated(pctx, hookNew, hookOld) })
	return out, nil
}

// deletePost follows app.DeletePost: the post and, for a root, its replies
// are soft-deleted (DeleteAt, UpdateAt, the deleteBy prop), its files are
// deleted, and MessageHasBeenDeleted runs in a goroutine with the post as
// read before.
func (n *Node) deletePost(postID string, o origin) *model.AppError {
	const where = "DeletePost"
	s := n.s
	s.mu.Lock()
	p := s.livePostLocked(postID)
	if p == nil {
		s.mu.Unlock()
		// app.DeletePost reads the post with GetSingle(postID, false) and
		// answers a missing or already deleted one with 400, not 404.
		return badRequest(where, "app.post.get.app_error", "id="+postID)
	}
	if o.user() {
		perm := model.PermissionDeletePost
		if p.UserId != o.userID {
			perm = model.PermissionDeleteOthersPosts
		}
		if !s.hasPermissionToChannelLocked(o.userID, p.ChannelId, perm) {
			s.mu.Unlock()
			return forbidden(where, "user "+o.userID+" may not delete post "+postID)
		}
	}
	// app.DeletePost reads the post, has the store mark it deleted (with
	// the deleteBy prop) and fires MessageHasBeenDeleted with the post as
	// it read it: the hook's post carries neither DeleteAt nor deleteBy.
	// Who deleted it is the session in the hook's context.
	hookPost := copyPost(p).ForPlugin()
	deleteBy := o.userID
	if deleteBy == "" {
		deleteBy = o.pluginID
	}
	now := s.now()
	for _, q := range s.st.posts {
		if q.DeleteAt == 0 && (q.Id == postID || q.RootId == postID) {
			q.DeleteAt = now
			q.UpdateAt = now
			q.AddProp(model.PostPropsDeleteBy, deleteBy)
			s.versionPostLocked(q)
		}
	}
	for _, id := range p.FileIds {
		if fi := s.st.files[id]; fi != nil && fi.DeleteAt == 0 {
			fi.DeleteAt = now
			fi.UpdateAt = now
		}
	}
	s.mu.Unlock()

	pctx := n.s.userPluginContext(o.userID)
	n.s.notifyChannelChanged(hookPost.ChannelId)
	n.goHook(plugin.MessageHasBeenDeletedID, func(h plugin.Hooks) { h.MessageHasBeenDeleted(pctx, hookPost) })
	return nil
}

func (n *Node) addReaction(in *model.Reaction, o origin) (*model.Reaction, *model.AppError) {
	const where = "SaveReactionForPost"
	if in == nil {
		return nil, badRequest(where, "api.context.invalid_body_param.app_error", "reaction is nil")
	}
	s := n.s
	r := copyReaction(in)
	if o.user() {
		r.UserId = o.userID
	}
	s.mu.Lock()
	p := s.livePostLocked(r.PostId)
	if p == nil {
		s.mu.Unlock()
		return nil, notFound(where, "app.post.get.app_error", "id="+r.PostId)
	}
	if _, ok := model.GetSystemEmojiId(r.EmojiName); !ok {
		s.mu.Unlock()
		return nil, notFound(where, "app.emoji.get_by_name.no_result", "name="+r.EmojiName+" (the test host knows only system emojis)")
	}
	if o.user() && !s.hasPermissionToChannelLocked(o.userID, p.ChannelId, model.PermissionAddReaction) {
		s.mu.Unlock()
		return nil, forbidden(where, "user "+o.userID+" may not react in channel "+p.ChannelId)
	}
	live := s.liveReactionsLocked(p.Id)
	if !slices.ContainsFunc(live, func(x *model.Reaction) bool { return x.EmojiName == r.EmojiName }) {
		names := map[string]bool{}
		for _, x := range live {
			names[x.EmojiName] = true
		}
		if limit := s.st.config.ServiceSettings.UniqueEmojiReactionLimitPerPost; limit != nil && len(names) >= *limit {
			s.mu.Unlock()
			return nil, badRequest(where, "app.reaction.save.save.too_many_reactions", "")
		}
	}
	if ch := s.st.channels[p.ChannelId]; ch != nil && ch.DeleteAt > 0 {
		s.mu.Unlock()
		return nil, appErr(where, "api.reaction.save.archived_channel.app_error", http.StatusForbidden, "")
	}
	r.ChannelId = p.ChannelId
	r.PreSave()
	now := s.now()
	r.UpdateAt = now
	if in.CreateAt == 0 {
		r.CreateAt = now
	}
	if err := r.IsValid(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	replaced := false
	for i, x := range s.st.reactions[p.Id] {
		if x.UserId == r.UserId && x.EmojiName == r.EmojiName {
			r.CreateAt = x.CreateAt
			s.st.reactions[p.Id][i] = r
			replaced = true
			break
		}
	}
	if !replaced {
		s.st.reactions[p.Id] = append(s.st.reactions[p.Id], r)
	}
	p.HasReactions = true
	p.UpdateAt = now
	s.versionPostLocked(p)
	hookReaction := copyReaction(r)
	out := copyReaction(r)
	s.mu.Unlock()

	pctx := n.s.userPluginContext(o.userID)
	n.s.notifyChannelChanged(hookReaction.ChannelId)
	n.goHook(plugin.ReactionHasBeenAddedID, func(h plugin.Hooks) { h.ReactionHasBeenAdded(pctx, hookReaction) })
	return out, nil
}

func (n *Node) removeReaction(in *model.Reaction, o origin) *model.AppError {
	const where = "DeleteReactionForPost"
	if in == nil {
		return badRequest(where, "api.context.invalid_body_param.app_error", "reaction is nil")
	}
	s := n.s
	r := copyReaction(in)
	if o.user() {
		r.UserId = o.userID
	}
	s.mu.Lock()
	p := s.livePostLocked(r.PostId)
	if p == nil {
		s.mu.Unlock()
		return notFound(where, "app.post.get.app_error", "id="+r.PostId)
	}
	if ch := s.st.channels[p.ChannelId]; ch != nil && ch.DeleteAt > 0 {
		s.mu.Unlock()
		return appErr(where, "api.reaction.delete.archived_channel.app_error", http.StatusForbidden, "")
	}
	if o.user() && !s.hasPermissionToChannelLocked(o.userID, p.ChannelId, model.PermissionRemoveReaction) {
		s.mu.Unlock()
		return forbidden(where, "user "+o.userID+" may not remove reactions in channel "+p.ChannelId)
	}
	now := s.now()
	hookReaction := r
	for _, x := range s.st.reactions[p.Id] {
		if x.UserId == r.UserId && x.EmojiName == r.EmojiName && x.DeleteAt == 0 {
			x.DeleteAt = now
			x.UpdateAt = now
			hookReaction = copyReaction(x)
		}
	}
	p.HasReactions = len(s.liveReactionsLocked(p.Id)) > 0
	p.UpdateAt = now
	s.versionPostLocked(p)
	s.mu.Unlock()

	pctx := n.s.userPluginContext(o.userID)
	n.s.notifyChannelChanged(p.ChannelId)
	n.goHook(plugin.ReactionHasBeenRemovedID, func(h plugin.Hooks) { h.ReactionHasBeenRemoved(pctx, hookReaction) })
	return nil
}

// postSystemMessage posts a system message as the server does on
// membership changes (through the normal post path, so hooks fire).
func (n *Node) postSystemMessage(channelID, userID, typ, message string, props model.StringInterface) {
	if !n.s.opts.systemMessages {
		return
	}
	p := &model.Post{ChannelId: channelID, UserId: userID, Type: typ, Message: message}
	p.SetProps(props)
	if _, err := n.createPost(p, origin{system: true}); err != nil {
		n.logger.Warn("testhost: failed to post a system message: " + err.Error())
	}
}

// --- reads -----------------------------------------------------------------------

func (s *Server) postListLocked(order []*model.Post, extra []*model.Post) *model.PostList {
	pl := model.NewPostList()
	for _, p := range order {
		pl.AddPost(copyPost(p).ForPlugin())
		pl.AddOrder(p.Id)
	}
	for _, p := range extra {
		if _, ok := pl.Posts[p.Id]; !ok {
			pl.AddPost(copyPost(p).ForPlugin())
		}
	}
	pl.MakeNonNil()
	return pl
}

func (s *Server) newestFirst(ps []*model.Post) {
	sort.SliceStable(ps, func(i, j int) bool { return s.lessPostLocked(ps[j], ps[i]) })
}
