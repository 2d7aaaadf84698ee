package mattermost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// relayable reports whether a post is a person's message in a linked channel
// that did not come from the bridge itself.
func (b *Bridge) relayable(post *model.Post) bool {
	return b.fromPerson(post) && b.linked(post.ChannelId)
}

// fromPerson reports whether a post is a person's message that did not
// come from the bridge itself.
func (b *Bridge) fromPerson(post *model.Post) bool {
	if post == nil || post.IsSystemMessage() || post.Type == model.PostTypeEphemeral {
		return false
	}
	return !b.isOwnUser(post.UserId)
}

// OnPost handles MessageHasBeenPosted. The server runs hooks concurrently,
// so they can arrive out of order; the hook is only a trigger to relay
// every new post of the channel in creation order.
func (b *Bridge) OnPost(post *model.Post) {
	if !b.fromPerson(post) {
		return
	}
	if !b.linked(post.ChannelId) {
		b.recheckLink(post)
		return
	}
	if !b.awaitReady() {
		return
	}
	b.relayThen(post.ChannelId, post.Id, post, nil)
}

// recheckDelays are when recheckLink looks at a channel again.
var recheckDelays = []time.Duration{100 * time.Millisecond, time.Second, 5 * time.Second}

// recheckLink looks again, a little later, at the channel of a post a read
// said is not linked: the read replica it came from may not have a link
// made just now, and the post would wait for the channel's next one. One
// look-again runs per channel at a time, for the newest such post: posts
// show in order, so once it went through the earlier ones did too.
func (b *Bridge) recheckLink(post *model.Post) {
	b.recheckMu.Lock()
	if b.rechecks == nil {
		b.recheckMu.Unlock()
		return // not started
	}
	prev, busy := b.rechecks[post.ChannelId]
	if !busy || post.CreateAt > prev.CreateAt {
		b.rechecks[post.ChannelId] = post
	}
	b.recheckMu.Unlock()
	if !busy {
		b.recheckStep(post.ChannelId, 0)
	}
}

func (b *Bridge) recheckStep(channelID string, i int) {
	b.later(recheckDelays[i], func() {
		linked := b.linked(channelID)
		if !linked && i+1 < len(recheckDelays) {
			b.recheckStep(channelID, i+1)
			return
		}
		b.recheckMu.Lock()
		post := b.rechecks[channelID]
		delete(b.rechecks, channelID)
		b.recheckMu.Unlock()
		if linked && post != nil && b.awaitReady() {
			b.relayThen(channelID, post.Id, post, nil)
		}
	})
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
	if !b.awaitReady() {
		return
	}
	ev := b.editEvent(newPost)
	// The message goes before its edit.
	b.relayThen(newPost.ChannelId, newPost.Id, newPost, func() { b.emitOnce(editKey(newPost), ev) }) // failures are logged by send
}

// OnPostDeleted handles MessageHasBeenDeleted; sessionID is the hook
// context's, the session of the request that deleted the post. Besides
// people's own posts, a person's delete of a remote user's post is
// relayed: it is a moderation the server allowed (delete_others_posts).
func (b *Bridge) OnPostDeleted(post *model.Post, sessionID string) {
	if post == nil || post.IsSystemMessage() || post.Type == model.PostTypeEphemeral || !b.linked(post.ChannelId) {
		return
	}
	ev, ok := b.deleteEvent(post, b.deleter(post, sessionID))
	if !ok || !b.awaitReady() {
		return
	}
	b.relayThen(post.ChannelId, post.Id, post, func() { b.emitOnce(deleteKey(post), ev) }) // failures are logged by send
}

// OnReaction handles ReactionHasBeenAdded and ReactionHasBeenRemoved.
func (b *Bridge) OnReaction(r *model.Reaction, added bool) {
	ev, post, ok := b.reactionEvent(r, added)
	if !ok || !b.awaitReady() {
		return
	}
	b.relayThen(ev.Origin.Room, r.PostId, post, func() { b.emitOnce(reactionKey(r, added), ev) })
}

