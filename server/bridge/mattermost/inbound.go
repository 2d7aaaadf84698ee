package mattermost

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/emoji"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Deliver turns an event from another network into a post, edit, delete or
// reaction by the remote user that stands for its sender.
func (b *Bridge) Deliver(ctx context.Context, d *bridge.Delivery) (string, error) {
	channel, err := b.postChannel(d.Room)
	if err != nil {
		return "", err
	}
	userID, err := b.ensureUser(ctx, d.Sender, channel)
	var refused *joinRefusal
	switch {
	case errors.As(err, &refused):
		// The server will not take this person as a user of the team; the
		// room must not stall on it: the bot speaks for them.
		b.health.SetDetail(refused.status())
		if d.Kind == bridge.KindReactionAdd || d.Kind == bridge.KindReactionRemove {
			return "", bridge.Dropf(bridge.ReasonUnsupported, "%s cannot react in Mattermost: %v", displayName(d.Sender), refused)
		}
		userID = b.opts.BotUserID
	case err != nil:
		return "", err
	}
	var id string
	switch d.Kind {
	case bridge.KindMessage:
		id, err = b.createPost(ctx, userID, channel, d)
	case bridge.KindEdit:
		id, err = d.TargetID, b.editPost(ctx, d)
	case bridge.KindDelete:
		id, err = d.TargetID, b.deletePost(d)
	case bridge.KindReactionAdd, bridge.KindReactionRemove:
		id, err = d.TargetID, b.react(userID, channel.Id, d)
	default:
		err = bridge.Permanentf("unknown event kind %q", d.Kind)
	}
	if err == nil {
		b.health.Touch(b.opts.Now())
	}
	return id, err
}

// channelCacheTTL is how long a delivery uses a channel read before: a
// channel's team hardly changes, and a channel archived or deleted
// meanwhile refuses the post itself. (People are read for every post: the
// next message after a rename must carry the new name.)
const channelCacheTTL = 2 * time.Second

type cachedChannel struct {
	ch    *model.Channel
	until time.Time
}

// postChannel is the channel a delivery posts in, read at most every
// channelCacheTTL.
func (b *Bridge) postChannel(id string) (*model.Channel, error) {
	now := b.opts.Now()
	if c, ok := b.channelInfo.Load(id); ok && now.Before(c.(cachedChannel).until) {
		return c.(cachedChannel).ch, nil
	}
	ch, appErr := b.api.GetChannel(id)
	if appErr != nil {
		b.channelInfo.Delete(id)
		if appErr.StatusCode == http.StatusNotFound {
			return nil, bridge.Permanentf("channel %s does not exist", id)
		}
		return nil, appErr
	}
	b.channelInfo.Store(id, cachedChannel{ch: ch, until: now.Add(channelCacheTTL)})
	return ch, nil
}

// asError turns a nil *AppError into a nil error, keeping real ones.
func asError(appErr *model.AppError) error {
	if appErr == nil {
		return nil
	}
	if appErr.StatusCode >= 400 && appErr.StatusCode < 500 {
		return bridge.Permanent(appErr)
	}
	return appErr
}

