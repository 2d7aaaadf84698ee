package testhost

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// The shared-channels sync service, as platform/services/sharedchannel of
// the server runs it for plugin remotes (sync_send.go,
// sync_send_remote.go, attachment.go, profile_image.go):
//
//   - It is on only when ConnectedWorkspacesSettings has both
//     EnableSharedChannels and EnableRemoteClusterService (WithSharedChannels);
//     otherwise the share and invite calls fail with
//     api.command_share.service_disabled, as app.getSharedChannelsService does.
//   - It runs on the cluster leader only (Service.onClusterLeaderChange):
//     here the first node whose plugin is active.
//   - A post, edit, delete or reaction in a shared channel schedules a task
//     for the channel (NotifyChannelChanged) at least NotifyMinimumDelay
//     later, so a burst becomes one sync; a changed profile picture or
//     name of a channel's synced user schedules one too
//     (NotifyUserProfileChanged).
//   - A task syncs each remote invited to the channel: the posts created
//     since the remote's cursor (LastPostCreateAt/ID), then the posts
//     updated since it (LastPostUpdateAt/ID), MaxPostsPerSync in all (a
//     full batch schedules the next at once); posts whose RemoteId is the
//     remote's are not sent back to it, nor edits older than the cursor
//     that changed nothing but reactions. With them go the posts'
//     reactions updated since the cursor (not those of the remote's own
//     users), and their authors and reactors that the remote has not seen
//     as they are now.
//   - It sends users, then each new attachment
//     (OnSharedChannelsAttachmentSyncMsg), then the posts, then the
//     reactions (each an OnSharedChannelsSyncMsg), then the changed
//     profile pictures (OnSharedChannelsProfileImageSyncMsg).
//   - After the posts message the remote's cursor becomes what the fetch
//     reached, whatever the plugin answered: the server does not read the
//     SyncResponse's *LastUpdateAt fields. Posts the plugin lists in
//     PostErrors are sent again alone (handlePostError), up to MaxRetries
//     times. A task that failed (the hook returned an error, or no node
//     could run it) is tried again at once, up to MaxRetries times.
//
//   - The remote-cluster service pings each plugin remote on the leader
//     every PingFreq (a minute) and 5 s after it is registered
//     (OnSharedChannelsPing); a remote whose last good ping is older than 5
//     minutes is offline: a sync for it sends nothing and moves no cursor,
//     and the authors of posts younger than 10 s get an ephemeral "cannot
//     deliver" note. A remote that comes back online gets a sync of every
//     channel shared with it.
//
// Not modelled: statuses, membership sync, permalinks, auto-invited
// remotes.

const (
	// syncMaxRetries is sharedchannel.MaxRetries.
	syncMaxRetries = 3
	// syncMinimumDelay is sharedchannel.NotifyMinimumDelay.
	syncMinimumDelay = 2 * time.Second
	// pingFreq is remotecluster's PingFreq.
	pingFreq = time.Minute
	// initialPingDelay is app.pluginRemoteInitialPingDelay.
	initialPingDelay = 5 * time.Second
	// offlineNoteThreshold is sharedchannel.NotifyRemoteOfflineThreshold.
	offlineNoteThreshold = 10 * time.Second
	// cannotDeliver is the server's sharedchannel.cannot_deliver_post text.
	cannotDeliver = "Unable to deliver this message to %s because it is offline. Please try again later."
)

// SyncCall is one call the sync service made to a plugin remote.
type SyncCall struct {
	Node   string
	Remote string
	// Hook is "sync", "attachment" or "profile_image".
	Hook     string
	Msg      *model.SyncMsg
	Response model.SyncResponse
	FileID   string
	UserID   string
	Err      error
}

type syncTask struct {
	id         string
	channelID  string
	remoteID   string // "" for every remote of the channel
	retryMsg   *model.SyncMsg
	retryCount int
	addedAt    time.Time
	schedule   time.Time
}

func newSyncTask(channelID, remoteID string, retryMsg *model.SyncMsg) syncTask {
	id := channelID + remoteID
	if retryMsg != nil {
		id += retryMsg.Id
	}
	return syncTask{id: id, channelID: channelID, remoteID: remoteID, retryMsg: retryMsg, schedule: time.Now()}
}

