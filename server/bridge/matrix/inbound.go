package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/emoji"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// handleTransaction hands a transaction's events to the core in order. It
// returns an error (and the status to answer with) when the homeserver
// should send the transaction again; a transaction already handled, here or
// on another node, is acknowledged without doing anything. The events
// handed on are kept as a pending record until they settled (see
// pending.go): once answered 200, the homeserver never sends them again.
func (b *Bridge) handleTransaction(ctx context.Context, txnID string, txn *appservice.Transaction) (int, error) {
	b.txnMu.Lock()
	defer b.txnMu.Unlock()
	sink := b.currentSink()
	if sink == nil {
		return http.StatusServiceUnavailable, errors.New("the Matrix bridge is not running")
	}
	b.notePushedRedactions(txn.Events)
	if b.allOwn(txn.Events) {
		// The homeserver pushing back what the bridge sent: nothing to
		// hand on, so nothing to remember either.
		return http.StatusOK, nil
	}
	mark := transactionMark(txnID, txn.Events)
	seen, err := b.store.Seen(nsTxn, mark)
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("check the transaction: %w", err)
	}
	if seen {
		// Whatever of it has not settled is in a pending record.
		return http.StatusOK, nil
	}
	// Events accepted before a restart go first: a later edit or
	// redaction needs its message there.
	if err := b.catchUpLocked(ctx, sink); err != nil {
		return http.StatusServiceUnavailable, fmt.Errorf("catching up on events accepted before a restart: %w", err)
	}
	if err := b.acceptEvents(ctx, sink, txnID, txn.Events); err != nil {
		b.log.Warn("Matrix transaction failed; the homeserver will send it again", "txn", txnID, "error", err.Error())
		return http.StatusInternalServerError, err
	}
	if _, err := b.store.MarkSeen(nsTxn, mark, txnMemory); err != nil {
		// Safe to fail: events already handed on are deduplicated when the
		// homeserver sends the transaction again.
		return http.StatusInternalServerError, fmt.Errorf("record the transaction: %w", err)
	}
	if len(txn.Events) > 0 {
		b.health.Touch(time.Now())
	}
	return http.StatusOK, nil
}

// allOwn reports whether every event is one the bot or a puppet sent and
// handleEvent skips (a membership change is handled whoever made it).
func (b *Bridge) allOwn(events []*event.Event) bool {
	for _, evt := range events {
		if evt == nil || evt.Type == event.StateMember || evt.Sender != b.bot && !b.ownsUser(evt.Sender) {
			return false
		}
	}
	return len(events) > 0
}

// transactionMark is what marks a transaction as handled: its ID and the
// IDs of the events it carries. The ID alone is not enough: Synapse on
// SQLite numbers transactions from the highest one still unsent, so after a
// restart it gives new events the IDs of transactions already handled. A
// transaction sent again (the answer was lost, another node took it)
// carries the same events, and only that one is skipped. Events handed on
// twice under different marks (a homeserver that batches a resend
// differently) are skipped by the core, which knows what every room has.
func transactionMark(txnID string, events []*event.Event) string {
	h := sha256.New()
	for _, evt := range events {
		if evt != nil {
			h.Write([]byte(evt.ID))
		}
		h.Write([]byte{0})
	}
	return txnID + "|" + hex.EncodeToString(h.Sum(nil))
}

// acceptEvents hands events on in order and keeps those handed on as a
// pending record until they settled. An error means nothing is kept: the
// events must be read again (the ones already handed on are
// deduplicated then).
func (b *Bridge) acceptEvents(ctx context.Context, sink bridge.Sink, source string, events []*event.Event) error {
	acc := b.newAccepted(source)
	for _, evt := range events {
		settle := acc.group.Add()
		// Copied before handling, which rewrites parts of the content.
		raw, err := recordOf(evt)
		handed := false
		if err == nil {
			handed, err = b.handleEvent(ctx, sink, evt, settle)
		}
		switch {
		case err == nil && handed:
			acc.keep(raw)
		case err == nil:
			settle()
		case errors.Is(err, bridge.ErrNotLinked):
			// The bot is in rooms that are not linked (yet): common.
			settle()
		case skippable(err):
			// Refusing the transaction would make the homeserver resend
			// it forever; the rest of it still counts.
			settle()
			b.log.Warn("Skipped a Matrix event", "source", source, "error", err.Error())
		default:
			acc.group.Fail()
			return err
		}
	}
	return acc.persist()
}

