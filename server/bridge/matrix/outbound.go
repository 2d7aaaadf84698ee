package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/emoji"
)

// Deliver acts in d.Room as the sender's puppet.
func (b *Bridge) Deliver(ctx context.Context, d *bridge.Delivery) (string, error) {
	room := id.RoomID(d.Room)
	if d.Kind == bridge.KindDelete && d.Moderate {
		return d.TargetID, b.moderate(ctx, room, id.EventID(d.TargetID))
	}
	intent, err := b.puppet(ctx, room, d.Sender)
	if err != nil {
		return "", classify(err)
	}
	nativeID, err := b.act(ctx, intent, room, d)
	if errors.Is(err, mautrix.MForbidden) {
		// The refusal may be about a puppet the homeserver forgot or
		// that was removed from the room (the bridge's caches still say
		// registered and joined), or a mistake of the homeserver's
		// (Dendrite stopping says "appservice has not registered this
		// user", see classify): register and join it afresh and try once
		// more. Refused again, or refused that, it is for good.
		if rerr := b.refreshPuppet(ctx, intent, room); rerr != nil {
			return "", classify(rerr)
		}
		nativeID, err = b.act(ctx, intent, room, d)
	}
	if err != nil {
		return "", classify(err)
	}
	b.health.Touch(time.Now())
	return nativeID, nil
}

// refreshPuppet registers a puppet and joins it to room without trusting
// what was cached.
func (b *Bridge) refreshPuppet(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID) error {
	if err := intent.Register(ctx); err != nil && !errors.Is(err, mautrix.MUserInUse) {
		return fmt.Errorf("register %s again: %w", intent.UserID, err)
	}
	if err := intent.EnsureJoined(ctx, room, appservice.EnsureJoinedParams{IgnoreCache: true}); err != nil {
		return fmt.Errorf("join %s to %s again: %w", intent.UserID, room, err)
	}
	return nil
}

// act does what d says in room as the puppet.
func (b *Bridge) act(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID, d *bridge.Delivery) (nativeID string, err error) {
	switch d.Kind {
	case bridge.KindMessage:
		nativeID, err = b.sendMessage(ctx, intent, room, d)
	case bridge.KindEdit:
		content := b.render(d.Text, d.Mentions)
		content.SetEdit(id.EventID(d.TargetID))
		nativeID, err = b.send(ctx, intent, room, event.EventMessage, &content, d, 0)
	case bridge.KindDelete:
		nativeID, err = d.TargetID, b.redact(ctx, intent, room, id.EventID(d.TargetID))
	case bridge.KindReactionAdd:
		nativeID, err = b.react(ctx, intent, room, d)
	case bridge.KindReactionRemove:
		nativeID, err = b.unreact(ctx, intent, room, d)
	default:
		err = bridge.Permanentf("matrix: %s is not supported", d.Kind)
	}
	return nativeID, err
}

func (b *Bridge) sendMessage(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID, d *bridge.Delivery) (string, error) {
	var ids []string
	if strings.TrimSpace(d.Text) != "" {
		content := b.render(d.Text, d.Mentions)
		inThread(&content, d.ParentID)
		eventID, err := b.send(ctx, intent, room, event.EventMessage, &content, d, 0)
		if err != nil {
			return "", err
		}
		ids = append(ids, eventID)
	}
	for i, a := range d.Attachments {
		content, err := b.upload(ctx, intent, a)
		if err != nil {
			return "", err
		}
		inThread(content, d.ParentID)
		eventID, err := b.send(ctx, intent, room, event.EventMessage, content, d, i+1)
		if err != nil {
			return "", err
		}
		ids = append(ids, eventID)
	}
	if len(ids) == 0 {
		return "", bridge.Permanentf("matrix: a message with neither text nor files")
	}
	if len(ids) > 1 {
		// One Mattermost post, several events: deleting the post must
		// redact them all.
		if err := b.store.SetAlias(nsExtraPart, ids[0], strings.Join(ids[1:], " ")); err != nil {
			return "", err
		}
	}
	return ids[0], nil
}

// inThread puts a message in the thread rooted at parent. Clients without
// threads see it as a reply to the root.
func inThread(c *event.MessageEventContent, parent string) {
	if parent == "" {
		return
	}
	c.RelatesTo = &event.RelatesTo{
		Type: event.RelThread, EventID: id.EventID(parent),
		IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: id.EventID(parent)},
	}
}

// deliveryKey marks every event the bridge sends with its transaction ID.
const deliveryKey = "com.mattermost.bridge.delivery"