// syncService holds the tasks and what the server keeps per remote besides
// the cursors: SharedChannelUsers (when a user was last synced to a remote
// for a channel) and SharedChannelAttachments (which files were).
type syncService struct {
	s *Server

	mu       sync.Mutex
	tasks    map[string]syncTask
	userSync map[userSyncKey]int64 // LastSyncAt
	fileSync map[string]bool       // remote|file
	calls    []SyncCall
	signal   chan struct{}
	done     chan struct{}
	stopped  chan struct{}
	// pingWake restarts the ping timer after SetPingInterval.
	pingWake    chan struct{}
	pingStopped chan struct{}
	minDelay    time.Duration
	pingEvery   time.Duration
	// online is whether each remote read online at its last ping, to tell
	// when it comes back.
	online    map[string]bool
	closeOnce sync.Once
}

func newSyncService(s *Server) *syncService {
	ss := &syncService{
		s: s, tasks: map[string]syncTask{}, userSync: map[userSyncKey]int64{}, fileSync: map[string]bool{},
		signal: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{}),
		pingWake: make(chan struct{}, 1), pingStopped: make(chan struct{}),
		minDelay: syncMinimumDelay, pingEvery: pingFreq, online: map[string]bool{},
	}
	go ss.loop()
	go ss.pingLoop()
	return ss
}

func (ss *syncService) close() {
	ss.closeOnce.Do(func() { close(ss.done) })
	<-ss.stopped
	<-ss.pingStopped
}

// SetPingInterval changes how often plugin remotes are pinged (a minute on
// the server).
func (s *Server) SetPingInterval(d time.Duration) {
	s.sync.mu.Lock()
	s.sync.pingEvery = d
	s.sync.mu.Unlock()
	select {
	case s.sync.pingWake <- struct{}{}:
	default:
	}
}

// pingLoop is remotecluster's ping loop, on the leader.
func (ss *syncService) pingLoop() {
	defer close(ss.pingStopped)
	for {
		ss.mu.Lock()
		every := ss.pingEvery
		ss.mu.Unlock()
		t := time.NewTimer(every)
		select {
		case <-t.C:
			ss.pingAll()
		case <-ss.pingWake:
			t.Stop()
		case <-ss.done:
			t.Stop()
			return
		}
	}
}

func (ss *syncService) pingAll() {
	ss.s.mu.RLock()
	var ids []string
	for id, rc := range ss.s.st.remotes {
		if rc.DeleteAt == 0 && rc.IsPlugin() {
			ids = append(ids, id)
		}
	}
	ss.s.mu.RUnlock()
	for _, id := range ids {
		ss.ping(id)
	}
}

// pingLater is the first ping of a remote just registered
// (schedulePluginRemoteInitialPing).
func (ss *syncService) pingLater(remoteID string) {
	t := time.AfterFunc(initialPingDelay, func() {
		select {
		case <-ss.done:
		default:
			ss.ping(remoteID)
		}
	})
	go func() {
		<-ss.done
		t.Stop()
	}()
}

// ping is PingNow: a good answer stamps LastPingAt, and a remote back
// online gets its channels synced (onConnectionStateChange).
func (ss *syncService) ping(remoteID string) {
	s := ss.s
	s.mu.RLock()
	rc := s.st.remotes[remoteID]
	if rc == nil || rc.DeleteAt != 0 || !s.sharedChannelsActiveLocked() {
		s.mu.RUnlock()
		return
	}
	c := *rc
	s.mu.RUnlock()
	_, h, err := ss.leader(c.PluginID)
	ok := err == nil && h.OnSharedChannelsPing(&c)
	if ok {
		s.mu.Lock()
		if rc := s.st.remotes[remoteID]; rc != nil {
			rc.LastPingAt = model.GetMillis()
		}
		s.mu.Unlock()
	}
	ss.mu.Lock()
	was := ss.online[remoteID]
	ss.online[remoteID] = ok
	delay := ss.minDelay
	ss.mu.Unlock()
	if ok && !was {
		// ForceSyncForRemote.
		for _, ch := range s.channelsSharedWith(remoteID) {
			t := newSyncTask(ch, remoteID, nil)
			t.schedule = time.Now().Add(delay)
			ss.add(t)
		}
	}
}

func (s *Server) channelsSharedWith(remoteID string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.RemoteId == remoteID && scr.DeleteAt == 0 {
			out = append(out, scr.ChannelId)
		}
	}
	return out
}