func (b *Bridge) createPost(ctx context.Context, userID string, channel *model.Channel, d *bridge.Delivery) (string, error) {
	text := defangChannelMentions(d.Text)
	props := model.StringInterface{
		PropOrigin: string(d.Origin.Network), PropOriginID: d.Origin.ID,
		// No post from outside notifies a whole channel, whatever the
		// text turns out to hold.
		model.PostPropsMentionHighlightDisabled: true,
	}
	var fileIDs, notes []string
	for _, a := range d.Attachments {
		id, err := b.upload(ctx, channel.Id, a)
		switch {
		case err == nil:
			fileIDs = append(fileIDs, id)
		case bridge.IsPermanent(err):
			// The server will never take this file (too large, an image
			// over MaxImageResolution...): the message and the other
			// files still go, saying what is missing.
			b.log.Info("A file could not be attached to a bridged message", "file", a.Name, "error", err.Error())
			notes = append(notes, fmt.Sprintf("(file %s could not be attached: %s)", a.Name, fileRefusal(err)))
		default:
			return "", err
		}
	}
	if len(notes) > 0 {
		// File names come from outside too: defanged with the text.
		text = defangChannelMentions(strings.TrimSpace(d.Text + "\n" + strings.Join(notes, "\n")))
	}
	if strings.TrimSpace(text) == "" && len(fileIDs) == 0 {
		return "", bridge.Permanentf("empty message")
	}
	onBehalf := userID == b.opts.BotUserID
	if onBehalf {
		text = onBehalfOf(d.Sender, text)
	}
	post := &model.Post{
		UserId:    userID,
		ChannelId: channel.Id,
		Message:   text,
		RootId:    b.rootOf(ctx, d.ParentID),
		FileIds:   fileIDs,
	}
	post.SetProps(props)
	if rid := b.opts.RemoteIDs[d.Sender.Network]; rid != "" && !onBehalf {
		post.RemoteId = model.NewPointer(rid)
		// The server keeps the ID a remote post comes with. One derived
		// from the message makes a second delivery (the next holder
		// replaying what a dead one did, before it recorded it) find the
		// first post instead of making another.
		if d.Origin.ID != "" {
			post.Id = postIDFor(d.Origin, d.Part, channel.Id)
		}
	}
	created, appErr := b.api.CreatePost(post)
	if appErr != nil {
		if post.Id != "" {
			if existing, getErr := b.knownPost(ctx, post.Id); getErr == nil && existing.ChannelId == channel.Id && existing.GetProp(PropOriginID) == d.Origin.ID {
				return existing.Id, nil
			}
		}
		return "", asError(appErr)
	}
	return created.Id, nil
}

// postIDFor is the ID of the post a message from origin (or its part, when
// split) becomes in a channel: a valid Mattermost ID (26 lower-case letters
// and digits), the same on every node.
func postIDFor(origin bridge.Ref, part int, channelID string) string {
	// Length-prefixed: no choice of room and ID can make two messages' inputs alike.
	sum := sha256.Sum256(fmt.Appendf(nil, "%d:%s|%d:%s|%d:%s|%d|%s", len(origin.Network), origin.Network, len(origin.Room), origin.Room, len(origin.ID), origin.ID, part, channelID))
	return hex.EncodeToString(sum[:])[:26]
}

// rootOf returns the thread root for a reply: Mattermost threads are one
// level deep, so a reply to a reply joins its root's thread.
func (b *Bridge) rootOf(ctx context.Context, parentID string) string {
	if parentID == "" {
		return ""
	}
	parent, appErr := b.knownPost(ctx, parentID)
	if appErr != nil || parent.DeleteAt > 0 {
		return ""
	}
	if parent.RootId != "" {
		return parent.RootId
	}
	return parent.Id
}

func (b *Bridge) upload(ctx context.Context, channelID string, a bridge.Attachment) (string, error) {
	data, err := bridge.ReadAttachment(ctx, a, b.maxFileSize.Load())
	if err != nil {
		return "", err
	}
	name := a.Name
	if name == "" {
		name = "file"
	}
	info, appErr := b.api.UploadFile(data, channelID, name)
	if appErr != nil {
		return "", asError(appErr)
	}
	return info.Id, nil
}

// fileRefusal says in a few words why the server refused a file.
func fileRefusal(err error) string {
	var appErr *model.AppError
	switch {
	case bridge.DropCode(err) == bridge.ReasonTooLarge:
		return "it is larger than the bridge's file size limit"
	case errors.As(err, &appErr) && appErr.Id == "api.file.upload_file.large_image_detailed.app_error":
		return "the image is larger than the server's maximum image resolution"
	case errors.As(err, &appErr) && appErr.StatusCode == http.StatusRequestEntityTooLarge:
		return "it is larger than the server's file size limit"
	}
	return "the server refused it"
}

// knownPostWait bounds how long knownPost waits for a read replica.
const knownPostWait = 3 * time.Second

