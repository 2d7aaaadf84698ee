package testhost

import (
	"math/rand/v2"
	"slices"

	"github.com/mattermost/mattermost/server/public/model"
)

// CreatePost creates a post as the plugin (the from_plugin prop is added):
// MessageWillBePosted runs synchronously and MessageHasBeenPosted
// asynchronously on this node's plugins — the caller's own plugin included,
// exactly like on a real server. FileIds are attached only when the files
// exist, are not attached yet and were uploaded by the post's author or by
// the plugin API.
func (a *API) CreatePost(post *model.Post) (*model.Post, *model.AppError) {
	return a.n.createPost(post, origin{pluginID: a.pluginID})
}

// UpdatePost updates a post like the server (the message, props, pinned
// flag and file IDs are taken from post); MessageWillBeUpdated runs
// synchronously, MessageHasBeenUpdated asynchronously on this node.
func (a *API) UpdatePost(post *model.Post) (*model.Post, *model.AppError) {
	return a.n.updatePost(post, origin{pluginID: a.pluginID})
}

// DeletePost soft-deletes a post (and the replies of a root post);
// MessageHasBeenDeleted runs asynchronously on this node.
func (a *API) DeletePost(postID string) *model.AppError {
	return a.n.deletePost(postID, origin{pluginID: a.pluginID})
}

// GetPost returns a live post. Like the server's plugin API, Metadata is
// not included (read FileIds, or GetFileInfo). It reads the replica:
// app.GetSinglePost -> SqlPostStore.GetSingle (GetReplicaX).
func (a *API) GetPost(postID string) (*model.Post, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if p := a.s.replicaLocked().livePost(postID); p != nil {
		return copyPost(p).ForPlugin(), nil
	}
	return nil, notFound("GetSinglePost", "app.post.get.app_error", "id="+postID)
}

// GetPostThread returns the live posts of the post's thread, newest first.
// It reads the replica: app.GetPostThread -> SqlPostStore.Get (the thread
// with GetReplicaX).
func (a *API) GetPostThread(postID string) (*model.PostList, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	r := a.s.replicaLocked()
	p := r.livePost(postID)
	if p == nil {
		return nil, notFound("GetPostThread", "app.post.get.app_error", "id="+postID)
	}
	rootID := p.RootId
	if rootID == "" {
		rootID = p.Id
	}
	thread := r.threads([]string{rootID})
	a.s.newestFirst(thread)
	return a.s.postListLocked(thread, nil), nil
}

// getPostsSinceLimit is the LIMIT of SqlPostStore.GetPostsSince.
const getPostsSinceLimit = 1000

// GetPostsSince has the semantics of the server's store: posts of the
// channel created, edited or deleted after time (deleted posts and edit
// history rows included), any 1000 of them when there are more, plus their
// thread roots; Order holds those changed after time, newest first. It
// reads the replica: app.GetPostsSince -> SqlPostStore.GetPostsSince
// (GetReplicaX).
func (a *API) GetPostsSince(channelID string, time int64) (*model.PostList, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	r := a.s.replicaLocked()
	// SqlPostStore.GetPostsSince takes at most 1,000 of the posts changed
	// since time, with no ORDER BY in that LIMIT: which ones a busy
	// channel returns is up to the database. Any 1,000 are fair.
	var changed []*model.Post
	for _, p := range r.channelPosts(channelID) {
		if p.UpdateAt > time {
			changed = append(changed, p)
		}
	}
	if len(changed) > getPostsSinceLimit {
		rand.Shuffle(len(changed), func(i, j int) { changed[i], changed[j] = changed[j], changed[i] })
		changed = changed[:getPostsSinceLimit]
	}
	var roots []*model.Post
	for _, p := range changed {
		if p.RootId != "" {
			if root := r.post(p.RootId); root != nil {
				roots = append(roots, root)
			}
		}
	}
	a.s.newestFirst(changed)
	return a.s.postListLocked(changed, roots), nil
}

// GetPostsForChannel returns a page of the channel's live posts, newest
// first, with the threads of the replies among them. It reads the
// replica: app.GetPostsPage -> SqlPostStore.GetPosts (getRootPosts and
// getParentsPosts, GetReplicaX).
func (a *API) GetPostsForChannel(channelID string, pageNum, perPage int) (*model.PostList, *model.AppError) {
	if pageNum < 0 || perPage < 0 {
		return nil, badRequest("GetPostsPage", "app.post.get_posts.app_error", "page and per_page must not be negative")
	}
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	r := a.s.replicaLocked()
	var live []*model.Post
	for _, p := range r.channelPosts(channelID) {
		if p.DeleteAt == 0 {
			live = append(live, p)
		}
	}
	a.s.newestFirst(live)
	return a.pageWithParentsLocked(r, live, pageNum, perPage), nil
}

func (a *API) pageWithParentsLocked(r replica, ordered []*model.Post, pageNum, perPage int) *model.PostList {
	pg := page(ordered, pageNum, perPage)
	var rootIDs []string
	for _, p := range pg {
		if p.RootId != "" && !slices.Contains(rootIDs, p.RootId) {
			rootIDs = append(rootIDs, p.RootId)
		}
	}
	return a.s.postListLocked(pg, r.threads(rootIDs))
}

