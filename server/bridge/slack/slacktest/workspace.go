package slacktest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Team is the workspace the test server models. Slack team IDs start with
// T, and a workspace is reached at https://<domain>.slack.com/.
type Team struct {
	ID     string
	Name   string
	Domain string
}

// User is a Slack user (a person, or the user a bot acts as). Slack reports
// avatars as profile.image_<size> URLs; the test sets them as it likes.
type User struct {
	ID       string
	Name     string // the handle, "alice"
	RealName string
	Image48  string
	Image72  string
	Image192 string
	IsBot    bool
	BotID    string // set on a bot's user
	Deleted  bool
	Updated  int64 // Unix seconds of the last change, as users.info reports it
}

// Bot is a bot integration: the app's own bot (Server.BotID) or another app's.
type Bot struct {
	ID     string
	Name   string
	AppID  string
	UserID string
	Icon   string // image_48
}

// Channel is a public or private channel. Slack gives both kinds C IDs now
// (old private channels kept G IDs).
type Channel struct {
	ID       string
	Name     string
	Private  bool
	Archived bool
	Members  []string
	Creator  string
	Created  int64
}

// Edited marks a changed message as Slack does: who and when (a ts).
type Edited struct {
	User string
	TS   string
}

// Reaction is one emoji on a message and who put it there, in order.
type Reaction struct {
	Name  string
	Users []string
}

// File is an uploaded file and its bytes, which the server serves back at
// URLPrivate to a request carrying the bot token.
type File struct {
	ID         string
	Name       string
	Title      string
	Mimetype   string
	Filetype   string
	Size       int
	User       string
	Created    int64
	Content    []byte
	AltText    string
	URLPrivate string
	Channels   []string
	uploaded   bool // the bytes arrived at the upload URL
	completed  bool // files.completeUploadExternal (or a user share) finished it
}

// Message is a message as Slack shows it. Inspection methods return copies.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // the parent's ts on replies and on the parent itself once it has replies
	// User is who posted: a person, or the bot user of an app posting with
	// its bot token. Customised bot posts (subtype bot_message) have no User.
	User     string
	BotID    string
	AppID    string
	Username string // chat.postMessage username (needs chat:write.customize)
	IconURL  string // chat.postMessage icon_url (needs chat:write.customize)
	Subtype  string // "", bot_message, me_message, file_share, thread_broadcast
	Text     string
	Blocks   json.RawMessage
	Metadata json.RawMessage // chat.postMessage metadata: {"event_type","event_payload"}
	Edited   *Edited
	// Reactions in the order first added.
	Reactions   []Reaction
	Files       []File
	ClientMsgID string
	deleted     bool
	fileIDs     []string
}

func (m *Message) isReply() bool { return m.ThreadTS != "" && m.ThreadTS != m.TS }

// inHistory tells whether conversations.history lists the message: top-level
// messages and replies broadcast to the channel.
func (m *Message) inHistory() bool {
	return !m.deleted && (!m.isReply() || m.Subtype == "thread_broadcast")
}

// workspace holds the state; Server guards it with its mutex.
type workspace struct {
	team     Team
	users    map[string]*User
	bots     map[string]*Bot
	channels map[string]*Channel
	order    []string // channel IDs in creation order
	messages map[string][]*Message
	files    map[string]*File
	ids      map[byte]int
	lastTS   int64 // microseconds, to keep ts unique and increasing
}

func newWorkspace(team Team) *workspace {
	return &workspace{
		team:     team,
		users:    map[string]*User{},
		bots:     map[string]*Bot{},
		channels: map[string]*Channel{},
		messages: map[string][]*Message{},
		files:    map[string]*File{},
		ids:      map[byte]int{},
	}
}

// newID makes an ID of Slack's shape: a type letter (T, U, B, C, A, F)
// then upper-case letters and digits.
func (w *workspace) newID(prefix byte) string {
	w.ids[prefix]++
	n := strings.ToUpper(strconv.FormatInt(int64(w.ids[prefix]), 36))
	return string(prefix) + strings.Repeat("0", max(0, 9-len(n))) + n
}

// nextTS returns a message timestamp: Unix seconds, a dot and six digits of
// microseconds, unique in the workspace and increasing, like Slack's.
func (w *workspace) nextTS() string {
	now := time.Now().UnixMicro()
	if now <= w.lastTS {
		now = w.lastTS + 1
	}
	w.lastTS = now
	return formatTS(now)
}

func formatTS(micros int64) string {
	return fmt.Sprintf("%d.%06d", micros/1_000_000, micros%1_000_000)
}

// parseTS reads a ts ("1733500000.000100", or whole seconds) as microseconds.
func parseTS(ts string) (int64, bool) {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s < 0 || len(frac) > 6 {
		return 0, false
	}
	var f int64
	if frac != "" {
		f, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil {
			return 0, false
		}
	}
	return s*1_000_000 + f, true
}

func (w *workspace) channel(id string) *Channel {
	if c, ok := w.channels[id]; ok {
		return c
	}
	// chat.postMessage also takes a name ("#general" or "general").
	name := strings.TrimPrefix(id, "#")
	for _, cid := range w.order {
		if c := w.channels[cid]; c.Name == name {
			return c
		}
	}
	return nil
}

func (w *workspace) message(channel, ts string) *Message {
	for _, m := range w.messages[channel] {
		if m.TS == ts && !m.deleted {
			return m
		}
	}
	return nil
}

// replies lists a thread's live replies, oldest first.
func (w *workspace) replies(channel, parentTS string) []*Message {
	var out []*Message
	for _, m := range w.messages[channel] {
		if m.isReply() && m.ThreadTS == parentTS && !m.deleted {
			out = append(out, m)
		}
	}
	return out
}

func (w *workspace) addMessage(m *Message) {
	w.messages[m.Channel] = append(w.messages[m.Channel], m)
	if m.isReply() {
		if parent := w.message(m.Channel, m.ThreadTS); parent != nil {
			parent.ThreadTS = parent.TS
		}
	}
}

func isMember(c *Channel, user string) bool { return slices.Contains(c.Members, user) }

// copyMessage returns a deep copy with the files filled in from the store,
// so a test can hold it while the server changes.
func (w *workspace) copyMessage(m *Message) Message {
	c := *m
	c.Blocks = slices.Clone(m.Blocks)
	c.Metadata = slices.Clone(m.Metadata)
	if m.Edited != nil {
		e := *m.Edited
		c.Edited = &e
	}
	c.Reactions = nil
	for _, r := range m.Reactions {
		c.Reactions = append(c.Reactions, Reaction{Name: r.Name, Users: slices.Clone(r.Users)})
	}
	c.Files = nil
	for _, id := range m.fileIDs {
		if f, ok := w.files[id]; ok {
			fc := *f
			fc.Content = slices.Clone(f.Content)
			fc.Channels = slices.Clone(f.Channels)
			c.Files = append(c.Files, fc)
		}
	}
	c.fileIDs = slices.Clone(m.fileIDs)
	return c
}