// knownPost reads a post the bridge knows was made (its ID comes from the
// message map, written once the post was): GetPost may read a replica
// that does not have it yet, so a post not found is read again for a
// while before it counts as gone.
func (b *Bridge) knownPost(ctx context.Context, id string) (*model.Post, *model.AppError) {
	deadline := time.Now().Add(knownPostWait)
	for delay := 25 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		post, appErr := b.api.GetPost(id)
		if appErr == nil || appErr.StatusCode != http.StatusNotFound || !time.Now().Add(delay).Before(deadline) {
			return post, appErr
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return post, appErr
		case <-t.C:
		}
	}
}

func (b *Bridge) editPost(ctx context.Context, d *bridge.Delivery) error {
	post, appErr := b.knownPost(ctx, d.TargetID)
	if appErr != nil {
		return asError(appErr)
	}
	text := defangChannelMentions(d.Text)
	if post.UserId == b.opts.BotUserID {
		text = onBehalfOf(d.Sender, text)
	}
	// No "unchanged, nothing to do" here: GetPost reads a replica, which
	// may not have the edit before this one yet (an edit back to the text
	// before it would be lost). UpdatePost compares with the master and
	// leaves an unchanged message as it is.
	post = post.Clone()
	post.Message = text
	post.AddProp(model.PostPropsMentionHighlightDisabled, true)
	_, appErr = b.api.UpdatePost(post)
	return asError(appErr)
}

func (b *Bridge) deletePost(d *bridge.Delivery) error {
	appErr := b.api.DeletePost(d.TargetID)
	if alreadyGone(appErr) {
		return nil // the goal is met
	}
	return asError(appErr)
}

// alreadyGone reports whether DeletePost failed because the post is gone:
// app.DeletePost cannot read it (GetSingle leaves deleted posts out) and
// answers 400 app.post.get.app_error; 404 is taken the same way.
func alreadyGone(appErr *model.AppError) bool {
	return appErr != nil && (appErr.StatusCode == http.StatusNotFound ||
		appErr.StatusCode == http.StatusBadRequest && appErr.Id == "app.post.get.app_error")
}

func (b *Bridge) react(userID, channelID string, d *bridge.Delivery) error {
	name, ok := emoji.ToName(d.Emoji)
	if !ok {
		return bridge.Permanentf("reaction %q has no Mattermost emoji", d.Emoji)
	}
	r := &model.Reaction{UserId: userID, PostId: d.TargetID, EmojiName: name, ChannelId: channelID}
	if d.Kind == bridge.KindReactionAdd {
		_, appErr := b.api.AddReaction(r)
		return asError(appErr)
	}
	return asError(b.api.RemoveReaction(r))
}

// ensureUser returns the remote user standing for sender, creating it once
// and keeping its name and picture current, and makes it a member of the
// channel's team and the channel.
func (b *Bridge) ensureUser(ctx context.Context, s bridge.Sender, channel *model.Channel) (string, error) {
	if s.Network == "" || s.ID == "" {
		return "", bridge.Permanentf("event has no sender")
	}
	rec, err := b.store.GetRemoteUser(s.Network, s.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec, err = b.createUser(s)
		if refused := (*joinRefusal)(nil); errors.As(err, &refused) {
			refused.teamID = channel.TeamId
		}
		if err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	default:
		if err = b.refreshUser(rec, s); err != nil {
			b.log.Warn("Could not update a remote user's profile", "user_id", rec.UserID, "error", err.Error())
		}
	}
	if aerr := b.updateAvatar(ctx, rec, s); aerr != nil {
		b.log.Warn("Could not update a remote user's picture", "user_id", rec.UserID, "error", aerr.Error())
	}
	if merr := b.ensureMember(rec.UserID, channel); merr != nil {
		return "", merr
	}
	return rec.UserID, nil
}

