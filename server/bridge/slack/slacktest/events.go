package slacktest

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// This file is the Events API side: the events Slack sends the app when
// something happens in the workspace, and the actions a test performs as
// Slack's people and other bots to make them happen.
//
// Slack sends a bot an event only where it may see it: message events for
// channels it is a member of, given channels:history (public) or
// groups:history (private); reactions with reactions:read; membership and
// archive events with channels:read or groups:read; user_change with
// users:read. The app's own posts come back too (with its bot_id and
// app_id), which is what the bridge's loop safety must recognise.

func (s *Server) granted(scope string) bool {
	return slices.Contains(s.tokens[s.botTok].scopes, scope)
}

// botSeesLocked: is the bot in the channel with the scope its type needs?
func (s *Server) botSeesLocked(c *Channel, public, private string) bool {
	if !isMember(c, s.botUser) {
		return false
	}
	if c.Private {
		return s.granted(private)
	}
	return s.granted(public)
}

func channelType(c *Channel) string {
	if c.Private {
		return "group"
	}
	return "channel"
}

func (s *Server) emitNewMessageLocked(m *Message) {
	c := s.ws.channels[m.Channel]
	if !s.botSeesLocked(c, "channels:history", "groups:history") {
		return
	}
	// Metadata goes to the app that posted it.
	inner := s.messageJSON(m, m.AppID == s.appID)
	inner["channel"] = c.ID
	inner["channel_type"] = channelType(c)
	inner["event_ts"] = m.TS
	s.queueEventLocked(inner)
	s.notifyLocked()
}

// emitChangedLocked sends message_changed: the new message under
// "message", the old one under "previous_message".
func (s *Server) emitChangedLocked(m, before *Message) {
	c := s.ws.channels[m.Channel]
	if !s.botSeesLocked(c, "channels:history", "groups:history") {
		s.notifyLocked()
		return
	}
	ts := s.ws.nextTS()
	own := m.AppID == s.appID
	s.queueEventLocked(map[string]any{
		"type": "message", "subtype": "message_changed", "hidden": true,
		"channel": c.ID, "channel_type": channelType(c), "ts": ts, "event_ts": ts,
		"message":          s.messageJSON(m, own),
		"previous_message": s.messageJSON(before, own),
	})
	s.notifyLocked()
}

// emitDeletedLocked sends message_deleted with deleted_ts and the message
// as it was.
func (s *Server) emitDeletedLocked(m, before *Message) {
	c := s.ws.channels[m.Channel]
	if !s.botSeesLocked(c, "channels:history", "groups:history") {
		s.notifyLocked()
		return
	}
	ts := s.ws.nextTS()
	inner := map[string]any{
		"type": "message", "subtype": "message_deleted", "hidden": true,
		"channel": c.ID, "channel_type": channelType(c), "ts": ts, "event_ts": ts,
		"deleted_ts":       m.TS,
		"previous_message": s.messageJSON(before, m.AppID == s.appID),
	}
	if m.isReply() {
		inner["thread_ts"] = m.ThreadTS
	}
	s.queueEventLocked(inner)
	s.notifyLocked()
}

func (s *Server) emitReactionLocked(typ string, c *Channel, m *Message, user, name string) {
	if !isMember(c, s.botUser) || !s.granted("reactions:read") {
		s.notifyLocked()
		return
	}
	s.queueEventLocked(map[string]any{
		"type": typ, "user": user, "reaction": name, "item_user": m.User,
		"item":     map[string]any{"type": "message", "channel": c.ID, "ts": m.TS},
		"event_ts": s.ws.nextTS(),
	})
	s.notifyLocked()
}

// fatalf ends the test: an action the test asked for is impossible in Slack.
func (s *Server) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("slacktest: "+format, args...)
}

// AddUser creates a person (or, with IsBot, a bot's user). An empty ID or
// Name is filled in; the user is returned as stored.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = s.ws.newID('U')
	}
	if u.Name == "" {
		u.Name = "user" + u.ID[len(u.ID)-3:]
	}
	if u.RealName == "" {
		u.RealName = u.Name
	}
	u.Updated = time.Now().Unix()
	s.ws.users[u.ID] = &u
	s.notifyLocked()
	return u
}

// AddBot creates another app's bot and its user, for bot_message posts.
func (s *Server) AddBot(name string) Bot {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := Bot{ID: s.ws.newID('B'), Name: name, AppID: s.ws.newID('A'), UserID: s.ws.newID('U')}
	s.ws.bots[b.ID] = &b
	s.ws.users[b.UserID] = &User{ID: b.UserID, Name: name, RealName: name, IsBot: true, BotID: b.ID, Updated: time.Now().Unix()}
	s.notifyLocked()
	return b
}

