package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack/socketmode"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/slackext/emoji"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/slackext/mrkdwn"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// callback is the events_api payload: one event and its delivery details.
type callback struct {
	Type     string          `json:"type"`
	TeamID   string          `json:"team_id"`
	APIAppID string          `json:"api_app_id"`
	EventID  string          `json:"event_id"`
	Event    json.RawMessage `json:"event"`
}

// message is a message as events and history carry it, with only the
// fields the bridge reads.
type message struct {
	Type       string      `json:"type"`
	Subtype    string      `json:"subtype"`
	Channel    string      `json:"channel"`
	User       string      `json:"user"`
	BotID      string      `json:"bot_id"`
	AppID      string      `json:"app_id"`
	Username   string      `json:"username"`
	Text       string      `json:"text"`
	TS         string      `json:"ts"`
	ThreadTS   string      `json:"thread_ts"`
	DeletedTS  string      `json:"deleted_ts"`
	ReplyCount int         `json:"reply_count"`
	BotProfile *botProfile `json:"bot_profile"`
	Files      []file      `json:"files"`
	Message    *message    `json:"message"`
	Previous   *message    `json:"previous_message"`
	Edited     *edited     `json:"edited"`
}

// edited says who last edited a message, and when: the ts of that edit,
// which its message_changed event carries as well.
type edited struct {
	User string `json:"user"`
	TS   string `json:"ts"`
}

// editedAt is when message m was edited as its message_changed event
// (of ts eventTS) or the history (see missed) tells: the same ts both ways.
func editedAt(m *message, eventTS string) string {
	if m.Edited != nil && validTS(m.Edited.TS) {
		return m.Edited.TS
	}
	return eventTS
}

type botProfile struct {
	ID    string `json:"id"`
	AppID string `json:"app_id"`
	Name  string `json:"name"`
}

type file struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	Title              string `json:"title"`
	Mimetype           string `json:"mimetype"`
	Size               int64  `json:"size"`
	URLPrivateDownload string `json:"url_private_download"`
	URLPrivate         string `json:"url_private"`
}

type reactionEvent struct {
	Type     string `json:"type"`
	User     string `json:"user"`
	Reaction string `json:"reaction"`
	Item     struct {
		Type    string `json:"type"`
		Channel string `json:"channel"`
		TS      string `json:"ts"`
	} `json:"item"`
	EventTS string `json:"event_ts"`
}

// errMalformed marks an event the bridge cannot read: it is acknowledged
// and counted, never retried.
var errMalformed = errors.New("malformed Slack event")

// handleEnvelope hands an envelope's event to the core. It reports
// whether to acknowledge: yes once the event was accepted, skipped as
// not for the bridge, or found unreadable; no when the bridge is stopping
// (Slack then sends it again).
func (b *Bridge) handleEnvelope(ctx context.Context, req socketmode.Request) bool {
	var cb callback
	if err := json.Unmarshal(req.Payload, &cb); err != nil || cb.Type != "event_callback" || len(cb.Event) == 0 {
		b.malformed.Add(1)
		b.log.Warn("Ignoring a malformed Slack event envelope", "retry_attempt", req.RetryAttempt)
		return true
	}
	me := b.identity()
	if cb.TeamID != "" && cb.TeamID != me.teamID {
		b.log.Warn("Ignoring a Slack event from another workspace", "team", cleanCode(cb.TeamID))
		return true
	}
	if cb.EventID != "" && b.seen(nsEvent, cb.EventID) {
		return true // a redelivery of what was handed on already
	}
	for attempt := 0; ; attempt++ {
		err := b.handleEvent(ctx, cb.Event)
		switch {
		case err == nil:
			if cb.EventID != "" {
				b.markSeen(nsEvent, cb.EventID)
			}
			if b.testHookAfterReceive != nil {
				b.testHookAfterReceive()
			}
			b.health.Touch(time.Now())
			return true
		case errors.Is(err, errMalformed) || errors.Is(err, bridge.ErrInvalidEvent):
			b.malformed.Add(1)
			b.log.Warn("Ignoring a Slack event the bridge cannot read", "error", err.Error())
			return true
		case errors.Is(err, bridge.ErrNotLinked):
			return true
		case ctx.Err() != nil:
			return false
		}
		// The core could not take it now (a full queue, the store): the
		// envelope stays unacknowledged while the bridge tries again.
		b.log.Warn("Could not hand on a Slack event; retrying", "error", err.Error(), "attempt", attempt+1)
		if !sleep(ctx, backoff(min(attempt, 4))) {
			return false
		}
	}
}

