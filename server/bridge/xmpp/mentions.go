package xmpp

import (
	"regexp"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// XMPP has no mention markup: people address each other by nick. Outgoing
// @mentions become the person's nick in the room; incoming nicks of ghosts
// become @mentions of their Mattermost users.

// writeMentions replaces each mention with the nick the person has in the
// room, or their display name when they are not in it.
func (b *Bridge) writeMentions(roomJID jid.JID, text string, mentions []bridge.Mention) string {
	if len(mentions) == 0 {
		return text
	}
	b.mu.Lock()
	r := b.rooms[roomJID.String()]
	nickOf := func(p bridge.Sender) string {
		if r == nil {
			return ""
		}
		switch p.Network {
		case bridge.NetworkMattermost:
			return r.ghosts[p.ID]
		case bridge.NetworkXMPP:
			for nick, o := range r.occupants {
				if p.ID == "jid:"+o.RealJID.String() || p.ID == "occupant:"+roomJID.String()+"|"+o.OccupantID || p.ID == "nick:"+roomJID.String()+"|"+nick || (o.FirstNick != "" && p.ID == "nick:"+roomJID.String()+"|"+o.FirstNick) {
					return nick
				}
			}
		}
		return ""
	}
	replacements := make([]string, 0, 2*len(mentions))
	for _, m := range mentions {
		nick := nickOf(m.Person)
		if nick == "" {
			nick = m.Person.DisplayName
		}
		if nick == "" {
			nick = m.Person.Username
		}
		replacements = append(replacements, m.Text, nick)
	}
	b.mu.Unlock()
	return replaceWords(text, replacements)
}

// replaceWords replaces whole-word, case-insensitive occurrences of each
// old string with its new one.
func replaceWords(text string, oldNew []string) string {
	for i := 0; i+1 < len(oldNew); i += 2 {
		re, err := regexp.Compile(`(?i)(^|[^\w@])` + regexp.QuoteMeta(oldNew[i]) + `\b`)
		if err != nil {
			continue
		}
		text = re.ReplaceAllString(text, "${1}"+strings.ReplaceAll(oldNew[i+1], "$", "$$"))
	}
	return text
}

// readMentions turns the nicks of ghosts in a room message into @mentions of
// their Mattermost users.
func (b *Bridge) readMentions(room, text string) string {
	b.mu.Lock()
	r := b.rooms[room]
	var oldNew []string
	if r != nil {
		for nick, username := range r.ghostUsers {
			if username != "" && strings.Contains(text, nick) {
				oldNew = append(oldNew, nick, "@"+username)
			}
		}
	}
	b.mu.Unlock()
	return replaceWords(text, oldNew)
}