// WithSharedChannels turns on shared channels (ConnectedWorkspacesSettings
// EnableSharedChannels and EnableRemoteClusterService), as on a licensed
// server where the admin enabled them. Without it, as on a default server,
// the share and invite calls fail and nothing is synchronised.
func WithSharedChannels() Option { return func(o *options) { o.sharedChannels = true } }

// SharedChannelsActive reports whether the shared-channels service runs.
func (s *Server) SharedChannelsActive() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sharedChannelsActiveLocked()
}

func (s *Server) sharedChannelsActiveLocked() bool {
	cw := s.st.config.ConnectedWorkspacesSettings
	return cw.EnableSharedChannels != nil && *cw.EnableSharedChannels &&
		cw.EnableRemoteClusterService != nil && *cw.EnableRemoteClusterService
}

// errServiceDisabled is app.getSharedChannelsService's error.
func errServiceDisabled(where string) *model.AppError {
	return model.NewAppError(where, "api.command_share.service_disabled", nil, "", http.StatusBadRequest)
}

// SyncCalls returns the calls the sync service made to plugin remotes so
// far, oldest first.
func (s *Server) SyncCalls() []SyncCall {
	s.sync.mu.Lock()
	defer s.sync.mu.Unlock()
	return slices.Clone(s.sync.calls)
}

// SetSyncDelay changes how long a change waits before it is synced
// (NotifyMinimumDelay, 2 s on the server).
func (s *Server) SetSyncDelay(d time.Duration) {
	s.sync.mu.Lock()
	s.sync.minDelay = d
	s.sync.mu.Unlock()
}

// notifyChannelChanged is NotifyChannelChanged: called after a post or a
// reaction in the channel changed.
func (s *Server) notifyChannelChanged(channelID string) {
	s.mu.RLock()
	shared := s.st.sharedChannels[channelID] != nil && s.sharedChannelsActiveLocked()
	s.mu.RUnlock()
	if !shared {
		return
	}
	t := newSyncTask(channelID, "", nil)
	s.sync.mu.Lock()
	t.schedule = time.Now().Add(s.sync.minDelay)
	s.sync.mu.Unlock()
	s.sync.add(t)
}

// notifyUserProfileChanged is NotifyUserProfileChanged: every channel and
// remote the user was synced to gets a task.
func (s *Server) notifyUserProfileChanged(userID string) {
	if !s.SharedChannelsActive() {
		return
	}
	ss := s.sync
	ss.mu.Lock()
	var tasks []syncTask
	for k := range ss.userSync {
		if k.user == userID {
			t := newSyncTask(k.channel, k.remote, nil)
			t.schedule = time.Now().Add(ss.minDelay)
			tasks = append(tasks, t)
		}
	}
	ss.mu.Unlock()
	for _, t := range tasks {
		ss.add(t)
	}
}

// add is addTask: a task already waiting keeps its place.
func (ss *syncService) add(t syncTask) {
	t.addedAt = time.Now()
	ss.mu.Lock()
	if _, ok := ss.tasks[t.id]; !ok {
		ss.tasks[t.id] = t
	}
	ss.mu.Unlock()
	select {
	case ss.signal <- struct{}{}:
	default:
	}
}

func (ss *syncService) loop() {
	defer close(ss.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ss.signal:
		case <-timer.C:
		case <-ss.done:
			return
		}
		wait := ss.doSync()
		if wait <= 0 {
			wait = time.Hour
		}
		timer.Reset(wait)
	}
}

// doSync runs every task that is due, oldest first, and returns how long
// until the next one is.
func (ss *syncService) doSync() time.Duration {
	for {
		t, ok, wait := ss.takeOldest()
		if !ok {
			return wait
		}
		select {
		case <-ss.done:
			return 0
		default:
		}
		if err := ss.process(t); err != nil {
			ss.retry(t, err)
		}
	}
}

func (ss *syncService) takeOldest() (syncTask, bool, time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var oldest syncTask
	var shortest time.Duration
	found := false
	for _, t := range ss.tasks {
		if w := time.Until(t.schedule); w > 0 {
			if shortest == 0 || w < shortest {
				shortest = w
			}
			continue
		}
		if !found || t.addedAt.Before(oldest.addedAt) {
			oldest, found = t, true
		}
	}
	if found {
		delete(ss.tasks, oldest.id)
	}
	return oldest, found, shortest
}

