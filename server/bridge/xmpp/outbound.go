package xmpp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/emoji"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/correction"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/fallback"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/reactions"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/reply"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/retract"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/stanzaid"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/styling"
)

// reflectionWait bounds how long a delivery waits for the room to echo a
// message back with the ID it assigned.
const reflectionWait = 10 * time.Second

func myReactionNS(room string) string { return "xmpp-myreactions|" + room }

// Deliver sends an event into a room, as the sender's ghost in component
// mode and as the bridge account with the sender's name in front otherwise.
func (b *Bridge) Deliver(ctx context.Context, d *bridge.Delivery) (_ string, err error) {
	roomJID, err := jid.Parse(d.Room)
	if err != nil || roomJID.Localpart() == "" {
		return "", bridge.Permanentf("%q is not a room JID", d.Room)
	}
	roomJID = roomJID.Bare()
	s, err := b.currentSession(ctx)
	if err != nil {
		return "", err
	}
	if jerr := b.join(ctx, s, roomJID); jerr != nil {
		return "", jerr
	}
	if d.Kind == bridge.KindDelete && d.Moderate {
		// Someone's own message here, removed by a Mattermost admin: only a
		// room moderator can, and the bridge's account is the one to ask.
		return d.TargetID, b.moderate(ctx, s, roomJID, d.TargetID)
	}
	bot := s
	s, from, prefix, release, err := b.speaker(ctx, s, roomJID, d.Sender)
	if err != nil {
		return "", err
	}
	defer release()
	room := roomJID.String()
	msg := stanza.Message{To: roomJID, From: from, Type: stanza.GroupChatMessage, ID: deliveryID(d)}
	nick, occupantID := b.speakingAs(roomJID, d.Sender.ID, prefix != "")
	fresh := b.firstAttempt(msg.ID, d.Time)
	defer func() {
		if err == nil {
			b.finished(msg.ID)
		}
	}()
	// send sends an edit, retraction or reaction once (see unsure.go);
	// sent again they change nothing but show twice in some clients.
	send := func(payload xml.TokenReader) (string, error) {
		if m, err := b.alreadySent(ctx, bot, msg, nick, occupantID, fresh); err != nil || m != nil {
			return d.TargetID, err
		}
		return d.TargetID, s.Send(ctx, msg.Wrap(payload))
	}

	switch d.Kind {
	case bridge.KindMessage:
		body := styling.FromMarkdown(b.writeMentions(roomJID, d.Text, d.Mentions))
		urls, notes, uerr := b.uploadAll(ctx, s, d.Attachments)
		if uerr != nil {
			return "", uerr
		}
		// Clients without out-of-band support show the links in the body.
		body = strings.TrimSpace(strings.Join(append(append([]string{body}, urls...), notes...), "\n"))
		return b.sendMessage(ctx, s, bot, msg, prefix+body, d.ParentID, nick, occupantID, fresh, oobPayload(urls)...)
	case bridge.KindEdit:
		origin := d.TargetID
		if v, ok, aerr := b.store.Alias(stanzaNS(room), d.TargetID); aerr == nil && ok {
			origin = v
		}
		return send(xmlstream.MultiReader(bodyXML(prefix+styling.FromMarkdown(b.writeMentions(roomJID, d.Text, d.Mentions))), emptyElement(correction.NS, "replace", xml.Attr{Name: xml.Name{Local: "id"}, Value: origin})))
	case bridge.KindDelete:
		origin := d.TargetID
		if v, ok, aerr := b.store.Alias(stanzaNS(room), d.TargetID); aerr == nil && ok {
			origin = v
		}
		return send(xmlstream.MultiReader(
			emptyElement(retract.NS, "retract", xml.Attr{Name: xml.Name{Local: "id"}, Value: d.TargetID}),
			// XEP-0424 before 0.4 is all that slixmpp 1.8 and the clients
			// built on it read; that form names the message by its
			// origin-id, as corrections do.
			retract.Retract{ID: origin}.LegacyTokenReader(),
			emptyElement(fallback.NS, "fallback", xml.Attr{Name: xml.Name{Local: "for"}, Value: retract.NS}),
			bodyXML(prefix+"retracted a message."),
		))
	case bridge.KindReactionAdd, bridge.KindReactionRemove:
		set, rerr := b.updateMyReactions(room, d)
		if rerr != nil {
			return "", rerr
		}
		var inner []xml.TokenReader
		for _, r := range set {
			inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(r)), xml.StartElement{Name: xml.Name{Local: "reaction"}}))
		}
		// The store hint makes the room archive it (a message without a
		// body is not archived otherwise), so a catch-up sees it too.
		return send(xmlstream.MultiReader(xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{
			Name: xml.Name{Space: reactions.NS, Local: "reactions"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: d.TargetID}},
		}), emptyElement(nsHints, "store")))
	}
	return "", bridge.Permanentf("the XMPP bridge cannot send %q events", d.Kind)
}

