package testhost

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// CreateUser creates a user like the server: the password must satisfy the
// password settings (unless AuthService is set), PreSave and IsValid run
// (remote users, with RemoteId set, get the relaxed remote username rules),
// username and email must be unique. UserHasBeenCreated fires on this node.
func (a *API) CreateUser(user *model.User) (*model.User, *model.AppError) {
	u, err := a.s.createUser(user, false)
	if err != nil {
		return nil, err
	}
	hookUser := u.DeepCopy()
	a.n.goHook(plugin.UserHasBeenCreatedID, func(h plugin.Hooks) { h.UserHasBeenCreated(newPluginContext(), hookUser) })
	return u, nil
}

// GetUser returns a user (deactivated ones included).
func (a *API) GetUser(userID string) (*model.User, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	return a.s.getUserLocked(userID)
}

// GetUserByUsername looks a user up by username (case-insensitive).
func (a *API) GetUserByUsername(name string) (*model.User, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if id, ok := a.s.st.usernames[model.NormalizeUsername(name)]; ok {
		return a.s.userCopyLocked(id), nil
	}
	return nil, notFound("GetUserByUsername", "app.user.get_by_username.app_error", "username="+name)
}

// GetUserByEmail looks a user up by email (case-insensitive).
func (a *API) GetUserByEmail(email string) (*model.User, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if id, ok := a.s.st.emails[model.NormalizeEmail(email)]; ok {
		return a.s.userCopyLocked(id), nil
	}
	return nil, notFound("GetUserByEmail", "app.user.missing_account.const", "email="+email)
}

// GetUsersByUsernames returns the users found; unknown names are skipped.
func (a *API) GetUsersByUsernames(usernames []string) ([]*model.User, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	out := []*model.User{}
	for _, name := range usernames {
		if id, ok := a.s.st.usernames[model.NormalizeUsername(name)]; ok {
			out = append(out, a.s.userCopyLocked(id))
		}
	}
	return out, nil
}

// GetUsersByIds returns the users found; unknown IDs are skipped.
func (a *API) GetUsersByIds(userIDs []string) ([]*model.User, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	out := []*model.User{}
	for _, id := range userIDs {
		if u := a.s.userCopyLocked(id); u != nil {
			out = append(out, u)
		}
	}
	return out, nil
}

// GetUsers lists users, sorted by username, filtered by InTeamId,
// NotInTeamId, InChannelId, NotInChannelId, WithoutTeam, Active, Inactive,
// Role, Roles and UpdatedAfter, one page at a time (PerPage 0 gives an
// empty page).
func (a *API) GetUsers(options *model.UserGetOptions) ([]*model.User, *model.AppError) {
	if options == nil {
		return nil, badRequest("GetUsers", "api.context.invalid_body_param.app_error", "options is nil")
	}
	if options.Page < 0 || options.PerPage < 0 {
		return nil, badRequest("GetUsers", "api.context.invalid_param.app_error", "page and per_page must not be negative")
	}
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var matched []*model.User
	for id, u := range a.s.st.users {
		if options.InTeamId != "" && !isTeamMember(a.s.st.teamMembers[options.InTeamId][id]) {
			continue
		}
		if options.NotInTeamId != "" && isTeamMember(a.s.st.teamMembers[options.NotInTeamId][id]) {
			continue
		}
		if options.InChannelId != "" && a.s.st.channelMembers[options.InChannelId][id] == nil {
			continue
		}
		if options.NotInChannelId != "" && a.s.st.channelMembers[options.NotInChannelId][id] != nil {
			continue
		}
		if options.WithoutTeam && a.s.userTeamCountLocked(id) > 0 {
			continue
		}
		if options.Inactive && u.DeleteAt == 0 {
			continue
		}
		if options.Active && u.DeleteAt != 0 {
			continue
		}
		roles := strings.Fields(u.Roles)
		if options.Role != "" && !slices.Contains(roles, options.Role) {
			continue
		}
		if len(options.Roles) > 0 && !slices.ContainsFunc(options.Roles, func(r string) bool { return slices.Contains(roles, r) }) {
			continue
		}
		if options.UpdatedAfter != 0 && u.UpdateAt <= options.UpdatedAfter {
			continue
		}
		matched = append(matched, a.s.userCopyLocked(id))
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].Username < matched[j].Username })
	return page(matched, options.Page, options.PerPage), nil
}

func isTeamMember(m *model.TeamMember) bool { return m != nil && m.DeleteAt == 0 }

func (s *Server) userTeamCountLocked(userID string) int {
	n := 0
	for _, members := range s.st.teamMembers {
		if isTeamMember(members[userID]) {
			n++
		}
	}
	return n
}

func page[T any](items []T, pageNum, perPage int) []T {
	if pageNum < 0 || perPage <= 0 {
		return []T{}
	}
	start := pageNum * perPage
	if start >= len(items) {
		return []T{}
	}
	return items[start:min(start+perPage, len(items))]
}

// GetUsersInTeam lists a team's members, by username.
func (a *API) GetUsersInTeam(teamID string, pageNum int, perPage int) ([]*model.User, *model.AppError) {
	return a.GetUsers(&model.UserGetOptions{InTeamId: teamID, Page: pageNum, PerPage: perPage})
}

