package slacktest

import (
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// maxTextLength is where chat.postMessage stops accepting text ("msg_too_long";
// the reference says text beyond 40,000 characters is not accepted).
const maxTextLength = 40000

// botChannel finds a channel the bot can post in, with the error Slack
// gives otherwise: a private channel the bot is not in does not exist for
// it, a public one it is not in answers not_in_channel (unless the app
// has chat:write.public and the method is chat.postMessage).
func (s *Server) botChannel(r *request, id string, publicWrite bool) (*Channel, string) {
	c := s.ws.channel(id)
	if c == nil || c.Private && !isMember(c, s.botUser) {
		return nil, "channel_not_found"
	}
	member := isMember(c, s.botUser)
	if !member && !(publicWrite && slices.Contains(r.tok.scopes, "chat:write.public")) {
		return nil, "not_in_channel"
	}
	if c.Archived {
		return nil, "is_archived"
	}
	return c, ""
}

// parseBlocks checks that blocks, if given, are a JSON array.
func parseBlocks(raw string) (json.RawMessage, bool) {
	if raw == "" {
		return nil, true
	}
	var arr []json.RawMessage
	if json.Unmarshal([]byte(raw), &arr) != nil {
		return nil, false
	}
	return json.RawMessage(raw), true
}

func (s *Server) chatPostMessage(r *request) answer {
	c, code := s.botChannel(r, r.get("channel"), true)
	if code != "" {
		return errAnswer(code)
	}
	blocks, ok := parseBlocks(r.get("blocks"))
	if !ok {
		return errAnswer("invalid_blocks")
	}
	text := r.get("text")
	if text == "" && blocks == nil && r.get("attachments") == "" {
		return errAnswer("no_text")
	}
	if utf8.RuneCountInString(text) > maxTextLength {
		return errAnswer("msg_too_long")
	}
	var metadata json.RawMessage
	if raw := r.get("metadata"); raw != "" {
		var md struct {
			EventType    string         `json:"event_type"`
			EventPayload map[string]any `json:"event_payload"`
		}
		if json.Unmarshal([]byte(raw), &md) != nil || md.EventType == "" || md.EventPayload == nil {
			return errAnswer("invalid_metadata_format")
		}
		metadata = json.RawMessage(raw)
	}
	m := &Message{Channel: c.ID, Text: text, Blocks: blocks, Metadata: metadata, User: s.botUser, BotID: s.botID, AppID: s.appID}
	if ts := r.get("thread_ts"); ts != "" {
		parent := s.ws.message(c.ID, ts)
		if parent == nil {
			// Not in the reference's error table; answering it keeps a
			// reply from silently becoming a top-level message.
			return errAnswer("thread_not_found")
		}
		if parent.isReply() {
			// The reference: "Avoid using a reply's ts value; use its
			// parent instead." Slack files it under the parent.
			parent = s.ws.message(c.ID, parent.ThreadTS)
		}
		m.ThreadTS = parent.TS
		if r.flag("reply_broadcast") {
			m.Subtype = "thread_broadcast"
		}
	}
	// username and icon_url count only with chat:write.customize; without
	// it the message is posted under the app's own name and icon.
	if slices.Contains(r.tok.scopes, "chat:write.customize") && (r.get("username") != "" || r.get("icon_url") != "") {
		m.Username = r.get("username")
		m.IconURL = r.get("icon_url")
		m.User = ""
		if m.Subtype == "" {
			m.Subtype = "bot_message"
		}
	}
	m.TS = s.ws.nextTS()
	s.ws.addMessage(m)
	s.emitNewMessageLocked(m)
	msg := s.messageJSON(m, true)
	return okAnswer(answer{"channel": c.ID, "ts": m.TS, "message": msg})
}

func (s *Server) chatUpdate(r *request) answer {
	c, code := s.botChannel(r, r.get("channel"), false)
	if code != "" {
		return errAnswer(code)
	}
	m := s.ws.message(c.ID, r.get("ts"))
	if m == nil {
		return errAnswer("message_not_found")
	}
	if m.BotID != s.botID {
		return errAnswer("cant_update_message")
	}
	blocks, ok := parseBlocks(r.get("blocks"))
	if !ok {
		return errAnswer("invalid_blocks")
	}
	text, hasText := r.params["text"]
	if !hasText && blocks == nil && r.get("attachments") == "" {
		return errAnswer("no_text")
	}
	if utf8.RuneCountInString(text) > maxTextLength {
		return errAnswer("msg_too_long")
	}
	before := s.ws.copyMessage(m)
	if hasText {
		m.Text = text
	}
	// The reference: without blocks the previous blocks stay only when no
	// text is given; text alone replaces them. An update with blocks does
	// not show the edited flag.
	switch {
	case blocks != nil:
		m.Blocks = blocks
	case hasText:
		m.Blocks = nil
	}
	if blocks == nil {
		m.Edited = &Edited{User: s.botUser, TS: s.ws.nextTS()}
	}
	s.emitChangedLocked(m, &before)
	return okAnswer(answer{"channel": c.ID, "ts": m.TS, "text": m.Text, "message": s.messageJSON(m, true)})
}

func (s *Server) chatDelete(r *request) answer {
	c, code := s.botChannel(r, r.get("channel"), false)
	if code != "" {
		return errAnswer(code)
	}
	m := s.ws.message(c.ID, r.get("ts"))
	if m == nil {
		return errAnswer("message_not_found")
	}
	if m.BotID != s.botID {
		return errAnswer("cant_delete_message")
	}
	s.deleteLocked(m)
	return okAnswer(answer{"channel": c.ID, "ts": m.TS})
}

func (s *Server) deleteLocked(m *Message) {
	before := s.ws.copyMessage(m)
	m.deleted = true
	s.emitDeletedLocked(m, &before)
}

func (s *Server) reactionsAdd(r *request) answer {
	c, m, code := s.reactionTarget(r)
	if code != "" {
		return errAnswer(code)
	}
	if !addReaction(m, r.get("name"), s.botUser) {
		return errAnswer("already_reacted")
	}
	s.emitReactionLocked("reaction_added", c, m, s.botUser, r.get("name"))
	return okAnswer(nil)
}

func (s *Server) reactionsRemove(r *request) answer {
	c, m, code := s.reactionTarget(r)
	if code != "" {
		return errAnswer(code)
	}
	if !removeReaction(m, r.get("name"), s.botUser) {
		return errAnswer("no_reaction")
	}
	s.emitReactionLocked("reaction_removed", c, m, s.botUser, r.get("name"))
	return okAnswer(nil)
}

func (s *Server) reactionTarget(r *request) (*Channel, *Message, string) {
	if r.get("name") == "" {
		return nil, nil, "invalid_name"
	}
	c, code := s.botChannel(r, r.get("channel"), false)
	if code != "" {
		return nil, nil, code
	}
	m := s.ws.message(c.ID, r.get("timestamp"))
	if m == nil {
		return nil, nil, "message_not_found"
	}
	return c, m, ""
}

func addReaction(m *Message, name, user string) bool {
	for i := range m.Reactions {
		if m.Reactions[i].Name == name {
			if slices.Contains(m.Reactions[i].Users, user) {
				return false
			}
			m.Reactions[i].Users = append(m.Reactions[i].Users, user)
			return true
		}
	}
	m.Reactions = append(m.Reactions, Reaction{Name: name, Users: []string{user}})
	return true
}

func removeReaction(m *Message, name, user string) bool {
	for i := range m.Reactions {
		if m.Reactions[i].Name != name {
			continue
		}
		j := slices.Index(m.Reactions[i].Users, user)
		if j < 0 {
			return false
		}
		m.Reactions[i].Users = slices.Delete(m.Reactions[i].Users, j, j+1)
		if len(m.Reactions[i].Users) == 0 {
			m.Reactions = slices.Delete(m.Reactions, i, i+1)
		}
		return true
	}
	return false
}
