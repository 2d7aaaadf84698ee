package xmpp

import (
	"context"
	"fmt"
	"testing"
)

// A person is one identity whether or not the bridge holds their presence
// when their message comes: the room once showed dana's address with her
// occupant-id, so a message stamped with it is hers by address, live or
// archived, even after her presence left the bridge's view (a rejoin, a
// second session closing). Another occupant-id under her nick is not hers.
func TestOccupantIDStandsForTheAddressTheRoomShowed(t *testing.T) {
	ctx := context.Background()
	b, _, rec := newInProcessBridge(t)
	b.handlePresence([]byte(`<presence from="dev@conference.example.com/Dana"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="participant" jid="dana@example.com/phone"/></x><occupant-id xmlns="urn:xmpp:occupant-id:0" id="dana-occ"/></presence>`))
	b.handlePresence([]byte(`<presence from="dev@conference.example.com/Dana" type="unavailable"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="none"/></x></presence>`))

	say := func(id, occupantID string) string {
		t.Helper()
		b.handleMessage(ctx, fmt.Appendf(nil, `<message from="dev@conference.example.com/Dana" type="groupchat" id=%q><body>hi</body><stanza-id xmlns="urn:xmpp:sid:0" id="s-%s" by="dev@conference.example.com"/><occupant-id xmlns="urn:xmpp:occupant-id:0" id=%q/></message>`, id, id, occupantID))
		evs := rec.take()
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", id, len(evs))
		}
		return evs[0].Sender.ID
	}
	b.archiveQueries[fuzzQueryID] = openQuery{archive: testRoom}
	sayArchived := func(id, occupantID string) string {
		t.Helper()
		b.handleMessage(ctx, archived(testRoom.String(), fuzzQueryID, "a-"+id, fmt.Sprintf(`<message xmlns="jabber:client" from="dev@conference.example.com/Dana" type="groupchat" id=%q><body>hi</body><occupant-id xmlns="urn:xmpp:occupant-id:0" id=%q/></message>`, id, occupantID)))
		evs := rec.take()
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", id, len(evs))
		}
		return evs[0].Sender.ID
	}
	for _, c := range []struct {
		what, got, want string
	}{
		{"live, her presence gone", say("m1", "dana-occ"), "jid:dana@example.com"},
		{"archived", sayArchived("m2", "dana-occ"), "jid:dana@example.com"},
		{"live, someone else under her nick", say("m3", "mallory-occ"), "occupant:dev@conference.example.com|mallory-occ"},
		{"archived, someone else under her nick", sayArchived("m4", "mallory-occ"), "occupant:dev@conference.example.com|mallory-occ"},
	} {
		if c.got != c.want {
			t.Errorf("%s: sender %s, want %s", c.what, c.got, c.want)
		}
	}
}

// The bridge remembers which occupant-ids have no address (so it does not
// ask the store again for every message of theirs), but a presence that
// shows one later wins: the next message is by address.
func TestAnAddressShownLaterReplacesItsAbsence(t *testing.T) {
	ctx := context.Background()
	b, _, rec := newInProcessBridge(t)
	say := func(id string) string {
		t.Helper()
		b.handleMessage(ctx, fmt.Appendf(nil, `<message from="dev@conference.example.com/Erin" type="groupchat" id=%q><body>hi</body><stanza-id xmlns="urn:xmpp:sid:0" id="s-%s" by="dev@conference.example.com"/><occupant-id xmlns="urn:xmpp:occupant-id:0" id="erin-occ"/></message>`, id, id))
		evs := rec.take()
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", id, len(evs))
		}
		return evs[0].Sender.ID
	}
	if got := say("m1"); got != "occupant:dev@conference.example.com|erin-occ" {
		t.Fatalf("before any address: sender %s", got)
	}
	b.handlePresence([]byte(`<presence from="dev@conference.example.com/Erin"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="participant" jid="erin@example.com/laptop"/></x><occupant-id xmlns="urn:xmpp:occupant-id:0" id="erin-occ"/></presence>`))
	b.handlePresence([]byte(`<presence from="dev@conference.example.com/Erin" type="unavailable"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member" role="none"/></x></presence>`))
	if got := say("m2"); got != "jid:erin@example.com" {
		t.Errorf("after her presence showed her address: sender %s", got)
	}
}