func (ss *syncService) retry(t syncTask, err error) {
	t.retryCount++
	if t.retryCount > syncMaxRetries {
		ss.s.logs.add("", fmt.Sprintf("[sync] Failed to synchronize shared channel %s (remote %q): %v", t.channelID, t.remoteID, err))
		return
	}
	ss.add(t)
}

// process is processTask: each remote of the channel is synced on its own,
// and one that fails is retried alone.
func (ss *syncService) process(t syncTask) error {
	s := ss.s
	s.mu.RLock()
	if !s.sharedChannelsActiveLocked() {
		s.mu.RUnlock()
		return nil
	}
	if t.remoteID != "" {
		if rc := s.st.remotes[t.remoteID]; rc != nil && !rc.IsOnline() {
			s.mu.RUnlock()
			return fmt.Errorf("failed updating shared channel %s for offline remote %s", t.channelID, rc.DisplayName)
		}
	}
	var remotes []*model.RemoteCluster
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId != t.channelID || (t.remoteID != "" && scr.RemoteId != t.remoteID) || !scr.IsInviteConfirmed || scr.DeleteAt != 0 {
			continue
		}
		if rc := s.st.remotes[scr.RemoteId]; rc != nil && rc.DeleteAt == 0 {
			c := *rc
			remotes = append(remotes, &c)
		}
	}
	s.mu.RUnlock()
	for _, rc := range remotes {
		rt := t
		rt.remoteID = rc.RemoteId
		if err := ss.syncForRemote(rt, rc); err != nil {
			ss.retry(rt, err)
		}
	}
	return nil
}

// syncData is what one sync sends to one remote.
type syncData struct {
	task          syncTask
	rc            *model.RemoteCluster
	scr           model.SharedChannelRemote
	users         map[string]*model.User
	profileImages map[string]*model.User
	posts         []*model.Post
	reactions     []*model.Reaction
	attachments   []syncAttachment
	next          model.GetPostsSinceForSyncCursor
	repeat        bool
}

type syncAttachment struct {
	fi   *model.FileInfo
	post *model.Post
}

func (sd *syncData) empty() bool {
	return len(sd.users) == 0 && len(sd.profileImages) == 0 && len(sd.posts) == 0 && len(sd.reactions) == 0 && len(sd.attachments) == 0
}

func (sd *syncData) cursorChanged() bool {
	return sd.next != (model.GetPostsSinceForSyncCursor{}) &&
		(sd.next.LastPostCreateAt != sd.scr.LastPostCreateAt || sd.next.LastPostCreateID != sd.scr.LastPostCreateID ||
			sd.next.LastPostUpdateAt != sd.scr.LastPostUpdateAt || sd.next.LastPostUpdateID != sd.scr.LastPostUpdateID)
}

// syncForRemote is Service.syncForRemote.
func (ss *syncService) syncForRemote(t syncTask, rc *model.RemoteCluster) error {
	s := ss.s
	s.mu.RLock()
	var scr *model.SharedChannelRemote
	for _, x := range s.st.sharedChannelRemotes {
		if x.ChannelId == t.channelID && x.RemoteId == rc.RemoteId {
			c := *x
			scr = &c
		}
	}
	s.mu.RUnlock()
	if scr == nil || scr.DeleteAt != 0 {
		return nil
	}
	sd := &syncData{task: t, rc: rc, scr: *scr, users: map[string]*model.User{}, profileImages: map[string]*model.User{},
		next: model.GetPostsSinceForSyncCursor{
			LastPostCreateAt: scr.LastPostCreateAt, LastPostCreateID: scr.LastPostCreateID,
			LastPostUpdateAt: scr.LastPostUpdateAt, LastPostUpdateID: scr.LastPostUpdateID,
		}}
	if t.retryMsg != nil {
		sd.posts = t.retryMsg.Posts
		return ss.send(sd)
	}
	defer func() {
		if sd.repeat {
			ss.add(newSyncTask(t.channelID, t.remoteID, nil))
		}
	}()
	s.mu.RLock()
	ss.fetchPostsLocked(sd)
	if !rc.IsOnline() {
		s.mu.RUnlock()
		sd.repeat = false
		ss.notifyOffline(sd.posts, rc)
		return nil
	}
	ss.fetchReactionsLocked(sd)
	ss.fetchUsersLocked(sd)
	ss.filterPosts(sd)
	ss.fetchAttachmentsLocked(sd)
	s.mu.RUnlock()
	if sd.empty() {
		if sd.cursorChanged() {
			ss.updateCursor(sd)
		}
		return nil
	}
	return ss.send(sd)
}

