package retract_test

import (
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmltest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/retract"
)

var (
	_ xmlstream.Marshaler = retract.Retract{}
	_ xmlstream.WriterTo  = retract.Retract{}
	_ xmlstream.Marshaler = retract.Moderate{}
	_ xmlstream.WriterTo  = retract.Moderate{}
	_ xmlstream.Marshaler = retract.ModerateIQ{}
	_ xmlstream.WriterTo  = retract.ModerateIQ{}
)

var mod = jid.MustParse("room@muc.example/macbeth")

func TestEncodeRetract(t *testing.T) {
	tests := []struct {
		name string
		r    retract.Retract
		want string
	}{
		{
			name: "plain",
			r:    retract.Retract{ID: "o1"},
			want: `<retract xmlns="urn:xmpp:message-retract:1" id="o1"></retract>`,
		},
		{
			name: "moderated",
			r:    retract.Retract{ID: "s1", Moderated: &retract.Moderated{By: mod, OccupantID: "occ", Reason: "spam"}},
			want: `<retract xmlns="urn:xmpp:message-retract:1" id="s1">` +
				`<moderated xmlns="urn:xmpp:message-moderate:1" by="room@muc.example/macbeth">` +
				`<occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ"></occupant-id></moderated>` +
				`<reason xmlns="urn:xmpp:message-retract:1">spam</reason></retract>`,
		},
		{
			name: "moderated, nothing known",
			r:    retract.Retract{ID: "s1", Moderated: &retract.Moderated{}},
			want: `<retract xmlns="urn:xmpp:message-retract:1" id="s1"><moderated xmlns="urn:xmpp:message-moderate:1"></moderated></retract>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := xmltest.Marshal(t, tt.r); got != tt.want {
				t.Errorf("marshal:\n got %s\nwant %s", got, tt.want)
			}
			if got := xmltest.WriteXML(t, tt.r); got != tt.want {
				t.Errorf("WriteXML:\n got %s\nwant %s", got, tt.want)
			}
			// What we write, we read back the same.
			back, found, err := retract.From(xmltest.Reader("<message>" + tt.want + "</message>"))
			if err != nil || !found || back.ID != tt.r.ID || (back.Moderated == nil) != (tt.r.Moderated == nil) {
				t.Fatalf("From: %+v, %v, %v", back, found, err)
			}
			if m := back.Moderated; m != nil && !sameModerated(*m, *tt.r.Moderated) {
				t.Errorf("moderated: got %+v, want %+v", *m, *tt.r.Moderated)
			}
		})
	}
}

func TestEncodeLegacy(t *testing.T) {
	got := xmltest.Encode(t, retract.Retract{ID: "o1"}.LegacyTokenReader())
	const want = `<apply-to xmlns="urn:xmpp:fasten:0" id="o1"><retract xmlns="urn:xmpp:message-retract:0"></retract></apply-to>`
	if got != want {
		t.Errorf("plain:\n got %s\nwant %s", got, want)
	}
	got = xmltest.Encode(t, retract.Retract{ID: "s1", Moderated: &retract.Moderated{By: mod, Reason: "spam"}}.LegacyTokenReader())
	const wantMod = `<apply-to xmlns="urn:xmpp:fasten:0" id="s1">` +
		`<moderated xmlns="urn:xmpp:message-moderate:0" by="room@muc.example/macbeth">` +
		`<retract xmlns="urn:xmpp:message-retract:0"></retract>` +
		`<reason xmlns="urn:xmpp:message-moderate:0">spam</reason></moderated></apply-to>`
	if got != wantMod {
		t.Errorf("moderated:\n got %s\nwant %s", got, wantMod)
	}
	back, found, err := retract.From(xmltest.Reader("<message>" + got + "</message>"))
	if err != nil || !found || !back.Legacy || back.ID != "s1" || back.Moderated == nil ||
		back.Moderated.Reason != "spam" || !back.Moderated.By.Equal(mod) {
		t.Errorf("From: %+v (%+v), %v, %v", back, back.Moderated, found, err)
	}
}

func TestMessage(t *testing.T) {
	msg := stanza.Message{ID: "r1", To: jid.MustParse("lord@capulet.example"), Type: stanza.ChatMessage}
	got := xmltest.Encode(t, retract.Message(msg, "o1", "", retract.Retract{ID: "o1"}.LegacyTokenReader()))
	const want = `<message type="chat" to="lord@capulet.example" id="r1">` +
		`<retract xmlns="urn:xmpp:message-retract:1" id="o1"></retract>` +
		`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"></fallback>` +
		`<body>` + retract.DefaultFallback + `</body>` +
		`<store xmlns="urn:xmpp:hints"></store>` +
		`<apply-to xmlns="urn:xmpp:fasten:0" id="o1"><retract xmlns="urn:xmpp:message-retract:0"></retract></apply-to>` +
		`</message>`
	if got != want {
		t.Errorf("message:\n got %s\nwant %s", got, want)
	}
	r, found, err := retract.From(xmltest.Reader(got))
	if err != nil || !found || r.ID != "o1" || r.Legacy {
		t.Errorf("From of both forms should give the current one: %+v, %v, %v", r, found, err)
	}
}

func TestModerateIQ(t *testing.T) {
	iq := retract.ModerateIQ{
		IQ:       stanza.IQ{ID: "m1", To: jid.MustParse("room@muc.example"), Type: stanza.GetIQ},
		Moderate: retract.Moderate{ID: "s1", Reason: "spam"},
	}
	const want = `<iq type="set" to="room@muc.example" id="m1">` +
		`<moderate xmlns="urn:xmpp:message-moderate:1" id="s1">` +
		`<retract xmlns="urn:xmpp:message-retract:1"></retract>` +
		`<reason xmlns="urn:xmpp:message-moderate:1">spam</reason></moderate></iq>`
	if got := xmltest.WriteXML(t, iq); got != want {
		t.Errorf("iq:\n got %s\nwant %s", got, want)
	}
	if got := xmltest.Marshal(t, iq); got != want {
		t.Errorf("iq marshal:\n got %s\nwant %s", got, want)
	}
	const wantNoReason = `<moderate xmlns="urn:xmpp:message-moderate:1" id="s1"><retract xmlns="urn:xmpp:message-retract:1"></retract></moderate>`
	if got := xmltest.Marshal(t, retract.Moderate{ID: "s1"}); got != wantNoReason {
		t.Errorf("no reason:\n got %s\nwant %s", got, wantNoReason)
	}
}

func TestFrom(t *testing.T) {
	tests := []struct {
		name, in  string
		id        string
		found     bool
		legacy    bool
		moderated *retract.Moderated
		err       error
	}{
		{name: "none", in: `<message><body>x</body></message>`},
		{
			name: "plain",
			in:   `<message><retract id="o1" xmlns="urn:xmpp:message-retract:1"/><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/><body>gone</body></message>`,
			id:   "o1", found: true,
		},
		{
			name: "xep-0425 announcement",
			in: `<message type="groupchat" from="room@muc.example">
				<retract id="stanza-id-1" xmlns="urn:xmpp:message-retract:1">
					<moderated by="room@muc.example/macbeth" xmlns="urn:xmpp:message-moderate:1">
						<occupant-id xmlns="urn:xmpp:occupant-id:0" id="dd72603d"/>
					</moderated>
					<reason>This message contains inappropriate content</reason>
				</retract></message>`,
			id: "stanza-id-1", found: true,
			moderated: &retract.Moderated{By: mod, OccupantID: "dd72603d", Reason: "This message contains inappropriate content"},
		},
		{
			name: "reason before moderated",
			in: `<message><retract id="s" xmlns="urn:xmpp:message-retract:1"><reason>why</reason>
				<moderated xmlns="urn:xmpp:message-moderate:1"/></retract></message>`,
			id: "s", found: true, moderated: &retract.Moderated{Reason: "why"},
		},
		{
			name: "reason without moderation ignored",
			in:   `<message><retract id="s" xmlns="urn:xmpp:message-retract:1"><reason>why</reason></retract></message>`,
			id:   "s", found: true,
		},
		{
			name: "legacy",
			in:   `<message><apply-to id="o1" xmlns="urn:xmpp:fasten:0"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to></message>`,
			id:   "o1", found: true, legacy: true,
		},
		{
			name: "legacy moderated",
			in: `<message><apply-to id="s1" xmlns="urn:xmpp:fasten:0">
				<moderated by="room@muc.example/macbeth" xmlns="urn:xmpp:message-moderate:0">
					<retract xmlns="urn:xmpp:message-retract:0"/><reason>spam</reason>
				</moderated></apply-to></message>`,
			id: "s1", found: true, legacy: true, moderated: &retract.Moderated{By: mod, Reason: "spam"},
		},
		{
			name: "other fastening",
			in:   `<message><apply-to id="o1" xmlns="urn:xmpp:fasten:0"><external name="body"/></apply-to></message>`,
		},
		{
			name: "legacy moderation that is not a retraction",
			in:   `<message><apply-to id="o1" xmlns="urn:xmpp:fasten:0"><moderated xmlns="urn:xmpp:message-moderate:0"><edit/></moderated></apply-to></message>`,
		},
		{
			name: "no id",
			in:   `<message><retract xmlns="urn:xmpp:message-retract:1"/></message>`,
			err:  xmppext.ErrMalformed,
		},
		{
			name: "two",
			in:   `<message><retract id="a" xmlns="urn:xmpp:message-retract:1"/><retract id="b" xmlns="urn:xmpp:message-retract:1"/></message>`,
			err:  xmppext.ErrDuplicate,
		},
		{
			name: "two moderated",
			in: `<message><retract id="a" xmlns="urn:xmpp:message-retract:1"><moderated xmlns="urn:xmpp:message-moderate:1"/>` +
				`<moderated xmlns="urn:xmpp:message-moderate:1"/></retract></message>`,
			err: xmppext.ErrDuplicate,
		},
		{
			name: "bad moderator",
			in:   `<message><retract id="a" xmlns="urn:xmpp:message-retract:1"><moderated by="@@" xmlns="urn:xmpp:message-moderate:1"/></retract></message>`,
			err:  xmppext.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, found, err := retract.From(xmltest.Reader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || found != tt.found || r.ID != tt.id || r.Legacy != tt.legacy {
				t.Fatalf("got %+v, %v, %v; want id %q found %v legacy %v", r, found, err, tt.id, tt.found, tt.legacy)
			}
			switch {
			case (r.Moderated == nil) != (tt.moderated == nil):
				t.Fatalf("moderated: got %+v, want %+v", r.Moderated, tt.moderated)
			case r.Moderated != nil && !sameModerated(*r.Moderated, *tt.moderated):
				t.Errorf("moderated: got %+v, want %+v", *r.Moderated, *tt.moderated)
			}
		})
	}
}

func sameModerated(a, b retract.Moderated) bool {
	return a.By.Equal(b.By) && a.OccupantID == b.OccupantID && a.Reason == b.Reason
}
