package msgparse_test

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/msgparse"
)

// seeds are stanzas that between them reach every payload Parse knows, in
// good and bad shapes, for the fuzzer to mutate.
var seeds = []string{
	everything,
	`<message><body>hi</body></message>`,
	`<message xml:lang="de"><body xml:lang="en">en</body><body>de</body><subject/></message>`,
	`<message type="groupchat" from="room@muc.example"><retract id="s9" xmlns="urn:xmpp:message-retract:1"><moderated by="room@muc.example/mod" xmlns="urn:xmpp:message-moderate:1"><occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ"/></moderated><reason>spam</reason></retract><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/><body>gone</body></message>`,
	`<message><apply-to xmlns="urn:xmpp:fasten:0" id="s1"><moderated by="room@muc.example/m" xmlns="urn:xmpp:message-moderate:0"><retract xmlns="urn:xmpp:message-retract:0"/><reason>r</reason></moderated></apply-to></message>`,
	`<message><result xmlns="urn:xmpp:mam:2" queryid="q" id="r1"><forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2010-07-10T23:08:25Z"/><message xmlns="jabber:client" type="groupchat" from="room@muc.example/romeo"><body>x</body><stanza-id xmlns="urn:xmpp:sid:0" id="s" by="room@muc.example"/></message></forwarded></result></message>`,
	`<message><body>&gt; a wrote:` + "\n" + `&gt; q` + "\n" + `ok</body><reply xmlns="urn:xmpp:reply:0" to="r@m/a" id="s"/><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="16"/><body start="99" end="3"/></fallback></message>`,
	`<message><reactions xmlns="urn:xmpp:reactions:0" id="s"><reaction>👍</reaction><reaction>👍</reaction></reactions><store xmlns="urn:xmpp:hints"/></message>`,
	`<message type="error"><error type="cancel" by="room@muc.example"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">no</text></error></message>`,
	`<message><x xmlns="jabber:x:oob"><url>https://e.com/a</url></x><x xmlns="http://jabber.org/protocol/muc#user"><status code="104"/></x></message>`,
	`<message><body>a</body><body>b</body></message>`,
	`<message><body>unclosed</message>`,
	`<message from="@"/>`,
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	lim := msgparse.Limits{MaxBody: 1 << 10, MaxTokens: 512}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := msgparse.Parse(xml.NewDecoder(bytes.NewReader(data)), lim)
		if err != nil {
			if p != nil {
				t.Fatalf("a result came with error %v", err)
			}
			return
		}
		if p == nil {
			t.Fatal("no result and no error")
		}
		for _, m := range []*msgparse.Parsed{p, p.Unwrap()} {
			if m == nil {
				t.Fatal("Unwrap gave nil")
			}
			if len(m.Body) > lim.MaxBody || len(m.Subject) > lim.MaxBody {
				t.Fatalf("body of %d bytes got past the limit", len(m.Body))
			}
			if b := m.BodyWithoutFallbacks(); len(b) > len(m.Body) {
				t.Fatalf("stripping fallbacks grew the body: %q to %q", m.Body, b)
			}
			_ = m.StanzaID(m.From)
		}
		if p.MAM != nil && p.MAM.Message.MAM != nil {
			t.Fatal("nested MAM result accepted")
		}
	})
}