// sendMessage sends a new message and waits for the room to reflect it, to
// learn the ID the room gave it (the native ID others refer to). A message
// that may already be out (not fresh: see firstAttempt) is looked for
// first, on the bridge's session bot (see unsure.go); nick and occupantID
// are who the bridge speaks as.
func (b *Bridge) sendMessage(ctx context.Context, s, bot *xmpp.Session, msg stanza.Message, body, parentID, nick, occupantID string, fresh bool, extra ...xml.TokenReader) (string, error) {
	if strings.TrimSpace(body) == "" {
		return "", bridge.Permanentf("empty message")
	}
	payload := []xml.TokenReader{bodyXML(body), emptyElement(stanzaid.NS, "origin-id", xml.Attr{Name: xml.Name{Local: "id"}, Value: msg.ID})}
	payload = append(payload, extra...)
	if parentID != "" {
		payload = append(payload, emptyElement(reply.NS, "reply", xml.Attr{Name: xml.Name{Local: "id"}, Value: parentID}))
	}
	room := msg.To.String()
	if !fresh {
		if id, ok, err := b.store.Alias(originNS(room), msg.ID); err == nil && ok {
			// An earlier attempt reached the room and its echo or a
			// catch-up saw it there. Sending again would double it.
			return id, nil
		}
	}
	if m, err := b.alreadySent(ctx, bot, msg, nick, occupantID, fresh); err != nil {
		return "", err
	} else if m != nil {
		return m.StanzaID(msg.To), nil
	}
	wait := make(chan string, 1)
	b.mu.Lock()
	b.reflections[msg.ID] = wait
	dropped := b.dropped
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.reflections, msg.ID)
		b.mu.Unlock()
	}()
	if err := s.Send(ctx, msg.Wrap(xmlstream.MultiReader(payload...))); err != nil {
		return "", err
	}
	timer := time.NewTimer(reflectionWait)
	defer timer.Stop()
	select {
	case id := <-wait:
		if strings.HasPrefix(id, "error:") {
			return "", bridge.Permanentf("the room refused the message: %s", strings.TrimPrefix(id, "error:"))
		}
		if id == "" {
			id = msg.ID // the room assigns no IDs; the sender's is all there is
		}
		return id, nil
	case <-dropped:
		// The session dropped before the echo: whether the room got it is
		// unknown. The retry after the reconnect looks for it in the
		// archive first (same ID, see above).
		return "", errors.New("the XMPP connection dropped while sending")
	case <-timer.C:
		// Sent, but no echo: the message is out, so it must not be sent
		// again; refer to it by our own ID.
		return msg.ID, nil
	case <-ctx.Done():
		return msg.ID, nil
	}
}

// resolveReflection reports whether m is our own message coming back, and
// hands its room-assigned ID to the delivery waiting for it.
func (b *Bridge) resolveReflection(m *inMsg) bool {
	b.mu.Lock()
	wait, ok := b.reflections[m.senderID()]
	b.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case wait <- m.StanzaID(m.From.Bare()):
	default:
	}
	return true
}