// recordOf is evt as a pending record keeps it, when it is of a type the
// bridge may hand on (nil otherwise: nothing else is ever kept).
func recordOf(evt *event.Event) (json.RawMessage, error) {
	if evt == nil {
		return nil, nil
	}
	switch evt.Type {
	case event.EventMessage, event.EventSticker, event.EventReaction, event.EventRedaction:
		raw, err := json.Marshal(evt)
		if err != nil {
			return nil, fmt.Errorf("%w: %s cannot be kept: %v", errBadEvent, evt.ID, err)
		}
		return raw, nil
	}
	return nil, nil
}

// skippable errors concern one event and would fail again: the event is
// skipped.
func skippable(err error) bool {
	return errors.Is(err, errBadEvent) || errors.Is(err, bridge.ErrInvalidEvent) || errors.Is(err, bridge.ErrNotLinked) ||
		refusedForGood(err)
}

// refusedForGood reports whether the homeserver refused a read an event
// needs (the room's power levels) in a way that would not change on a
// retry: the bot is not in the room, or the room is gone. Retrying would
// stall every later event.
func refusedForGood(err error) bool {
	return isStatus(err, http.StatusForbidden, http.StatusNotFound)
}

// handleEvent hands one event to the core with settled as its Settled. It
// reports whether it did: an event it skips (state, the bridge's own) is
// not handed on and never settled by the core; one from a room no channel
// is linked to is refused with bridge.ErrNotLinked.
func (b *Bridge) handleEvent(ctx context.Context, sink bridge.Sink, evt *event.Event, settled func()) (bool, error) {
	if evt == nil || evt.RoomID == "" || evt.ID == "" || evt.Sender == "" || evt.Type.Type == "" {
		return false, fmt.Errorf("%w: missing room_id, event_id, sender or type", errBadEvent)
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) && !errors.Is(err, event.ErrUnsupportedContentType) {
		return false, fmt.Errorf("%w: %s %s: %v", errBadEvent, evt.Type.Type, evt.ID, err)
	}
	if evt.Type == event.StateMember {
		return false, b.handleMember(ctx, evt)
	}
	// Loop prevention by identity: whatever the bot or a puppet did, the
	// bridge did.
	if evt.Sender == b.bot || b.ownsUser(evt.Sender) {
		return false, nil
	}
	if _, err := b.store.ChannelForRoom(bridge.NetworkMatrix, string(evt.RoomID)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("%w: %s", bridge.ErrNotLinked, evt.RoomID)
		}
		return false, err
	}
	ev, err := b.toEvent(ctx, evt)
	if err != nil || ev == nil {
		return false, err
	}
	if evt.Type == event.EventRedaction {
		return b.handRedaction(ctx, sink, evt.ID, *ev, settled)
	}
	ev.Settled = settled
	if err := sink.Receive(ctx, *ev); err != nil {
		return false, err
	}
	return true, nil
}

// handRedaction hands on a redaction unless it was already: redactions
// come both pushed and from the bot's sync (see followRedactions), and
// whichever is first hands it on. It counts as handled once it settled
// (so a restart before that hands it on again from its pending record),
// and while on its way, in this process.
func (b *Bridge) handRedaction(ctx context.Context, sink bridge.Sink, evtID id.EventID, ev bridge.Event, settled func()) (bool, error) {
	b.mu.Lock()
	busy := b.redacting[evtID]
	b.redacting[evtID] = true
	b.mu.Unlock()
	if busy {
		return false, nil
	}
	done := func() {
		b.mu.Lock()
		delete(b.redacting, evtID)
		b.mu.Unlock()
	}
	if seen, err := b.store.Seen(nsRedaction, string(evtID)); err != nil || seen {
		done()
		return false, err
	}
	ev.Settled = func() {
		if _, err := b.store.MarkSeen(nsRedaction, string(evtID), txnMemory); err != nil {
			b.log.Warn("Could not record a Matrix redaction as handed on; it may be handed on again", "event", string(evtID), "error", err.Error())
		}
		done()
		settled()
	}
	if err := sink.Receive(ctx, ev); err != nil {
		done()
		return false, err
	}
	return true, nil
}