// afterCursor reports whether (at, id) comes after (cAt, cID), the order
// GetPostsSinceForSync reads in.
func afterCursor(at int64, id string, cAt int64, cID string) bool {
	return at > cAt || (at == cAt && id > cID)
}

// fetchPostsLocked is fetchPostsForSync: the posts created since the
// cursor first, so a remote that cannot set a post's creation time still
// gets them in order, then the posts updated since it.
func (ss *syncService) fetchPostsLocked(sd *syncData) {
	s := ss.s
	limit := model.ConnectedWorkspacesSettingsDefaultMaxPostsPerSync
	if v := s.st.config.ConnectedWorkspacesSettings.MaxPostsPerSync; v != nil && *v > 0 {
		limit = *v
	}
	var created, updated []*model.Post
	for _, p := range s.st.posts {
		if p.ChannelId != sd.task.channelID {
			continue
		}
		if afterCursor(p.CreateAt, p.Id, sd.scr.LastPostCreateAt, sd.scr.LastPostCreateID) {
			created = append(created, p)
		}
		if afterCursor(p.UpdateAt, p.Id, sd.scr.LastPostUpdateAt, sd.scr.LastPostUpdateID) {
			updated = append(updated, p)
		}
	}
	sort.Slice(created, func(i, j int) bool {
		return !afterCursor(created[i].CreateAt, created[i].Id, created[j].CreateAt, created[j].Id)
	})
	sort.Slice(updated, func(i, j int) bool {
		return !afterCursor(updated[i].UpdateAt, updated[i].Id, updated[j].UpdateAt, updated[j].Id)
	})
	if len(created) > limit {
		created = created[:limit]
	}
	seen := map[string]bool{}
	for _, p := range created {
		sd.posts = append(sd.posts, copyPost(p))
		seen[p.Id] = true
		sd.next.LastPostCreateAt, sd.next.LastPostCreateID = p.CreateAt, p.Id
	}
	count := len(created)
	if count < limit {
		updated = updated[:min(len(updated), limit-count)]
		for _, p := range updated {
			sd.next.LastPostUpdateAt, sd.next.LastPostUpdateID = p.UpdateAt, p.Id
			if seen[p.Id] {
				continue
			}
			sd.posts = append(sd.posts, copyPost(p))
			count++
		}
	}
	sd.repeat = count >= limit
}

// fetchReactionsLocked is fetchReactionsForSync.
func (ss *syncService) fetchReactionsLocked(sd *syncData) {
	for _, p := range sd.posts {
		for _, r := range ss.s.st.reactions[p.Id] {
			if r.UpdateAt > sd.scr.LastPostUpdateAt && r.GetRemoteID() != sd.rc.RemoteId {
				sd.reactions = append(sd.reactions, copyReaction(r))
			}
		}
	}
}

