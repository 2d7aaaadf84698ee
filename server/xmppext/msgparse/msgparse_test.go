package msgparse_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/fallback"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/msgparse"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/reply"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/retract"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/stanzaid"
)

var room = jid.MustParse("room@muc.example")

func parse(t testing.TB, s string) (*msgparse.Parsed, error) {
	t.Helper()
	return msgparse.Parse(xml.NewDecoder(strings.NewReader(s)), msgparse.Limits{})
}

func mustParse(t testing.TB, s string) *msgparse.Parsed {
	t.Helper()
	p, err := parse(t, s)
	if err != nil {
		t.Fatalf("parsing %s: %v", s, err)
	}
	return p
}

// everything is a groupchat message with one of each payload, as a room
// relays it.
const everything = `<message xmlns="jabber:client" type="groupchat" id="m1" xml:lang="en"
		from="room@muc.example/anna" to="bridge@example.com/b">
	<body>&gt; bob wrote:
&gt; cake?
Yes!</body>
	<body xml:lang="de">Ja!</body>
	<subject>Baking</subject>
	<origin-id xmlns="urn:xmpp:sid:0" id="o1"/>
	<stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="room@muc.example"/>
	<replace xmlns="urn:xmpp:message-correct:0" id="m0"/>
	<reactions xmlns="urn:xmpp:reactions:0" id="s0"><reaction>👍</reaction></reactions>
	<reply xmlns="urn:xmpp:reply:0" to="room@muc.example/bob" id="s0"/>
	<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="21"/></fallback>
	<x xmlns="jabber:x:oob"><url>https://example.com/cake.png</url><desc>Cake</desc></x>
	<x xmlns="jabber:x:oob"><desc>no URL, dropped</desc></x>
	<occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ-anna"/>
	<delay xmlns="urn:xmpp:delay" stamp="2024-05-01T10:00:05Z" from="room@muc.example"/>
	<delay xmlns="urn:xmpp:delay" stamp="2024-05-01T10:00:00Z">Offline storage</delay>
	<x xmlns="http://jabber.org/protocol/muc#user"><item jid="anna@example.com/phone" affiliation="member" role="participant" nick="anna"/><status code="100"/></x>
	<unknown xmlns="urn:example:unknown"><deep><er>ignored</er></deep></unknown>
</message>`

