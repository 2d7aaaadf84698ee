package xmpp

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// archived wraps a groupchat message from the room in a MAM result as
// someone (from) sends it to the bridge.
func archived(from, queryID, archiveID, inner string) []byte {
	return fmt.Appendf(nil, `<message from=%q to="bridge@bridge.example.com/mattermost"><result xmlns="urn:xmpp:mam:2" queryid=%q id=%q><forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2026-01-02T03:04:05Z"/>%s</forwarded></result></message>`,
		from, queryID, archiveID, inner)
}

const ceoSays = `<message xmlns="jabber:client" from="dev@conference.example.com/ceo" type="groupchat" id="c1"><body>wire the money</body></message>`

// Issue 8 item 1: a MAM result counts only from the archive the bridge
// queried, for a query it issued and has not finished.
func TestForgedArchiveResultsAreIgnored(t *testing.T) {
	ctx := context.Background()
	b, st, rec := newInProcessBridge(t)
	cursor := func() string {
		v, _, _ := st.GetCursor(string(b.Network()), archiveCursorName(testRoom.String()))
		return v
	}
	b.saveArchivePosition(testRoom.String(), "pos-0")

	forged := map[string][]byte{
		"from an outsider":                          archived("mallory@example.com/phone", "q1", "a1", ceoSays),
		"to the domain, from the outsider's server": archived("example.com", "q1", "a2", ceoSays),
		"a retraction from an outsider": archived("mallory@example.com/phone", "q1", "a3",
			`<message xmlns="jabber:client" from="dev@conference.example.com/Carol" type="groupchat" id="r1"><retract xmlns="urn:xmpp:message-retract:1" id="carol-1"/><body>retracted</body></message>`),
		"from the room, for no query of ours": archived("dev@conference.example.com", "never-issued", "a4", ceoSays),
		"from an occupant's full JID":         archived("dev@conference.example.com/Carol", "q1", "a5", ceoSays),
	}
	for name, raw := range forged {
		b.handleMessage(ctx, raw)
		if evs := rec.take(); len(evs) != 0 {
			t.Errorf("%s: relayed %+v", name, evs)
		}
		if got := cursor(); got != "pos-0" {
			t.Errorf("%s: moved the archive position to %q", name, got)
		}
	}
}

// A result counts from the room the bridge asked, for as long as the query
// is open; the same stanza after the answer, or from anyone else with the
// right query ID, is ignored.
func TestArchiveResultsCountOnlyForOpenQueries(t *testing.T) {
	ctx := context.Background()
	b, st, rec := newInProcessBridge(t)
	cursor := func() string {
		v, _, _ := st.GetCursor(string(b.Network()), archiveCursorName(testRoom.String()))
		return v
	}
	other, _ := b.openArchiveQuery(testRoom, false)
	b.handleMessage(ctx, archived("mallory@example.com/phone", other, "a0", ceoSays))
	b.handleMessage(ctx, archived("other@conference.example.com", other, "a0", `<message xmlns="jabber:client" from="other@conference.example.com/ceo" type="groupchat" id="c0"><body>elsewhere</body></message>`))
	b.handleMessage(ctx, archived("dev@conference.example.com", other, "a0", `<message xmlns="jabber:client" from="other@conference.example.com/ceo" type="groupchat" id="c0"><body>not this room's</body></message>`))
	if evs := rec.take(); len(evs) != 0 {
		t.Fatalf("a result with our query ID from the wrong archive was relayed: %+v", evs)
	}

	b.handleMessage(ctx, archived("dev@conference.example.com", other, "a1", ceoSays))
	evs := rec.take()
	if len(evs) != 1 || evs[0].Text != "wire the money" || evs[0].Sender.Username != "ceo" || evs[0].Origin.ID != "a1" {
		t.Fatalf("the room's own answer: %+v", evs)
	}
	if cursor() != "a1" {
		t.Fatalf("archive position %q after the room's answer", cursor())
	}

	b.finishArchiveQuery(other)
	b.handleMessage(ctx, archived("dev@conference.example.com", other, "a2", ceoSays))
	if evs := rec.take(); len(evs) != 0 || cursor() != "a1" {
		t.Fatalf("a result for a finished query was taken: %+v, position %q", evs, cursor())
	}

	position, _ := b.openArchiveQuery(testRoom, true)
	b.handleMessage(ctx, archived("dev@conference.example.com", position, "a3", ceoSays))
	if evs := rec.take(); len(evs) != 0 {
		t.Fatalf("a position-only query's result was relayed: %+v", evs)
	}
	if got := b.Health().Detail; !strings.Contains(got, "4 archive results ignored") {
		t.Fatalf("status detail %q does not count the ignored results", got)
	}
}

// Only the room answers for a message the bridge sent there: a bounce or an
// echo with the same ID from anyone else neither fails nor resolves it.
func TestReflectionsOnlyFromTheRoom(t *testing.T) {
	ctx := context.Background()
	b, _, _ := newInProcessBridge(t)
	wait := make(chan string, 1)
	b.reflections["mm-1"] = wait
	for _, raw := range []string{
		`<message from="mallory@example.com/phone" type="error" id="mm-1"><error type="cancel"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
		`<message from="other@conference.example.com" type="error" id="mm-1"><error type="cancel"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
	} {
		b.handleMessage(ctx, []byte(raw))
	}
	b.handleGhostMessage([]byte(`<message from="mallory@example.com/phone" type="chat" id="mm-1"><body>x</body><stanza-id xmlns="urn:xmpp:sid:0" id="bogus" by="mallory@example.com"/></message>`))
	select {
	case got := <-wait:
		t.Fatalf("an outsider answered for the room: %q", got)
	default:
	}
	b.handleMessage(ctx, []byte(`<message from="dev@conference.example.com" type="error" id="mm-1"><error type="cancel"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`))
	if got := <-wait; !strings.HasPrefix(got, "error:") {
		t.Fatalf("the room's bounce gave %q", got)
	}
}
