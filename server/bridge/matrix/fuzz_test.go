package matrix

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// fuzzRoom is the linked room of the fuzz target.
const fuzzRoom = "!room:example.org"

// transactionSeeds are transaction bodies as Dendrite pushes them: each
// kind of event the bridge reads, the member events it watches, and junk.
var transactionSeeds = []string{
	textEvent,
	`{"events":[{"type":"m.room.message","room_id":"!room:example.org","event_id":"$h1","sender":"@carol:example.org","origin_server_ts":1700000000000,"content":{"msgtype":"m.text","body":"hi bob","format":"org.matrix.custom.html","formatted_body":"hi <a href=\"https://matrix.to/#/@mm_bob:example.org\">Bob</a> <b>now</b>"}}]}`,
	`{"events":[{"type":"m.room.message","room_id":"!room:example.org","event_id":"$edit","sender":"@carol:example.org","origin_server_ts":1700000000001,"content":{"msgtype":"m.text","body":"* fixed","m.new_content":{"msgtype":"m.text","body":"fixed"},"m.relates_to":{"rel_type":"m.replace","event_id":"$e1"}}}]}`,
	`{"events":[{"type":"m.room.redaction","room_id":"!room:example.org","event_id":"$red","sender":"@carol:example.org","origin_server_ts":1700000000002,"redacts":"$e1","content":{"redacts":"$e1","reason":"oops"}}]}`,
	`{"events":[{"type":"m.reaction","room_id":"!room:example.org","event_id":"$re1","sender":"@dave:example.org","origin_server_ts":1700000000003,"content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$e1","key":"👍"}}},` +
		`{"type":"m.room.redaction","room_id":"!room:example.org","event_id":"$re2","sender":"@dave:example.org","origin_server_ts":1700000000004,"redacts":"$re1","content":{}}]}`,
	`{"events":[{"type":"m.room.message","room_id":"!room:example.org","event_id":"$reply","sender":"@carol:example.org","origin_server_ts":1700000000005,"content":{"msgtype":"m.text","body":"> <@dave:example.org> q\n\nanswer","m.relates_to":{"m.in_reply_to":{"event_id":"$e1"}}}},` +
		`{"type":"m.room.message","room_id":"!room:example.org","event_id":"$thr","sender":"@carol:example.org","origin_server_ts":1700000000006,"content":{"msgtype":"m.text","body":"in thread","m.relates_to":{"rel_type":"m.thread","event_id":"$e1","is_falling_back":true,"m.in_reply_to":{"event_id":"$e1"}}}}]}`,
	`{"events":[{"type":"m.room.message","room_id":"!room:example.org","event_id":"$img","sender":"@carol:example.org","origin_server_ts":1700000000007,"content":{"msgtype":"m.image","body":"cat.png","filename":"cat.png","url":"mxc://example.org/abc","info":{"mimetype":"image/png","size":1234}}},` +
		`{"type":"m.sticker","room_id":"!room:example.org","event_id":"$st","sender":"@carol:example.org","origin_server_ts":1700000000008,"content":{"body":"sticker","url":"mxc://example.org/st"}},` +
		`{"type":"m.room.message","room_id":"!room:example.org","event_id":"$me","sender":"@carol:example.org","origin_server_ts":1700000000009,"content":{"msgtype":"m.emote","body":"waves"}}]}`,
	`{"events":[{"type":"m.room.member","room_id":"!room:example.org","event_id":"$m1","sender":"@carol:example.org","state_key":"@carol:example.org","origin_server_ts":1,"content":{"membership":"join","displayname":"Carol <b>J</b>","avatar_url":"mxc://example.org/av"}},` +
		`{"type":"m.room.member","room_id":"!other:example.org","event_id":"$m2","sender":"@carol:example.org","state_key":"@mattermostbridge:example.org","origin_server_ts":1,"content":{"membership":"invite"}},` +
		`{"type":"m.room.member","room_id":"!afar:evil.example","event_id":"$m3","sender":"@mallory:evil.example","state_key":"@mattermostbridge:example.org","origin_server_ts":1,"content":{"membership":"invite"}}]}`,
	// Names claimed in content or unsigned are not the sender.
	`{"events":[{"type":"m.room.message","room_id":"!room:example.org","event_id":"$claim","sender":"@mallory:evil.example","origin_server_ts":1,"unsigned":{"sender":"@mm_alice:example.org"},"content":{"msgtype":"m.text","body":"as alice","sender":"@carol:example.org","displayname":"Alice"}}]}`,
	// Echoes of the bot and of a puppet.
	`{"events":[{"type":"m.room.message","room_id":"!room:example.org","event_id":"$echo","sender":"@mm_alice:example.org","origin_server_ts":1,"content":{"msgtype":"m.text","body":"echo"}},` +
		`{"type":"m.room.message","room_id":"!room:example.org","event_id":"$echo2","sender":"@mattermostbridge:example.org","origin_server_ts":1,"content":{"msgtype":"m.text","body":"echo"}}]}`,
	`{"events":[],"ephemeral":[{"type":"m.typing","room_id":"!room:example.org","content":{"user_ids":["@carol:example.org"]}}]}`,
	`{"events":[{"type":"m.room.message","room_id":"!room:example.org","sender":"@carol:example.org","content":{"body":"no id"}},{"type":"m.reaction","room_id":"!room:example.org","event_id":"$r","sender":"@carol:example.org","content":{}},null,{}]}`,
	`{"events":[`, `[1,2,3]`, `{"events":"nope"}`, `{}`, `null`, ``,
}