// GetPostsAfter returns a page of the live posts created after postID,
// newest first. It reads the replica: app.GetPostsAfterPost ->
// SqlPostStore.GetPostsAfter (getPostsAround, GetReplicaX).
func (a *API) GetPostsAfter(channelID, postID string, pageNum, perPage int) (*model.PostList, *model.AppError) {
	return a.postsAround(channelID, postID, pageNum, perPage, false)
}

// GetPostsBefore returns a page of the live posts created before postID,
// newest first. It reads the replica: app.GetPostsBeforePost ->
// SqlPostStore.GetPostsBefore (getPostsAround, GetReplicaX).
func (a *API) GetPostsBefore(channelID, postID string, pageNum, perPage int) (*model.PostList, *model.AppError) {
	return a.postsAround(channelID, postID, pageNum, perPage, true)
}

func (a *API) postsAround(channelID, postID string, pageNum, perPage int, before bool) (*model.PostList, *model.AppError) {
	if pageNum < 0 || perPage < 0 {
		return nil, badRequest("GetPostsAround", "app.post.get_posts_around.get.app_error", "page and per_page must not be negative")
	}
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	r := a.s.replicaLocked()
	anchor := r.post(postID)
	if anchor == nil {
		return a.s.postListLocked(nil, nil), nil
	}
	var sel []*model.Post
	for _, p := range r.channelPosts(channelID) {
		if p.DeleteAt != 0 || p.Id == anchor.Id {
			continue
		}
		if (before && a.s.lessPostLocked(p, anchor)) || (!before && a.s.lessPostLocked(anchor, p)) {
			sel = append(sel, p)
		}
	}
	if before {
		a.s.newestFirst(sel)
	}
	pg := page(sel, pageNum, perPage)
	a.s.newestFirst(pg)
	var rootIDs []string
	for _, p := range pg {
		if p.RootId != "" {
			rootIDs = append(rootIDs, p.RootId)
		}
	}
	return a.s.postListLocked(pg, r.threads(rootIDs)), nil
}

// --- reactions ---------------------------------------------------------------------

// AddReaction adds a reaction like the server (the emoji must be a system
// emoji; custom emojis are not supported); ReactionHasBeenAdded runs
// asynchronously on this node.
func (a *API) AddReaction(reaction *model.Reaction) (*model.Reaction, *model.AppError) {
	return a.n.addReaction(reaction, origin{pluginID: a.pluginID})
}

// RemoveReaction soft-deletes a reaction; ReactionHasBeenRemoved runs
// asynchronously on this node.
func (a *API) RemoveReaction(reaction *model.Reaction) *model.AppError {
	return a.n.removeReaction(reaction, origin{pluginID: a.pluginID})
}

// GetReactions returns a post's current reactions.
func (a *API) GetReactions(postID string) ([]*model.Reaction, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	out := a.s.liveReactionsLocked(postID)
	if out == nil {
		out = []*model.Reaction{}
	}
	return out, nil
}

// --- ephemeral posts ---------------------------------------------------------------

func (n *Node) recordEphemeral(userID, action string, post *model.Post) {
	n.s.mu.Lock()
	n.s.st.ephemeral = append(n.s.st.ephemeral, EphemeralPost{Node: n.id, UserID: userID, Action: action, Post: copyPost(post)})
	n.s.mu.Unlock()
}

// SendEphemeralPost records an ephemeral post for the user (see
// Server.EphemeralPosts) and returns it as the server does.
func (a *API) SendEphemeralPost(userID string, post *model.Post) *model.Post {
	if post == nil {
		return nil
	}
	p := copyPost(post)
	p.Type = model.PostTypeEphemeral
	if p.Id == "" {
		p.Id = model.NewId()
	}
	if p.CreateAt == 0 {
		p.CreateAt = a.s.now()
	}
	if p.GetProps() == nil {
		p.SetProps(model.StringInterface{})
	}
	a.n.recordEphemeral(userID, "send", p)
	return p.ForPlugin()
}

// UpdateEphemeralPost records an update of an ephemeral post.
func (a *API) UpdateEphemeralPost(userID string, post *model.Post) *model.Post {
	if post == nil {
		return nil
	}
	p := copyPost(post)
	p.Type = model.PostTypeEphemeral
	p.UpdateAt = a.s.now()
	if p.GetProps() == nil {
		p.SetProps(model.StringInterface{})
	}
	a.n.recordEphemeral(userID, "update", p)
	return p.ForPlugin()
}

// DeleteEphemeralPost records the deletion of an ephemeral post.
func (a *API) DeleteEphemeralPost(userID, postID string) {
	now := a.s.now()
	a.n.recordEphemeral(userID, "delete", &model.Post{Id: postID, UserId: userID, Type: model.PostTypeEphemeral, DeleteAt: now, UpdateAt: now})
}
