package testhost

import (
	"slices"
	"strings"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"
)

// Permissions follow the server's default roles (model.MakeDefaultRoles):
// a system admin has every permission; others have what their system role
// (system_user, system_guest...), their team member roles (team_user,
// team_admin) and channel member roles (channel_user, channel_admin) grant.
// Permission schemes are not modelled.

var defaultRoles = sync.OnceValue(model.MakeDefaultRoles)

func rolesGrant(roles []string, permissionID string) bool {
	all := defaultRoles()
	for _, name := range roles {
		if r := all[name]; r != nil && slices.Contains(r.Permissions, permissionID) {
			return true
		}
	}
	return false
}

func teamMemberRoles(m *model.TeamMember) []string {
	roles := strings.Fields(m.Roles)
	if m.SchemeGuest {
		roles = append(roles, model.TeamGuestRoleId)
	}
	if m.SchemeUser {
		roles = append(roles, model.TeamUserRoleId)
	}
	if m.SchemeAdmin {
		roles = append(roles, model.TeamAdminRoleId)
	}
	return roles
}

func channelMemberRoles(m *model.ChannelMember) []string {
	roles := strings.Fields(m.Roles)
	if m.SchemeGuest {
		roles = append(roles, model.ChannelGuestRoleId)
	}
	if m.SchemeUser {
		roles = append(roles, model.ChannelUserRoleId)
	}
	if m.SchemeAdmin {
		roles = append(roles, model.ChannelAdminRoleId)
	}
	return roles
}

func (s *Server) hasPermissionToLocked(userID string, perm *model.Permission) bool {
	if perm == nil {
		return false
	}
	u := s.st.users[userID]
	if u == nil || u.DeleteAt != 0 {
		return false
	}
	roles := strings.Fields(u.Roles)
	if slices.Contains(roles, model.SystemAdminRoleId) {
		return true
	}
	return rolesGrant(roles, perm.Id)
}

func (s *Server) hasPermissionToTeamLocked(userID, teamID string, perm *model.Permission) bool {
	if perm == nil {
		return false
	}
	if s.hasPermissionToLocked(userID, perm) {
		return true
	}
	if m := s.st.teamMembers[teamID][userID]; isTeamMember(m) {
		return rolesGrant(teamMemberRoles(m), perm.Id)
	}
	return false
}

func (s *Server) hasPermissionToChannelLocked(userID, channelID string, perm *model.Permission) bool {
	if perm == nil {
		return false
	}
	if s.hasPermissionToLocked(userID, perm) {
		return true
	}
	ch := s.st.channels[channelID]
	if ch == nil {
		return false
	}
	if u := s.st.users[userID]; u == nil || u.DeleteAt != 0 {
		return false
	}
	if m := s.st.channelMembers[channelID][userID]; m != nil && rolesGrant(channelMemberRoles(m), perm.Id) {
		return true
	}
	if ch.TeamId == "" {
		return false
	}
	if ch.Type == model.ChannelTypeOpen && (perm.Id == model.PermissionReadChannel.Id || perm.Id == model.PermissionReadChannelContent.Id) {
		return s.hasPermissionToTeamLocked(userID, ch.TeamId, model.PermissionReadPublicChannel)
	}
	return s.hasPermissionToTeamLocked(userID, ch.TeamId, perm)
}

// HasPermissionTo checks a system-wide permission.
func (a *API) HasPermissionTo(userID string, permission *model.Permission) bool {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	return a.s.hasPermissionToLocked(userID, permission)
}

// HasPermissionToTeam checks a permission in a team.
func (a *API) HasPermissionToTeam(userID, teamID string, permission *model.Permission) bool {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	return a.s.hasPermissionToTeamLocked(userID, teamID, permission)
}

// HasPermissionToChannel checks a permission in a channel.
func (a *API) HasPermissionToChannel(userID, channelID string, permission *model.Permission) bool {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	return a.s.hasPermissionToChannelLocked(userID, channelID, permission)
}

// RolesGrantPermission reports whether any of the (default) roles grants
// the permission; system_admin grants all.
func (a *API) RolesGrantPermission(roleNames []string, permissionID string) bool {
	if slices.Contains(roleNames, model.SystemAdminRoleId) {
		return true
	}
	return rolesGrant(roleNames, permissionID)
}