// send sends with a transaction ID derived from the delivery, so a retry
// of a request whose answer was lost does not post twice. Homeservers only
// remember transaction IDs that succeeded, and not across restarts, so
// when an earlier attempt failed, or the delivery is a replay of something
// older than this start, the room is searched for the event first.
func (b *Bridge) send(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID, typ event.Type, content any, d *bridge.Delivery, part int) (string, error) {
	txn := txnID(d, part)
	b.mu.Lock()
	uncertain := b.unsure[txn] || (!d.Time.IsZero() && d.Time.Before(b.started))
	b.mu.Unlock()
	if uncertain {
		eventID, err := b.findDelivered(ctx, intent, room, typ, txn)
		if err != nil {
			return "", err
		}
		if eventID != "" {
			b.settled(txn, true)
			return eventID, nil
		}
	}
	resp, err := intent.SendMessageEvent(ctx, room, typ, &event.Content{Parsed: content, Raw: map[string]any{deliveryKey: txn}},
		mautrix.ReqSendEvent{TransactionID: txn})
	if err != nil {
		b.settled(txn, false)
		return "", err
	}
	b.settled(txn, true)
	return string(resp.EventID), nil
}

func (b *Bridge) settled(txn string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		delete(b.unsure, txn)
	} else {
		b.unsure[txn] = true
	}
}

// findDelivered looks for the event a delivery created among the puppet's
// latest events in the room.
func (b *Bridge) findDelivered(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID, typ event.Type, txn string) (string, error) {
	filter := &mautrix.FilterPart{Senders: []id.UserID{intent.UserID}, Types: []event.Type{typ}}
	resp, err := intent.Messages(ctx, room, "", "", mautrix.DirectionBackward, filter, 100)
	if err != nil {
		return "", fmt.Errorf("look for an earlier attempt in the room: %w", err)
	}
	for _, e := range resp.Chunk {
		if v, _ := e.Content.Raw[deliveryKey].(string); v == txn && e.Sender == intent.UserID {
			return string(e.ID), nil
		}
	}
	return "", nil
}

// txnID names a delivery by what it carries. A message is named by its
// origin alone, never by its time: that is when the bridge saw it, which
// differs between a message seen live and the same one replayed from an
// archive (an XMPP room's has the archive's stamp), and the next holder of
// a cluster must find under the same name what a dead one sent. Edits,
// deletes and reactions keep the time: one person may do the same of them
// twice (add, remove, add the same reaction).
func txnID(d *bridge.Delivery, part int) string {
	at := strconv.FormatInt(d.Time.UnixNano(), 10)
	if d.Kind == bridge.KindMessage {
		at = ""
	}
	h := sha256.New()
	for _, s := range []string{string(d.Kind), d.Origin.Key(), d.Room, d.TargetID, d.Text, d.Emoji, d.Sender.ID, strconv.Itoa(part), at} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "mmb." + hex.EncodeToString(h.Sum(nil)[:16])
}

// render turns Mattermost markdown into a Matrix message; mentions become
// pills of the people's Matrix users.
func (b *Bridge) render(text string, mentions []bridge.Mention) event.MessageEventContent {
	for _, m := range mentions {
		user := b.mentionTarget(m.Person)
		if user == "" || m.Text == "" {
			continue
		}
		name := m.Person.DisplayName
		if name == "" {
			name = m.Person.Username
		}
		text = replaceMention(text, m.Text, format.MarkdownMentionWithName(name, user))
	}
	c := format.RenderMarkdown(text, true, false)
	if c.Mentions == nil {
		c.Mentions = &event.Mentions{}
	}
	return c
}

// mentionTarget is the Matrix user that stands for a mentioned person.
func (b *Bridge) mentionTarget(p bridge.Sender) id.UserID {
	if p.Network == bridge.NetworkMatrix {
		return id.UserID(p.ID)
	}
	if p.Username == "" && p.ID == "" {
		return ""
	}
	return b.puppetID(p)
}