// reactionEvent is the event of a reaction by a person in a linked
// channel, with its post when a read shows it.
func (b *Bridge) reactionEvent(r *model.Reaction, added bool) (bridge.Event, *model.Post, bool) {
	if r == nil || b.isOwnUser(r.UserId) {
		return bridge.Event{}, nil, false
	}
	// The post tells where the reaction goes in the channel's stream; a
	// read replica may not have a post just made yet (then it is read
	// again by relayThen).
	post, appErr := b.api.GetPost(r.PostId)
	if appErr != nil {
		post = nil
	}
	channelID := r.ChannelId
	if channelID == "" {
		if post == nil {
			return bridge.Event{}, nil, false
		}
		channelID = post.ChannelId
	}
	if !b.linked(channelID) {
		return bridge.Event{}, nil, false
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
	return bridge.Event{
		Kind:   kind,
		Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: channelID, ID: r.PostId + ":" + r.UserId + ":" + r.EmojiName},
		Target: r.PostId,
		Sender: b.sender(r.UserId),
		Emoji:  r.EmojiName,
		Time:   millis(at),
	}, post, true
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
	user, appErr := b.api.GetUser(userID)
	if appErr != nil {
		return bridge.Sender{Network: bridge.NetworkMattermost, ID: userID}
	}
	return b.senderOf(user)
}

func (b *Bridge) senderOf(user *model.User) bridge.Sender {
	s := bridge.Sender{
		Network: bridge.NetworkMattermost, ID: user.Id, Username: user.Username,
		DisplayName: user.GetDisplayName(model.ShowNicknameFullName),
		AvatarHash:  strconv.FormatInt(user.LastPictureUpdate, 10),
	}
	api, userID := b.api, user.Id
	s.Avatar = func(context.Context) ([]byte, error) {
		data, appErr := api.GetProfileImage(userID)
		if appErr != nil {
			return nil, appErr
		}
		return data, nil
	}
	return s
}

// Member returns the Sender that stands for a Mattermost user in other
// networks' member lists, built as for the author of a post so that a
// person's puppet looks the same either way. ok is false for bots and
// remote users: they are not people of this server, and a remote user the
// plugin made for someone on Matrix would otherwise get a puppet beside that
// person's real account.
func (b *Bridge) Member(userID string) (s bridge.Sender, ok bool, err error) {
	user, appErr := b.api.GetUser(userID)
	if appErr != nil {
		return bridge.Sender{}, false, appErr
	}
	if user.IsBot || user.IsRemote() || user.Id == b.opts.BotUserID {
		return bridge.Sender{}, false, nil
	}
	return b.senderOf(user), true, nil
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
		Mentions:    b.mentions(post.Message),
		Attachments: b.attachments(post.FileIds),
		Time:        millis(max(post.UpdateAt, post.CreateAt)),
	}
}

func (b *Bridge) editEvent(post *model.Post) bridge.Event {
	return bridge.Event{
		Kind:     bridge.KindEdit,
		Origin:   bridge.Ref{Network: bridge.NetworkMattermost, Room: post.ChannelId, ID: post.Id},
		Target:   post.Id,
		Parent:   post.RootId,
		Sender:   b.sender(post.UserId),
		Text:     post.Message,
		Mentions: b.mentions(post.Message),
		Time:     millis(max(post.UpdateAt, post.EditAt)),
	}
}

// deleter is who the server says deleted post: the user of the request's
// session, else the deleteBy prop app.DeletePost stores (which replays
// read back with the post); "" when neither names one.
func (b *Bridge) deleter(post *model.Post, sessionID string) string {
	if sessionID != "" {
		if session, appErr := b.api.GetSession(sessionID); appErr == nil && session.UserId != "" {
			return session.UserId
		}
	}
	deleteBy, _ := post.GetProp(model.PostPropsDeleteBy).(string)
	return deleteBy
}