// failReflection wakes a delivery whose message the room bounced. Only a
// room the bridge is in can bounce it; anyone else could send an error
// with the same ID.
func (b *Bridge) failReflection(m *inMsg) {
	if !b.inRoom(m.From) {
		return
	}
	b.mu.Lock()
	wait, ok := b.reflections[m.ID]
	b.mu.Unlock()
	if ok {
		select {
		case wait <- "error:" + m.ErrorText:
		default:
		}
	}
}

// inRoom reports whether from is a room the bridge is in, or one of its
// occupants.
func (b *Bridge) inRoom(from jid.JID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.rooms[from.Bare().String()]
	return ok
}

// speaker returns how a Mattermost user's message is sent: the session to
// send on, the from address and a prefix for the body. In component mode the
// user is a ghost under the component's domain; in client mode a ghost
// account of their own when registration works, else the bridge account
// with "<name> " in front.
func (b *Bridge) speaker(ctx context.Context, s *xmpp.Session, roomJID jid.JID, sender bridge.Sender) (_ *xmpp.Session, from jid.JID, prefix string, release func(), _ error) {
	name := sender.DisplayName
	if name == "" {
		name = sender.Username
	}
	noRelease := func() {}
	switch {
	case b.cfg.Mode == ModeComponent:
		ghost, err := b.ghostJID(sender)
		if err != nil {
			return nil, jid.JID{}, "", nil, err
		}
		if jerr := b.joinGhost(ctx, s, roomJID, sender, ghost, name); jerr != nil {
			return nil, jid.JID{}, "", nil, jerr
		}
		return s, ghost, "", noRelease, nil
	case b.ghostsEnabled() && sender.Network == bridge.NetworkMattermost:
		// Accounts are registered for Mattermost people only; someone from
		// a third network speaks through the bridge's account.
		g, release, err := b.clientGhostFor(ctx, sender)
		if err == nil {
			if jerr := b.joinGhost(ctx, g.session, roomJID, sender, jid.JID{}, name); jerr != nil {
				release()
				return nil, jid.JID{}, "", nil, jerr
			}
			return g.session, jid.JID{}, "", release, nil
		}
		switch {
		case errors.Is(err, ErrRegistrationRefused):
			// Already logged and counted where it was refused.
		case errors.Is(err, errGhostLogin):
			b.log.Warn("A ghost cannot log in; sending as the bridge account", "user_id", sender.ID, "error", err.Error())
		default:
			return nil, jid.JID{}, "", nil, err
		}
		b.ghostPool.mu.Lock()
		b.ghostPool.fallbacks++
		b.ghostPool.mu.Unlock()
	}
	return s, jid.JID{}, "<" + name + "> ", noRelease, nil
}

// ghostJID is a Mattermost user's address under the component's domain.
func (b *Bridge) ghostJID(sender bridge.Sender) (jid.JID, error) {
	local := strings.ToLower(sender.Username)
	if local == "" {
		local = sender.ID
	}
	j, err := jid.New(local, b.cfg.ComponentDomain.Domainpart(), "mattermost")
	if err != nil {
		j, err = jid.New(sender.ID, b.cfg.ComponentDomain.Domainpart(), "mattermost")
	}
	if err != nil {
		return jid.JID{}, bridge.Permanentf("no valid ghost address for %q: %v", sender.Username, err)
	}
	return j, nil
}

