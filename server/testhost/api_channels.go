package testhost

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// --- teams ---------------------------------------------------------------------

// CreateTeam creates a team (validated with Team.IsValid, unique name) with
// its town-square and off-topic channels.
func (a *API) CreateTeam(team *model.Team) (*model.Team, *model.AppError) {
	return a.s.createTeam(team)
}

// GetTeam returns a team.
func (a *API) GetTeam(teamID string) (*model.Team, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if t := a.s.st.teams[teamID]; t != nil {
		return copyTeam(t), nil
	}
	return nil, notFound("GetTeam", "app.team.get.find.app_error", "team_id="+teamID)
}

// GetTeamByName returns a team by name.
func (a *API) GetTeamByName(name string) (*model.Team, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if t := a.s.teamByNameLocked(name); t != nil {
		return copyTeam(t), nil
	}
	return nil, notFound("GetTeamByName", "app.team.get_by_name.missing.app_error", "name="+name)
}

// GetTeams returns every team, by name.
func (a *API) GetTeams() ([]*model.Team, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	out := []*model.Team{}
	for _, t := range a.s.st.teams {
		out = append(out, copyTeam(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GetTeamsForUser returns the teams a user belongs to, by name.
func (a *API) GetTeamsForUser(userID string) ([]*model.Team, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	out := []*model.Team{}
	for id, t := range a.s.st.teams {
		if isTeamMember(a.s.st.teamMembers[id][userID]) {
			out = append(out, copyTeam(t))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CreateTeamMember adds a user to a team like the server: the user joins
// the team's default channels, "joined the team" is posted in town-square
// and UserHasJoinedTeam fires on this node.
func (a *API) CreateTeamMember(teamID, userID string) (*model.TeamMember, *model.AppError) {
	return a.n.addTeamMember(teamID, userID, "")
}

// GetTeamMember returns a team membership.
func (a *API) GetTeamMember(teamID, userID string) (*model.TeamMember, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if m := a.s.st.teamMembers[teamID][userID]; m != nil {
		return copyTeamMember(m), nil
	}
	return nil, notFound("GetTeamMember", "app.team.get_member.missing.app_error", "team_id="+teamID+" user_id="+userID)
}

// GetTeamMembers returns a page of a team's members.
func (a *API) GetTeamMembers(teamID string, pageNum, perPage int) ([]*model.TeamMember, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var out []*model.TeamMember
	for _, id := range slices.Sorted(maps.Keys(a.s.st.teamMembers[teamID])) {
		if m := a.s.st.teamMembers[teamID][id]; isTeamMember(m) {
			out = append(out, copyTeamMember(m))
		}
	}
	return page(out, pageNum, perPage), nil
}

// GetTeamMembersForUser returns a page of a user's team memberships.
func (a *API) GetTeamMembersForUser(userID string, pageNum int, perPage int) ([]*model.TeamMember, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var out []*model.TeamMember
	for _, teamID := range slices.Sorted(maps.Keys(a.s.st.teamMembers)) {
		if m := a.s.st.teamMembers[teamID][userID]; isTeamMember(m) {
			out = append(out, copyTeamMember(m))
		}
	}
	return page(out, pageNum, perPage), nil
}

// DeleteTeamMember removes a user from a team (and its channels);
// UserHasLeftTeam fires on this node.
func (a *API) DeleteTeamMember(teamID, userID, requestorID string) *model.AppError {
	s := a.s
	s.mu.Lock()
	m := s.st.teamMembers[teamID][userID]
	if !isTeamMember(m) {
		s.mu.Unlock()
		return notFound("RemoveUserFromTeam", "app.team.get_member.missing.app_error", "team_id="+teamID+" user_id="+userID)
	}
	m.DeleteAt = s.now()
	for id, ch := range s.st.channels {
		if ch.TeamId == teamID {
			delete(s.st.channelMembers[id], userID)
		}
	}
	hookMember := copyTeamMember(m)
	actor := s.userCopyLocked(requestorID)
	s.mu.Unlock()
	a.n.goHook(plugin.UserHasLeftTeamID, func(h plugin.Hooks) { h.UserHasLeftTeam(newPluginContext(), hookMember, actor) })
	return nil
}

func (n *Node) addTeamMember(teamID, userID, requestorID string) (*model.TeamMember, *model.AppError) {
	s := n.s
	s.mu.Lock()
	team := s.st.teams[teamID]
	user := s.st.users[userID]
	if team == nil {
		s.mu.Unlock()
		return nil, notFound("AddTeamMember", "app.team.get.find.app_error", "team_id="+teamID)
	}
	if user == nil {
		s.mu.Unlock()
		return nil, notFound("AddTeamMember", "app.user.missing_account.const", "user_id="+userID)
	}
	if m := s.st.teamMembers[teamID][userID]; isTeamMember(m) {
		s.mu.Unlock()
		return copyTeamMember(m), nil
	}
	if err := s.joinRefusedLocked(teamID, userID); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	m := s.addTeamMemberLocked(teamID, userID)
	var joined []*model.ChannelMember
	townSquare := s.channelByNameLocked(teamID, model.DefaultChannelName)
	for _, name := range []string{model.DefaultChannelName, "off-topic"} {
		if ch := s.channelByNameLocked(teamID, name); ch != nil && ch.DeleteAt == 0 {
			if cm, added := s.addChannelMemberLocked(ch, userID); added {
				joined = append(joined, copyChannelMember(cm))
			}
		}
	}
	hookMember := copyTeamMember(m)
	actor := s.userCopyLocked(requestorID)
	username := user.Username
	s.mu.Unlock()

	if townSquare != nil {
		n.postSystemMessage(townSquare.Id, userID, model.PostTypeJoinTeam,
			fmt.Sprintf("@%s joined the team.", username), model.StringInterface{"username": username})
	}
	for _, cm := range joined {
		n.goHook(plugin.UserHasJoinedChannelID, func(h plugin.Hooks) { h.UserHasJoinedChannel(newPluginContext(), cm, actor) })
	}
	n.goHook(plugin.UserHasJoinedTeamID, func(h plugin.Hooks) { h.UserHasJoinedTeam(newPluginContext(), hookMember, actor) })
	return copyTeamMember(m), nil
}

// --- channels --------------------------------------------------------------------

// CreateChannel creates an open or private channel (validated with
// Channel.IsValid, unique name in the team); ChannelHasBeenCreated fires on
// this node. The creator is not added as a member, as with the server's
// plugin API.
func (a *API) CreateChannel(channel *model.Channel) (*model.Channel, *model.AppError) {
	if channel != nil && (channel.Type == model.ChannelTypeDirect || channel.Type == model.ChannelTypeGroup) {
		return nil, badRequest("CreateChannel", "api.channel.create_channel.direct_channel.app_error", "")
	}
	ch, err := a.s.createChannel(channel)
	if err != nil {
		return nil, err
	}
	hookCh := ch.DeepCopy()
	a.n.goHook(plugin.ChannelHasBeenCreatedID, func(h plugin.Hooks) { h.ChannelHasBeenCreated(newPluginContext(), hookCh) })
	return ch, nil
}

// GetChannel returns a channel (archived ones included).
func (a *API) GetChannel(channelID string) (*model.Channel, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if ch := a.s.st.channels[channelID]; ch != nil {
		return ch.DeepCopy(), nil
	}
	return nil, notFound("GetChannel", "app.channel.get.existing.app_error", "channel_id="+channelID)
}

// GetChannelByName returns a team's channel by name.
func (a *API) GetChannelByName(teamID, name string, includeDeleted bool) (*model.Channel, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if ch := a.s.channelByNameLocked(teamID, name); ch != nil && (includeDeleted || ch.DeleteAt == 0) {
		return ch.DeepCopy(), nil
	}
	return nil, notFound("GetChannelByName", "app.channel.get_by_name.missing.app_error", "team_id="+teamID+" name="+name)
}

// GetChannelByNameForTeamName returns a channel by team and channel name.
func (a *API) GetChannelByNameForTeamName(teamName, channelName string, includeDeleted bool) (*model.Channel, *model.AppError) {
	a.s.mu.RLock()
	team := a.s.teamByNameLocked(teamName)
	a.s.mu.RUnlock()
	if team == nil {
		return nil, notFound("GetChannelByNameForTeamName", "app.team.get_by_name.missing.app_error", "name="+teamName)
	}
	return a.GetChannelByName(team.Id, channelName, includeDeleted)
}

// GetChannelsForTeamForUser returns the team's channels the user is a member
// of, plus the user's direct and group channels; like the server it is a
// 404 when there are none.
func (a *API) GetChannelsForTeamForUser(teamID, userID string, includeDeleted bool) ([]*model.Channel, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var out []*model.Channel
	for id, ch := range a.s.st.channels {
		if (ch.TeamId == teamID || ch.TeamId == "") && a.s.st.channelMembers[id][userID] != nil && (includeDeleted || ch.DeleteAt == 0) {
			out = append(out, ch.DeepCopy())
		}
	}
	if len(out) == 0 {
		return nil, notFound("GetChannelsForTeamForUser", "app.channel.get_channels.not_found.app_error", "team_id="+teamID+" user_id="+userID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DisplayName < out[j].DisplayName })
	return out, nil
}

// GetPublicChannelsForTeam returns a page of the team's open channels.
func (a *API) GetPublicChannelsForTeam(teamID string, pageNum, perPage int) ([]*model.Channel, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var out []*model.Channel
	for _, ch := range a.s.st.channels {
		if ch.TeamId == teamID && ch.Type == model.ChannelTypeOpen && ch.DeleteAt == 0 {
			out = append(out, ch.DeepCopy())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DisplayName < out[j].DisplayName })
	return page(out, pageNum, perPage), nil
}

// GetChannelStats returns the member count.
func (a *API) GetChannelStats(channelID string) (*model.ChannelStats, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if a.s.st.channels[channelID] == nil {
		return nil, notFound("GetChannelStats", "app.channel.get.existing.app_error", "channel_id="+channelID)
	}
	return &model.ChannelStats{ChannelId: channelID, MemberCount: int64(len(a.s.st.channelMembers[channelID]))}, nil
}

// UpdateChannel updates a channel's display name, name, header, purpose and
// other fields (validated with Channel.IsValid).
func (a *API) UpdateChannel(channel *model.Channel) (*model.Channel, *model.AppError) {
	if channel == nil {
		return nil, badRequest("UpdateChannel", "api.context.invalid_body_param.app_error", "channel is nil")
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	old := a.s.st.channels[channel.Id]
	if old == nil {
		return nil, notFound("UpdateChannel", "app.channel.get.existing.app_error", "channel_id="+channel.Id)
	}
	ch := channel.DeepCopy()
	ch.CreateAt = old.CreateAt
	ch.TeamId = old.TeamId
	ch.Type = old.Type
	ch.PreUpdate()
	ch.UpdateAt = a.s.now()
	if err := ch.IsValid(); err != nil {
		return nil, err
	}
	if other := a.s.channelByNameLocked(ch.TeamId, ch.Name); other != nil && other.Id != ch.Id {
		return nil, badRequest("UpdateChannel", "store.sql_channel.update.exists.app_error", "name="+ch.Name)
	}
	a.s.st.channels[ch.Id] = ch
	return ch.DeepCopy(), nil
}

// DeleteChannel archives a channel (not town-square).
func (a *API) DeleteChannel(channelID string) *model.AppError {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	ch := a.s.st.channels[channelID]
	if ch == nil {
		return notFound("DeleteChannel", "app.channel.get.existing.app_error", "channel_id="+channelID)
	}
	if ch.Name == model.DefaultChannelName {
		return badRequest("DeleteChannel", "api.channel.delete_channel.cannot.app_error", "")
	}
	if ch.DeleteAt == 0 {
		ch.DeleteAt = a.s.now()
		ch.UpdateAt = ch.DeleteAt
	}
	return nil
}

// RestoreChannel unarchives a channel.
func (a *API) RestoreChannel(channelID string) *model.AppError {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	ch := a.s.st.channels[channelID]
	if ch == nil {
		return notFound("RestoreChannel", "app.channel.get.existing.app_error", "channel_id="+channelID)
	}
	ch.DeleteAt = 0
	ch.UpdateAt = a.s.now()
	return nil
}

// GetDirectChannel returns (creating it if needed) the direct channel of two
// users.
func (a *API) GetDirectChannel(userID1, userID2 string) (*model.Channel, *model.AppError) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range []string{userID1, userID2} {
		if s.st.users[id] == nil {
			return nil, notFound("GetOrCreateDirectChannel", "app.user.missing_account.const", "user_id="+id)
		}
	}
	name := model.GetDMNameFromIds(userID1, userID2)
	if ch := s.channelByNameLocked("", name); ch != nil {
		return ch.DeepCopy(), nil
	}
	ch, err := s.createChannelLocked(&model.Channel{Name: name, Type: model.ChannelTypeDirect})
	if err != nil {
		return nil, err
	}
	stored := s.st.channels[ch.Id]
	s.addChannelMemberLocked(stored, userID1)
	s.addChannelMemberLocked(stored, userID2)
	return stored.DeepCopy(), nil
}

// --- channel members -------------------------------------------------------------

// AddChannelMember adds a user to a channel like the server: the user must
// be active and a member of the channel's team; "joined the channel" is
// posted and UserHasJoinedChannel fires on this node. Adding a member
// twice returns the existing membership.
func (a *API) AddChannelMember(channelID, userID string) (*model.ChannelMember, *model.AppError) {
	return a.n.addChannelMember(channelID, userID, "")
}

// AddUserToChannel is AddChannelMember on behalf of asUserID ("added to the
// channel by" is posted).
func (a *API) AddUserToChannel(channelID, userID, asUserID string) (*model.ChannelMember, *model.AppError) {
	return a.n.addChannelMember(channelID, userID, asUserID)
}

func (n *Node) addChannelMember(channelID, userID, requestorID string) (*model.ChannelMember, *model.AppError) {
	const where = "AddChannelMember"
	s := n.s
	s.mu.Lock()
	ch := s.st.channels[channelID]
	user := s.st.users[userID]
	switch {
	case ch == nil:
		s.mu.Unlock()
		return nil, notFound(where, "app.channel.get.existing.app_error", "channel_id="+channelID)
	case user == nil:
		s.mu.Unlock()
		return nil, notFound(where, "app.user.missing_account.const", "user_id="+userID)
	case ch.DeleteAt != 0:
		s.mu.Unlock()
		return nil, badRequest(where, "api.channel.add_user.to.channel.failed.deleted.app_error", "the channel is archived")
	case user.DeleteAt != 0:
		s.mu.Unlock()
		return nil, badRequest(where, "api.channel.add_user.to.channel.failed.deleted.app_error", "the user is deactivated")
	case ch.Type == model.ChannelTypeDirect || ch.Type == model.ChannelTypeGroup:
		s.mu.Unlock()
		return nil, badRequest(where, "api.channel.add_user_to_channel.type.app_error", "")
	case !isTeamMember(s.st.teamMembers[ch.TeamId][userID]):
		s.mu.Unlock()
		return nil, appErr(where, "api.channel.add_user.to.channel.failed.app_error", http.StatusForbidden, "the user is not a member of the channel's team")
	}
	m, added := s.addChannelMemberLocked(ch, userID)
	out := copyChannelMember(m)
	if !added {
		s.mu.Unlock()
		return out, nil
	}
	var actor *model.User
	if requestorID != "" && requestorID != userID {
		actor = s.userCopyLocked(requestorID)
	}
	username := user.Username
	s.mu.Unlock()

	if actor == nil {
		n.postSystemMessage(channelID, userID, model.PostTypeJoinChannel,
			fmt.Sprintf("@%s joined the channel.", username), model.StringInterface{"username": username})
	} else {
		n.postSystemMessage(channelID, actor.Id, model.PostTypeAddToChannel,
			fmt.Sprintf("@%s added to the channel by @%s.", username, actor.Username),
			model.StringInterface{"userId": actor.Id, "username": actor.Username, "addedUserId": userID, "addedUsername": username})
	}
	hookMember := copyChannelMember(out)
	n.goHook(plugin.UserHasJoinedChannelID, func(h plugin.Hooks) { h.UserHasJoinedChannel(newPluginContext(), hookMember, actor) })
	return out, nil
}

// DeleteChannelMember makes a user leave a channel like the server ("left
// the channel" is posted, UserHasLeftChannel fires on this node); nobody
// leaves town-square.
func (a *API) DeleteChannelMember(channelID, userID string) *model.AppError {
	return a.n.leaveChannel(channelID, userID)
}

func (n *Node) leaveChannel(channelID, userID string) *model.AppError {
	const where = "LeaveChannel"
	s := n.s
	s.mu.Lock()
	ch := s.st.channels[channelID]
	if ch == nil {
		s.mu.Unlock()
		return notFound(where, "app.channel.get.existing.app_error", "channel_id="+channelID)
	}
	if ch.Name == model.DefaultChannelName {
		s.mu.Unlock()
		return badRequest(where, "api.channel.remove.default.app_error", "channel="+ch.Name)
	}
	if ch.Type == model.ChannelTypeDirect {
		s.mu.Unlock()
		return badRequest(where, "api.channel.leave.direct.app_error", "")
	}
	m := s.st.channelMembers[channelID][userID]
	if m == nil {
		s.mu.Unlock()
		return notFound(where, "app.channel.get_member.missing.app_error", "channel_id="+channelID+" user_id="+userID)
	}
	delete(s.st.channelMembers[channelID], userID)
	hookMember := copyChannelMember(m)
	username := ""
	if u := s.st.users[userID]; u != nil {
		username = u.Username
	}
	s.mu.Unlock()

	n.postSystemMessage(channelID, userID, model.PostTypeLeaveChannel,
		fmt.Sprintf("@%s left the channel.", username), model.StringInterface{"username": username})
	n.goHook(plugin.UserHasLeftChannelID, func(h plugin.Hooks) { h.UserHasLeftChannel(newPluginContext(), hookMember, nil) })
	return nil
}

// GetChannelMember returns a channel membership.
func (a *API) GetChannelMember(channelID, userID string) (*model.ChannelMember, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if m := a.s.st.channelMembers[channelID][userID]; m != nil {
		return copyChannelMember(m), nil
	}
	return nil, notFound("GetChannelMember", "app.channel.get_member.missing.app_error", "channel_id="+channelID+" user_id="+userID)
}

// GetChannelMembers returns a page of a channel's members, by user ID.
func (a *API) GetChannelMembers(channelID string, pageNum, perPage int) (model.ChannelMembers, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var all model.ChannelMembers
	for _, id := range slices.Sorted(maps.Keys(a.s.st.channelMembers[channelID])) {
		all = append(all, *copyChannelMember(a.s.st.channelMembers[channelID][id]))
	}
	return model.ChannelMembers(page(all, pageNum, perPage)), nil
}

// GetChannelMembersByIds returns the memberships of the given users.
func (a *API) GetChannelMembersByIds(channelID string, userIDs []string) (model.ChannelMembers, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	out := model.ChannelMembers{}
	for _, id := range userIDs {
		if m := a.s.st.channelMembers[channelID][id]; m != nil {
			out = append(out, *copyChannelMember(m))
		}
	}
	return out, nil
}

// GetChannelMembersForUser returns a page of a user's channel memberships.
func (a *API) GetChannelMembersForUser(_, userID string, pageNum, perPage int) ([]*model.ChannelMember, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var out []*model.ChannelMember
	for _, chID := range slices.Sorted(maps.Keys(a.s.st.channelMembers)) {
		if m := a.s.st.channelMembers[chID][userID]; m != nil {
			out = append(out, copyChannelMember(m))
		}
	}
	return page(out, pageNum, perPage), nil
}

// UpdateChannelMemberRoles sets a member's channel roles ("channel_user",
// "channel_admin", ...).
func (a *API) UpdateChannelMemberRoles(channelID, userID, newRoles string) (*model.ChannelMember, *model.AppError) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	m := a.s.st.channelMembers[channelID][userID]
	if m == nil {
		return nil, notFound("UpdateChannelMemberRoles", "app.channel.get_member.missing.app_error", "channel_id="+channelID+" user_id="+userID)
	}
	var explicit []string
	m.SchemeUser, m.SchemeAdmin, m.SchemeGuest = false, false, false
	for _, r := range strings.Fields(newRoles) {
		switch r {
		case model.ChannelUserRoleId:
			m.SchemeUser = true
		case model.ChannelAdminRoleId:
			m.SchemeAdmin = true
		case model.ChannelGuestRoleId:
			m.SchemeGuest = true
		default:
			explicit = append(explicit, r)
		}
	}
	m.Roles = strings.Join(explicit, " ")
	m.LastUpdateAt = a.s.now()
	return copyChannelMember(m), nil
}

// UpdateChannelMemberNotifications merges notification properties into a
// membership (validated like the server).
func (a *API) UpdateChannelMemberNotifications(channelID, userID string, notifications map[string]string) (*model.ChannelMember, *model.AppError) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	m := a.s.st.channelMembers[channelID][userID]
	if m == nil {
		return nil, notFound("UpdateChannelMemberNotifications", "app.channel.get_member.missing.app_error", "channel_id="+channelID+" user_id="+userID)
	}
	c := copyChannelMember(m)
	if c.NotifyProps == nil {
		c.NotifyProps = model.StringMap{}
	}
	maps.Copy(c.NotifyProps, notifications)
	if err := c.IsValid(); err != nil {
		return nil, err
	}
	c.LastUpdateAt = a.s.now()
	a.s.st.channelMembers[channelID][userID] = c
	return copyChannelMember(c), nil
}

// joinRefusedLocked is why a user may not join a team, as
// teams.TeamService.JoinUserToTeam decides: the email domain first, then
// the team's size.
func (s *Server) joinRefusedLocked(teamID, userID string) *model.AppError {
	team, user := s.st.teams[teamID], s.st.users[userID]
	if team != nil && user != nil && !user.IsBot {
		// teams.TeamService.GetAllowedDomains: the team's own list and
		// the server-wide one must both allow the address.
		restrict := []string{team.AllowedDomains, *s.st.config.TeamSettings.RestrictCreationToDomains}
		if user.IsGuest() {
			restrict = []string{*s.st.config.GuestAccountsSettings.RestrictCreationToDomains}
		}
		for _, domains := range restrict {
			if !emailAllowed(user.Email, domains) {
				return badRequest("JoinUserToTeam", "api.team.join_user_to_team.allowed_domains.app_error", "email="+user.Email)
			}
		}
	}
	return s.teamFullLocked(teamID)
}

// emailAllowed reports whether email is in one of domains (a list split by
// spaces, commas or @ signs, like teams.normalizeDomains reads it); an
// empty list allows every address.
func emailAllowed(email, domains string) bool {
	list := strings.Fields(strings.ToLower(strings.NewReplacer("@", " ", ",", " ").Replace(domains)))
	if len(list) == 0 {
		return true
	}
	email = strings.ToLower(email)
	for _, d := range list {
		if strings.HasSuffix(email, "@"+d) {
			return true
		}
	}
	return false
}

// teamFullLocked refuses a new member of a team that has
// TeamSettings.MaxUsersPerTeam active members already, as app.JoinUserToTeam
// does (remote users count like anyone).
func (s *Server) teamFullLocked(teamID string) *model.AppError {
	limit := s.st.config.TeamSettings.MaxUsersPerTeam
	if limit == nil {
		return nil
	}
	active := 0
	for userID, m := range s.st.teamMembers[teamID] {
		if u := s.st.users[userID]; isTeamMember(m) && u != nil && u.DeleteAt == 0 {
			active++
		}
	}
	if active >= *limit {
		return badRequest("JoinUserToTeam", "app.team.join_user_to_team.max_accounts.app_error", fmt.Sprintf("team_id=%s has %d members, MaxUsersPerTeam is %d", teamID, active, *limit))
	}
	return nil
}
