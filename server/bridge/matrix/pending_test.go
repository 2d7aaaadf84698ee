package matrix

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// holdingSink keeps what it receives, the way the core queues it: the test
// says when an event settled.
type holdingSink struct {
	mu     sync.Mutex
	events []bridge.Event
	err    error
}

func (s *holdingSink) Receive(_ context.Context, ev bridge.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.events = append(s.events, ev)
	return nil
}

func (s *holdingSink) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// ids are the origin IDs of the events received, in order.
func (s *holdingSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range s.events {
		out = append(out, ev.Origin.ID)
	}
	return out
}

// settle says every event received with origin ID eventID settled.
func (s *holdingSink) settle(eventID string) {
	s.mu.Lock()
	var calls []func()
	for _, ev := range s.events {
		if ev.Origin.ID == eventID && ev.Settled != nil {
			calls = append(calls, ev.Settled)
		}
	}
	s.mu.Unlock()
	for _, f := range calls {
		f()
	}
}

// logLines keeps the warnings a bridge logs.
type logLines struct {
	bridge.NopLogger
	mu    sync.Mutex
	warns []string
}

func (l *logLines) Warn(msg string, kv ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.warns = append(l.warns, fmt.Sprint(append([]any{msg}, kv...)...))
}

func (l *logLines) said(part string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.warns, func(w string) bool { return strings.Contains(w, part) })
}

// startOn starts a bridge over st, its homeserver hs, as a plugin
// (re)activation does.
func startOn(t *testing.T, hs http.Handler, st *memStore) (*Bridge, *holdingSink, *logLines) {
	t.Helper()
	srv := httptest.NewServer(hs)
	t.Cleanup(srv.Close)
	logs := &logLines{}
	b, err := New(testConfig(srv.URL), st, logs)
	if err != nil {
		t.Fatal(err)
	}
	b.profiles["!room:example.org|@carol:example.org"] = profile{Name: "Carol"}
	sink := &holdingSink{}
	if err := b.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return b, sink, logs
}

func eventJSON(typ, eventID, sender, content string) string {
	return `{"type":"` + typ + `","room_id":"!room:example.org","event_id":"` + eventID + `","sender":"` + sender +
		`","origin_server_ts":1700000000000,"content":` + content + `}`
}

func says(eventID, sender, text string) string {
	return eventJSON("m.room.message", eventID, sender, `{"msgtype":"m.text","body":"`+text+`"}`)
}

func txnOf(events ...string) string { return `{"events":[` + strings.Join(events, ",") + `]}` }

// pendingEvents are the event IDs in st's pending records, record by
// record.
func (m *memStore) pendingEvents() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k, v := range m.pending {
		if strings.HasPrefix(k, nsPending+"|") {
			var ids []string
			for _, part := range strings.Split(string(v), `"event_id":"`)[1:] {
				ids = append(ids, part[:strings.IndexByte(part, '"')])
			}
			out = append(out, strings.Join(ids, " "))
		}
	}
	slices.Sort(out)
	return out
}

func mustPut(t *testing.T, b *Bridge, txnID, body string, want int) {
	t.Helper()
	if w := put(b, "/_matrix/app/v1/transactions/"+txnID, b.cfg.HSToken, body); w.Code != want {
		t.Fatalf("transaction %s answered %d %s, want %d", txnID, w.Code, w.Body, want)
	}
}

// A transaction's events handed on stay in a pending record until every
// one of them settled; what the bridge skips costs no record.
func TestPendingRecordLifecycle(t *testing.T) {
	st := newMemStore()
	st.rooms["!room:example.org"] = "channel"
	b, sink, _ := startOn(t, http.NotFoundHandler(), st)

	member := `{"type":"m.room.member","room_id":"!room:example.org","event_id":"$m","sender":"@carol:example.org","state_key":"@carol:example.org","content":{"membership":"join"}}`
	mustPut(t, b, "t1", txnOf(says("$e1", "@carol:example.org", "one"), says("$own", "@mm_alice:example.org", "echo"), member,
		says("$e2", "@carol:example.org", "two")), http.StatusOK)
	if got := st.pendingEvents(); !slices.Equal(got, []string{"$e1 $e2"}) {
		t.Fatalf("pending records after t1: %q", got)
	}
	mustPut(t, b, "t2", txnOf(says("$own2", "@mm_alice:example.org", "echo"), member), http.StatusOK)
	if got := st.pendingEvents(); len(got) != 1 {
		t.Fatalf("a transaction of skipped events left a record: %q", got)
	}

	sink.settle("$e1")
	if got := st.pendingEvents(); len(got) != 1 {
		t.Fatalf("the record went with one event of two settled: %q", got)
	}
	sink.settle("$e2")
	if got := st.pendingEvents(); len(got) != 0 {
		t.Fatalf("the record stayed after every event settled: %q", got)
	}

	// Refused by a full queue: the homeserver sends it again, and nothing
	// is kept meanwhile.
	sink.fail(bridge.ErrQueueFull)
	mustPut(t, b, "t3", txnOf(says("$e3", "@carol:example.org", "three")), http.StatusInternalServerError)
	if got := st.pendingEvents(); len(got) != 0 {
		t.Fatalf("a refused transaction left a record: %q", got)
	}
}