// fetchUsersLocked is fetchPostUsersForSync with shouldUserSync: the
// authors and reactors, unless they belong to the remote, when the remote
// has not seen them or they changed since.
func (ss *syncService) fetchUsersLocked(sd *syncData) {
	ids := map[string]bool{}
	for _, r := range sd.reactions {
		ids[r.UserId] = true
	}
	for _, p := range sd.posts {
		ids[p.UserId] = true
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	// fetchUsersForSync: the channel's users synced before that changed
	// since (GetUsersForSync), with or without a post now.
	for k := range ss.userSync {
		if k.channel == sd.task.channelID && k.remote == sd.rc.RemoteId {
			ids[k.user] = true
		}
	}
	for id := range ids {
		u := ss.s.st.users[id]
		if u == nil || u.GetRemoteID() == sd.rc.RemoteId {
			continue
		}
		last, known := ss.userSync[userSyncKey{sd.task.channelID, sd.rc.RemoteId, id}]
		if !known || u.UpdateAt > last {
			sd.users[id] = sanitizedUser(u)
		}
		if !known || u.LastPictureUpdate > last {
			sd.profileImages[id] = sanitizedUser(u)
		}
	}
}

// userSyncKey names a SharedChannelUsers row.
type userSyncKey struct{ channel, remote, user string }

// sanitizedUser is sanitizeUserForSync: no secrets leave the server.
func sanitizedUser(u *model.User) *model.User {
	c := *u
	c.Password = model.NewId()
	c.AuthData = nil
	c.AuthService = ""
	c.MfaActive = false
	c.MfaSecret = ""
	c.LastPasswordUpdate = 0
	c.FailedAttempts = 0
	return &c
}

// filterPosts is filterPostsForSync.
func (ss *syncService) filterPosts(sd *syncData) {
	out := sd.posts[:0]
	for _, p := range sd.posts {
		if p.EditAt > 0 && p.EditAt < sd.scr.LastPostUpdateAt && p.DeleteAt == 0 {
			continue // only its reactions changed
		}
		if p.DeleteAt > 0 && p.OriginalId != "" {
			continue // the old version kept by an edit
		}
		if p.GetRemoteID() == sd.rc.RemoteId {
			continue // never back to where it came from
		}
		out = append(out, p)
	}
	sd.posts = out
}

// fetchAttachmentsLocked is fetchPostAttachmentsForSync with
// shouldSyncAttachment: each file once per remote, never the remote's own.
func (ss *syncService) fetchAttachmentsLocked(sd *syncData) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, p := range sd.posts {
		for _, id := range p.FileIds {
			fi := ss.s.st.files[id]
			if fi == nil || fi.DeleteAt != 0 || (fi.RemoteId != nil && *fi.RemoteId == sd.rc.RemoteId) || ss.fileSync[sd.rc.RemoteId+"|"+id] {
				continue
			}
			c := *fi
			sd.attachments = append(sd.attachments, syncAttachment{fi: &c, post: p})
		}
	}
}

// send is sendSyncData: users, attachments, posts, reactions, pictures, in
// that order; the posts message moves the cursor.
func (ss *syncService) send(sd *syncData) error {
	var errs []error
	if len(sd.users) > 0 {
		msg := model.NewSyncMsg(sd.task.channelID)
		msg.Users = sd.users
		resp, err := ss.callSync(sd.rc, msg)
		now := ss.s.now()
		ss.mu.Lock()
		for _, id := range resp.UsersSyncd {
			ss.userSync[userSyncKey{sd.task.channelID, sd.rc.RemoteId, id}] = now
		}
		ss.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot send user sync data: %w", err))
		}
	}
	for _, a := range sd.attachments {
		if err := ss.callAttachment(sd.rc, a.fi, a.post); err != nil {
			ss.s.logs.add("", fmt.Sprintf("[sync] Cannot sync post attachment %s: %v", a.fi.Id, err))
			continue
		}
		ss.mu.Lock()
		ss.fileSync[sd.rc.RemoteId+"|"+a.fi.Id] = true
		ss.mu.Unlock()
	}
	if len(sd.posts) > 0 {
		msg := model.NewSyncMsg(sd.task.channelID)
		msg.Posts = sd.posts
		resp, err := ss.callSync(sd.rc, msg)
		for _, id := range resp.PostErrors {
			ss.postError(id, sd)
		}
		if sd.task.retryMsg == nil {
			ss.updateCursor(sd)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot send post sync data: %w", err))
		}
	} else if sd.cursorChanged() {
		ss.updateCursor(sd)
	}
	if len(sd.reactions) > 0 {
		msg := model.NewSyncMsg(sd.task.channelID)
		msg.Reactions = sd.reactions
		if _, err := ss.callSync(sd.rc, msg); err != nil {
			errs = append(errs, fmt.Errorf("cannot send reaction sync data: %w", err))
		}
	}
	for _, u := range sd.profileImages {
		if err := ss.callProfileImage(sd.rc, u); err != nil {
			ss.s.logs.add("", fmt.Sprintf("[sync] Cannot sync the profile image of %s: %v", u.Id, err))
			continue
		}
		ss.mu.Lock()
		ss.userSync[userSyncKey{sd.task.channelID, sd.rc.RemoteId, u.Id}] = ss.s.now()
		ss.mu.Unlock()
	}
	return errors.Join(errs...)
}