func (b *Bridge) handleEvent(ctx context.Context, raw json.RawMessage) error {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return errMalformed
	}
	switch head.Type {
	case "message":
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("%w: %v", errMalformed, err)
		}
		// A portal that failed to open is tried again here; once open, it
		// has this message from the history.
		b.portalAtMessage(ctx, m.Channel)
		return b.onMessage(ctx, &m)
	case "reaction_added", "reaction_removed":
		var r reactionEvent
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("%w: %v", errMalformed, err)
		}
		return b.onReaction(ctx, &r)
	case "channel_archive", "group_archive":
		return b.onArchive(raw, true)
	case "channel_unarchive", "group_unarchive":
		return b.onArchive(raw, false)
	case "member_joined_channel":
		var j memberJoined
		if err := json.Unmarshal(raw, &j); err != nil {
			return fmt.Errorf("%w: %v", errMalformed, err)
		}
		return b.onMemberJoined(ctx, &j)
	case "user_change":
		var u struct {
			User json.RawMessage `json:"user"`
		}
		if err := json.Unmarshal(raw, &u); err != nil {
			return fmt.Errorf("%w: %v", errMalformed, err)
		}
		b.userChanged(u.User)
		return nil
	}
	return nil
}

// own reports whether a message is one the bridge posted: by its bot, or
// by its app (a bot message posted under a Mattermost author's name).
func (b *Bridge) own(m *message) bool {
	me := b.identity()
	switch {
	case m.BotID != "" && m.BotID == me.botID:
		return true
	case m.User != "" && m.User == me.userID:
		return true
	case me.appID != "" && m.AppID == me.appID:
		return true
	case me.appID != "" && m.BotProfile != nil && m.BotProfile.AppID == me.appID:
		return true
	}
	return false
}

// linkOf returns the Mattermost channel a Slack channel is linked to,
// or an error wrapping bridge.ErrNotLinked.
func (b *Bridge) linkOf(channel string) (string, error) {
	if channel == "" {
		return "", errMalformed
	}
	linkID, err := b.store.ChannelForRoom(bridge.NetworkSlack, channel)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %s", bridge.ErrNotLinked, channel)
	}
	return linkID, err
}

func (b *Bridge) onMessage(ctx context.Context, m *message) error {
	switch m.Subtype {
	case "", "thread_broadcast", "me_message", "file_share", "bot_message":
		return b.onNewMessage(ctx, m, "")
	case "message_changed":
		return b.onEdit(ctx, m)
	case "message_deleted":
		return b.onDelete(ctx, m)
	}
	// Joins, topic changes and the like are Slack's own notices.
	return nil
}

// onNewMessage hands on a new message. linkID may be given by a caller
// that looked it up already.
func (b *Bridge) onNewMessage(ctx context.Context, m *message, linkID string) error {
	if b.own(m) {
		return nil
	}
	if !validTS(m.TS) || (m.ThreadTS != "" && !validTS(m.ThreadTS)) {
		return fmt.Errorf("%w: message without a valid ts", errMalformed)
	}
	if linkID == "" {
		var err error
		if linkID, err = b.linkOf(m.Channel); err != nil {
			return err
		}
	}
	key := m.Channel + "|" + m.TS
	if b.seen(nsMessage, key) {
		return nil
	}
	ev, err := b.messageEvent(ctx, m)
	if err != nil || ev == nil {
		return err
	}
	mark := b.beginMark(linkID, m.Channel, m.TS)
	ev.Settled = mark.Settle
	if err := b.receive(ctx, *ev); err != nil {
		mark.Abandon()
		return err
	}
	b.markSeen(nsMessage, key)
	return nil
}