// handleMember keeps names and pictures current and accepts invitations to
// the bot, so invite-only rooms can be mapped.
func (b *Bridge) handleMember(ctx context.Context, evt *event.Event) error {
	c, ok := evt.Content.Parsed.(*event.MemberEventContent)
	if !ok || evt.StateKey == nil {
		return fmt.Errorf("%w: member event without content or state key", errBadEvent)
	}
	user := id.UserID(*evt.StateKey)
	key := string(evt.RoomID) + "|" + string(user)
	b.mu.Lock()
	// Only people already looked up (speakers in linked rooms) are kept
	// current, so the cache does not grow with every room the bot sees.
	if _, known := b.profiles[key]; known && c.Membership == event.MembershipJoin {
		b.profiles[key] = profile{Name: c.Displayname, Avatar: c.AvatarURL}
	} else {
		delete(b.profiles, key)
	}
	b.mu.Unlock()
	if user == b.bot && c.Membership == event.MembershipInvite {
		b.answerInvitation(ctx, evt)
	}
	return nil
}

// answerInvitation accepts an invitation to the bot from a user of the
// bridge's own homeserver or of a server the admin allowed
// (MatrixInviteServers), so invite-only rooms can be mapped. Others are
// rejected: anyone anywhere could otherwise pull the bot, and with it the
// puppets of everyone it bridges, into rooms of their choosing.
func (b *Bridge) answerInvitation(ctx context.Context, evt *event.Event) {
	room := evt.RoomID.String()
	if b.mayInvite(evt.Sender) {
		if _, err := b.as.BotIntent().JoinRoomByID(ctx, evt.RoomID); err != nil {
			b.log.Warn("Matrix bot could not accept an invitation", "room", room, "error", err.Error())
		}
		return
	}
	b.log.Info("Matrix bot refused an invitation from a server not in MatrixServerName or MatrixInviteServers", "room", room, "inviter", evt.Sender.String())
	// A linked room stays: an admin put the bot there.
	if _, err := b.store.ChannelForRoom(bridge.NetworkMatrix, room); err == nil {
		return
	}
	// Leaving is how an invitation is rejected.
	if _, err := b.as.BotIntent().LeaveRoom(ctx, evt.RoomID); err != nil {
		b.log.Debug("Matrix bot could not reject an invitation", "room", room, "error", err.Error())
	}
}

// mayInvite reports whether user is on a server whose users may invite
// the bot.
func (b *Bridge) mayInvite(user id.UserID) bool {
	_, server, err := user.Parse()
	if err != nil {
		return false
	}
	// Host names are case-insensitive.
	return strings.EqualFold(server, b.cfg.ServerName) || slices.ContainsFunc(b.cfg.InviteServers, func(s string) bool { return strings.EqualFold(server, s) })
}

// toEvent translates a room event; nil means it is not something the bridge
// carries (state, typing, unknown types).
func (b *Bridge) toEvent(ctx context.Context, evt *event.Event) (*bridge.Event, error) {
	ev := &bridge.Event{
		Kind:   bridge.KindMessage,
		Origin: bridge.Ref{Network: bridge.NetworkMatrix, Room: string(evt.RoomID), ID: string(evt.ID)},
		Time:   time.UnixMilli(evt.Timestamp).UTC(),
	}
	switch evt.Type {
	case event.EventMessage, event.EventSticker:
		c, ok := evt.Content.Parsed.(*event.MessageEventContent)
		if !ok {
			return nil, fmt.Errorf("%w: %s has no message content", errBadEvent, evt.ID)
		}
		ev.Sender = b.sender(ctx, evt.RoomID, evt.Sender)
		if err := b.message(ctx, ev, evt, c); err != nil {
			return nil, err
		}
	case event.EventReaction:
		c, ok := evt.Content.Parsed.(*event.ReactionEventContent)
		if !ok || c.RelatesTo.Type != event.RelAnnotation || c.RelatesTo.EventID == "" || c.RelatesTo.Key == "" {
			return nil, fmt.Errorf("%w: reaction %s without an annotation", errBadEvent, evt.ID)
		}
		ev.Kind, ev.Target, ev.Emoji = bridge.KindReactionAdd, string(c.RelatesTo.EventID), reactionName(c.RelatesTo.Key)
		ev.Sender = b.sender(ctx, evt.RoomID, evt.Sender)
		// A reaction is taken back by redacting it: remember what it was
		// and whose it was.
		if err := b.store.SetAlias(nsReaction, string(evt.ID), ev.Target+"\n"+ev.Emoji+"\n"+string(evt.Sender)); err != nil {
			return nil, err
		}
	case event.EventRedaction:
		redacts := evt.Redacts
		if c, ok := evt.Content.Parsed.(*event.RedactionEventContent); ok && redacts == "" {
			redacts = c.Redacts
		}
		if redacts == "" {
			return nil, fmt.Errorf("%w: redaction %s names no event", errBadEvent, evt.ID)
		}
		ev.Sender = b.sender(ctx, evt.RoomID, evt.Sender)
		ev.Kind, ev.Target = bridge.KindDelete, string(redacts)
		// Any member may send a redaction; the homeserver applies it only
		// from the author or someone with the power to redact others.
		// The router knows the author; the room's power levels say who
		// moderates.
		moderator, err := b.mayRedactOthers(ctx, evt.RoomID, evt.Sender)
		if err != nil {
			return nil, err
		}
		ev.Moderated = moderator
		was, ok, err := b.store.Alias(nsReaction, string(redacts))
		if err != nil {
			return nil, err
		}
		if ok {
			target, rest, _ := strings.Cut(was, "\n")
			key, reactor, _ := strings.Cut(rest, "\n")
			if reactor != "" && id.UserID(reactor) != evt.Sender {
				if !moderator {
					b.log.Debug("Ignoring a Matrix redaction of someone else's reaction", "room", evt.RoomID.String(), "event", evt.ID.String())
					return nil, nil
				}
				ev.Sender = b.sender(ctx, evt.RoomID, id.UserID(reactor))
			}
			ev.Kind, ev.Target, ev.Emoji, ev.Moderated = bridge.KindReactionRemove, target, key, false
		}
	default:
		return nil, nil
	}
	return ev, nil
}

