package slacktest

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
)

func (s *Server) authTest(r *request) answer {
	a := okAnswer(answer{
		"url":                   "https://" + s.ws.team.Domain + ".slack.com/",
		"team":                  s.ws.team.Name,
		"team_id":               s.ws.team.ID,
		"is_enterprise_install": false,
	})
	if r.tok.kind == botToken {
		a["user"] = s.ws.users[s.botUser].Name
		a["user_id"] = s.botUser
		a["bot_id"] = s.botID
	}
	return a
}

// readableChannel finds a channel the bot may read: private channels only
// as a member (otherwise they do not exist for it); reading a public
// channel's messages needs membership too (not_in_channel), its info and
// members do not.
func (s *Server) readableChannel(id string, messages bool) (*Channel, string) {
	c := s.ws.channel(id)
	if c == nil || c.Private && !isMember(c, s.botUser) {
		return nil, "channel_not_found"
	}
	if messages && !isMember(c, s.botUser) {
		return nil, "not_in_channel"
	}
	return c, ""
}

func (s *Server) conversationsInfo(r *request) answer {
	c, code := s.readableChannel(r.get("channel"), false)
	if code != "" {
		return errAnswer(code)
	}
	return okAnswer(answer{"channel": s.channelJSON(c, r.flag("include_num_members"))})
}

// window is the oldest/latest/inclusive range of conversations.history and
// conversations.replies. latest defaults to now (no upper bound here, as
// every message is in the past), oldest to 0.
type window struct {
	oldest, latest int64
	inclusive      bool
}

func parseWindow(r *request) (window, bool) {
	w := window{oldest: 0, latest: math.MaxInt64, inclusive: r.flag("inclusive")}
	if v := r.get("oldest"); v != "" {
		t, ok := parseTS(v)
		if !ok {
			return w, false
		}
		w.oldest = t
	}
	if v := r.get("latest"); v != "" {
		t, ok := parseTS(v)
		if !ok {
			return w, false
		}
		w.latest = t
	}
	return w, true
}

func (w window) contains(ts int64) bool {
	if w.inclusive {
		return ts >= w.oldest && ts <= w.latest
	}
	return ts > w.oldest && ts < w.latest
}

// Cursors are opaque to clients; these carry the ts (or offset) to go on from.
func encodeCursor(kind, v string) string {
	return base64.StdEncoding.EncodeToString([]byte(kind + ":" + v))
}

func decodeCursor(cursor, kind string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(cursor)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), kind+":")
}

func parseLimit(r *request, def, maxLimit int) int {
	n, err := strconv.Atoi(r.get("limit"))
	if err != nil || n <= 0 {
		return def
	}
	return min(n, maxLimit)
}

// page cuts msgs (already in the answer's order) at the cursor and limit.
// after says whether a message comes after the cursor's ts in that order.
func (s *Server) page(r *request, msgs []*Message, limit int, after func(m *Message, cursorTS int64) bool) ([]map[string]any, string, string) {
	if c := r.get("cursor"); c != "" {
		v, ok := decodeCursor(c, "next_ts")
		t, ok2 := parseTS(v)
		if !ok || !ok2 {
			return nil, "", "invalid_cursor"
		}
		msgs = slices.DeleteFunc(msgs, func(m *Message) bool { return !after(m, t) })
	}
	next := ""
	if len(msgs) > limit {
		msgs = msgs[:limit]
		next = encodeCursor("next_ts", msgs[limit-1].TS)
	}
	out := make([]map[string]any, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, s.messageJSON(m, r.flag("include_all_metadata")))
	}
	return out, next, ""
}

func tsOf(m *Message) int64 {
	t, _ := parseTS(m.TS)
	return t
}

// conversationsHistory lists a channel's top-level messages, newest first,
// as the reference describes (limit default 100, at most 999).
func (s *Server) conversationsHistory(r *request) answer {
	c, code := s.readableChannel(r.get("channel"), true)
	if code != "" {
		return errAnswer(code)
	}
	w, ok := parseWindow(r)
	if !ok {
		return errAnswer("invalid_ts_latest")
	}
	var msgs []*Message
	for _, m := range slices.Backward(s.ws.messages[c.ID]) {
		if m.inHistory() && w.contains(tsOf(m)) {
			msgs = append(msgs, m)
		}
	}
	out, next, code := s.page(r, msgs, parseLimit(r, 100, 999), func(m *Message, t int64) bool { return tsOf(m) < t })
	if code != "" {
		return errAnswer(code)
	}
	return okAnswer(answer{
		"messages": out, "has_more": next != "", "pin_count": 0,
		"response_metadata": map[string]any{"next_cursor": next},
	})
}

// conversationsReplies lists a thread: the parent, then its replies,
// oldest first (limit default 1000). A message without replies is a
// thread of one.
func (s *Server) conversationsReplies(r *request) answer {
	c, code := s.readableChannel(r.get("channel"), true)
	if code != "" {
		return errAnswer(code)
	}
	if r.get("ts") == "" {
		return errAnswer("invalid_arguments")
	}
	parent := s.ws.message(c.ID, r.get("ts"))
	if parent == nil {
		return errAnswer("thread_not_found")
	}
	if parent.isReply() {
		parent = s.ws.message(c.ID, parent.ThreadTS)
		if parent == nil {
			return errAnswer("thread_not_found")
		}
	}
	w, ok := parseWindow(r)
	if !ok {
		return errAnswer("invalid_ts_latest")
	}
	var msgs []*Message
	for _, m := range append([]*Message{parent}, s.ws.replies(c.ID, parent.TS)...) {
		if m == parent || w.contains(tsOf(m)) {
			msgs = append(msgs, m)
		}
	}
	out, next, code := s.page(r, msgs, parseLimit(r, 1000, 1000), func(m *Message, t int64) bool { return tsOf(m) > t })
	if code != "" {
		return errAnswer(code)
	}
	return okAnswer(answer{"messages": out, "has_more": next != "", "response_metadata": map[string]any{"next_cursor": next}})
}

func (s *Server) conversationsMembers(r *request) answer {
	c, code := s.readableChannel(r.get("channel"), false)
	if code != "" {
		return errAnswer(code)
	}
	start := 0
	if cur := r.get("cursor"); cur != "" {
		v, ok := decodeCursor(cur, "offset")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 || n > len(c.Members) {
			return errAnswer("invalid_cursor")
		}
		start = n
	}
	end := min(len(c.Members), start+parseLimit(r, 100, 1000))
	next := ""
	if end < len(c.Members) {
		next = encodeCursor("offset", strconv.Itoa(end))
	}
	return okAnswer(answer{"members": slices.Clone(c.Members[start:end]), "response_metadata": map[string]any{"next_cursor": next}})
}

func (s *Server) usersInfo(r *request) answer {
	u := s.ws.users[r.get("user")]
	if u == nil {
		return errAnswer("user_not_found")
	}
	return okAnswer(answer{"user": s.userJSON(u)})
}

func (s *Server) botsInfo(r *request) answer {
	b := s.ws.bots[r.get("bot")]
	if b == nil {
		return errAnswer("bot_not_found")
	}
	return okAnswer(answer{"bot": map[string]any{
		"id": b.ID, "deleted": false, "name": b.Name, "updated": 0,
		"app_id": b.AppID, "user_id": b.UserID,
		"icons": map[string]any{"image_36": b.Icon, "image_48": b.Icon, "image_72": b.Icon},
	}})
}