// messageEvent builds the event for a new message; nil when there is
// nothing to carry (an empty message of a kind the bridge cannot show).
func (b *Bridge) messageEvent(ctx context.Context, m *message) (*bridge.Event, error) {
	sender := b.senderOf(ctx, m)
	text, mentions := b.text(ctx, m.Text)
	if m.Subtype == "me_message" {
		text = emoteText(sender, text)
	}
	atts := b.attachments(m.Files)
	if text == "" && len(atts) == 0 {
		return nil, nil
	}
	ev := &bridge.Event{
		Kind:        bridge.KindMessage,
		Origin:      bridge.Ref{Network: bridge.NetworkSlack, Room: m.Channel, ID: m.TS},
		Sender:      sender,
		Text:        text,
		Mentions:    mentions,
		Attachments: atts,
		Time:        tsTime(m.TS),
	}
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		ev.Parent = m.ThreadTS
	}
	return ev, nil
}

// emoteText is how a /me message reads in Mattermost, which has none:
// the action in italics after its author's name.
func emoteText(sender bridge.Sender, text string) string {
	name := sender.DisplayName
	if name == "" {
		name = sender.Username
	}
	return "*" + name + " " + text + "*"
}

func (b *Bridge) onEdit(ctx context.Context, m *message) error {
	n := m.Message
	if n == nil || !validTS(n.TS) || !validTS(m.TS) {
		return fmt.Errorf("%w: message_changed without the message", errMalformed)
	}
	if b.own(n) {
		return nil
	}
	if m.Previous != nil && m.Previous.Text == n.Text {
		// Slack also sends message_changed for unfurls and reply counts.
		return nil
	}
	if _, err := b.linkOf(m.Channel); err != nil {
		return err
	}
	// A message's edits are handed on in the order they were made, each
	// once: the catch-up reads only the last edit from the history, and
	// the events of that edit and of earlier ones may come after it.
	key, at := m.Channel+"|"+n.TS, editedAt(n, m.TS)
	if last, ok, err := b.store.Alias(nsEdit, key); err != nil {
		return err
	} else if ok && validTS(last) && !tsLess(last, at) {
		return nil
	}
	n.Channel = m.Channel
	text, mentions := b.text(ctx, n.Text)
	sender := b.senderOf(ctx, n)
	if n.Subtype == "me_message" {
		text = emoteText(sender, text)
	}
	if text == "" {
		return nil
	}
	ev := bridge.Event{
		Kind:     bridge.KindEdit,
		Origin:   bridge.Ref{Network: bridge.NetworkSlack, Room: m.Channel, ID: m.TS},
		Target:   n.TS,
		Sender:   sender,
		Text:     text,
		Mentions: mentions,
		Time:     tsTime(m.TS),
	}
	if n.ThreadTS != "" && n.ThreadTS != n.TS {
		ev.Parent = n.ThreadTS
	}
	if err := b.receive(ctx, ev); err != nil {
		return err
	}
	if err := b.store.SetAlias(nsEdit, key, at); err != nil {
		// At worst the same text is put in again.
		b.log.Warn("Could not record a handled Slack edit", "error", err.Error())
	}
	return nil
}

