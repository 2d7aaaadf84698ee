package reply_test

import (
	"errors"
	"testing"
	"unicode/utf8"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/fallback"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmltest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/reply"
)

var (
	_ xmlstream.Marshaler = reply.Reply{}
	_ xmlstream.WriterTo  = reply.Reply{}
)

func TestEncode(t *testing.T) {
	r := reply.Reply{To: jid.MustParse("anna@example.com/tablet"), ID: "message-id1"}
	const want = `<reply xmlns="urn:xmpp:reply:0" to="anna@example.com/tablet" id="message-id1"></reply>`
	if got := xmltest.Marshal(t, r); got != want {
		t.Errorf("marshal:\n got %s\nwant %s", got, want)
	}
	const wantNoTo = `<reply xmlns="urn:xmpp:reply:0" id="m"></reply>`
	if got := xmltest.WriteXML(t, reply.Reply{ID: "m"}); got != wantNoTo {
		t.Errorf("without to:\n got %s\nwant %s", got, wantNoTo)
	}
}

func TestQuote(t *testing.T) {
	tests := []struct {
		name, nick, quoted, text string
		want                     string
		quoteLen                 int // in code points
	}{
		{"xep example", "Anna", "We should bake a cake", "Great idea!", "> Anna wrote:\n> We should bake a cake\nGreat idea!", 38},
		{"multi-line", "Bo", "one\n\nthree\n", "ok", "> Bo wrote:\n> one\n>\n> three\nok", 28},
		{"no nick", "", "q", "a", "> q\na", 4},
		{"nothing quoted", "Bo", "", "a", "> Bo wrote:\na", 12},
		{"quote of a quote nests", "Bo", "> older", "a", "> Bo wrote:\n> > older\na", 22},
		{"code points", "Żaneta", "żółw 🐢", "tak", "> Żaneta wrote:\n> żółw 🐢\ntak", 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, fb := reply.Quote(tt.nick, tt.quoted, tt.text)
			if body != tt.want {
				t.Fatalf("body:\n got %q\nwant %q", body, tt.want)
			}
			if fb.For != reply.NS || len(fb.Body) != 1 || fb.Body[0] != (fallback.Range{Start: 0, End: tt.quoteLen}) {
				t.Fatalf("fallback: %+v, want [0, %d)", fb, tt.quoteLen)
			}
			if n := utf8.RuneCountInString(body) - utf8.RuneCountInString(tt.text); n != tt.quoteLen {
				t.Fatalf("the range does not end where the text starts: %d != %d", n, tt.quoteLen)
			}
			if got := reply.StripFallback(body, []fallback.Fallback{fb}); got != tt.text {
				t.Errorf("StripFallback gave %q, want %q", got, tt.text)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	msg := stanza.Message{ID: "m2", To: jid.MustParse("room@muc.example"), Type: stanza.GroupChatMessage}
	rep := reply.Reply{To: jid.MustParse("room@muc.example/anna"), ID: "s1"}
	got := xmltest.Encode(t, reply.Message(msg, rep, "anna", "cake?", "yes"))
	const want = `<message type="groupchat" to="room@muc.example" id="m2">` +
		"<body>&gt; anna wrote:\n&gt; cake?\nyes</body>" +
		`<reply xmlns="urn:xmpp:reply:0" to="room@muc.example/anna" id="s1"></reply>` +
		`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body xmlns="urn:xmpp:fallback:0" start="0" end="22"></body></fallback>` +
		`</message>`
	if got != want {
		t.Errorf("message:\n got %s\nwant %s", got, want)
	}
	r, fbs, found, err := reply.From(xmltest.Reader(got))
	if err != nil || !found || r.ID != "s1" || !r.To.Equal(rep.To) || len(fbs) != 1 {
		t.Fatalf("From: %+v, %+v, %v, %v", r, fbs, found, err)
	}
	if s := reply.StripFallback("> anna wrote:\n> cake?\nyes", fbs); s != "yes" {
		t.Errorf("stripped: %q", s)
	}
}

func TestFrom(t *testing.T) {
	tests := []struct {
		name, in string
		id, to   string
		found    bool
		err      error
	}{
		{name: "none", in: `<message><body>x</body></message>`},
		{name: "reply", in: `<message><reply xmlns="urn:xmpp:reply:0" to="a@b/c" id="m1"/></message>`, id: "m1", to: "a@b/c", found: true},
		{name: "bare to", in: `<message><reply xmlns="urn:xmpp:reply:0" to="a@b" id="m1"/></message>`, id: "m1", to: "a@b", found: true},
		{name: "no to", in: `<message><reply xmlns="urn:xmpp:reply:0" id="m1"/></message>`, id: "m1", found: true},
		{name: "no id", in: `<message><reply xmlns="urn:xmpp:reply:0" to="a@b"/></message>`, err: xmppext.ErrMalformed},
		{name: "bad to", in: `<message><reply xmlns="urn:xmpp:reply:0" to="@" id="x"/></message>`, err: xmppext.ErrMalformed},
		{name: "two", in: `<message><reply xmlns="urn:xmpp:reply:0" id="a"/><reply xmlns="urn:xmpp:reply:0" id="b"/></message>`, err: xmppext.ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, found, err := reply.From(xmltest.Reader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || found != tt.found || r.ID != tt.id || r.To.String() != tt.to {
				t.Fatalf("got %+v, %v, %v; want id %q to %q found %v", r, found, err, tt.id, tt.to, tt.found)
			}
		})
	}
}
