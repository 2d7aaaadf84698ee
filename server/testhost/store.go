package testhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	_ "image/gif"  // decode uploaded images
	_ "image/jpeg" // decode uploaded images
	_ "image/png"  // decode uploaded images
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"
)

// This file is the host's "store and app" layer for everything that does
// not fire hooks. Functions ending in Locked expect s.mu held.

// --- errors ------------------------------------------------------------------

func appErr(where, id string, status int, detail string) *model.AppError {
	return model.NewAppError(where, id, nil, detail, status)
}

func notFound(where, id, detail string) *model.AppError {
	return appErr(where, id, http.StatusNotFound, detail)
}

func badRequest(where, id, detail string) *model.AppError {
	return appErr(where, id, http.StatusBadRequest, detail)
}

// --- copies ------------------------------------------------------------------

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyValue(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = copyValue(e)
		}
		return s
	default:
		return v
	}
}

func copyPost(p *model.Post) *model.Post {
	if p == nil {
		return nil
	}
	c := p.Clone()
	if props := p.GetProps(); props != nil {
		c.SetProps(copyValue(map[string]any(props)).(map[string]any))
	}
	c.FileIds = slices.Clone(p.FileIds)
	c.Filenames = slices.Clone(p.Filenames)
	if p.RemoteId != nil {
		c.RemoteId = model.NewPointer(*p.RemoteId)
	}
	if p.Metadata != nil {
		c.Metadata = p.Metadata.Copy()
	}
	return c
}

func copyUser(u *model.User) *model.User {
	if u == nil {
		return nil
	}
	return u.DeepCopy()
}

func copyTeam(t *model.Team) *model.Team {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

func copyChannelMember(m *model.ChannelMember) *model.ChannelMember {
	if m == nil {
		return nil
	}
	c := *m
	c.NotifyProps = maps.Clone(m.NotifyProps)
	return &c
}

func copyTeamMember(m *model.TeamMember) *model.TeamMember {
	if m == nil {
		return nil
	}
	c := *m
	return &c
}

func copyFileInfo(fi *model.FileInfo) *model.FileInfo {
	if fi == nil {
		return nil
	}
	c := *fi
	if fi.RemoteId != nil {
		c.RemoteId = model.NewPointer(*fi.RemoteId)
	}
	if fi.MiniPreview != nil {
		b := slices.Clone(*fi.MiniPreview)
		c.MiniPreview = &b
	}
	return &c
}

func copyReaction(r *model.Reaction) *model.Reaction {
	if r == nil {
		return nil
	}
	c := *r
	if r.RemoteId != nil {
		c.RemoteId = model.NewPointer(*r.RemoteId)
	}
	return &c
}

// --- users ---------------------------------------------------------------------

type hasher struct{}

func (hasher) Hash(password string) (string, error) {
	sum := sha256.Sum256([]byte(password))
	return "testhost-sha256:" + hex.EncodeToString(sum[:]), nil
}

func (s *Server) userCopyLocked(id string) *model.User {
	u := s.st.users[id]
	if u == nil {
		return nil
	}
	c := copyUser(u)
	c.Password = ""
	if b := s.st.bots[id]; b != nil {
		c.IsBot = true
		c.BotDescription = b.Description
		c.BotLastIconUpdate = b.LastIconUpdate
	}
	return c
}

func (s *Server) checkPasswordLocked(pw string) *model.AppError {
	ps := s.st.config.PasswordSettings
	minLen := 8
	if ps.MinimumLength != nil {
		minLen = *ps.MinimumLength
	}
	bad := utf8.RuneCountInString(pw) < minLen || len(pw) > model.PasswordMaximumLength
	if ps.Lowercase != nil && *ps.Lowercase && !strings.ContainsFunc(pw, unicode.IsLower) {
		bad = true
	}
	if ps.Uppercase != nil && *ps.Uppercase && !strings.ContainsFunc(pw, unicode.IsUpper) {
		bad = true
	}
	if ps.Number != nil && *ps.Number && !strings.ContainsFunc(pw, unicode.IsDigit) {
		bad = true
	}
	if ps.Symbol != nil && *ps.Symbol && !strings.ContainsFunc(pw, func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }) {
		bad = true
	}
	if bad {
		return badRequest("User.IsValid", "model.user.is_valid.pwd.app_error", fmt.Sprintf("password does not meet the password settings (minimum length %d)", minLen))
	}
	return nil
}