// fuzzHomeserver answers the bot's requests like a homeserver: profiles
// with a hostile name, everything else with a room ID. It keeps the
// requests that change something.
type fuzzHomeserver struct {
	mu     sync.Mutex
	writes []string // "METHOD path"
}

func (h *fuzzHomeserver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		h.mu.Lock()
		h.writes = append(h.writes, r.Method+" "+r.URL.Path)
		h.mu.Unlock()
	}
	if strings.Contains(r.URL.Path, "/state/m.room.member/") {
		_, _ = w.Write([]byte(`{"membership":"join","displayname":"@channel <img src=x> Admin","avatar_url":"mxc://example.org/av"}`))
		return
	}
	_, _ = w.Write([]byte(`{"room_id":"` + fuzzRoom + `"}`))
}

// handlerTransport hands requests straight to a handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

func (h *fuzzHomeserver) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.writes
	h.writes = nil
	return out
}

// FuzzTransaction pushes arbitrary bodies at the transaction endpoint with
// the right hs_token, as the homeserver would. Whatever the body: no panic;
// a body that is not a transaction gets 400 and changes nothing; every event
// handed to the core speaks as the sender of the event it came from (never
// a name from content, unsigned data or a profile) and is not the
// bridge's own echo; the bot joins a room only on an invitation from its
// own homeserver and leaves none that is linked.
func FuzzTransaction(f *testing.F) {
	for _, s := range transactionSeeds {
		f.Add(s)
	}
	hs := &fuzzHomeserver{}
	n := 0
	f.Fuzz(func(t *testing.T, body string) {
		st := newMemStore()
		st.rooms[fuzzRoom] = "channel"
		b, err := New(testConfig("http://homeserver.invalid"), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		// In process, not over loopback: many more executions a second.
		b.as.HTTPClient.Transport = handlerTransport{hs}
		// Running without Start: no background homeserver check.
		sink := &recordingSink{}
		b.sink = sink
		hs.take()
		n++
		txnID := "fuzz" + strconv.Itoa(n)
		w := put(b, "/_matrix/app/v1/transactions/"+txnID, b.cfg.HSToken, body)
		writes := hs.take()

		var txn appservice.Transaction
		if err := json.Unmarshal([]byte(body), &txn); err != nil {
			if w.Code != http.StatusBadRequest {
				t.Fatalf("a body that is no transaction (%v) answered %d", err, w.Code)
			}
			if len(sink.events) != 0 || len(writes) != 0 || st.seen[nsTxn+"|"+txnID] {
				t.Fatalf("a body that is no transaction changed something: events %+v, requests %q", sink.events, writes)
			}
			return
		}
		if w.Code != http.StatusOK {
			// Anything else makes the homeserver resend it forever.
			t.Fatalf("a transaction answered %d: %s", w.Code, w.Body)
		}
		if len(sink.events) > len(txn.Events) {
			t.Fatalf("%d events from a transaction of %d", len(sink.events), len(txn.Events))
		}
		for _, ev := range sink.events {
			checkSender(t, b, ev, txn.Events)
		}
		checkBotMoves(t, b, writes, txn.Events)
	})
}

// checkSender fails unless ev speaks as the sender of an event with its ID
// in its room.
func checkSender(t *testing.T, b *Bridge, ev bridge.Event, events []*event.Event) {
	t.Helper()
	if ev.Sender.Network != bridge.NetworkMatrix || ev.Origin.Network != bridge.NetworkMatrix {
		t.Fatalf("event from network %q/%q", ev.Sender.Network, ev.Origin.Network)
	}
	for _, e := range events {
		if e != nil && string(e.ID) == ev.Origin.ID && string(e.RoomID) == ev.Origin.Room && string(e.Sender) == ev.Sender.ID {
			if e.Sender == b.bot || b.ownsUser(e.Sender) {
				t.Fatalf("the bridge's own %s came back as %+v", e.Sender, ev)
			}
			return
		}
	}
	t.Fatalf("%s event %s in %s speaks as %q, which is not its sender", ev.Kind, ev.Origin.ID, ev.Origin.Room, ev.Sender.ID)
}

// checkBotMoves fails on any change the bot asked of the homeserver except
// registering itself, joining the linked room or one on an invitation from its own server, or leaving an unlinked room
// on one from elsewhere.
func checkBotMoves(t *testing.T, b *Bridge, writes []string, events []*event.Event) {
	t.Helper()
	invited := func(room string, allowed bool) bool {
		for _, e := range events {
			if e != nil && e.Type == event.StateMember && string(e.RoomID) == room && e.StateKey != nil && *e.StateKey == string(b.bot) &&
				isInvite(e) && b.mayInvite(e.Sender) == allowed {
				return true
			}
		}
		return false
	}
	for _, wr := range writes {
		if wr == "POST /_matrix/client/v3/register" {
			continue // mautrix makes sure the bot exists before it first acts
		}
		method, path, _ := strings.Cut(wr, " ")
		rest, ok := strings.CutPrefix(path, "/_matrix/client/v3/rooms/")
		if !ok || method != http.MethodPost {
			t.Fatalf("unexpected request %s", wr)
		}
		switch {
		case strings.HasSuffix(rest, "/join"):
			// Reading a profile makes sure the bot is in the (linked) room.
			if room := strings.TrimSuffix(rest, "/join"); room != fuzzRoom && !invited(room, true) {
				t.Fatalf("the bot joined %q uninvited or on an invitation from elsewhere", room)
			}
		case strings.HasSuffix(rest, "/leave"):
			room := strings.TrimSuffix(rest, "/leave")
			if room == fuzzRoom || !invited(room, false) {
				t.Fatalf("the bot left %q", room)
			}
		default:
			t.Fatalf("unexpected request %s", wr)
		}
	}
}

// isInvite reads an m.room.member event's membership as the bridge does:
// encoding/json matches keys regardless of case ("memBership" counts).
func isInvite(e *event.Event) bool {
	var c event.MemberEventContent
	return json.Unmarshal(e.Content.VeryRaw, &c) == nil && c.Membership == event.MembershipInvite
}
