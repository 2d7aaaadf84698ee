package testhost

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mattermost/mattermost/server/public/model"
)

// Shared channels: the host records registrations, shares and invitations
// (see Server.RemoteClusters, SharedChannel, SharedChannelRemotes) with the
// server's validation, and syncs shared channels to plugin remotes with
// the sync service of sync.go. Registering needs no license (the server's
// app.RegisterPluginForSharedChannels only writes the remote); sharing and
// inviting need the shared-channels service, off unless WithSharedChannels.
// ReceiveSharedChannel*SyncMsg are not implemented.

// RegisterPluginForSharedChannels registers (or restores) a plugin remote
// like the server: the remote is identified by opts.SiteURL (default
// "plugin_<PluginID>"), so registering again with the same SiteURL returns
// the same remote ID, and a SiteURL can belong to one plugin only.
func (a *API) RegisterPluginForSharedChannels(opts model.RegisterPluginOpts) (string, error) {
	if opts.PluginID == "" {
		opts.PluginID = a.pluginID
	}
	if opts.SiteURL == "" {
		opts.SiteURL = "plugin_" + opts.PluginID // the server's legacy default (model.SiteURLPlugin)
	}
	id, err := a.registerRemote(opts)
	if err == nil {
		a.s.sync.pingLater(id)
	}
	return id, err
}

func (a *API) registerRemote(opts model.RegisterPluginOpts) (string, error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rc := range s.st.remotes {
		if rc.SiteURL != opts.SiteURL {
			continue
		}
		if rc.PluginID != opts.PluginID {
			return "", fmt.Errorf("SiteURL %q is already in use by remote %s (plugin %q)", opts.SiteURL, rc.RemoteId, rc.PluginID)
		}
		rc.DeleteAt = 0
		rc.DisplayName = opts.Displayname
		rc.Options = opts.GetOptionFlags()
		return rc.RemoteId, nil
	}
	rc := &model.RemoteCluster{
		Name:        model.CleanRemoteName(opts.Displayname),
		DisplayName: opts.Displayname,
		SiteURL:     opts.SiteURL,
		Token:       model.NewId(),
		CreatorId:   opts.CreatorID,
		PluginID:    opts.PluginID,
		Options:     opts.GetOptionFlags(),
	}
	rc.PreSave()
	rc.CreateAt = s.now()
	if err := rc.IsValid(); err != nil {
		return "", err
	}
	s.st.remotes[rc.RemoteId] = rc
	return rc.RemoteId, nil
}

// UnregisterPluginForSharedChannels deletes every remote of a plugin.
func (a *API) UnregisterPluginForSharedChannels(pluginID string) error {
	s := a.s
	s.mu.Lock()
	var unshared []*model.SharedChannel
	for _, rc := range s.st.remotes {
		if rc.PluginID == pluginID && rc.DeleteAt == 0 {
			unshared = append(unshared, s.deleteRemoteLocked(rc)...)
		}
	}
	s.mu.Unlock()
	a.n.noteUnshared(unshared)
	return nil
}

// UnregisterPluginRemoteForSharedChannels deletes one of the plugin's
// remotes.
func (a *API) UnregisterPluginRemoteForSharedChannels(remoteID string) error {
	s := a.s
	s.mu.Lock()
	rc := s.st.remotes[remoteID]
	if rc == nil {
		s.mu.Unlock()
		return fmt.Errorf("remote %s not found", remoteID)
	}
	if rc.PluginID != a.pluginID {
		s.mu.Unlock()
		return fmt.Errorf("remote %s does not belong to plugin %s", remoteID, a.pluginID)
	}
	var unshared []*model.SharedChannel
	if rc.DeleteAt == 0 {
		unshared = s.deleteRemoteLocked(rc)
	}
	s.mu.Unlock()
	a.n.noteUnshared(unshared)
	return nil
}

// unshareMessage is sharedchannel.UnshareMessage.
const unshareMessage = "This channel is no longer shared."

// noteUnshared posts the server's note in each channel no longer shared,
// as its sharer (sharedchannel.Service.UnshareChannel).
func (n *Node) noteUnshared(unshared []*model.SharedChannel) {
	for _, sc := range unshared {
		n.postSystemMessage(sc.ChannelId, sc.CreatorId, model.PostTypeSystemGeneric, unshareMessage, nil)
	}
}