// deleteEvent is the delete of post by deleter. Someone other than the
// author makes it a moderation. ok is false when no person of this server
// did it: the plugin removing a remote user's post because its original
// went away must not travel back.
func (b *Bridge) deleteEvent(post *model.Post, deleter string) (ev bridge.Event, ok bool) {
	at := post.DeleteAt
	if at == 0 {
		at = model.GetMillis() // the hook's post is as read before the delete
	}
	ev = bridge.Event{
		Kind:   bridge.KindDelete,
		Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: post.ChannelId, ID: post.Id},
		Target: post.Id,
		Time:   millis(at),
	}
	authorIsOwn := b.isOwnUser(post.UserId)
	if deleter != "" && deleter != post.UserId {
		if user, appErr := b.api.GetUser(deleter); appErr == nil && !user.IsBot && !b.ownUser(user) {
			ev.Sender, ev.Moderated, ev.AwaitTarget = b.senderOf(user), true, authorIsOwn
			return ev, true
		}
	}
	if authorIsOwn {
		return ev, false
	}
	// The author, or a plugin or bot acting with the server's leave: the
	// post is gone here, so its copies go too.
	ev.Sender = b.sender(post.UserId)
	return ev, true
}

// channelState is how far a channel's new posts have been handed to the
// core. Posts created before floor (where relaying started) are never
// sent; after is the newest creation time handed on, and recent the posts
// handed on (or passed over) created since lateWindow before it. A post
// that shows only after newer ones (the database committed it later, or a
// read replica lagged) is relayed when it shows, not skipped.
type channelState struct {
	mu      sync.Mutex
	started bool
	floor   int64
	after   int64
	recent  map[string]int64 // post ID -> CreateAt
	// waiting is set while a pull waits for a full queue to have room.
	waiting bool
}

// lateWindow is how long before the newest post handed on a post may show
// up and still be relayed (milliseconds); older ones count as handled.
const lateWindow = int64(time.Minute / time.Millisecond)

// handled reports whether p was handed on, or is not to be.
func (st *channelState) handled(p *model.Post) bool {
	if p.CreateAt < st.floor || p.CreateAt < st.after-lateWindow {
		return true
	}
	_, ok := st.recent[p.Id]
	return ok
}

// mark records p as handled.
func (st *channelState) mark(p *model.Post) {
	st.recent[p.Id] = p.CreateAt
	if p.CreateAt <= st.after {
		return
	}
	st.after = p.CreateAt
	for id, at := range st.recent {
		if at < st.after-lateWindow {
			delete(st.recent, id)
		}
	}
}

func (b *Bridge) channel(channelID string) *channelState {
	v, _ := b.channels.LoadOrStore(channelID, &channelState{})
	return v.(*channelState)
}

// startPoint is where relaying a channel resumes: the oldest of its
// destinations' cursors, or when a destination has none yet, the time it
// was linked, so history from before a link is never sent.
func (b *Bridge) startPoint(link *store.Link) int64 {
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
	return since
}

// pull relays the channel's posts created since the last pull, in creation
// order, and reports whether want (when not nil) is handed on: false when
// the read did not show it yet. The router skips messages a destination
// already has, so starting a little early after a restart never doubles
// anything.
func (b *Bridge) pull(channelID string, want *model.Post) bool {
	st := b.channel(channelID)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.started {
		link, err := b.store.GetLink(channelID)
		if err != nil {
			return false
		}
		st.floor = b.startPoint(link)
		st.after, st.recent = st.floor, map[string]int64{}
		st.started = true
	}
	since := st.after
	if want != nil && !st.handled(want) {
		since = min(since, want.CreateAt) // it showed late: read back to it
	}
	posts, appErr := b.postsSince(channelID, since)
	if appErr != nil {
		b.log.Warn("Could not read a channel's new posts", "channel_id", channelID, "error", appErr.Error())
		b.health.Failed(appErr)
		return false
	}
	for _, p := range posts {
		if st.handled(p) {
			continue
		}
		if p.DeleteAt == 0 && !p.IsSystemMessage() && p.Type != model.PostTypeEphemeral && !b.isOwnUser(p.UserId) {
			ev := b.messageEvent(p)
			ev.Time = millis(p.CreateAt)
			var full *bridge.QueueFullError
			if err := b.emit(ev); errors.As(err, &full) {
				// A destination is backed up: stay at this post and read
				// on once its queue has room. Destinations that took it
				// already skip it then, so nothing is doubled or lost.
				if !st.waiting {
					st.waiting = true
					b.pullWhenThereIsSpace(channelID, full.Space)
				}
				return false
			}
		}
		st.mark(p)
	}
	return want == nil || st.handled(want)
}