// AddChannel creates a channel with the given members (include
// BotUserID() for a channel the bot is already in). An empty ID is
// filled in.
func (s *Server) AddChannel(c Channel) Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == "" {
		c.ID = s.ws.newID('C')
	}
	if c.Name == "" {
		c.Name = "channel-" + c.ID
	}
	if c.Created == 0 {
		c.Created = time.Now().Unix()
	}
	c.Members = slices.Clone(c.Members)
	s.ws.channels[c.ID] = &c
	s.ws.order = append(s.ws.order, c.ID)
	s.notifyLocked()
	return c
}

// activeChannel checks what Slack's clients check before a person posts:
// the channel exists, is not archived and the user is in it.
func (s *Server) activeChannel(user, channel string) *Channel {
	s.t.Helper()
	c := s.ws.channels[channel]
	switch {
	case c == nil:
		s.fatalf("no channel %s", channel)
	case c.Archived:
		s.fatalf("channel %s is archived", channel)
	case s.ws.users[user] == nil:
		s.fatalf("no user %s", user)
	case !isMember(c, user):
		s.fatalf("%s is not a member of %s", user, channel)
	}
	return c
}

// UserPost is a message a person posts from a Slack client.
type UserPost struct {
	User, Channel, Text string
	// ThreadTS makes it a reply in that thread.
	ThreadTS string
	// Broadcast also sends a reply to the channel ("Also send to #channel").
	Broadcast bool
	Blocks    json.RawMessage
}

// PostMessage posts as a person and sends the message event; it returns
// the new message's ts.
func (s *Server) PostMessage(p UserPost) string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.activeChannel(p.User, p.Channel)
	m := &Message{Channel: c.ID, User: p.User, Text: p.Text, Blocks: slices.Clone(p.Blocks), ClientMsgID: newUUID()}
	if p.ThreadTS != "" {
		parent := s.ws.message(c.ID, p.ThreadTS)
		if parent == nil || parent.isReply() {
			s.fatalf("no thread %s in %s", p.ThreadTS, c.ID)
		}
		m.ThreadTS = parent.TS
		if p.Broadcast {
			m.Subtype = "thread_broadcast"
		}
	}
	m.TS = s.ws.nextTS()
	s.ws.addMessage(m)
	s.emitNewMessageLocked(m)
	return m.TS
}

// Post posts text as a person; it returns the message's ts.
func (s *Server) Post(user, channel, text string) string {
	s.t.Helper()
	return s.PostMessage(UserPost{User: user, Channel: channel, Text: text})
}

// Reply posts text in a thread as a person; it returns the reply's ts.
func (s *Server) Reply(user, channel, threadTS, text string) string {
	s.t.Helper()
	return s.PostMessage(UserPost{User: user, Channel: channel, Text: text, ThreadTS: threadTS})
}

// MeMessage posts a /me message (subtype me_message).
func (s *Server) MeMessage(user, channel, text string) string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.activeChannel(user, channel)
	m := &Message{Channel: c.ID, User: user, Text: text, Subtype: "me_message", TS: s.ws.nextTS()}
	s.ws.addMessage(m)
	s.emitNewMessageLocked(m)
	return m.TS
}

// BotPost posts as another app's bot (subtype bot_message, with bot_id and
// username); it returns the ts.
func (s *Server) BotPost(botID, channel, text, username string) string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.ws.bots[botID]
	if b == nil {
		s.fatalf("no bot %s", botID)
	}
	c := s.ws.channels[channel]
	if c == nil || c.Archived {
		s.fatalf("no open channel %s", channel)
	}
	m := &Message{Channel: c.ID, BotID: b.ID, AppID: b.AppID, Username: username, Subtype: "bot_message", Text: text, TS: s.ws.nextTS()}
	s.ws.addMessage(m)
	s.emitNewMessageLocked(m)
	return m.TS
}

// Edit changes a person's message and sends message_changed.
func (s *Server) Edit(user, channel, ts, text string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.activeChannel(user, channel)
	m := s.ws.message(c.ID, ts)
	if m == nil || m.User != user {
		s.fatalf("%s has no message %s in %s", user, ts, channel)
	}
	before := s.ws.copyMessage(m)
	m.Text = text
	m.Blocks = nil
	m.Edited = &Edited{User: user, TS: s.ws.nextTS()}
	s.emitChangedLocked(m, &before)
}

// Delete deletes a person's message and sends message_deleted.
func (s *Server) Delete(user, channel, ts string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.activeChannel(user, channel)
	m := s.ws.message(c.ID, ts)
	if m == nil || m.User != user {
		s.fatalf("%s has no message %s in %s", user, ts, channel)
	}
	s.deleteLocked(m)
}

// React adds a person's reaction and sends reaction_added.
func (s *Server) React(user, channel, ts, name string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.activeChannel(user, channel)
	m := s.ws.message(c.ID, ts)
	if m == nil || !addReaction(m, name, user) {
		s.fatalf("cannot add %s to %s in %s", name, ts, channel)
	}
	s.emitReactionLocked("reaction_added", c, m, user, name)
}

