package stanzaid_test

import (
	"errors"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmltest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/stanzaid"
)

var (
	_ xmlstream.Marshaler = stanzaid.OriginID{}
	_ xmlstream.WriterTo  = stanzaid.OriginID{}
	_ xmlstream.Marshaler = stanzaid.StanzaID{}
	_ xmlstream.WriterTo  = stanzaid.StanzaID{}
)

func TestEncode(t *testing.T) {
	o := stanzaid.OriginID{ID: "abc"}
	const wantO = `<origin-id xmlns="urn:xmpp:sid:0" id="abc"></origin-id>`
	if got := xmltest.Encode(t, o.TokenReader()); got != wantO {
		t.Errorf("origin-id tokens:\n got %s\nwant %s", got, wantO)
	}
	if got := xmltest.Marshal(t, o); got != wantO {
		t.Errorf("origin-id marshal:\n got %s\nwant %s", got, wantO)
	}
	if got := xmltest.WriteXML(t, o); got != wantO {
		t.Errorf("origin-id WriteXML:\n got %s\nwant %s", got, wantO)
	}

	s := stanzaid.StanzaID{ID: "1", By: jid.MustParse("room@muc.example")}
	const wantS = `<stanza-id xmlns="urn:xmpp:sid:0" id="1" by="room@muc.example"></stanza-id>`
	if got := xmltest.Marshal(t, s); got != wantS {
		t.Errorf("stanza-id marshal:\n got %s\nwant %s", got, wantS)
	}
}

func TestFrom(t *testing.T) {
	room := jid.MustParse("room@muc.example")
	tests := []struct {
		name, in string
		want     stanzaid.IDs
		found    bool
		err      error
	}{
		{
			name: "none",
			in:   `<message><body>hi</body></message>`,
		},
		{
			name: "origin and two stanza-ids",
			in: `<message xmlns="jabber:client">
				<origin-id xmlns="urn:xmpp:sid:0" id="o1"/>
				<stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="room@muc.example"/>
				<stanza-id xmlns="urn:xmpp:sid:0" id="s2" by="user@example"/>
			</message>`,
			want: stanzaid.IDs{Origin: "o1", Stanza: []stanzaid.StanzaID{
				{ID: "s1", By: room}, {ID: "s2", By: jid.MustParse("user@example")},
			}},
			found: true,
		},
		{
			name: "nested ids are not the message's",
			in:   `<message><x><origin-id xmlns="urn:xmpp:sid:0" id="o1"/></x></message>`,
		},
		{
			name: "other namespace",
			in:   `<message><origin-id xmlns="urn:xmpp:sid:1" id="o1"/></message>`,
		},
		{
			name: "two origin-ids",
			in:   `<message><origin-id xmlns="urn:xmpp:sid:0" id="a"/><origin-id xmlns="urn:xmpp:sid:0" id="b"/></message>`,
			err:  xmppext.ErrDuplicate,
		},
		{
			name: "two stanza-ids by one entity",
			in: `<message><stanza-id xmlns="urn:xmpp:sid:0" id="a" by="room@muc.example"/>
				<stanza-id xmlns="urn:xmpp:sid:0" id="b" by="room@muc.example"/></message>`,
			err: xmppext.ErrDuplicate,
		},
		{
			name: "stanza-id without by",
			in:   `<message><stanza-id xmlns="urn:xmpp:sid:0" id="a"/></message>`,
			err:  xmppext.ErrMalformed,
		},
		{
			name: "stanza-id with a bad by",
			in:   `<message><stanza-id xmlns="urn:xmpp:sid:0" id="a" by="@"/></message>`,
			err:  xmppext.ErrMalformed,
		},
		{
			name: "empty id",
			in:   `<message><origin-id xmlns="urn:xmpp:sid:0" id=""/></message>`,
			err:  xmppext.ErrMalformed,
		},
		{
			name: "qualified id attribute does not count",
			in:   `<message xmlns:f="urn:f"><origin-id xmlns="urn:xmpp:sid:0" f:id="a"/></message>`,
			err:  xmppext.ErrMalformed,
		},
		{
			name: "id too long",
			in:   `<message><origin-id xmlns="urn:xmpp:sid:0" id="` + strings.Repeat("a", 2000) + `"/></message>`,
			err:  xmppext.ErrTooLarge,
		},
		{
			name: "truncated",
			in:   `<message><origin-id xmlns="urn:xmpp:sid:0" id="a"/>`,
			err:  xmppext.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, found, err := stanzaid.From(xmltest.Reader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if found != tt.found || ids.Origin != tt.want.Origin || len(ids.Stanza) != len(tt.want.Stanza) {
				t.Fatalf("got %+v (found %v), want %+v (found %v)", ids, found, tt.want, tt.found)
			}
			for i, s := range ids.Stanza {
				if s.ID != tt.want.Stanza[i].ID || !s.By.Equal(tt.want.Stanza[i].By) {
					t.Errorf("stanza-id %d: got %+v, want %+v", i, s, tt.want.Stanza[i])
				}
			}
		})
	}
}

func TestStanzaIDBy(t *testing.T) {
	ids := stanzaid.IDs{Stanza: []stanzaid.StanzaID{
		{ID: "s1", By: jid.MustParse("room@muc.example")},
		{ID: "s2", By: jid.MustParse("me@example")},
	}}
	if got := ids.StanzaID(jid.MustParse("room@muc.example/nick")); got != "s1" {
		t.Errorf("room's ID: got %q, want s1 (compared as bare JID)", got)
	}
	if got := ids.StanzaID(jid.MustParse("other@muc.example")); got != "" {
		t.Errorf("stranger's ID: got %q, want none", got)
	}
}

func TestRoundTrip(t *testing.T) {
	in := `<message>` +
		xmltest.Encode(t, stanzaid.OriginID{ID: "o"}.TokenReader()) +
		xmltest.Encode(t, stanzaid.StanzaID{ID: "s", By: jid.MustParse("a@b")}.TokenReader()) +
		`</message>`
	ids, found, err := stanzaid.From(xmltest.Reader(in))
	if err != nil || !found || ids.Origin != "o" || ids.StanzaID(jid.MustParse("a@b")) != "s" {
		t.Fatalf("got %+v, %v, %v", ids, found, err)
	}
}

func TestNew(t *testing.T) {
	a, b := stanzaid.New(), stanzaid.New()
	if a == b || len(a) != 26 || strings.ContainsAny(a, "=/+") {
		t.Errorf("New gave %q and %q", a, b)
	}
}