func (b *Bridge) onDelete(ctx context.Context, m *message) error {
	if !validTS(m.DeletedTS) {
		return fmt.Errorf("%w: message_deleted without deleted_ts", errMalformed)
	}
	prev := m.Previous
	if prev == nil {
		prev = &message{}
	}
	if b.own(prev) {
		return nil
	}
	if _, err := b.linkOf(m.Channel); err != nil {
		return err
	}
	// Slack does not say who deleted; its clients let only the author
	// (or an admin) do it, so the author stands for it.
	return b.receive(ctx, bridge.Event{
		Kind:   bridge.KindDelete,
		Origin: bridge.Ref{Network: bridge.NetworkSlack, Room: m.Channel, ID: m.TS},
		Target: m.DeletedTS,
		Sender: b.senderOf(ctx, prev),
		Time:   tsTime(m.TS),
	})
}

func (b *Bridge) onReaction(ctx context.Context, r *reactionEvent) error {
	if r.Item.Type != "message" {
		return nil // reactions to files and comments have no message
	}
	if r.User == "" || r.Reaction == "" || !validTS(r.Item.TS) {
		return fmt.Errorf("%w: reaction without user, name or message", errMalformed)
	}
	if r.User == b.identity().userID {
		return nil // the bridge's own reaction for a Mattermost person
	}
	if _, err := b.linkOf(r.Item.Channel); err != nil {
		return err
	}
	kind := bridge.KindReactionAdd
	if r.Type == "reaction_removed" {
		kind = bridge.KindReactionRemove
	}
	return b.receive(ctx, bridge.Event{
		Kind:   kind,
		Origin: bridge.Ref{Network: bridge.NetworkSlack, Room: r.Item.Channel},
		Target: r.Item.TS,
		Sender: b.person(ctx, r.User),
		Emoji:  emoji.ToMattermost(r.Reaction),
		Time:   tsTime(r.EventTS),
	})
}

func (b *Bridge) receive(ctx context.Context, ev bridge.Event) error {
	b.mu.Lock()
	sink := b.sink
	b.mu.Unlock()
	if sink == nil {
		return errors.New("slack: not started")
	}
	return sink.Receive(ctx, ev)
}

// text converts mrkdwn, naming the people and channels it refers to.
func (b *Bridge) text(ctx context.Context, s string) (string, []bridge.Mention) {
	if s == "" {
		return "", nil
	}
	md, ids := mrkdwn.ToMarkdown(s, resolver{b: b, ctx: ctx})
	var mentions []bridge.Mention
	for _, id := range ids {
		p := b.person(ctx, id)
		mentions = append(mentions, bridge.Mention{Text: mrkdwn.MentionText(p.Username), Person: p})
	}
	return md, mentions
}

type resolver struct {
	b   *Bridge
	ctx context.Context
}

func (r resolver) UserName(id string) string    { return r.b.person(r.ctx, id).Username }
func (r resolver) ChannelName(id string) string { return r.b.channelName(r.ctx, id) }

// seen reports whether id was handed on (in memory, then the store). A
// store failure counts as unseen: the core drops a duplicate message.
func (b *Bridge) seen(ns, id string) bool {
	if b.recent.has(ns + "|" + id) {
		return true
	}
	ok, err := b.store.Seen(ns, id)
	if err != nil {
		b.log.Warn("Could not check whether a Slack event was handled", "error", err.Error())
		return false
	}
	if ok {
		b.recent.add(ns + "|" + id)
	}
	return ok
}

func (b *Bridge) markSeen(ns, id string) {
	b.recent.add(ns + "|" + id)
	if _, err := b.store.MarkSeen(ns, id, seenTTL); err != nil {
		b.log.Warn("Could not record a handled Slack event", "error", err.Error())
	}
}

// recentSet is a bounded set that forgets its oldest entries.
type recentSet struct {
	mu    sync.Mutex
	max   int
	order []string
	set   map[string]bool
}

func newRecentSet(n int) *recentSet { return &recentSet{max: n, set: map[string]bool{}} }

func (r *recentSet) has(k string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set[k]
}

func (r *recentSet) add(k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set[k] {
		return
	}
	r.set[k] = true
	r.order = append(r.order, k)
	if len(r.order) > r.max {
		delete(r.set, r.order[0])
		r.order = r.order[1:]
	}
}