// A start hands on again, before anything newer, what an earlier run
// accepted and did not settle; a room no longer linked drops its events
// with a warning.
func TestPendingRecordsAreHandedOnAgainFirst(t *testing.T) {
	st := newMemStore()
	st.rooms["!room:example.org"] = "channel"
	st.rooms["!gone:example.org"] = "other"
	first, _, _ := startOn(t, http.NotFoundHandler(), st)
	mustPut(t, first, "t1", txnOf(says("$e1", "@carol:example.org", "one")), http.StatusOK)
	time.Sleep(time.Millisecond) // records sort by the time they were accepted
	gone := strings.ReplaceAll(says("$g1", "@carol:example.org", "unlinked"), "!room:", "!gone:")
	mustPut(t, first, "t2", txnOf(says("$e2", "@carol:example.org", "two"), gone), http.StatusOK)
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	delete(st.rooms, "!gone:example.org")

	b, sink, logs := startOn(t, http.NotFoundHandler(), st)
	// The homeserver never sends t1 again: it got a 200. Were it to, the
	// bridge would skip it.
	mustPut(t, b, "t1", txnOf(says("$e1", "@carol:example.org", "one")), http.StatusOK)
	mustPut(t, b, "t3", txnOf(says("$e3", "@carol:example.org", "three")), http.StatusOK)
	if got := sink.ids(); !slices.Equal(got, []string{"$e1", "$e2", "$e3"}) {
		t.Fatalf("handed on %q", got)
	}
	if !logs.said("$g1") {
		t.Error("no warning about the event of the unlinked room")
	}
	for _, id := range []string{"$e1", "$e2", "$e3"} {
		sink.settle(id)
	}
	if got := st.pendingEvents(); len(got) != 0 {
		t.Fatalf("records left after everything settled: %q", got)
	}
}

// While the records of an earlier run cannot be handed on (a full queue),
// newer transactions wait: answered 503, the homeserver keeps them.
func TestNewTransactionsWaitForTheCatchUp(t *testing.T) {
	st := newMemStore()
	st.rooms["!room:example.org"] = "channel"
	first, _, _ := startOn(t, http.NotFoundHandler(), st)
	mustPut(t, first, "t1", txnOf(says("$e1", "@carol:example.org", "one"), says("$e2", "@carol:example.org", "two")), http.StatusOK)
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	b, sink, _ := startOn(t, http.NotFoundHandler(), st)
	sink.fail(bridge.ErrQueueFull)
	mustPut(t, b, "t2", txnOf(says("$e3", "@carol:example.org", "three")), http.StatusServiceUnavailable)
	sink.fail(nil)
	mustPut(t, b, "t2", txnOf(says("$e3", "@carol:example.org", "three")), http.StatusOK)
	if got := sink.ids(); !slices.Equal(got, []string{"$e1", "$e2", "$e3"}) {
		t.Fatalf("handed on %q", got)
	}
	for _, id := range []string{"$e1", "$e2", "$e3"} {
		sink.settle(id)
	}
	if got := st.pendingEvents(); len(got) != 0 {
		t.Fatalf("records left after everything settled: %q", got)
	}
}

// A redaction counts as handed on once it settled, not when it was
// accepted: a restart before that hands it on again. While on its way it
// is not handed on a second time by the other path it comes by.
func TestRedactionIsHandledOnceSettled(t *testing.T) {
	st := newMemStore()
	st.rooms["!room:example.org"] = "channel"
	redaction := eventJSON("m.room.redaction", "$d1", "@carol:example.org", `{"redacts":"$e1"}`)
	first, firstSink, _ := startOn(t, &homeserverRecorder{}, st)
	mustPut(t, first, "t1", txnOf(redaction), http.StatusOK)
	mustPut(t, first, "t2", txnOf(redaction), http.StatusOK) // as read from the sync
	if got := firstSink.ids(); !slices.Equal(got, []string{"$d1"}) {
		t.Fatalf("handed on %q", got)
	}
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seen, _ := st.Seen(nsRedaction, "$d1"); seen {
		t.Fatal("the redaction counts as handled before it settled")
	}

	b, sink, _ := startOn(t, &homeserverRecorder{}, st)
	mustPut(t, b, "t3", txnOf(), http.StatusOK)
	if got := sink.ids(); !slices.Equal(got, []string{"$d1"}) {
		t.Fatalf("after a restart handed on %q", got)
	}
	if ev := sink.events[0]; ev.Kind != bridge.KindDelete || ev.Target != "$e1" {
		t.Fatalf("handed on %+v", ev)
	}
	sink.settle("$d1")
	if seen, _ := st.Seen(nsRedaction, "$d1"); !seen {
		t.Fatal("the settled redaction does not count as handled")
	}
	if got := st.pendingEvents(); len(got) != 0 {
		t.Fatalf("records left after everything settled: %q", got)
	}
	mustPut(t, b, "t4", txnOf(redaction), http.StatusOK)
	if got := sink.ids(); len(got) != 1 {
		t.Fatalf("a handled redaction was handed on again: %q", got)
	}
}
