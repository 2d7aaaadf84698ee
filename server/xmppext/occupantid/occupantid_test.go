package occupantid_test

import (
	"errors"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmltest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/occupantid"
)

var (
	_ xmlstream.Marshaler = occupantid.OccupantID{}
	_ xmlstream.WriterTo  = occupantid.OccupantID{}
)

func TestEncode(t *testing.T) {
	const want = `<occupant-id xmlns="urn:xmpp:occupant-id:0" id="dd72603d"></occupant-id>`
	o := occupantid.OccupantID{ID: "dd72603d"}
	if got := xmltest.Marshal(t, o); got != want {
		t.Errorf("marshal:\n got %s\nwant %s", got, want)
	}
	if got := xmltest.WriteXML(t, o); got != want {
		t.Errorf("WriteXML:\n got %s\nwant %s", got, want)
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
		{name: "message", in: `<message><occupant-id xmlns="urn:xmpp:occupant-id:0" id="o1"/></message>`, want: "o1", found: true},
		{name: "presence", in: `<presence><x xmlns="http://jabber.org/protocol/muc#user"/><occupant-id xmlns="urn:xmpp:occupant-id:0" id="o1"/></presence>`, want: "o1", found: true},
		{name: "nested is someone else's", in: `<message><retract xmlns="urn:xmpp:message-retract:1" id="x"><moderated xmlns="urn:xmpp:message-moderate:1"><occupant-id xmlns="urn:xmpp:occupant-id:0" id="mod"/></moderated></retract></message>`},
		{name: "two", in: `<message><occupant-id xmlns="urn:xmpp:occupant-id:0" id="a"/><occupant-id xmlns="urn:xmpp:occupant-id:0" id="b"/></message>`, err: xmppext.ErrDuplicate},
		{name: "no id", in: `<message><occupant-id xmlns="urn:xmpp:occupant-id:0"/></message>`, err: xmppext.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, found, err := occupantid.From(xmltest.Reader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || found != tt.found || o.ID != tt.want {
				t.Fatalf("got %+v, %v, %v; want id %q found %v", o, found, err, tt.want, tt.found)
			}
		})
	}
}