// replaceMention replaces whole-word occurrences of old.
func replaceMention(text, old, repl string) string {
	var out strings.Builder
	for {
		i := strings.Index(strings.ToLower(text), strings.ToLower(old))
		if i < 0 {
			out.WriteString(text)
			return out.String()
		}
		end := i + len(old)
		wordEnd := end >= len(text) || !isWordByte(text[end])
		wordStart := i == 0 || !isWordByte(text[i-1])
		out.WriteString(text[:i])
		if wordStart && wordEnd {
			out.WriteString(repl)
		} else {
			out.WriteString(text[i:end])
		}
		text = text[end:]
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// redact removes an event and the file events delivered with it.
func (b *Bridge) redact(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID, target id.EventID) error {
	extra, _, err := b.store.Alias(nsExtraPart, string(target))
	if err != nil {
		return err
	}
	for _, e := range append([]string{string(target)}, strings.Fields(extra)...) {
		if _, err := intent.RedactEvent(ctx, room, id.EventID(e)); err != nil {
			if errors.Is(err, mautrix.MNotFound) {
				continue
			}
			if errors.Is(err, mautrix.MForbidden) {
				// Not the puppet's own event: the bot may still moderate.
				if _, berr := b.as.BotIntent().RedactEvent(ctx, room, id.EventID(e)); berr == nil {
					continue
				}
			}
			return err
		}
	}
	return nil
}

// moderate redacts someone's own event as the bot, for a Mattermost
// admin's delete; without the power level for it, that is a no_rights drop.
func (b *Bridge) moderate(ctx context.Context, room id.RoomID, target id.EventID) error {
	_, err := b.as.BotIntent().RedactEvent(ctx, room, target)
	switch {
	case err == nil || errors.Is(err, mautrix.MNotFound):
		return nil
	case errors.Is(err, mautrix.MForbidden):
		return bridge.Dropf(bridge.ReasonNoRights, "the bridge's bot may not redact other people's events in %s: raise its power level to the room's redact level", room)
	}
	return classify(err)
}

func reactionKey(emojiName string) string {
	if u, ok := emoji.Unicode(emojiName); ok {
		return u
	}
	return emojiName
}

func (b *Bridge) react(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID, d *bridge.Delivery) (string, error) {
	key := reactionKey(d.Emoji)
	content := &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: id.EventID(d.TargetID), Key: key}}
	eventID, err := b.send(ctx, intent, room, event.EventReaction, content, d, 0)
	if err != nil {
		return "", err
	}
	if err := b.store.SetAlias(nsOwnReact, ownReactionKey(room, d.TargetID, intent.UserID, key), eventID); err != nil {
		return "", err
	}
	return eventID, nil
}

func (b *Bridge) unreact(ctx context.Context, intent *appservice.IntentAPI, room id.RoomID, d *bridge.Delivery) (string, error) {
	key := reactionKey(d.Emoji)
	eventID, ok, err := b.store.Alias(nsOwnReact, ownReactionKey(room, d.TargetID, intent.UserID, key))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", bridge.Dropf(bridge.ReasonUnknownTarget, "matrix: no reaction %s by %s on %s to take back", key, intent.UserID, d.TargetID)
	}
	if err := b.redact(ctx, intent, room, id.EventID(eventID)); err != nil {
		return "", err
	}
	return eventID, nil
}

func ownReactionKey(room id.RoomID, target string, user id.UserID, key string) string {
	return string(room) + "|" + target + "|" + string(user) + "|" + key
}

// classify sorts homeserver errors: rate limits wait the advised time,
// refusals that cannot change are dropped, the rest is retried.
func classify(err error) error {
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.RespError == nil {
		return err
	}
	re := httpErr.RespError
	switch {
	case re.ErrCode == mautrix.MLimitExceeded.ErrCode || re.StatusCode == 429:
		delay := time.Second
		if ms, ok := re.ExtraData["retry_after_ms"].(float64); ok && ms > 0 {
			delay = time.Duration(ms) * time.Millisecond
		}
		return bridge.RetryAfter(err, delay)
	case re.ErrCode == mautrix.MTooLarge.ErrCode:
		return bridge.Drop(bridge.ReasonTooLarge, err)
	case re.ErrCode == mautrix.MForbidden.ErrCode && strings.Contains(re.Err, "has not registered this user"):
		// Dendrite, starting or stopping, failing to look the puppet up:
		// every puppet is in our namespace, so this passes.
		return bridge.RetryAfter(err, time.Second)
	case re.ErrCode == "M_BAD_JSON", re.ErrCode == "M_NOT_JSON", re.ErrCode == "M_INVALID_PARAM", re.ErrCode == mautrix.MForbidden.ErrCode:
		return bridge.Permanent(err)
	}
	return err
}

// ghostSeparator ends the network's name at the start of the localpart of
// another network's person (@mm_xmpp=eve_<hash>). No Mattermost username
// can contain it, and puppets of Mattermost users are made of username
// characters only, so no Mattermost user can be given another network's
// person's puppet, or the other way round. Both kinds still start with
// the registration's prefix.
const ghostSeparator = "="

// maxGhostName bounds the name part of a ghost's localpart; the hash makes
// it unique, the name only helps people reading IDs.
const maxGhostName = 32

var (
	// notUsername is what a (lower-cased) Mattermost username cannot hold.
	notUsername = regexp.MustCompile(`[^a-z0-9._-]+`)
	// notRemoteUsername is the same for shared channels' remote users
	// (bob:partner), whose ":" becomes "+": no local username holds
	// either, so bob:partner and bob_partner stay two people.
	notRemoteUsername = regexp.MustCompile(`[^a-z0-9._:-]+`)
)