// joinGhost puts a ghost in a room once per session, with the user's
// display name as nick, made unique in the room.
func (b *Bridge) joinGhost(ctx context.Context, s *xmpp.Session, roomJID jid.JID, sender bridge.Sender, ghost jid.JID, name string) error {
	userID := sender.ID
	r := b.roomState(roomJID)
	b.mu.Lock()
	_, joined := r.ghosts[userID]
	b.mu.Unlock()
	if joined {
		return nil
	}
	g := &room{jid: roomJID}
	g.reset()
	for attempt := 0; attempt < 5; attempt++ {
		nick := name
		if attempt > 0 {
			nick = fmt.Sprintf("%s (%d)", name, attempt+1)
		}
		// The presence handler looks rooms up by JID, so the ghost's join
		// is tracked on a private copy swapped in for the attempt.
		err := b.withGhostJoin(ctx, s, r, g, ghost, nick)
		if err == nil {
			b.mu.Lock()
			r.ghosts[userID] = nick
			r.ghostUsers[nick] = sender.Username
			r.ourNicks[nick] = true
			b.mu.Unlock()
			return nil
		}
		if !errors.Is(err, errNickConflict) {
			return err
		}
	}
	return fmt.Errorf("no free nickname for %s in %s", name, roomJID)
}

func (b *Bridge) withGhostJoin(ctx context.Context, s *xmpp.Session, r, g *room, ghost jid.JID, nick string) error {
	b.mu.Lock()
	g.reset()
	g.nick = nick
	b.pendingGhost[roomJIDKey(r.jid, nick)] = g
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pendingGhost, roomJIDKey(r.jid, nick))
		b.mu.Unlock()
	}()
	if _, err := r.jid.WithResource(nick); err != nil {
		return bridge.Permanentf("nickname %q is not valid: %v", nick, err)
	}
	b.mu.Lock()
	r.ourNicks[nick] = true
	b.mu.Unlock()
	if serr := b.sendGhostJoin(ctx, s, r.jid, ghost, nick); serr != nil {
		return serr
	}
	select {
	case <-g.joined:
		return nil
	case err := <-g.joinErr:
		b.mu.Lock()
		delete(r.ourNicks, nick)
		b.mu.Unlock()
		b.ghostJoinFailed(r.jid, ghost, nick)
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer from %s to the ghost's join: %w", r.jid, ctx.Err())
	}
}

func roomJIDKey(room jid.JID, nick string) string { return room.Bare().String() + "/" + nick }

// updateMyReactions keeps the set of reactions a Mattermost user has on a
// message: XEP-0444 always sends the whole set.
func (b *Bridge) updateMyReactions(room string, d *bridge.Delivery) ([]string, error) {
	key := d.TargetID + "|" + d.Sender.ID
	var set []string
	if v, ok, err := b.store.Alias(myReactionNS(room), key); err != nil {
		return nil, err
	} else if ok {
		_ = json.Unmarshal([]byte(v), &set)
	}
	r := d.Emoji
	if u, ok := emoji.Unicode(d.Emoji); ok {
		r = u
	}
	if d.Kind == bridge.KindReactionAdd {
		if !slices.Contains(set, r) {
			set = append(set, r)
		}
	} else {
		set = slices.DeleteFunc(set, func(x string) bool { return x == r })
	}
	enc, _ := json.Marshal(set)
	return set, b.store.SetAlias(myReactionNS(room), key, string(enc))
}

func bodyXML(text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Local: "body"}})
}

func emptyElement(space, local string, attrs ...xml.Attr) xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: space, Local: local}, Attr: attrs})
}

// deliveryID derives a message's stanza ID from the event, so a retried
// delivery, or the replay of one by the next bridge, carries the same ID
// and a copy that already reached the room is recognised. The parts of a
// split message each have their own; the first keeps the ID messages had
// before parts counted, so a delivery begun then is still recognised.
func deliveryID(d *bridge.Delivery) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%s|%s|%d|%s", d.Kind, d.Origin.Key(), d.TargetID, d.Emoji, d.Time.UnixNano(), d.Room)
	if d.Part > 0 {
		fmt.Fprintf(h, "|part %d", d.Part)
	}
	return "mm-" + hex.EncodeToString(h.Sum(nil)[:12])
}