// deleteRemoteLocked soft-deletes a remote, removes its invitations and
// unshares the channels left without remotes, like the server; it returns
// the records of those.
func (s *Server) deleteRemoteLocked(rc *model.RemoteCluster) []*model.SharedChannel {
	rc.DeleteAt = s.now()
	affected := map[string]bool{}
	for id, scr := range s.st.sharedChannelRemotes {
		if scr.RemoteId == rc.RemoteId {
			affected[scr.ChannelId] = true
			delete(s.st.sharedChannelRemotes, id)
		}
	}
	var unshared []*model.SharedChannel
	for channelID := range affected {
		if !s.channelHasRemotesLocked(channelID) {
			if sc := s.unshareLocked(channelID); sc != nil {
				unshared = append(unshared, sc)
			}
		}
	}
	return unshared
}

func (s *Server) channelHasRemotesLocked(channelID string) bool {
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID {
			return true
		}
	}
	return false
}

// unshareLocked unshares a channel and returns its share record, nil when
// it was not shared.
func (s *Server) unshareLocked(channelID string) *model.SharedChannel {
	sc := s.st.sharedChannels[channelID]
	if sc == nil {
		return nil
	}
	delete(s.st.sharedChannels, channelID)
	for id, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID {
			delete(s.st.sharedChannelRemotes, id)
		}
	}
	if ch := s.st.channels[channelID]; ch != nil {
		ch.Shared = model.NewPointer(false)
	}
	return sc
}

func (s *Server) shareLocked(in *model.SharedChannel) (*model.SharedChannel, error) {
	ch := s.st.channels[in.ChannelId]
	if ch == nil {
		return nil, notFound("ShareChannel", "app.channel.get.existing.app_error", "channel_id="+in.ChannelId)
	}
	if old := s.st.sharedChannels[in.ChannelId]; old != nil {
		// sharedchannel.Service.ShareChannel: already shared, nothing to do.
		out := *old
		return &out, nil
	}
	sc := *in
	sc.Type = ch.Type
	if sc.TeamId == "" {
		sc.TeamId = ch.TeamId
	}
	sc.PreSave()
	sc.CreateAt = s.now()
	sc.UpdateAt = sc.CreateAt
	if err := sc.IsValid(); err != nil {
		return nil, err
	}
	s.st.sharedChannels[sc.ChannelId] = &sc
	ch.Shared = model.NewPointer(true)
	out := sc
	return &out, nil
}