// puppetID is the Matrix user that stands for a person from another
// network: @<prefix><username> for Mattermost users; people bridged in from
// a third network get their network's name, ghostSeparator, their name
// and a hash of their ID, since their names are not unique. 64 bits of
// hash keep anyone from choosing an ID that lands on someone else's.
func (b *Bridge) puppetID(s bridge.Sender) id.UserID {
	name := strings.ToLower(s.Username)
	if name == "" {
		name = strings.ToLower(s.ID)
	}
	if s.Network == bridge.NetworkMattermost || s.Network == "" {
		// Not trimmed: "_alice" and "alice" are different people.
		local := strings.ReplaceAll(notRemoteUsername.ReplaceAllString(name, "_"), ":", "+")
		return id.NewUserID(b.cfg.UserPrefix+local, b.cfg.ServerName)
	}
	local := strings.Trim(notUsername.ReplaceAllString(name, "_"), "_")
	if len(local) > maxGhostName {
		local = strings.TrimRight(local[:maxGhostName], "_")
	}
	sum := sha256.Sum256([]byte(string(s.Network) + "\x00" + s.ID))
	return id.NewUserID(b.cfg.UserPrefix+string(s.Network)+ghostSeparator+local+"_"+hex.EncodeToString(sum[:8]), b.cfg.ServerName)
}

// ownsUser reports whether user is one of the bridge's puppets.
func (b *Bridge) ownsUser(user id.UserID) bool {
	local, server, err := user.Parse()
	return err == nil && server == b.cfg.ServerName && strings.HasPrefix(local, b.cfg.UserPrefix)
}

// puppetUsername is the Mattermost username behind a puppet, when the
// puppet stands for a Mattermost user.
func (b *Bridge) puppetUsername(user id.UserID) (string, bool) {
	if !b.ownsUser(user) {
		return "", false
	}
	name, ok, err := b.store.Alias(nsPuppet, string(user))
	return name, ok && err == nil
}

// puppet returns the sender's puppet, registered, with a current profile
// and in the room.
func (b *Bridge) puppet(ctx context.Context, room id.RoomID, s bridge.Sender) (*appservice.IntentAPI, error) {
	user := b.puppetID(s)
	intent := b.as.Intent(user)
	if intent == nil {
		return nil, bridge.Permanentf("matrix: no valid user ID for %q", s.Username)
	}
	if err := intent.EnsureRegistered(ctx); err != nil {
		return nil, err
	}
	if err := b.syncProfile(ctx, intent, s); err != nil {
		return nil, err
	}
	if err := intent.EnsureJoined(ctx, room); err != nil {
		return nil, err
	}
	return intent, nil
}

// syncProfile sets the puppet's name and picture when they changed. What
// was last set is kept in KV so a restart does not upload every picture
// again.
func (b *Bridge) syncProfile(ctx context.Context, intent *appservice.IntentAPI, s bridge.Sender) error {
	want := puppetProfile{Name: s.DisplayName, AvatarHash: s.AvatarHash}
	if want.Name == "" {
		want.Name = s.Username
	}
	b.mu.Lock()
	have, known := b.synced[intent.UserID]
	b.mu.Unlock()
	if known && have == want {
		return nil
	}
	if !known {
		if v, ok, err := b.store.Alias(nsProfile, string(intent.UserID)); err == nil && ok {
			name, hash, _ := strings.Cut(v, "\n")
			have = puppetProfile{Name: name, AvatarHash: hash}
		}
		if s.Network == bridge.NetworkMattermost {
			// Lets pills of this puppet become @mentions of the user.
			if err := b.store.SetAlias(nsPuppet, string(intent.UserID), s.Username); err != nil {
				return err
			}
		}
	}
	if have.Name != want.Name {
		if err := intent.SetDisplayName(ctx, want.Name); err != nil {
			return fmt.Errorf("set the display name of %s: %w", intent.UserID, err)
		}
	}
	if have.AvatarHash != want.AvatarHash && s.Avatar != nil {
		if data, err := s.Avatar(ctx); err == nil && len(data) > 0 {
			up, err := intent.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: data, ContentType: sniff(data), FileName: "avatar"})
			if err != nil {
				return fmt.Errorf("upload the picture of %s: %w", intent.UserID, err)
			}
			if err := intent.SetAvatarURL(ctx, up.ContentURI); err != nil {
				return fmt.Errorf("set the picture of %s: %w", intent.UserID, err)
			}
		} else {
			want.AvatarHash = have.AvatarHash // try again next time
		}
	}
	if have != want {
		if err := b.store.SetAlias(nsProfile, string(intent.UserID), want.Name+"\n"+want.AvatarHash); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.synced[intent.UserID] = want
	b.mu.Unlock()
	return nil
}
