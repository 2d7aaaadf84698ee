package slacktest

import (
	"path"
	"slices"
	"strings"
)

// This file renders the workspace as Slack's JSON objects (message, file,
// user, bot, conversation), shared by the Web API answers and the events.

// messageJSON renders a message as conversations.history and events show
// it. withMetadata adds the metadata (history only with
// include_all_metadata; events for the app that posted it).
func (s *Server) messageJSON(m *Message, withMetadata bool) map[string]any {
	o := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "team": s.ws.team.ID}
	if m.Subtype != "" {
		o["subtype"] = m.Subtype
	}
	if m.User != "" {
		o["user"] = m.User
	}
	if m.BotID != "" {
		o["bot_id"] = m.BotID
		if bot := s.ws.bots[m.BotID]; bot != nil {
			o["bot_profile"] = map[string]any{
				"id": bot.ID, "app_id": bot.AppID, "name": bot.Name, "team_id": s.ws.team.ID,
				"deleted": false, "icons": map[string]any{"image_48": bot.Icon},
			}
		}
	}
	if m.AppID != "" {
		o["app_id"] = m.AppID
	}
	if m.Username != "" {
		o["username"] = m.Username
	}
	if m.IconURL != "" {
		o["icons"] = map[string]any{"icon_url": m.IconURL}
	}
	if m.ClientMsgID != "" {
		o["client_msg_id"] = m.ClientMsgID
	}
	if len(m.Blocks) > 0 {
		o["blocks"] = m.Blocks
	}
	if withMetadata && len(m.Metadata) > 0 {
		o["metadata"] = m.Metadata
	}
	if m.ThreadTS != "" {
		o["thread_ts"] = m.ThreadTS
		if m.isReply() {
			if parent := s.ws.message(m.Channel, m.ThreadTS); parent != nil {
				o["parent_user_id"] = parent.User
			}
		} else {
			replies := s.ws.replies(m.Channel, m.TS)
			var users []string
			for _, r := range replies {
				if !slices.Contains(users, r.User) && r.User != "" {
					users = append(users, r.User)
				}
			}
			o["reply_count"] = len(replies)
			o["reply_users_count"] = len(users)
			o["reply_users"] = users
			if len(replies) > 0 {
				o["latest_reply"] = replies[len(replies)-1].TS
			}
		}
	}
	if m.Edited != nil {
		o["edited"] = map[string]any{"user": m.Edited.User, "ts": m.Edited.TS}
	}
	if len(m.Reactions) > 0 {
		var rs []map[string]any
		for _, r := range m.Reactions {
			rs = append(rs, map[string]any{"name": r.Name, "users": r.Users, "count": len(r.Users)})
		}
		o["reactions"] = rs
	}
	if len(m.fileIDs) > 0 {
		var fs []map[string]any
		for _, id := range m.fileIDs {
			if f := s.ws.files[id]; f != nil {
				fs = append(fs, s.fileJSON(f))
			}
		}
		o["files"] = fs
		o["upload"] = true
		o["display_as_bot"] = false
	}
	return o
}

// fileJSON renders a file object; url_private needs the bot token (as an
// Authorization: Bearer header) to download.
func (s *Server) fileJSON(f *File) map[string]any {
	o := map[string]any{
		"id": f.ID, "created": f.Created, "timestamp": f.Created,
		"name": f.Name, "title": f.Title, "mimetype": f.Mimetype, "filetype": f.Filetype,
		"pretty_type": strings.ToUpper(f.Filetype), "user": f.User, "user_team": s.ws.team.ID,
		"editable": false, "size": f.Size, "mode": "hosted", "is_external": false,
		"external_type": "", "is_public": false, "public_url_shared": false,
		"display_as_bot": false, "username": "",
		"url_private": f.URLPrivate, "url_private_download": f.URLPrivate + "?download=1",
		"permalink":      "https://" + s.ws.team.Domain + ".slack.com/files/" + f.User + "/" + f.ID + "/" + path.Base(f.Name),
		"channels":       []string{},
		"groups":         []string{},
		"ims":            []string{},
		"comments_count": 0,
		"file_access":    "visible",
	}
	if f.AltText != "" {
		o["alt_txt"] = f.AltText
	}
	var channels, groups []string
	for _, id := range f.Channels {
		if c := s.ws.channels[id]; c != nil && c.Private {
			groups = append(groups, id)
		} else {
			channels = append(channels, id)
		}
	}
	if channels != nil {
		o["channels"] = channels
		o["is_public"] = true
	}
	if groups != nil {
		o["groups"] = groups
	}
	return o
}

// userJSON renders users.info's user and user_change's.
func (s *Server) userJSON(u *User) map[string]any {
	profile := map[string]any{
		"real_name": u.RealName, "real_name_normalized": u.RealName,
		"display_name": u.Name, "display_name_normalized": u.Name,
		"image_24": u.Image48, "image_32": u.Image48, "image_48": u.Image48,
		"image_72": u.Image72, "image_192": u.Image192, "image_512": u.Image192,
		"team": s.ws.team.ID,
	}
	if u.BotID != "" {
		profile["bot_id"] = u.BotID
		if b := s.ws.bots[u.BotID]; b != nil {
			profile["api_app_id"] = b.AppID
		}
	}
	return map[string]any{
		"id": u.ID, "team_id": s.ws.team.ID, "name": u.Name, "deleted": u.Deleted,
		"real_name": u.RealName, "tz": "Europe/London", "tz_label": "Greenwich Mean Time", "tz_offset": 0,
		"is_bot": u.IsBot, "is_app_user": false, "is_admin": false, "is_owner": false,
		"updated": u.Updated, "profile": profile,
	}
}

// channelJSON renders conversations.info's channel for the bot.
func (s *Server) channelJSON(c *Channel, withCount bool) map[string]any {
	o := map[string]any{
		"id": c.ID, "name": c.Name, "name_normalized": c.Name,
		"is_channel": true, "is_group": false, "is_im": false, "is_mpim": false,
		"is_private": c.Private, "is_archived": c.Archived, "is_general": false,
		"is_shared": false, "is_ext_shared": false, "is_org_shared": false,
		"is_member": isMember(c, s.botUser), "created": c.Created, "creator": c.Creator,
		"topic":   map[string]any{"value": "", "creator": "", "last_set": 0},
		"purpose": map[string]any{"value": "", "creator": "", "last_set": 0},
	}
	if withCount {
		o["num_members"] = len(c.Members)
	}
	return o
}