// createUser validates and stores a new user the way the server's user
// store does (PreSave + IsValid, unique username and email).
func (s *Server) createUser(in *model.User, isBot bool) (*model.User, *model.AppError) {
	if in == nil {
		return nil, badRequest("CreateUser", "api.context.invalid_body_param.app_error", "user is nil")
	}
	u := copyUser(in)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Like the user store: only a remote user may bring its own ID.
	if u.Id != "" && (!u.IsRemote() || s.st.users[u.Id] != nil) {
		return nil, badRequest("SqlUserStore.Save", "store.sql_user.save.existing.app_error", "user_id="+u.Id)
	}
	if !isBot && u.AuthService == "" {
		if err := s.checkPasswordLocked(u.Password); err != nil {
			return nil, err
		}
	}
	if u.Roles == "" {
		u.Roles = model.SystemUserRoleId
	}
	u.CreateAt = s.now()
	if err := u.PreSave(hasher{}); err != nil {
		return nil, err
	}
	u.IsBot = false
	if err := u.IsValid(); err != nil {
		return nil, err
	}
	// users.UserService.CreateUser: people signing in through LDAP or SAML
	// and guests (who have their own setting) are exempt.
	if !isBot && !u.IsLDAPUser() && !u.IsSAMLUser() && !u.IsGuest() &&
		!emailAllowed(u.Email, *s.st.config.TeamSettings.RestrictCreationToDomains) {
		return nil, badRequest("CreateUser", "api.user.create_user.accepted_domain.app_error", "email="+u.Email)
	}
	if _, taken := s.st.usernames[u.Username]; taken {
		return nil, badRequest("CreateUser", "app.user.save.username_exists.app_error", "username="+u.Username)
	}
	if _, taken := s.st.emails[u.Email]; taken {
		return nil, badRequest("CreateUser", "app.user.save.email_exists.app_error", "email="+u.Email)
	}
	s.st.passwords[u.Id] = u.Password
	u.Password = ""
	s.st.users[u.Id] = u
	s.st.usernames[u.Username] = u.Id
	s.st.emails[u.Email] = u.Id
	return s.userCopyLocked(u.Id), nil
}

// updateUserLocked stores an update of an existing user the way the user
// store's Update does (trustedUpdateData false: roles and activation are
// kept).
func (s *Server) updateUserLocked(in *model.User) (*model.User, *model.AppError) {
	old := s.st.users[in.Id]
	if old == nil {
		return nil, notFound("UpdateUser", "app.user.missing_account.const", "user_id="+in.Id)
	}
	u := copyUser(in)
	u.PreUpdate()
	u.UpdateAt = s.now()
	u.CreateAt = old.CreateAt
	u.AuthData = old.AuthData
	u.AuthService = old.AuthService
	u.Password = ""
	u.LastPasswordUpdate = old.LastPasswordUpdate
	u.LastPictureUpdate = old.LastPictureUpdate
	u.EmailVerified = old.EmailVerified
	u.FailedAttempts = old.FailedAttempts
	u.MfaSecret = old.MfaSecret
	u.MfaActive = old.MfaActive
	u.Roles = old.Roles
	u.DeleteAt = old.DeleteAt
	u.IsBot = false
	if u.RemoteId == nil {
		u.RemoteId = old.RemoteId
	}
	if u.Email != old.Email {
		u.EmailVerified = false
	}
	if u.Username != old.Username {
		u.UpdateMentionKeysFromUsername(old.Username)
	}
	if err := u.IsValid(); err != nil {
		return nil, err
	}
	if id, taken := s.st.usernames[u.Username]; taken && id != u.Id {
		return nil, badRequest("UpdateUser", "app.user.save.username_exists.app_error", "username="+u.Username)
	}
	if id, taken := s.st.emails[u.Email]; taken && id != u.Id {
		return nil, badRequest("UpdateUser", "app.user.save.email_exists.app_error", "email="+u.Email)
	}
	delete(s.st.usernames, old.Username)
	delete(s.st.emails, old.Email)
	s.st.usernames[u.Username] = u.Id
	s.st.emails[u.Email] = u.Id
	s.st.users[u.Id] = u
	return s.userCopyLocked(u.Id), nil
}

func (s *Server) getUserLocked(id string) (*model.User, *model.AppError) {
	if u := s.userCopyLocked(id); u != nil {
		return u, nil
	}
	return nil, notFound("GetUser", "app.user.missing_account.const", "user_id="+id)
}

// --- teams -------------------------------------------------------------------

