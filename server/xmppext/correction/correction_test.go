package correction_test

import (
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/correction"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmltest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/stanzaid"
)

var (
	_ xmlstream.Marshaler = correction.Replace{}
	_ xmlstream.WriterTo  = correction.Replace{}
)

func TestEncode(t *testing.T) {
	const want = `<replace xmlns="urn:xmpp:message-correct:0" id="bad1"></replace>`
	r := correction.Replace{ID: "bad1"}
	if got := xmltest.Encode(t, r.TokenReader()); got != want {
		t.Errorf("tokens:\n got %s\nwant %s", got, want)
	}
	if got := xmltest.Marshal(t, r); got != want {
		t.Errorf("marshal:\n got %s\nwant %s", got, want)
	}
	if got := xmltest.WriteXML(t, r); got != want {
		t.Errorf("WriteXML:\n got %s\nwant %s", got, want)
	}
}

func TestMessage(t *testing.T) {
	msg := stanza.Message{ID: "good1", To: jid.MustParse("room@muc.example"), Type: stanza.GroupChatMessage}
	got := xmltest.Encode(t, correction.Message(msg, "bad1", "fixed text", stanzaid.OriginID{ID: "o2"}.TokenReader()))
	const want = `<message type="groupchat" to="room@muc.example" id="good1">` +
		`<body>fixed text</body>` +
		`<replace xmlns="urn:xmpp:message-correct:0" id="bad1"></replace>` +
		`<origin-id xmlns="urn:xmpp:sid:0" id="o2"></origin-id>` +
		`</message>`
	if got != want {
		t.Errorf("message:\n got %s\nwant %s", got, want)
	}
	rep, found, err := correction.From(xmltest.Reader(got))
	if err != nil || !found || rep.ID != "bad1" {
		t.Errorf("From of own message: %+v, %v, %v", rep, found, err)
	}
}

func TestFrom(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
		found    bool
		err      error
	}{
		{name: "none", in: `<message><body>x</body></message>`},
		{name: "correction", in: `<message><body>x</body><replace xmlns="urn:xmpp:message-correct:0" id="m1"/></message>`, want: "m1", found: true},
		{name: "with content", in: `<message><replace xmlns="urn:xmpp:message-correct:0" id="m1"><junk/>text</replace></message>`, want: "m1", found: true},
		{name: "wrong namespace", in: `<message><replace xmlns="urn:xmpp:message-correct:1" id="m1"/></message>`},
		{name: "no id", in: `<message><replace xmlns="urn:xmpp:message-correct:0"/></message>`, err: xmppext.ErrMalformed},
		{name: "two", in: `<message><replace xmlns="urn:xmpp:message-correct:0" id="a"/><replace xmlns="urn:xmpp:message-correct:0" id="b"/></message>`, err: xmppext.ErrDuplicate},
		{name: "mismatched end", in: `<message><replace xmlns="urn:xmpp:message-correct:0" id="a"></body></message>`, err: xmppext.ErrMalformed},
		{name: "not xml", in: `hello`, err: xmppext.ErrMalformed},
		{name: "empty", in: ``, err: xmppext.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, found, err := correction.From(xmltest.Reader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || found != tt.found || rep.ID != tt.want {
				t.Fatalf("got %+v, %v, %v; want id %q found %v", rep, found, err, tt.want, tt.found)
			}
		})
	}
}
