package xmpp

import (
	"context"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Issue 10: a XEP-0201 thread (the <thread/> clients such as slixmpp's
// put on each message of a conversation) is a Mattermost thread: its first
// message seen is the root, later ones reply to it; a XEP-0461 reply says
// what it replies to itself. The first message read again (a catch-up)
// does not become a reply to itself.
func TestThreadsJoinTheirFirstMessage(t *testing.T) {
	ctx := context.Background()
	b, _, rec := newInProcessBridge(t)
	const from = `from="dev@conference.example.com/Carol" type="groupchat"`
	const occ = `<occupant-id xmlns="urn:xmpp:occupant-id:0" id="carol-occ"/>`
	msg := func(id, inner string) string {
		return `<message ` + from + ` id="` + id + `">` + inner + `<stanza-id xmlns="urn:xmpp:sid:0" id="s-` + id + `" by="dev@conference.example.com"/>` + occ + `</message>`
	}
	for _, raw := range []string{
		msg("m1", `<body>starts</body><thread>t1</thread>`),
		msg("m2", `<body>goes on</body><thread>t1</thread>`),
		msg("m3", `<body>elsewhere</body><thread>t2</thread>`),
		msg("m4", `<body>answers</body><thread>t1</thread><reply xmlns="urn:xmpp:reply:0" id="s-m3"/>`),
		msg("m5", `<body>no thread</body>`),
		msg("m1", `<body>starts</body><thread>t1</thread>`),
	} {
		b.handleMessage(ctx, []byte(raw))
	}
	var got []string
	for _, ev := range rec.take() {
		if ev.Kind == bridge.KindMessage {
			got = append(got, ev.Text+"<"+ev.Parent)
		}
	}
	want := []string{"starts<", "goes on<s-m1", "elsewhere<", "answers<s-m3", "no thread<", "starts<"}
	if len(got) != len(want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("messages %q, want %q", got, want)
		}
	}
}