// mayRedactOthers reports whether user's power level in room reaches the
// level for redacting other people's events, read from the homeserver
// now (so a demoted moderator is not trusted from a stale copy).
func (b *Bridge) mayRedactOthers(ctx context.Context, room id.RoomID, user id.UserID) (bool, error) {
	var pl event.PowerLevelsEventContent
	if err := b.as.BotClient().StateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
		return false, fmt.Errorf("reading the power levels of %s: %w", room, err)
	}
	return pl.GetUserLevel(user) >= pl.Redact(), nil
}

func reactionName(key string) string {
	if name, ok := emoji.ToName(key); ok {
		return name
	}
	return key
}

// message fills ev from an m.room.message: edits, replies and threads,
// text and files.
func (b *Bridge) message(ctx context.Context, ev *bridge.Event, evt *event.Event, c *event.MessageEventContent) error {
	if rel := c.RelatesTo; rel != nil {
		switch {
		case rel.Type == event.RelReplace:
			if rel.EventID == "" {
				return fmt.Errorf("%w: edit %s names no event", errBadEvent, evt.ID)
			}
			ev.Kind, ev.Target = bridge.KindEdit, string(rel.EventID)
			if c.NewContent != nil {
				c = c.NewContent
			}
			ev.Text = b.text(ctx, c)
			// An edited emote is still one (Element's edit keeps
			// m.emote): it must keep the shape the emote's post has.
			if c.MsgType == event.MsgEmote {
				ev.Text = emoteText(ev.Sender, ev.Text)
			}
			return nil
		case rel.Type == event.RelThread:
			ev.Parent = string(rel.EventID)
		case rel.InReplyTo != nil:
			ev.Parent = string(rel.InReplyTo.EventID)
		}
		removeReplyFallback(c)
	}
	switch c.MsgType {
	case event.MsgImage, event.MsgFile, event.MsgVideo, event.MsgAudio:
		att, err := b.attachment(c)
		if err != nil {
			return err
		}
		ev.Attachments = []bridge.Attachment{att}
		if c.FileName != "" && c.Body != "" && c.Body != c.FileName {
			ev.Text = b.text(ctx, c) // a caption
		}
	case event.MsgEmote:
		ev.Text = emoteText(ev.Sender, b.text(ctx, c))
	default:
		if evt.Type == event.EventSticker {
			att, err := b.attachment(c)
			if err != nil {
				return err
			}
			ev.Attachments = []bridge.Attachment{att}
			return nil
		}
		ev.Text = b.text(ctx, c)
	}
	if strings.TrimSpace(ev.Text) == "" && len(ev.Attachments) == 0 {
		return fmt.Errorf("%w: %s has neither text nor a file", errBadEvent, evt.ID)
	}
	return nil
}