func TestParseEverything(t *testing.T) {
	p := mustParse(t, everything)
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	check("type", p.Type, stanza.GroupChatMessage)
	check("from", p.From.String(), "room@muc.example/anna")
	check("to", p.To.String(), "bridge@example.com/b")
	check("id", p.ID, "m1")
	check("lang", p.Lang, "en")
	check("body", p.Body, "> bob wrote:\n> cake?\nYes!")
	check("subject", p.Subject, "Baking")
	check("has subject", p.HasSubject, true)
	check("origin-id", p.OriginID, "o1")
	check("stanza-id", p.StanzaID(room), "s1")
	check("replace", p.Replace.ID, "m0")
	check("reactions id", p.Reactions.ID, "s0")
	check("reactions", strings.Join(p.Reactions.Reactions, ","), "👍")
	check("reply id", p.Reply.ID, "s0")
	check("reply to", p.Reply.To.String(), "room@muc.example/bob")
	check("fallbacks", len(p.Fallbacks), 1)
	check("stripped body", p.BodyWithoutFallbacks(), "Yes!")
	check("oob", len(p.OOB), 1)
	check("oob url", p.OOB[0].URL, "https://example.com/cake.png")
	check("oob desc", p.OOB[0].Desc, "Cake")
	check("occupant-id", p.OccupantID, "occ-anna")
	check("earliest delay", p.Delay.Time, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	check("delay reason", p.Delay.Reason, "Offline storage")
	check("muc jid", p.MUCUser.JID.String(), "anna@example.com/phone")
	check("muc nick", p.MUCUser.Nick, "anna")
	check("muc affiliation", p.MUCUser.Affiliation, "member")
	check("muc role", p.MUCUser.Role, "participant")
	check("muc status", slices.Equal(p.MUCUser.Status, []int{100}), true)
	check("retract", p.Retract == nil, true)
	check("mam", p.MAM == nil, true)
	check("unwrap", p.Unwrap(), p)
}

func TestParseRetractions(t *testing.T) {
	p := mustParse(t, `<message type="groupchat" from="room@muc.example">
		<retract id="s9" xmlns="urn:xmpp:message-retract:1">
			<moderated by="room@muc.example/mod" xmlns="urn:xmpp:message-moderate:1"><occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ-mod"/></moderated>
			<reason>spam</reason>
		</retract>
		<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/>
		<body>A message was retracted.</body>
	</message>`)
	if p.Retract == nil || p.Retract.ID != "s9" || p.Retract.Moderated == nil ||
		p.Retract.Moderated.Reason != "spam" || p.Retract.Moderated.OccupantID != "occ-mod" ||
		p.Retract.Moderated.By.String() != "room@muc.example/mod" {
		t.Fatalf("moderation: %+v", p.Retract)
	}
	if p.OccupantID != "" {
		t.Errorf("the moderator's occupant-id was taken for the sender's: %q", p.OccupantID)
	}
	if b := p.BodyWithoutFallbacks(); b != "" {
		t.Errorf("retraction fallback body not stripped: %q", b)
	}

	// Old and new forms together: the new one wins, in either order.
	for _, in := range []string{
		`<message><apply-to xmlns="urn:xmpp:fasten:0" id="old"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to><retract xmlns="urn:xmpp:message-retract:1" id="new"/></message>`,
		`<message><retract xmlns="urn:xmpp:message-retract:1" id="new"/><apply-to xmlns="urn:xmpp:fasten:0" id="old"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to></message>`,
	} {
		if p := mustParse(t, in); p.Retract == nil || p.Retract.ID != "new" || p.Retract.Legacy {
			t.Errorf("%s: got %+v", in, p.Retract)
		}
	}
	p = mustParse(t, `<message><apply-to xmlns="urn:xmpp:fasten:0" id="old"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to></message>`)
	if p.Retract == nil || p.Retract.ID != "old" || !p.Retract.Legacy {
		t.Errorf("legacy alone: %+v", p.Retract)
	}

	// Prosody 13's mod_muc_moderation announces both forms; the current
	// one's <moderated/> names the moderator by occupant-id only, the older
	// one by its room JID too: the current form takes the JID from it.
	prosody13 := `<message type="groupchat" from="room@muc.example" id="m1">
		<apply-to xmlns="urn:xmpp:fasten:0" id="s9"><moderated xmlns="urn:xmpp:message-moderate:0" by="room@muc.example/mod"><occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ-mod"/><retract xmlns="urn:xmpp:message-retract:0"/></moderated></apply-to>
		<retract xmlns="urn:xmpp:message-retract:1" id="s9"><moderated xmlns="urn:xmpp:message-moderate:1"><occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ-mod"/></moderated></retract>
	</message>`
	p = mustParse(t, prosody13)
	if p.Retract == nil || p.Retract.ID != "s9" || p.Retract.Legacy || p.Retract.Moderated == nil ||
		p.Retract.Moderated.By.String() != "room@muc.example/mod" || p.Retract.Moderated.OccupantID != "occ-mod" {
		t.Errorf("Prosody 13's moderation: %+v", p.Retract)
	}
	// Never from a legacy form about another message.
	other := strings.Replace(prosody13, `fasten:0" id="s9"`, `fasten:0" id="s8"`, 1)
	if p = mustParse(t, other); p.Retract == nil || p.Retract.Moderated == nil || !p.Retract.Moderated.By.Equal(jid.JID{}) {
		t.Errorf("moderator taken from a legacy form about another message: %+v", p.Retract)
	}
}

func TestParseBodyLanguage(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no lang", `<message><body>a</body></message>`, "a"},
		{"message lang wins", `<message xml:lang="de"><body xml:lang="en">en</body><body xml:lang="de">de</body></message>`, "de"},
		{"unlabelled inherits", `<message xml:lang="de"><body xml:lang="en">en</body><body>de</body></message>`, "de"},
		{"else first", `<message xml:lang="fr"><body xml:lang="en">en</body><body xml:lang="de">de</body></message>`, "en"},
		{"empty body", `<message><body/></message>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := mustParse(t, tt.in); p.Body != tt.want {
				t.Errorf("got %q, want %q", p.Body, tt.want)
			}
		})
	}
	p := mustParse(t, `<message type="groupchat"><subject/></message>`)
	if !p.HasSubject || p.Subject != "" {
		t.Errorf("empty subject: %q, %v", p.Subject, p.HasSubject)
	}
	if p := mustParse(t, `<message><body>x</body></message>`); p.HasSubject {
		t.Error("HasSubject without a subject")
	}
}

func TestParseMAM(t *testing.T) {
	const in = `<message id="aeb213" to="juliet@capulet.example/chamber">
		<result xmlns="urn:xmpp:mam:2" queryid="f27" id="28482-98726-73623">
			<forwarded xmlns="urn:xmpp:forward:0">
				<delay xmlns="urn:xmpp:delay" stamp="2010-07-10T23:08:25Z"/>
				<message xmlns="jabber:client" type="groupchat" from="room@muc.example/romeo" id="162BEBB1">
					<body>Hail to thee</body>
					<occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ-romeo"/>
				</message>
			</forwarded>
		</result>
	</message>`
	p := mustParse(t, in)
	if p.MAM == nil {
		t.Fatal("no MAM result")
	}
	m := p.Unwrap()
	switch {
	case p.MAM.QueryID != "f27" || p.MAM.ID != "28482-98726-73623":
		t.Errorf("result ids: %+v", p.MAM)
	case p.MAM.Delay == nil || !p.MAM.Delay.Time.Equal(time.Date(2010, 7, 10, 23, 8, 25, 0, time.UTC)):
		t.Errorf("delay: %+v", p.MAM.Delay)
	case m != p.MAM.Message || m.Body != "Hail to thee" || m.OccupantID != "occ-romeo" ||
		m.From.String() != "room@muc.example/romeo" || m.Type != stanza.GroupChatMessage:
		t.Errorf("archived message: %+v", m)
	case p.Body != "":
		t.Errorf("outer body: %q", p.Body)
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("x", 300<<10)
	mam := func(inner string) string {
		return `<message><result xmlns="urn:xmpp:mam:2" id="r"><forwarded xmlns="urn:xmpp:forward:0">` + inner + `</forwarded></result></message>`
	}
	tests := []struct {
		name, in string
		err      error
	}{
		{"empty", ``, xmppext.ErrMalformed},
		{"text", `hello`, xmppext.ErrMalformed},
		{"presence", `<presence/>`, xmppext.ErrMalformed},
		{"message in another namespace", `<message xmlns="urn:x"/>`, xmppext.ErrMalformed},
		{"bad from", `<message from="@@"/>`, xmppext.ErrMalformed},
		{"truncated", `<message><body>hi`, xmppext.ErrMalformed},
		{"mismatched", `<message><body>hi</subject></message>`, xmppext.ErrMalformed},
		{"processing instruction", `<message><?x y?></message>`, xmppext.ErrMalformed},
		{"body too large", `<message><body>` + long + `</body></message>`, msgparse.ErrBodyTooLarge},
		{"subject too large", `<message><subject>` + long + `</subject></message>`, msgparse.ErrBodyTooLarge},
		{"two bodies in one language", `<message><body>a</body><body>b</body></message>`, xmppext.ErrDuplicate},
		{"two bodies, one inheriting", `<message xml:lang="en"><body>a</body><body xml:lang="en">b</body></message>`, xmppext.ErrDuplicate},
		{"too deep", `<message>` + strings.Repeat("<x>", 40) + strings.Repeat("</x>", 40) + `</message>`, xmppext.ErrTooLarge},
		{"two origin-ids", `<message><origin-id xmlns="urn:xmpp:sid:0" id="a"/><origin-id xmlns="urn:xmpp:sid:0" id="b"/></message>`, xmppext.ErrDuplicate},
		{"two occupant-ids", `<message><occupant-id xmlns="urn:xmpp:occupant-id:0" id="a"/><occupant-id xmlns="urn:xmpp:occupant-id:0" id="b"/></message>`, xmppext.ErrDuplicate},
		{"two replies", `<message><reply xmlns="urn:xmpp:reply:0" id="a"/><reply xmlns="urn:xmpp:reply:0" id="b"/></message>`, xmppext.ErrDuplicate},
		{"two reactions", `<message><reactions xmlns="urn:xmpp:reactions:0" id="a"/><reactions xmlns="urn:xmpp:reactions:0" id="b"/></message>`, xmppext.ErrDuplicate},
		{"two corrections", `<message><replace xmlns="urn:xmpp:message-correct:0" id="a"/><replace xmlns="urn:xmpp:message-correct:0" id="b"/></message>`, xmppext.ErrDuplicate},
		{"two retractions", `<message><retract xmlns="urn:xmpp:message-retract:1" id="a"/><retract xmlns="urn:xmpp:message-retract:1" id="b"/></message>`, xmppext.ErrDuplicate},
		{"two muc#user", `<message><x xmlns="http://jabber.org/protocol/muc#user"/><x xmlns="http://jabber.org/protocol/muc#user"/></message>`, xmppext.ErrDuplicate},
		{"stanza-id twice by the room", `<message><stanza-id xmlns="urn:xmpp:sid:0" id="a" by="room@muc.example"/><stanza-id xmlns="urn:xmpp:sid:0" id="b" by="room@muc.example"/></message>`, xmppext.ErrDuplicate},
		{"delay without stamp", `<message><delay xmlns="urn:xmpp:delay"/></message>`, xmppext.ErrMalformed},
		{"delay with bad stamp", `<message><delay xmlns="urn:xmpp:delay" stamp="yesterday"/></message>`, xmppext.ErrMalformed},
		{"bad status code", `<message><x xmlns="http://jabber.org/protocol/muc#user"><status code="1"/></x></message>`, xmppext.ErrMalformed},
		{"bad real jid", `<message><x xmlns="http://jabber.org/protocol/muc#user"><item jid="@"/></x></message>`, xmppext.ErrMalformed},
		{"id too long", `<message id="` + strings.Repeat("i", 2000) + `"/>`, xmppext.ErrTooLarge},
		{"mam without message", mam(`<delay xmlns="urn:xmpp:delay" stamp="2010-07-10T23:08:25Z"/>`), xmppext.ErrMalformed},
		{"mam with two messages", mam(`<message xmlns="jabber:client"/><message xmlns="jabber:client"/>`), xmppext.ErrDuplicate},
		{"mam without id", `<message><result xmlns="urn:xmpp:mam:2"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client"/></forwarded></result></message>`, xmppext.ErrMalformed},
		{"mam in mam", mam(`<message xmlns="jabber:client">` + strings.TrimPrefix(mam(`<message xmlns="jabber:client"/>`), `<message>`)), xmppext.ErrMalformed},
		{"mam inner message malformed", mam(`<message xmlns="jabber:client"><body>a</body><body>b</body></message>`), xmppext.ErrDuplicate},
		{"mam message in the forward namespace is no stanza", mam(`<message/>`), xmppext.ErrMalformed},
		{"two mam results", `<message><result xmlns="urn:xmpp:mam:2" id="a"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client"/></forwarded></result><result xmlns="urn:xmpp:mam:2" id="b"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client"/></forwarded></result></message>`, xmppext.ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parse(t, tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
			if p != nil {
				t.Errorf("a partial result came with the error: %+v", p)
			}
		})
	}
	// ErrBodyTooLarge is also an ErrTooLarge, for callers that only care
	// about the kind.
	if _, err := parse(t, `<message><body>`+long+`</body></message>`); !errors.Is(err, xmppext.ErrTooLarge) {
		t.Errorf("ErrBodyTooLarge should be an ErrTooLarge: %v", err)
	}
}

func TestLimits(t *testing.T) {
	in := `<message><body>` + strings.Repeat("x", 100) + `</body></message>`
	if _, err := msgparse.Parse(xml.NewDecoder(strings.NewReader(in)), msgparse.Limits{MaxBody: 99}); !errors.Is(err, msgparse.ErrBodyTooLarge) {
		t.Errorf("MaxBody 99: %v", err)
	}
	if p, err := msgparse.Parse(xml.NewDecoder(strings.NewReader(in)), msgparse.Limits{MaxBody: 100}); err != nil || len(p.Body) != 100 {
		t.Errorf("MaxBody 100: %v", err)
	}
	if _, err := msgparse.Parse(xml.NewDecoder(strings.NewReader(in)), msgparse.Limits{MaxTokens: 3}); !errors.Is(err, xmppext.ErrTooLarge) {
		t.Errorf("MaxTokens 3: %v", err)
	}
}

func TestParseElement(t *testing.T) {
	d := xml.NewDecoder(strings.NewReader(`<message id="x"><body>hi</body></message><message id="next"/>`))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	p, err := msgparse.ParseElement(tok.(xml.StartElement), d, msgparse.Limits{})
	if err != nil || p.ID != "x" || p.Body != "hi" {
		t.Fatalf("got %+v, %v", p, err)
	}
	// It stopped at the end of the message and left the rest of the stream.
	if tok, err := d.Token(); err != nil || tok.(xml.StartElement).Attr[0].Value != "next" {
		t.Errorf("next token: %v, %v", tok, err)
	}
}

// TestMuxHandler checks the reader a mellium mux hands its message handlers
// is what Parse expects.
func TestMuxHandler(t *testing.T) {
	var got *msgparse.Parsed
	m := mux.New(stanza.NSClient, mux.MessageFunc(stanza.GroupChatMessage, xml.Name{Local: "body"},
		func(_ stanza.Message, r xmlstream.TokenReadEncoder) error {
			var err error
			got, err = msgparse.Parse(r, msgparse.Limits{})
			return err
		}))
	d := xml.NewDecoder(strings.NewReader(`<stream xmlns="jabber:client">` + everything))
	if _, err := d.Token(); err != nil { // the stream
		t.Fatal(err)
	}
	tok, err := d.Token()
	for err == nil {
		if start, ok := tok.(xml.StartElement); ok {
			rw := struct {
				xml.TokenReader
				xmlstream.Encoder
			}{xmlstream.InnerElement(d), xml.NewEncoder(io.Discard)}
			if err := m.HandleXMPP(rw, &start); err != nil {
				t.Fatalf("handler: %v", err)
			}
			break
		}
		tok, err = d.Token()
	}
	if got == nil || got.ID != "m1" || got.Body == "" || got.StanzaID(room) != "s1" || got.Reply == nil {
		t.Fatalf("parsed through mux: %+v", got)
	}
}

// TestBuiltMessagesParse checks that the messages the xmppext packages
// build are read back by Parse as what they were built from.
func TestBuiltMessagesParse(t *testing.T) {
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	msg := stanza.Message{ID: "m2", To: room, Type: stanza.GroupChatMessage}
	r := reply.Message(msg, reply.Reply{To: jid.MustParse("room@muc.example/bob"), ID: "s1"}, "bob", "cake?\nnow?", "Yes!",
		stanzaid.OriginID{ID: "o2"}.TokenReader())
	if _, err := xmlstream.Copy(e, r); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, buf.String())
	if p.Reply == nil || p.Reply.ID != "s1" || p.OriginID != "o2" || p.BodyWithoutFallbacks() != "Yes!" ||
		fallback.Strip(p.Body, reply.NS, p.Fallbacks) != "Yes!" {
		t.Errorf("reply: %+v, stripped %q", p, p.BodyWithoutFallbacks())
	}

	buf.Reset()
	if _, err := xmlstream.Copy(e, retract.Message(msg, "s1", "")); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	p = mustParse(t, buf.String())
	if p.Retract == nil || p.Retract.ID != "s1" || p.Body != retract.DefaultFallback || p.BodyWithoutFallbacks() != "" {
		t.Errorf("retraction: %+v", p)
	}
}