// Unreact removes a person's reaction and sends reaction_removed.
func (s *Server) Unreact(user, channel, ts, name string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.activeChannel(user, channel)
	m := s.ws.message(c.ID, ts)
	if m == nil || !removeReaction(m, name, user) {
		s.fatalf("%s has no %s on %s in %s", user, name, ts, channel)
	}
	s.emitReactionLocked("reaction_removed", c, m, user, name)
}

// FileShare is a file a person uploads into a channel.
type FileShare struct {
	User, Channel string
	Name          string
	Content       []byte
	// Text is the message's text (the upload's comment).
	Text     string
	ThreadTS string
}

// ShareFile uploads a file as a person and sends the message (subtype
// file_share, with files[] and their url_private); it returns the ts and
// the file ID.
func (s *Server) ShareFile(f FileShare) (ts, fileID string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.activeChannel(f.User, f.Channel)
	file := s.newFileLocked(f.User, f.Name, len(f.Content))
	file.Content = slices.Clone(f.Content)
	file.uploaded, file.completed = true, true
	file.Channels = []string{c.ID}
	m := &Message{Channel: c.ID, User: f.User, Text: f.Text, Subtype: "file_share", fileIDs: []string{file.ID}}
	if f.ThreadTS != "" {
		m.ThreadTS = f.ThreadTS
	}
	m.TS = s.ws.nextTS()
	s.ws.addMessage(m)
	s.emitNewMessageLocked(m)
	return m.TS, file.ID
}

// Join adds a person to a channel (member_joined_channel, seen by the bot
// when it is in the channel).
func (s *Server) Join(user, channel string) {
	s.t.Helper()
	s.addMember(user, channel, "")
}

// InviteBot adds the app's bot to a channel, invited by a person, and
// sends member_joined_channel.
func (s *Server) InviteBot(inviter, channel string) {
	s.t.Helper()
	s.addMember(s.botUser, channel, inviter)
}

func (s *Server) addMember(user, channel, inviter string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ws.channels[channel]
	if c == nil || c.Archived || s.ws.users[user] == nil || isMember(c, user) {
		s.fatalf("cannot add %s to %s", user, channel)
	}
	c.Members = append(c.Members, user)
	if s.botSeesLocked(c, "channels:read", "groups:read") {
		typ := "C"
		if c.Private {
			typ = "G"
		}
		inner := map[string]any{
			"type": "member_joined_channel", "user": user, "channel": c.ID,
			"channel_type": typ, "team": s.ws.team.ID, "event_ts": s.ws.nextTS(),
		}
		if inviter != "" {
			inner["inviter"] = inviter
		}
		s.queueEventLocked(inner)
	}
	s.notifyLocked()
}

// Archive archives a channel and sends channel_archive (group_archive for
// a private channel); Unarchive reverses it.
func (s *Server) Archive(user, channel string) { s.setArchived(user, channel, true) }

// Unarchive un-archives a channel and sends channel_unarchive
// (group_unarchive for a private channel).
func (s *Server) Unarchive(user, channel string) { s.setArchived(user, channel, false) }

// archiveSeenLocked: does the bot get a channel's archive events? Slack
// sends channel_archive and channel_unarchive "to all connections for a
// workspace" (channels:read), member or not, and group_archive and
// group_unarchive only to a private channel's members (groups:read).
func (s *Server) archiveSeenLocked(c *Channel) bool {
	if c.Private {
		return isMember(c, s.botUser) && s.granted("groups:read")
	}
	return s.granted("channels:read")
}

func (s *Server) setArchived(user, channel string, archived bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ws.channels[channel]
	if c == nil || c.Archived == archived {
		s.fatalf("cannot set %s archived=%v", channel, archived)
	}
	c.Archived = archived
	if s.archiveSeenLocked(c) {
		typ := "channel_unarchive"
		if archived {
			typ = "channel_archive"
		}
		if c.Private {
			typ = strings.Replace(typ, "channel_", "group_", 1)
		}
		s.queueEventLocked(map[string]any{"type": typ, "channel": c.ID, "user": user, "event_ts": s.ws.nextTS()})
	}
	s.notifyLocked()
}

// UpdateUser changes a user (name, real name, avatar...) and sends
// user_change with the whole user object.
func (s *Server) UpdateUser(id string, change func(*User)) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.users[id]
	if u == nil {
		s.fatalf("no user %s", id)
	}
	change(u)
	u.ID = id
	u.Updated = time.Now().Unix()
	if s.granted("users:read") {
		s.queueEventLocked(map[string]any{
			"type": "user_change", "user": s.userJSON(u),
			"cache_ts": u.Updated, "event_ts": s.ws.nextTS(),
		})
	}
	s.notifyLocked()
}