// postError is handlePostError: a post the remote could not take is sent
// again on its own, and a retry that failed again counts against
// MaxRetries.
func (ss *syncService) postError(postID string, sd *syncData) {
	t := sd.task
	if t.retryMsg != nil && len(t.retryMsg.Posts) == 1 && t.retryMsg.Posts[0].Id == postID {
		ss.retry(t, fmt.Errorf("post %s failed again", postID))
		return
	}
	ss.s.mu.RLock()
	p := ss.s.st.posts[postID]
	var c *model.Post
	if p != nil {
		c = copyPost(p)
	}
	ss.s.mu.RUnlock()
	if c == nil {
		return
	}
	msg := model.NewSyncMsg(t.channelID)
	msg.Posts = []*model.Post{c}
	ss.add(newSyncTask(t.channelID, t.remoteID, msg))
}

func (ss *syncService) updateCursor(sd *syncData) {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == sd.task.channelID && scr.RemoteId == sd.rc.RemoteId {
			scr.LastPostCreateAt, scr.LastPostCreateID = sd.next.LastPostCreateAt, sd.next.LastPostCreateID
			scr.LastPostUpdateAt, scr.LastPostUpdateID = sd.next.LastPostUpdateAt, sd.next.LastPostUpdateID
		}
	}
}

// leader is the node the service runs on: the first with the plugin active.
func (ss *syncService) leader(pluginID string) (*Node, plugin.Hooks, error) {
	for _, n := range ss.s.Nodes() {
		if !n.IsActive(pluginID) {
			continue
		}
		if h, err := n.env.HooksForPlugin(pluginID); err == nil {
			return n, h, nil
		}
	}
	return nil, nil, fmt.Errorf("plugin %s unavailable", pluginID)
}

func (ss *syncService) record(c SyncCall) {
	ss.mu.Lock()
	ss.calls = append(ss.calls, c)
	ss.mu.Unlock()
}

func (ss *syncService) callSync(rc *model.RemoteCluster, msg *model.SyncMsg) (model.SyncResponse, error) {
	n, h, err := ss.leader(rc.PluginID)
	if err != nil {
		err = fmt.Errorf("cannot deliver sync msg to plugin %s: %w", rc.PluginID, err)
		ss.record(SyncCall{Remote: rc.RemoteId, Hook: "sync", Msg: msg, Err: err})
		return model.SyncResponse{}, err
	}
	c := *rc
	resp, err := h.OnSharedChannelsSyncMsg(msg, &c)
	ss.record(SyncCall{Node: n.id, Remote: rc.RemoteId, Hook: "sync", Msg: msg, Response: resp, Err: err})
	return resp, err
}

func (ss *syncService) callAttachment(rc *model.RemoteCluster, fi *model.FileInfo, post *model.Post) error {
	node := ""
	n, h, err := ss.leader(rc.PluginID)
	if err == nil {
		node = n.id
		c := *rc
		err = h.OnSharedChannelsAttachmentSyncMsg(fi, post, &c)
	}
	ss.record(SyncCall{Node: node, Remote: rc.RemoteId, Hook: "attachment", FileID: fi.Id, Err: err})
	return err
}

func (ss *syncService) callProfileImage(rc *model.RemoteCluster, u *model.User) error {
	node := ""
	n, h, err := ss.leader(rc.PluginID)
	if err == nil {
		node = n.id
		c := *rc
		err = h.OnSharedChannelsProfileImageSyncMsg(u, &c)
	}
	ss.record(SyncCall{Node: node, Remote: rc.RemoteId, Hook: "profile_image", UserID: u.Id, Err: err})
	return err
}

// notifyOffline is notifyRemoteOffline: one ephemeral note per author of
// the recent posts that could not go to an offline remote.
func (ss *syncService) notifyOffline(posts []*model.Post, rc *model.RemoteCluster) {
	n, _, err := ss.leader(rc.PluginID)
	if err != nil {
		return
	}
	noted := map[string]bool{}
	for i := len(posts) - 1; i >= 0; i-- {
		p := posts[i]
		if noted[p.UserId] || p.DeleteAt != 0 || p.UserId == "" || time.Since(time.UnixMilli(p.CreateAt)) >= offlineNoteThreshold {
			continue
		}
		noted[p.UserId] = true
		n.recordEphemeral(p.UserId, "send", &model.Post{
			Id: model.NewId(), ChannelId: p.ChannelId, Type: model.PostTypeEphemeral, CreateAt: p.CreateAt + 1,
			Message: fmt.Sprintf(cannotDeliver, rc.DisplayName),
		})
	}
}