func (s *Server) createTeam(in *model.Team) (*model.Team, *model.AppError) {
	if in == nil {
		return nil, badRequest("CreateTeam", "api.context.invalid_body_param.app_error", "team is nil")
	}
	t := copyTeam(in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Id != "" {
		return nil, badRequest("SqlTeamStore.Save", "store.sql_team.save.existing.app_error", "id="+t.Id)
	}
	t.PreSave()
	t.CreateAt = s.now()
	t.UpdateAt = t.CreateAt
	if err := t.IsValid(); err != nil {
		return nil, err
	}
	for _, other := range s.st.teams {
		if other.Name == t.Name {
			return nil, badRequest("CreateTeam", "app.team.save.existing.app_error", "name="+t.Name)
		}
	}
	s.st.teams[t.Id] = t
	s.st.teamMembers[t.Id] = map[string]*model.TeamMember{}
	for _, dc := range []struct{ name, display string }{{model.DefaultChannelName, "Town Square"}, {"off-topic", "Off-Topic"}} {
		ch := &model.Channel{TeamId: t.Id, Name: dc.name, DisplayName: dc.display, Type: model.ChannelTypeOpen}
		if _, err := s.createChannelLocked(ch); err != nil {
			return nil, err
		}
	}
	return copyTeam(t), nil
}

func (s *Server) addTeamMemberLocked(teamID, userID string) *model.TeamMember {
	if m := s.st.teamMembers[teamID][userID]; m != nil {
		if m.DeleteAt != 0 {
			m.DeleteAt = 0
		}
		return m
	}
	m := &model.TeamMember{TeamId: teamID, UserId: userID, SchemeUser: true, CreateAt: s.now()}
	if u := s.st.users[userID]; u != nil && strings.Contains(u.Roles, model.SystemGuestRoleId) {
		m.SchemeUser, m.SchemeGuest = false, true
	}
	s.st.teamMembers[teamID][userID] = m
	return m
}

// joinTeamQuietly adds a team member and joins the default channels,
// without system messages or hooks.
func (s *Server) joinTeamQuietly(teamID, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.teams[teamID] == nil {
		return fmt.Errorf("no team %s", teamID)
	}
	if s.st.users[userID] == nil {
		return fmt.Errorf("no user %s", userID)
	}
	if !isTeamMember(s.st.teamMembers[teamID][userID]) {
		if err := s.joinRefusedLocked(teamID, userID); err != nil {
			return err
		}
	}
	s.addTeamMemberLocked(teamID, userID)
	for _, name := range []string{model.DefaultChannelName, "off-topic"} {
		if ch := s.channelByNameLocked(teamID, name); ch != nil {
			s.addChannelMemberLocked(ch, userID)
		}
	}
	return nil
}

func (s *Server) teamByNameLocked(name string) *model.Team {
	for _, t := range s.st.teams {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// --- channels ------------------------------------------------------------------

func (s *Server) createChannel(in *model.Channel) (*model.Channel, *model.AppError) {
	if in == nil {
		return nil, badRequest("CreateChannel", "api.context.invalid_body_param.app_error", "channel is nil")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createChannelLocked(in.DeepCopy())
}

func (s *Server) createChannelLocked(ch *model.Channel) (*model.Channel, *model.AppError) {
	if ch.Id != "" {
		return nil, badRequest("SqlChannelStore.Save", "store.sql_channel.save.existing.app_error", "id="+ch.Id)
	}
	ch.CreateAt = s.now()
	ch.PreSave()
	if err := ch.IsValid(); err != nil {
		return nil, err
	}
	if ch.Type != model.ChannelTypeDirect && ch.Type != model.ChannelTypeGroup {
		if s.st.teams[ch.TeamId] == nil {
			return nil, badRequest("CreateChannel", "app.team.get.find.app_error", "team_id="+ch.TeamId)
		}
	}
	if s.channelByNameLocked(ch.TeamId, ch.Name) != nil {
		return nil, badRequest("CreateChannel", "store.sql_channel.save_channel.exists.app_error", "name="+ch.Name)
	}
	s.st.channels[ch.Id] = ch
	s.st.channelMembers[ch.Id] = map[string]*model.ChannelMember{}
	return ch.DeepCopy(), nil
}

func (s *Server) channelByNameLocked(teamID, name string) *model.Channel {
	for _, ch := range s.st.channels {
		if ch.TeamId == teamID && ch.Name == name {
			return ch
		}
	}
	return nil
}

func (s *Server) addChannelMemberLocked(ch *model.Channel, userID string) (*model.ChannelMember, bool) {
	if m := s.st.channelMembers[ch.Id][userID]; m != nil {
		return m, false
	}
	m := &model.ChannelMember{
		ChannelId:   ch.Id,
		UserId:      userID,
		NotifyProps: model.GetDefaultChannelNotifyProps(),
		SchemeUser:  true,
	}
	if u := s.st.users[userID]; u != nil && strings.Contains(u.Roles, model.SystemGuestRoleId) {
		m.SchemeUser, m.SchemeGuest = false, true
	}
	m.LastUpdateAt = s.now()
	s.st.channelMembers[ch.Id][userID] = m
	return m, true
}

// --- posts -----------------------------------------------------------------------

func (s *Server) storePostLocked(p *model.Post) {
	if _, ok := s.st.postSeq[p.Id]; !ok {
		s.st.seq++
		s.st.postSeq[p.Id] = s.st.seq
		s.st.stored = append(s.st.stored, p.Id)
	}
	s.st.posts[p.Id] = p
	s.versionPostLocked(p)
}

func (s *Server) lessPostLocked(a, b *model.Post) bool {
	if a.CreateAt != b.CreateAt {
		return a.CreateAt < b.CreateAt
	}
	return s.st.postSeq[a.Id] < s.st.postSeq[b.Id]
}

// sortedPostsLocked returns the channel's stored posts (deleted posts and
// edit history included), oldest first.
func (s *Server) sortedPostsLocked(channelID string) []*model.Post {
	var ps []*model.Post
	for _, p := range s.st.posts {
		if p.ChannelId == channelID {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return s.lessPostLocked(ps[i], ps[j]) })
	return ps
}

func (s *Server) livePostLocked(id string) *model.Post {
	if p := s.st.posts[id]; p != nil && p.DeleteAt == 0 {
		return p
	}
	return nil
}

func (s *Server) liveReactionsLocked(postID string) []*model.Reaction {
	var out []*model.Reaction
	for _, r := range s.st.reactions[postID] {
		if r.DeleteAt == 0 {
			out = append(out, copyReaction(r))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreateAt < out[j].CreateAt })
	return out
}

// --- files ---------------------------------------------------------------------

func (s *Server) uploadFile(creatorID, channelID, name string, data []byte) (*model.FileInfo, *model.AppError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if channelID != "" && s.st.channels[channelID] == nil {
		return nil, badRequest("UploadFile", "api.file.upload_file.incorrect_channelId.app_error", "channel_id="+channelID)
	}
	if maxSize := s.st.config.FileSettings.MaxFileSize; maxSize != nil && int64(len(data)) > *maxSize {
		return nil, appErr("UploadFile", "api.file.upload_file.too_large_detailed.app_error", http.StatusRequestEntityTooLarge, fmt.Sprintf("size=%d max=%d", len(data), *maxSize))
	}
	clean := model.SanitizeFilename(name)
	if clean == "" {
		return nil, badRequest("UploadFile", "api.file.upload_file.bad_filename.app_error", "filename="+name)
	}
	if creatorID == "" {
		creatorID = "nouser"
	}
	fi := model.NewInfo(clean)
	fi.Id = model.NewId()
	fi.CreatorId = creatorID
	fi.ChannelId = channelID
	fi.Size = int64(len(data))
	fi.CreateAt = s.now()
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
		fi.Width, fi.Height = cfg.Width, cfg.Height
		// app.UploadFileX refuses an image with more pixels than
		// FileSettings.MaxImageResolution (checkImageResolutionLimit).
		if maxRes := s.st.config.FileSettings.MaxImageResolution; maxRes != nil && int64(cfg.Width)*int64(cfg.Height) > *maxRes {
			return nil, badRequest("UploadFile", "api.file.upload_file.large_image_detailed.app_error", fmt.Sprintf("%s is %dx%d pixels, more than %d", clean, cfg.Width, cfg.Height, *maxRes))
		}
	}
	teamDir := "noteam"
	if ch := s.st.channels[channelID]; ch != nil && ch.TeamId != "" {
		teamDir = ch.TeamId
	}
	fi.Path = filepath.ToSlash(filepath.Join("data", "teams", teamDir, "channels", channelID, "users", creatorID, fi.Id, clean))
	fi.PreSave()
	if err := fi.IsValid(); err != nil {
		return nil, err
	}
	s.st.files[fi.Id] = fi
	s.st.fileData[fi.Id] = slices.Clone(data)
	return copyFileInfo(fi), nil
}

// attachFilesLocked attaches files to a post like the file store's
// AttachToPost: only unattached, live files uploaded by the post's author
// or by "nouser" (the plugin API) are attached. It returns the IDs attached.
func (s *Server) attachFilesLocked(p *model.Post, fileIDs []string) []string {
	var attached []string
	for _, id := range fileIDs {
		fi := s.st.files[id]
		if fi == nil || fi.DeleteAt != 0 || fi.PostId != "" || (fi.CreatorId != p.UserId && fi.CreatorId != "nouser") {
			continue
		}
		fi.PostId = p.Id
		fi.ChannelId = p.ChannelId
		fi.UpdateAt = s.now()
		attached = append(attached, id)
	}
	return attached
}