// relayWait bounds how long relayThen waits for a read to show a post.
const relayWait = time.Minute

// relayThen pulls the channel, then runs then (the edit, delete or
// reaction of post postID, or nil) once the post itself went through: the
// read behind pull may come from a replica that does not have a post just
// made, and its edit must not overtake it. Until the read shows it, pulling
// is tried again shortly, for up to relayWait; post nil (not known yet) is
// read again each time.
func (b *Bridge) relayThen(channelID, postID string, post *model.Post, then func()) {
	deadline := time.Now().Add(relayWait)
	var try func(delay time.Duration)
	try = func(delay time.Duration) {
		if post == nil {
			if p, appErr := b.api.GetPost(postID); appErr == nil {
				post = p
			}
		}
		done := b.pull(channelID, post) && post != nil
		if !done && time.Now().Before(deadline) {
			b.later(delay, func() { try(min(2*delay, 2*time.Second)) })
			return
		}
		if !done {
			// Not lost: the channel's position did not move past it.
			b.log.Warn("A post did not show in the channel's posts in time; it goes with the channel's next post", "channel_id", channelID, "post_id", postID)
		}
		if then != nil {
			then()
		}
	}
	try(25 * time.Millisecond)
}

// postsSincePageLimit is the most GetPostsSince returns: the server takes
// any that many of the posts changed since, in no defined order.
const postsSincePageLimit = 1000

// channelPageSize is the page size for reading a channel newest first.
const channelPageSize = 200

// postsSince returns the channel's posts created at or after since, in
// creation order. One GetPostsSince call covers them unless it comes back
// full: then it may have left any of them out, and the channel is read
// newest first, page by page, down to since. Pages shift when posts
// arrive meanwhile, so a post may be read twice but never missed.
func (b *Bridge) postsSince(channelID string, since int64) ([]*model.Post, *model.AppError) {
	list, appErr := b.api.GetPostsSince(channelID, since-1)
	if appErr != nil {
		return nil, appErr
	}
	if len(list.Order) < postsSincePageLimit {
		return sortedPosts(list), nil
	}
	all := model.NewPostList()
	for page := 0; ; page++ {
		list, appErr := b.api.GetPostsForChannel(channelID, page, channelPageSize)
		if appErr != nil {
			return nil, appErr
		}
		older := false
		for _, id := range list.Order {
			p := list.Posts[id]
			if p == nil {
				continue
			}
			if p.CreateAt < since {
				older = true
				continue
			}
			all.AddPost(p)
		}
		if older || len(list.Order) < channelPageSize {
			return sortedPosts(all), nil
		}
	}
}

// pullWhenThereIsSpace pulls a channel again once space is closed, unless
// stopped first.
func (b *Bridge) pullWhenThereIsSpace(channelID string, space <-chan struct{}) {
	b.mu.Lock()
	ctx := b.ctx
	b.mu.Unlock()
	if ctx == nil {
		return
	}
	go func() {
		select {
		case <-space:
		case <-ctx.Done():
		}
		st := b.channel(channelID)
		st.mu.Lock()
		st.waiting = false
		st.mu.Unlock()
		if ctx.Err() == nil {
			b.pull(channelID, nil)
		}
	}()
}

// later runs f after d, unless the bridge stopped meanwhile.
func (b *Bridge) later(d time.Duration, f func()) {
	b.mu.Lock()
	ctx := b.ctx
	b.mu.Unlock()
	time.AfterFunc(d, func() {
		if ctx != nil && ctx.Err() == nil {
			f()
		}
	})
}