// displayName is the first name and nickname of the remote user standing
// for s: their name with their network after it, "Alice Smith (XMPP)", so
// that under every name-display setting they never look like a local
// person. The name is cut to fit the server's limits, never the network.
// Control and formatting characters (line breaks, bidi overrides) go: they
// could move or hide the network.
func displayName(s bridge.Sender) string {
	name := s.DisplayName
	if strings.TrimSpace(name) == "" {
		name = s.Username
	}
	name = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, name)), " ")
	if name == "" {
		return ""
	}
	suffix := " (" + s.Network.Label() + ")"
	limit := min(model.UserNicknameMaxRunes, model.UserFirstNameMaxRunes) - utf8.RuneCountInString(suffix)
	if r := []rune(name); len(r) > limit {
		name = strings.TrimSpace(string(r[:limit]))
	}
	return name + suffix
}

func randomPassword() string {
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)[:64] + "Aa1!"
}

func (b *Bridge) createUser(s bridge.Sender) (*store.RemoteUser, error) {
	remoteID := b.opts.RemoteIDs[s.Network]
	if remoteID == "" {
		return nil, fmt.Errorf("no shared-channels remote is registered for %s", s.Network)
	}
	sum := sha256.Sum256([]byte(string(s.Network) + "|" + s.ID))
	var user *model.User
	for attempt := 0; ; attempt++ {
		username, err := b.freeUsername(s, attempt)
		if err != nil {
			return nil, err
		}
		candidate := &model.User{
			Username:  username,
			Email:     hex.EncodeToString(sum[:10]) + "@" + string(s.Network) + ".bridge.invalid",
			Nickname:  displayName(s),
			FirstName: displayName(s),
			Password:  randomPassword(),
			RemoteId:  model.NewPointer(remoteID),
			Props:     model.StringMap{PropOrigin: string(s.Network)},
		}
		var appErr *model.AppError
		user, appErr = b.api.CreateUser(candidate)
		if appErr == nil {
			break
		}
		if setting := refusedSetting(appErr); setting != "" {
			return nil, &joinRefusal{setting: setting, err: appErr}
		}
		// Another node may have taken the name between our check and create.
		if attempt >= 5 || appErr.StatusCode >= 500 {
			return nil, asError(appErr)
		}
	}
	existing, won, err := b.store.ClaimRemoteUser(s.Network, s.ID, user.Id)
	if err != nil {
		return nil, err
	}
	if !won {
		// Another node created this person first: use theirs, retire ours.
		if appErr := b.api.UpdateUserActive(user.Id, false); appErr != nil {
			b.log.Warn("Could not deactivate a duplicate remote user", "user_id", user.Id, "error", appErr.Error())
		}
		rec, gerr := b.store.GetRemoteUser(s.Network, s.ID)
		if gerr == nil {
			return rec, nil
		}
		return &store.RemoteUser{Network: s.Network, RemoteID: s.ID, UserID: existing}, nil
	}
	b.ownUsers.Store(user.Id, true)
	rec := &store.RemoteUser{
		Network: s.Network, RemoteID: s.ID, UserID: user.Id,
		Username: user.Username, DisplayName: displayName(s), UpdatedAt: b.opts.Now().UTC(),
	}
	return rec, b.store.SaveRemoteUser(*rec)
}

var notUsernameChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// freeUsername derives a Mattermost username for a remote person:
// "<name>:<network>", the shared-channels convention for remote users, made
// valid by the server's rules and unique with a numeric suffix.
func (b *Bridge) freeUsername(s bridge.Sender, attempt int) (string, error) {
	base := strings.ToLower(s.Username)
	if base == "" {
		base = strings.ToLower(s.DisplayName)
	}
	base = strings.Trim(notUsernameChars.ReplaceAllString(base, "-"), "-._")
	if base == "" {
		sum := sha256.Sum256([]byte(s.ID))
		base = "user-" + hex.EncodeToString(sum[:4])
	}
	suffix := ":" + string(s.Network)
	for n := attempt + 1; n < attempt+100; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		if over := len(name) + len(suffix) - model.UserNameMaxLength; over > 0 {
			name = name[:len(name)-over]
		}
		name += suffix
		if !model.IsValidUsernameAllowRemote(name) {
			continue
		}
		if _, appErr := b.api.GetUserByUsername(name); appErr != nil {
			if appErr.StatusCode == http.StatusNotFound {
				return name, nil
			}
			return "", appErr
		}
	}
	return "", fmt.Errorf("no free username for %s user %q", s.Network, s.Username)
}

