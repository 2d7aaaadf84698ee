package xmpp

import (
	"bytes"
	"context"
	"encoding/xml"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/msgparse"
)

// fuzzQueryID is the one archive query open while the fuzzer runs.
const fuzzQueryID = "open-query"

// inboundSeeds are stanzas as Prosody delivers them to the bridge, and
// forgeries as anyone can send them.
var inboundSeeds = []string{
	`<message from="dev@conference.example.com/Carol" type="groupchat" id="m1"><body>hello *there*</body><origin-id xmlns="urn:xmpp:sid:0" id="m1"/><stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="dev@conference.example.com"/><occupant-id xmlns="urn:xmpp:occupant-id:0" id="carol-occ"/></message>`,
	`<message from="dev@conference.example.com/Carol" type="groupchat" id="e1"><body>hello, corrected</body><replace xmlns="urn:xmpp:message-correct:0" id="m1"/><stanza-id xmlns="urn:xmpp:sid:0" id="s2" by="dev@conference.example.com"/></message>`,
	`<message from="dev@conference.example.com/Carol" type="groupchat" id="r1"><retract xmlns="urn:xmpp:message-retract:1" id="s1"/><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/><body>retracted</body><stanza-id xmlns="urn:xmpp:sid:0" id="s3" by="dev@conference.example.com"/></message>`,
	`<message from="dev@conference.example.com/Dave" type="groupchat" id="x1"><reactions xmlns="urn:xmpp:reactions:0" id="s1"><reaction>👍</reaction><reaction>🎉</reaction></reactions><store xmlns="urn:xmpp:hints"/><stanza-id xmlns="urn:xmpp:sid:0" id="s4" by="dev@conference.example.com"/></message>`,
	`<message from="dev@conference.example.com/Dave" type="groupchat" id="p1"><body>&gt; Carol wrote:` + "\n" + `&gt; hello` + "\n" + `yes</body><reply xmlns="urn:xmpp:reply:0" to="dev@conference.example.com/Carol" id="s1"/><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="25"/></fallback></message>`,
	`<message from="dev@conference.example.com/Carol" type="groupchat" id="t1"><subject>new topic</subject></message>`,
	`<message from="dev@conference.example.com" type="groupchat" id="t2"><subject>set by the room</subject></message>`,
	`<message from="dev@conference.example.com/Mattermost" type="groupchat" id="own"><body>the bridge itself</body></message>`,
	`<message from="dev@conference.example.com/Carol" type="error" id="mm-1"><error type="cancel"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
	// The room answering our open query.
	string(archived("dev@conference.example.com", fuzzQueryID, "a1", `<message xmlns="jabber:client" from="dev@conference.example.com/ceo" type="groupchat" id="c1"><body>archived</body><occupant-id xmlns="urn:xmpp:occupant-id:0" id="ceo-occ"/></message>`)),
	string(archived("dev@conference.example.com", fuzzQueryID, "a2", `<message xmlns="jabber:client" from="dev@conference.example.com/Carol" type="groupchat" id="c2"><retract xmlns="urn:xmpp:message-retract:1" id="s1"/></message>`)),
	// Forgeries: wrong wrapper sender, unknown query, another room inside.
	string(archived("mallory@example.com/phone", fuzzQueryID, "f1", ceoSays)),
	string(archived("example.com", "guessed", "f2", ceoSays)),
	string(archived("dev@conference.example.com/Carol", fuzzQueryID, "f3", ceoSays)),
	string(archived("dev@conference.example.com", fuzzQueryID, "f4", `<message xmlns="jabber:client" from="other@conference.example.com/ceo" type="groupchat"><body>elsewhere</body></message>`)),
	`<message from="mallory@example.com/phone" type="groupchat" id="g1"><body>not from a room</body></message>`,
	`<message from="other@conference.example.com/Eve" type="groupchat" id="g2"><body>an unlinked room</body></message>`,
	`<message from="dev@conference.example.com/Eve" type="chat" id="g3"><body>private</body></message>`,
	`<message><body>no sender</body></message>`,
	// XEP-0425: the room announces that its moderator retracted a message.
	`<message from="dev@conference.example.com" type="groupchat" id="mod1"><retract id="s1" xmlns="urn:xmpp:message-retract:1"><moderated by="dev@conference.example.com/Carol" xmlns="urn:xmpp:message-moderate:1"><occupant-id xmlns="urn:xmpp:occupant-id:0" id="carol-occ"/></moderated><reason>spam</reason></retract><stanza-id xmlns="urn:xmpp:sid:0" id="s9" by="dev@conference.example.com"/></message>`,
	`<message from="mallory@example.com/phone" type="groupchat" id="mod2"><retract id="s1" xmlns="urn:xmpp:message-retract:1"><moderated by="dev@conference.example.com/Carol" xmlns="urn:xmpp:message-moderate:1"/></retract></message>`,
}

// FuzzInbound feeds stanzas through msgparse and the bridge's dispatch. No
// input may panic, and every event must come from the stanza's real sender:
// the occupant the room reflected, or for an archive result, the occupant
// inside a result the queried room sent for our open query. An event
// carrying an identity taken from any other wrapper is a forgery.
func FuzzInbound(f *testing.F) {
	for _, s := range inboundSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, _, rec := newInProcessBridge(t)
		b.cfg.PostSubjects = true
		b.archiveQueries[fuzzQueryID] = openQuery{archive: testRoom}
		// A cancelled context: linked files fail at once instead of
		// reaching the network.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b.handleMessage(ctx, raw)
		evs := rec.take()
		if len(evs) == 0 {
			return
		}
		nick, archived, ok := realSender(raw)
		if !ok {
			t.Fatalf("events from a stanza no room sent: %+v\n%s", evs, raw)
		}
		for _, ev := range evs {
			if ev.Origin.Network != bridge.NetworkXMPP || ev.Origin.Room != testRoom.String() || ev.Sender.Network != bridge.NetworkXMPP {
				t.Fatalf("event outside the room: %+v\n%s", ev, raw)
			}
			if nick == "" {
				// The room speaking itself: a subject it set, or its
				// announcement of a moderator's retraction, which names
				// the moderator.
				if mod := moderator(raw); ev.Moderated && mod != "" {
					if ev.Sender.DisplayName != mod {
						t.Fatalf("a moderation by %q sent as %+v\n%s", mod, ev.Sender, raw)
					}
				} else if ev.Sender.ID != "room:"+testRoom.String() {
					t.Fatalf("the room's own message sent as %+v\n%s", ev.Sender, raw)
				}
				continue
			}
			if ev.Sender.DisplayName != nick {
				t.Fatalf("sender %+v, but the room reflected %q\n%s", ev.Sender, nick, raw)
			}
			// Carol is in the room as carol-occ: a live message is hers;
			// an archived one, said by whoever had the nick then, is only
			// the nick's unless the room stamped an occupant-id on it.
			want := "occupant:" + testRoom.String() + "|carol-occ"
			if archived {
				want = "nick:" + testRoom.String() + "|Carol"
			}
			if nick == "Carol" && ev.Sender.ID != want && !hasOccupantID(raw) {
				t.Fatalf("Carol's message under another identity: %+v, want %s\n%s", ev.Sender, want, raw)
			}
		}
	})
}

// realSender is the nick of whoever the room says sent raw, judged apart
// from the bridge: a groupchat message from the room, or the message inside
// a result the room sent for the open query (archived). ok is false when
// nobody the bridge may believe sent it.
func realSender(raw []byte) (nick string, archived, ok bool) {
	p, err := msgparse.Parse(xml.NewDecoder(bytes.NewReader(raw)), msgparse.Limits{MaxBody: maxBody})
	if err != nil {
		return "", false, false
	}
	if p.MAM != nil {
		if !p.From.Equal(testRoom) || p.MAM.QueryID != fuzzQueryID || !p.MAM.Message.From.Bare().Equal(testRoom) {
			return "", true, false
		}
		return p.MAM.Message.From.Resourcepart(), true, true
	}
	if p.Type != "groupchat" || !p.From.Bare().Equal(testRoom) {
		return "", false, false
	}
	return p.From.Resourcepart(), false, true
}

// hasOccupantID reports whether the stanza names an occupant-id itself,
// which the room sets (and which then is the identity).
func hasOccupantID(raw []byte) bool {
	return bytes.Contains(raw, []byte("urn:xmpp:occupant-id:0"))
}

// moderator is the nick of the moderator a room's XEP-0425 announcement
// names, "" unless the room itself names one of its occupants.
func moderator(raw []byte) string {
	p, err := msgparse.Parse(xml.NewDecoder(bytes.NewReader(raw)), msgparse.Limits{MaxBody: maxBody})
	if err != nil || p.MAM != nil && p.MAM.Message == nil {
		return ""
	}
	m := p.Unwrap()
	if m.Retract == nil || m.Retract.Moderated == nil || !m.Retract.Moderated.By.Bare().Equal(testRoom) {
		return ""
	}
	return m.Retract.Moderated.By.Resourcepart()
}