func sortedPosts(list *model.PostList) []*model.Post {
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
	return posts
}

// replay relays what happened in linked channels while the plugin was not
// running: new posts, then edits and deletes of older ones, since each
// link's oldest destination cursor.
func (b *Bridge) replay(ctx context.Context, done, ready chan struct{}) {
	defer close(done)
	defer close(ready)
	// Posts made just before the start may not be on the read replicas
	// yet, and no hook will bring them.
	if err := b.store.AwaitReplicas(ctx); err != nil && ctx.Err() == nil {
		b.log.Warn("The read replicas did not catch up before the replay; posts made just before the start wait for the channels' next ones", "error", err.Error())
	}
	links, err := b.store.ListLinks()
	if err != nil {
		b.log.Error("Could not list links to replay missed posts", "error", err.Error())
		b.health.Failed(err)
	}
	for _, link := range links {
		if ctx.Err() != nil {
			return
		}
		since := b.startPoint(&link)
		if since < 0 {
			continue
		}
		b.pull(link.ChannelID, nil)
		b.replayChanges(link.ChannelID, since)
	}
}

// replayChanges relays edits and deletes, made while the plugin was not
// running, of posts relayed before.
func (b *Bridge) replayChanges(channelID string, since int64) {
	list, appErr := b.api.GetPostsSince(channelID, since)
	if appErr != nil {
		b.log.Warn("Could not read posts to replay", "channel_id", channelID, "error", appErr.Error())
		return
	}
	type change struct {
		ev  bridge.Event
		key string
	}
	var changes []change
	for _, p := range sortedPosts(list) {
		if p.CreateAt > since || p.IsSystemMessage() {
			continue
		}
		switch {
		case p.DeleteAt > since:
			if ev, ok := b.deleteEvent(p, b.deleter(p, "")); ok {
				changes = append(changes, change{ev, deleteKey(p)})
			}
		case p.EditAt > since && !b.isOwnUser(p.UserId):
			changes = append(changes, change{b.editEvent(p), editKey(p)})
		}
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].ev.Time.Before(changes[j].ev.Time) })
	for _, c := range changes {
		// Relayed whatever a claim says (a hook's claim may be all that is
		// left of an edit a stopped holder never delivered), but claimed,
		// so the shared-channels sync does not relay it once more.
		if _, _, err := b.store.Claim(nsChange, c.key, changeClaimTTL); err != nil {
			b.log.Warn("Could not claim a replayed change", "key", c.key, "error", err.Error())
		}
		_ = b.emit(c.ev)
	}
}

var mentionPattern = regexp.MustCompile(`(^|[^\w@])@([a-z0-9][a-z0-9._:-]*[a-z0-9_])`)

// mentions resolves the @username mentions of a message to people, so
// other networks can show them their way (an XMPP nick, a Matrix pill).
// Mentions of the plugin's remote users carry their identity on their own
// network.
func (b *Bridge) mentions(text string) []bridge.Mention {
	var out []bridge.Mention
	seen := map[string]bool{}
	for _, m := range mentionPattern.FindAllStringSubmatch(strings.ToLower(text), 20) {
		name := strings.TrimRight(m[2], ".-_:")
		if seen[name] || name == "all" || name == "channel" || name == "here" {
			continue
		}
		seen[name] = true
		user, appErr := b.api.GetUserByUsername(name)
		if appErr != nil {
			continue
		}
		person := bridge.Sender{
			Network: bridge.NetworkMattermost, ID: user.Id, Username: user.Username,
			DisplayName: user.GetDisplayName(model.ShowNicknameFullName),
		}
		if b.isOwnUser(user.Id) {
			if rec, err := b.store.RemoteUserByMattermostID(user.Id); err == nil {
				person.Network, person.ID = rec.Network, rec.RemoteID
				person.DisplayName = rec.DisplayName
			}
		}
		out = append(out, bridge.Mention{Text: "@" + name, Person: person})
	}
	return out
}