// ShareChannel shares a channel (validated with SharedChannel.IsValid; a
// channel already shared keeps its record, which is returned). The
// channel's Shared flag is set.
func (a *API) ShareChannel(sc *model.SharedChannel) (*model.SharedChannel, error) {
	if sc == nil {
		return nil, errors.New("shared channel is nil")
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if !a.s.sharedChannelsActiveLocked() {
		return nil, errServiceDisabled("ShareChannel")
	}
	return a.s.shareLocked(sc)
}

// UpdateSharedChannel updates a channel's share record.
func (a *API) UpdateSharedChannel(sc *model.SharedChannel) (*model.SharedChannel, error) {
	if sc == nil {
		return nil, errors.New("shared channel is nil")
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if !a.s.sharedChannelsActiveLocked() {
		return nil, errServiceDisabled("UpdateSharedChannel")
	}
	old := a.s.st.sharedChannels[sc.ChannelId]
	if old == nil {
		return nil, model.ErrChannelNotShared
	}
	c := *sc
	c.CreateAt = old.CreateAt
	c.Type = old.Type
	c.PreUpdate()
	c.UpdateAt = a.s.now()
	if err := c.IsValid(); err != nil {
		return nil, err
	}
	a.s.st.sharedChannels[c.ChannelId] = &c
	out := c
	return &out, nil
}

// UnshareChannel unshares a channel, reporting whether it was shared.
func (a *API) UnshareChannel(channelID string) (bool, error) {
	a.s.mu.Lock()
	if !a.s.sharedChannelsActiveLocked() {
		a.s.mu.Unlock()
		return false, errServiceDisabled("UnshareChannel")
	}
	sc := a.s.unshareLocked(channelID)
	a.s.mu.Unlock()
	if sc == nil {
		return false, nil
	}
	a.n.noteUnshared([]*model.SharedChannel{sc})
	return true, nil
}

// InviteRemoteToChannel invites a (live) remote to a channel, sharing the
// channel first if shareIfNotShared. A plugin remote's invitation is
// accepted and confirmed at once, with its cursor at the time of the
// invitation so no history is synced; the inviter gets an ephemeral note
// and the channel is synced (sharedchannel.SendChannelInvite).
func (a *API) InviteRemoteToChannel(channelID string, remoteID string, userID string, shareIfNotShared bool) error {
	name, err := a.inviteRemote(channelID, remoteID, userID, shareIfNotShared)
	if err != nil || name == "" {
		return err
	}
	a.s.notifyChannelChanged(channelID)
	a.SendEphemeralPost(userID, &model.Post{ChannelId: channelID, Message: "`" + name + "` has been added to channel."})
	return nil
}

// inviteRemote records the invitation; name is the remote's display name
// when it is new, "" when it was invited already.
func (a *API) inviteRemote(channelID string, remoteID string, userID string, shareIfNotShared bool) (name string, err error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sharedChannelsActiveLocked() {
		return "", errServiceDisabled("InviteRemoteToChannel")
	}
	rc := s.st.remotes[remoteID]
	if rc == nil || rc.DeleteAt != 0 {
		return "", fmt.Errorf("remote %s not found", remoteID)
	}
	ch := s.st.channels[channelID]
	if ch == nil {
		return "", notFound("InviteRemoteToChannel", "app.channel.get.existing.app_error", "channel_id="+channelID)
	}
	if s.st.sharedChannels[channelID] == nil {
		if !shareIfNotShared {
			return "", model.ErrChannelNotShared
		}
		if _, err := s.shareLocked(&model.SharedChannel{
			ChannelId: channelID, TeamId: ch.TeamId, Home: true, ShareName: ch.Name,
			ShareDisplayName: ch.DisplayName, SharePurpose: ch.Purpose, ShareHeader: ch.Header, CreatorId: userID,
		}); err != nil {
			return "", err
		}
	}
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID && scr.RemoteId == remoteID {
			return "", nil
		}
	}
	now := s.now()
	scr := &model.SharedChannelRemote{
		Id: model.NewId(), ChannelId: channelID, CreatorId: userID, CreateAt: now, UpdateAt: now,
		IsInviteAccepted: true, IsInviteConfirmed: true, RemoteId: remoteID,
		LastPostCreateAt: now, LastPostUpdateAt: now,
	}
	if err := scr.IsValid(); err != nil {
		return "", err
	}
	s.st.sharedChannelRemotes[scr.Id] = scr
	return rc.DisplayName, nil
}

// UninviteRemoteFromChannel removes a remote's invitation to a channel,
// and unshares the channel when no remote is left, with the server's note
// in it (sharedchannel.UninviteRemoteFromChannel).
func (a *API) UninviteRemoteFromChannel(channelID string, remoteID string) error {
	s := a.s
	s.mu.Lock()
	if !s.sharedChannelsActiveLocked() {
		s.mu.Unlock()
		return errServiceDisabled("UninviteRemoteFromChannel")
	}
	for id, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID && scr.RemoteId == remoteID {
			delete(s.st.sharedChannelRemotes, id)
			var sc *model.SharedChannel
			if !s.channelHasRemotesLocked(channelID) {
				sc = s.unshareLocked(channelID)
			}
			s.mu.Unlock()
			if sc != nil {
				a.n.noteUnshared([]*model.SharedChannel{sc})
			}
			return nil
		}
	}
	s.mu.Unlock()
	return model.NewAppError("UninviteRemoteFromChannel", "api.command_share.channel_remote_id_not_exists",
		map[string]any{"RemoteId": remoteID}, "", http.StatusInternalServerError)
}

// UpdateSharedChannelCursor stores a remote's sync cursor for a channel.
func (a *API) UpdateSharedChannelCursor(channelID, remoteID string, cursor model.GetPostsSinceForSyncCursor) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID && scr.RemoteId == remoteID {
			scr.LastPostUpdateAt = cursor.LastPostUpdateAt
			scr.LastPostUpdateID = cursor.LastPostUpdateID
			scr.LastPostCreateAt = cursor.LastPostCreateAt
			scr.LastPostCreateID = cursor.LastPostCreateID
			scr.UpdateAt = s.now()
			return nil
		}
	}
	return fmt.Errorf("remote %s is not invited to channel %s", remoteID, channelID)
}

// SyncSharedChannel schedules a sync of the channel, as a change in it
// does (app.SyncSharedChannel).
func (a *API) SyncSharedChannel(channelID string) error {
	a.s.mu.RLock()
	active, shared := a.s.sharedChannelsActiveLocked(), a.s.st.sharedChannels[channelID] != nil
	a.s.mu.RUnlock()
	if !active {
		return errServiceDisabled("SyncSharedChannel")
	}
	if !shared {
		return model.ErrChannelNotShared
	}
	a.s.notifyChannelChanged(channelID)
	return nil
}