// GetUsersInChannel lists a channel's members; sortBy must be "username" or
// "status" (both sort by username here).
func (a *API) GetUsersInChannel(channelID, sortBy string, pageNum, perPage int) ([]*model.User, *model.AppError) {
	if sortBy != model.ChannelSortByUsername && sortBy != model.ChannelSortByStatus {
		return nil, badRequest("GetUsersInChannel", "plugin.api.get_users_in_channel", "invalid sort option")
	}
	return a.GetUsers(&model.UserGetOptions{InChannelId: channelID, Page: pageNum, PerPage: perPage})
}

// UpdateUser updates a user like the server's user store (roles, activation,
// password and auth data are kept; username and email stay unique).
func (a *API) UpdateUser(user *model.User) (*model.User, *model.AppError) {
	if user == nil {
		return nil, badRequest("UpdateUser", "api.context.invalid_body_param.app_error", "user is nil")
	}
	a.s.mu.Lock()
	u, appErr := a.s.updateUserLocked(user)
	a.s.mu.Unlock()
	if appErr == nil {
		a.s.notifyUserProfileChanged(u.Id)
	}
	return u, appErr
}

// UpdateUserActive activates or deactivates a user; deactivation fires
// UserHasBeenDeactivated on this node.
func (a *API) UpdateUserActive(userID string, active bool) *model.AppError {
	a.s.mu.Lock()
	u := a.s.st.users[userID]
	if u == nil {
		a.s.mu.Unlock()
		return notFound("UpdateUserActive", "app.user.missing_account.const", "user_id="+userID)
	}
	changed := (u.DeleteAt == 0) != active
	if changed {
		if active {
			u.DeleteAt = 0
		} else {
			u.DeleteAt = a.s.now()
		}
		u.UpdateAt = a.s.now()
	}
	hookUser := a.s.userCopyLocked(userID)
	a.s.mu.Unlock()
	if changed && !active {
		a.n.goHook(plugin.UserHasBeenDeactivatedID, func(h plugin.Hooks) { h.UserHasBeenDeactivated(newPluginContext(), hookUser) })
	}
	return nil
}

// DeleteUser deactivates a user, as the server's plugin API does.
func (a *API) DeleteUser(userID string) *model.AppError { return a.UpdateUserActive(userID, false) }

// UpdateUserRoles sets a user's system roles.
func (a *API) UpdateUserRoles(userID, newRoles string) (*model.User, *model.AppError) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	u := a.s.st.users[userID]
	if u == nil {
		return nil, notFound("UpdateUserRoles", "app.user.missing_account.const", "user_id="+userID)
	}
	u.Roles = newRoles
	u.UpdateAt = a.s.now()
	return a.s.userCopyLocked(userID), nil
}

// --- profile images ----------------------------------------------------------------

// GetProfileImage returns the image set with SetProfileImage, or a
// generated default PNG, like the server's default initials image.
func (a *API) GetProfileImage(userID string) ([]byte, *model.AppError) {
	a.s.mu.RLock()
	_, err := a.s.getUserLocked(userID)
	img, ok := a.s.st.images[userID]
	a.s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if ok {
		return slices.Clone(img), nil
	}
	return defaultProfileImage(userID), nil
}

func defaultProfileImage(userID string) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	var c color.RGBA
	if len(userID) >= 3 {
		c = color.RGBA{R: userID[0], G: userID[1], B: userID[2], A: 255}
	}
	for x := range 8 {
		for y := range 8 {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// SetProfileImage stores a user's profile image; like the server it must
// decode as an image (PNG, JPEG or GIF).
func (a *API) SetProfileImage(userID string, data []byte) *model.AppError {
	if _, _, err := image.DecodeConfig(bytes.NewReader(data)); err != nil {
		return appErr("SetProfileImage", "api.user.upload_profile_user.decode.app_error", http.StatusBadRequest, err.Error())
	}
	a.s.mu.Lock()
	u := a.s.st.users[userID]
	if u == nil {
		a.s.mu.Unlock()
		return notFound("SetProfileImage", "app.user.missing_account.const", "user_id="+userID)
	}
	a.s.st.images[userID] = slices.Clone(data)
	u.LastPictureUpdate = a.s.now()
	u.UpdateAt = u.LastPictureUpdate
	if b := a.s.st.bots[userID]; b != nil {
		b.LastIconUpdate = u.LastPictureUpdate
	}
	a.s.mu.Unlock()
	a.s.notifyUserProfileChanged(userID)
	return nil
}

// GetSession resolves the session of a hook's plugin.Context to its user.
// Like app.GetSession, an unknown session answers 401.
func (a *API) GetSession(sessionID string) (*model.Session, *model.AppError) {
	userID, ok := a.s.sessions.Load(sessionID)
	if !ok {
		return nil, appErr("GetSession", "api.context.invalid_token.error", http.StatusUnauthorized, "session_id="+sessionID)
	}
	return &model.Session{Id: sessionID, UserId: userID.(string)}, nil
}