// emoteText is how an emote reads in Mattermost, which has none: the
// action in italics after its author's name.
func emoteText(sender bridge.Sender, text string) string {
	name := sender.DisplayName
	if name == "" {
		name = sender.Username
	}
	return "*" + name + " " + text + "*"
}

// removeReplyFallback takes out of a reply the quote of what it answers,
// in each form the specs have had until they dropped it (Matrix 1.13): an
// <mx-reply> element leading the HTML, and quoted lines leading the body
// ("> <@user:server> text", "> * <@user:server> emote", ">" alone for a
// blank line), with or without HTML beside it (mautrix trims the body only
// when the HTML had the element, and a plain-text reply has none). Only
// replies lose it: a quote in another message is the person's own.
func removeReplyFallback(c *event.MessageEventContent) {
	if c.RelatesTo.GetReplyTo() == "" {
		return
	}
	if c.Format == event.FormatHTML {
		c.FormattedBody = event.TrimReplyFallbackHTML(c.FormattedBody)
	}
	c.Body = trimReplyFallbackText(c.Body)
}

// trimReplyFallbackText removes the quoted lines leading a reply's body,
// when they start like a fallback and something follows them.
func trimReplyFallbackText(body string) string {
	if !strings.HasPrefix(body, "> <") && !strings.HasPrefix(body, "> * <") {
		return body
	}
	lines := strings.Split(body, "\n")
	i := 0
	for i < len(lines) && (strings.HasPrefix(lines[i], "> ") || lines[i] == ">") {
		i++
	}
	rest := strings.TrimSpace(strings.Join(lines[i:], "\n"))
	if rest == "" {
		return body
	}
	return rest
}

// text renders a message as Mattermost markdown; pills become @mentions of
// the people's Mattermost accounts.
func (b *Bridge) text(ctx context.Context, c *event.MessageEventContent) string {
	if c.Format != event.FormatHTML || c.FormattedBody == "" {
		return c.Body
	}
	parser := *format.MarkdownHTMLParser
	parser.PillConverter = func(displayname, mxid, eventID string, fctx format.Context) string {
		if strings.HasPrefix(mxid, "@") {
			if name := b.mattermostName(id.UserID(mxid)); name != "" {
				return "@" + name
			}
			return displayname
		}
		return format.DefaultPillConverter(displayname, mxid, eventID, fctx)
	}
	return parser.Parse(c.FormattedBody, format.NewContext(ctx))
}

// mattermostName is the Mattermost username a Matrix user appears as:
// puppets are Mattermost users, others their bridged account, if any.
func (b *Bridge) mattermostName(user id.UserID) string {
	if local, ok := b.puppetUsername(user); ok {
		return local
	}
	if u, err := b.store.GetRemoteUser(bridge.NetworkMatrix, string(user)); err == nil && u.Username != "" {
		return u.Username
	}
	return ""
}

// sender describes a Matrix user with their name and picture in the room.
func (b *Bridge) sender(ctx context.Context, room id.RoomID, user id.UserID) bridge.Sender {
	p := b.profile(ctx, room, user)
	local, _, _ := user.Parse()
	s := bridge.Sender{Network: bridge.NetworkMatrix, ID: string(user), Username: local, DisplayName: p.Name}
	if p.Avatar != "" {
		s.AvatarURL, s.AvatarHash = string(p.Avatar), string(p.Avatar)
		s.Avatar = func(ctx context.Context) ([]byte, error) {
			rc, err := b.download(ctx, p.Avatar.ParseOrIgnore(), 5<<20)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return s
}

// profile returns the person's room profile, asking the homeserver the
// first time; member events in later transactions keep it current.
func (b *Bridge) profile(ctx context.Context, room id.RoomID, user id.UserID) profile {
	key := string(room) + "|" + string(user)
	b.mu.Lock()
	p, ok := b.profiles[key]
	b.mu.Unlock()
	if ok {
		return p
	}
	var m event.MemberEventContent
	if err := b.as.BotIntent().StateEvent(ctx, room, event.StateMember, string(user), &m); err != nil {
		b.log.Debug("Could not read a Matrix member's profile", "user", string(user), "error", err.Error())
		return profile{}
	}
	p = profile{Name: m.Displayname, Avatar: m.AvatarURL}
	b.mu.Lock()
	b.profiles[key] = p
	b.mu.Unlock()
	return p
}