func (b *Bridge) refreshUser(rec *store.RemoteUser, s bridge.Sender) error {
	name := displayName(s)
	if name == "" || name == rec.DisplayName {
		return nil
	}
	user, appErr := b.api.GetUser(rec.UserID)
	if appErr != nil {
		return appErr
	}
	user.Nickname, user.FirstName = name, name
	if _, appErr = b.api.UpdateUser(user); appErr != nil {
		return appErr
	}
	rec.DisplayName = name
	rec.UpdatedAt = b.opts.Now().UTC()
	return b.store.SaveRemoteUser(*rec)
}

func (b *Bridge) updateAvatar(ctx context.Context, rec *store.RemoteUser, s bridge.Sender) error {
	if s.Avatar == nil || s.AvatarHash == "" || s.AvatarHash == rec.AvatarHash {
		return nil
	}
	data, err := s.Avatar(ctx)
	if err != nil {
		return err
	}
	if appErr := b.api.SetProfileImage(rec.UserID, data); appErr != nil {
		return appErr
	}
	rec.AvatarHash = s.AvatarHash
	rec.UpdatedAt = b.opts.Now().UTC()
	return b.store.SaveRemoteUser(*rec)
}

// onBehalfOf is the text of a message the bot posts for someone who
// could not become a Mattermost user: their name and network first.
func onBehalfOf(s bridge.Sender, text string) string {
	return "**" + displayName(s) + ":** " + text
}

// joinRefusal is the server refusing a remote person as a user of a team
// for one of its settings; retrying cannot help until an admin changes it.
type joinRefusal struct {
	setting string
	teamID  string
	err     *model.AppError
}

func (e *joinRefusal) Error() string {
	return fmt.Sprintf("the server refuses new users in team %s (%s): %v", e.teamID, e.setting, e.err)
}

func (e *joinRefusal) Unwrap() error { return e.err }

// status is the note for the admin.
func (e *joinRefusal) status() string {
	return fmt.Sprintf("Remote people cannot become Mattermost users of team %s: %s blocks it. Their messages are posted by the bridge's bot with their name.", e.teamID, e.setting)
}

// refusedSetting names the server setting behind a refusal to create a
// user or add one to a team, "" for other errors (app.JoinUserToTeam,
// app.CreateUser).
func refusedSetting(appErr *model.AppError) string {
	switch appErr.Id {
	case "app.team.join_user_to_team.max_accounts.app_error":
		return "TeamSettings.MaxUsersPerTeam"
	case "api.team.join_user_to_team.allowed_domains.app_error":
		return "the team's allowed email domains"
	case "api.user.create_user.accepted_domain.app_error":
		return "TeamSettings.RestrictCreationToDomains"
	}
	return ""
}

func (b *Bridge) ensureMember(userID string, channel *model.Channel) error {
	key := userID + "|" + channel.Id
	if _, ok := b.members.Load(key); ok {
		return nil
	}
	if channel.TeamId != "" {
		if _, appErr := b.api.GetTeamMember(channel.TeamId, userID); appErr != nil {
			if _, appErr = b.api.CreateTeamMember(channel.TeamId, userID); appErr != nil {
				if setting := refusedSetting(appErr); setting != "" {
					return &joinRefusal{setting: setting, teamID: channel.TeamId, err: appErr}
				}
				return fmt.Errorf("add remote user to team: %w", appErr)
			}
		}
	}
	if _, appErr := b.api.GetChannelMember(channel.Id, userID); appErr != nil {
		if _, appErr = b.api.AddChannelMember(channel.Id, userID); appErr != nil {
			return fmt.Errorf("add remote user to channel: %w", appErr)
		}
	}
	b.members.Store(key, true)
	return nil
}
