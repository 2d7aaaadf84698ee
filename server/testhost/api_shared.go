package testhost

import (
	"errors"
	"fmt"

	"github.com/mattermost/mattermost/server/public/model"
)

// Shared channels: the host records registrations, shares and invitations
// (see Server.RemoteClusters, SharedChannel, SharedChannelRemotes) with the
// server's validation, but nothing is synchronised: there is no sync
// service calling OnSharedChannelsSyncMsg (call it through Node.Hooks), and
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
	defer s.mu.Unlock()
	for _, rc := range s.st.remotes {
		if rc.PluginID == pluginID && rc.DeleteAt == 0 {
			s.deleteRemoteLocked(rc)
		}
	}
	return nil
}

// UnregisterPluginRemoteForSharedChannels deletes one of the plugin's
// remotes.
func (a *API) UnregisterPluginRemoteForSharedChannels(remoteID string) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	rc := s.st.remotes[remoteID]
	if rc == nil {
		return fmt.Errorf("remote %s not found", remoteID)
	}
	if rc.PluginID != a.pluginID {
		return fmt.Errorf("remote %s does not belong to plugin %s", remoteID, a.pluginID)
	}
	if rc.DeleteAt == 0 {
		s.deleteRemoteLocked(rc)
	}
	return nil
}

// deleteRemoteLocked soft-deletes a remote, removes its invitations and
// unshares the channels left without remotes, like the server.
func (s *Server) deleteRemoteLocked(rc *model.RemoteCluster) {
	rc.DeleteAt = s.now()
	affected := map[string]bool{}
	for id, scr := range s.st.sharedChannelRemotes {
		if scr.RemoteId == rc.RemoteId {
			affected[scr.ChannelId] = true
			delete(s.st.sharedChannelRemotes, id)
		}
	}
	for channelID := range affected {
		if !s.channelHasRemotesLocked(channelID) {
			s.unshareLocked(channelID)
		}
	}
}

func (s *Server) channelHasRemotesLocked(channelID string) bool {
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID {
			return true
		}
	}
	return false
}

func (s *Server) unshareLocked(channelID string) bool {
	if s.st.sharedChannels[channelID] == nil {
		return false
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
	return true
}

func (s *Server) shareLocked(in *model.SharedChannel) (*model.SharedChannel, error) {
	ch := s.st.channels[in.ChannelId]
	if ch == nil {
		return nil, notFound("ShareChannel", "app.channel.get.existing.app_error", "channel_id="+in.ChannelId)
	}
	if s.st.sharedChannels[in.ChannelId] != nil {
		return nil, model.ErrChannelAlreadyShared
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
// channel is shared once). The channel's Shared flag is set.
func (a *API) ShareChannel(sc *model.SharedChannel) (*model.SharedChannel, error) {
	if sc == nil {
		return nil, errors.New("shared channel is nil")
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	return a.s.shareLocked(sc)
}

// UpdateSharedChannel updates a channel's share record.
func (a *API) UpdateSharedChannel(sc *model.SharedChannel) (*model.SharedChannel, error) {
	if sc == nil {
		return nil, errors.New("shared channel is nil")
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
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
	defer a.s.mu.Unlock()
	return a.s.unshareLocked(channelID), nil
}

// InviteRemoteToChannel invites a (live) remote to a channel, sharing the
// channel first if shareIfNotShared. The invitation is accepted and
// confirmed at once.
func (a *API) InviteRemoteToChannel(channelID string, remoteID string, userID string, shareIfNotShared bool) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	rc := s.st.remotes[remoteID]
	if rc == nil || rc.DeleteAt != 0 {
		return fmt.Errorf("remote %s not found", remoteID)
	}
	ch := s.st.channels[channelID]
	if ch == nil {
		return notFound("InviteRemoteToChannel", "app.channel.get.existing.app_error", "channel_id="+channelID)
	}
	if s.st.sharedChannels[channelID] == nil {
		if !shareIfNotShared {
			return model.ErrChannelNotShared
		}
		if _, err := s.shareLocked(&model.SharedChannel{
			ChannelId: channelID, TeamId: ch.TeamId, Home: true, ShareName: ch.Name,
			ShareDisplayName: ch.DisplayName, SharePurpose: ch.Purpose, ShareHeader: ch.Header, CreatorId: userID,
		}); err != nil {
			return err
		}
	}
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID && scr.RemoteId == remoteID {
			return nil
		}
	}
	now := s.now()
	scr := &model.SharedChannelRemote{
		Id: model.NewId(), ChannelId: channelID, CreatorId: userID, CreateAt: now, UpdateAt: now,
		IsInviteAccepted: true, IsInviteConfirmed: true, RemoteId: remoteID,
	}
	if err := scr.IsValid(); err != nil {
		return err
	}
	s.st.sharedChannelRemotes[scr.Id] = scr
	return nil
}

// UninviteRemoteFromChannel removes a remote's invitation to a channel.
func (a *API) UninviteRemoteFromChannel(channelID string, remoteID string) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID && scr.RemoteId == remoteID {
			delete(s.st.sharedChannelRemotes, id)
			return nil
		}
	}
	return fmt.Errorf("remote %s is not invited to channel %s", remoteID, channelID)
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

// SyncSharedChannel succeeds for a shared channel; nothing is synchronised.
func (a *API) SyncSharedChannel(channelID string) error {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if a.s.st.sharedChannels[channelID] == nil {
		return model.ErrChannelNotShared
	}
	return nil
}
