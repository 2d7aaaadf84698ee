package reactions_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmltest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/reactions"
)

var (
	_ xmlstream.Marshaler = reactions.Reactions{}
	_ xmlstream.WriterTo  = reactions.Reactions{}
)

func TestEncode(t *testing.T) {
	r := reactions.Reactions{ID: "744f6e18", Reactions: []string{"👋", "🐢"}}
	const want = `<reactions xmlns="urn:xmpp:reactions:0" id="744f6e18">` +
		`<reaction xmlns="urn:xmpp:reactions:0">👋</reaction>` +
		`<reaction xmlns="urn:xmpp:reactions:0">🐢</reaction></reactions>`
	if got := xmltest.Marshal(t, r); got != want {
		t.Errorf("marshal:\n got %s\nwant %s", got, want)
	}
	const wantEmpty = `<reactions xmlns="urn:xmpp:reactions:0" id="x"></reactions>`
	if got := xmltest.WriteXML(t, reactions.Reactions{ID: "x"}); got != wantEmpty {
		t.Errorf("no reactions:\n got %s\nwant %s", got, wantEmpty)
	}
}

func TestMessage(t *testing.T) {
	msg := stanza.Message{To: jid.MustParse("room@muc.example"), Type: stanza.GroupChatMessage, ID: "r1"}
	got := xmltest.Encode(t, reactions.Message(msg, reactions.Reactions{ID: "s1", Reactions: []string{"👍"}}))
	const want = `<message type="groupchat" to="room@muc.example" id="r1">` +
		`<reactions xmlns="urn:xmpp:reactions:0" id="s1"><reaction xmlns="urn:xmpp:reactions:0">👍</reaction></reactions>` +
		`<store xmlns="urn:xmpp:hints"></store></message>`
	if got != want {
		t.Errorf("message:\n got %s\nwant %s", got, want)
	}
	r, found, err := reactions.From(xmltest.Reader(got))
	if err != nil || !found || r.ID != "s1" || !slices.Equal(r.Reactions, []string{"👍"}) {
		t.Errorf("From of own message: %+v, %v, %v", r, found, err)
	}
}

func TestFrom(t *testing.T) {
	tests := []struct {
		name, in string
		id       string
		want     []string
		found    bool
		err      error
	}{
		{name: "none", in: `<message><body>x</body></message>`},
		{
			name: "two",
			in:   `<message><reactions xmlns="urn:xmpp:reactions:0" id="m1"><reaction>👋</reaction><reaction>🐢</reaction></reactions></message>`,
			id:   "m1", want: []string{"👋", "🐢"}, found: true,
		},
		{
			name: "removal of all",
			in:   `<message><reactions xmlns="urn:xmpp:reactions:0" id="m1"/></message>`,
			id:   "m1", found: true,
		},
		{
			name: "trimmed, empty dropped, repeats once",
			in:   `<message><reactions xmlns="urn:xmpp:reactions:0" id="m1"><reaction> 👍 </reaction><reaction/><reaction>👍</reaction><other>x</other></reactions></message>`,
			id:   "m1", want: []string{"👍"}, found: true,
		},
		{
			name: "reaction in another namespace ignored",
			in:   `<message><reactions xmlns="urn:xmpp:reactions:0" id="m1"><reaction xmlns="urn:other">x</reaction></reactions></message>`,
			id:   "m1", found: true,
		},
		{
			name: "no id",
			in:   `<message><reactions xmlns="urn:xmpp:reactions:0"><reaction>👍</reaction></reactions></message>`,
			err:  xmppext.ErrMalformed,
		},
		{
			name: "two elements",
			in:   `<message><reactions xmlns="urn:xmpp:reactions:0" id="a"/><reactions xmlns="urn:xmpp:reactions:0" id="b"/></message>`,
			err:  xmppext.ErrDuplicate,
		},
		{
			name: "reaction too long",
			in:   `<message><reactions xmlns="urn:xmpp:reactions:0" id="a"><reaction>` + strings.Repeat("x", 200) + `</reaction></reactions></message>`,
			err:  xmppext.ErrTooLarge,
		},
		{
			name: "too many",
			in:   `<message><reactions xmlns="urn:xmpp:reactions:0" id="a">` + manyReactions(100) + `</reactions></message>`,
			err:  xmppext.ErrTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, found, err := reactions.From(xmltest.Reader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || found != tt.found || r.ID != tt.id || !slices.Equal(r.Reactions, tt.want) {
				t.Fatalf("got %+v, %v, %v; want id %q %q found %v", r, found, err, tt.id, tt.want, tt.found)
			}
		})
	}
}

func manyReactions(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("<reaction>")
		b.WriteString(strings.Repeat("x", i%7+1) + string(rune('a'+i%26)) + strings.Repeat("y", i/26))
		b.WriteString("</reaction>")
	}
	return b.String()
}