func BenchmarkParse(b *testing.B) {
	in := []byte(everything)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := msgparse.Parse(xml.NewDecoder(bytes.NewReader(in)), msgparse.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// An XEP-0114 component's stream puts stanzas in jabber:component:accept.
func TestParseComponentStanza(t *testing.T) {
	p := mustParse(t, `<message xmlns='jabber:component:accept' type='groupchat' from='room@muc.example/Nick' to='ghost@bridge.example/x'><body>hi</body></message>`)
	if p.Body != "hi" || p.From.Resourcepart() != "Nick" {
		t.Fatalf("parsed %+v", p)
	}
	if _, err := parse(t, `<message xmlns='urn:example:not-a-stream'><body>hi</body></message>`); err == nil {
		t.Fatal("a message in a foreign namespace was accepted")
	}
}

// XEP-0461's first versions marked the quote with a fallback in
// urn:xmpp:feature-fallback:0 (slixmpp 1.8 still does): stripped too.
func TestParseReplyWithOlderFallbackNamespace(t *testing.T) {
	p := mustParse(t, `<message type="groupchat" from="room@muc.example/anna" id="m2">
		<body>&gt; bob wrote:
&gt; cake?
Yes!</body>
		<reply xmlns="urn:xmpp:reply:0" to="room@muc.example/bob" id="s0"/>
		<fallback xmlns="urn:xmpp:feature-fallback:0" for="urn:xmpp:reply:0"><body start="0" end="21"/></fallback>
	</message>`)
	if p.Reply == nil || p.Reply.ID != "s0" || len(p.Fallbacks) != 1 {
		t.Fatalf("reply %+v, fallbacks %+v", p.Reply, p.Fallbacks)
	}
	if got := p.BodyWithoutFallbacks(); got != "Yes!" {
		t.Fatalf("body without fallbacks: %q", got)
	}
}

// XEP-0201 / RFC 6121 §5.2.5: the thread a message belongs to.
func TestParseThread(t *testing.T) {
	p := mustParse(t, `<message type="groupchat" from="room@muc.example/anna" id="m3"><body>more</body><thread parent="p0">t1</thread></message>`)
	if p.Thread != "t1" {
		t.Fatalf("thread %q", p.Thread)
	}
	if _, err := parse(t, `<message type="groupchat" from="room@muc.example/anna" id="m4"><body>x</body><thread>t1</thread><thread>t2</thread></message>`); !errors.Is(err, xmppext.ErrDuplicate) {
		t.Fatalf("two threads: %v", err)
	}
	if _, err := parse(t, `<message type="groupchat" from="room@muc.example/anna" id="m5"><body>x</body><thread>`+strings.Repeat("t", 2000)+`</thread></message>`); !errors.Is(err, xmppext.ErrTooLarge) {
		t.Fatalf("a 2000-byte thread ID: %v", err)
	}
}
