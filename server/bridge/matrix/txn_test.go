package matrix

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"
)

// A transaction ID says nothing by itself: Synapse on SQLite numbers its
// transactions again from 1 after a restart. A transaction whose ID was
// seen is skipped only when it carries the same events; new events under
// an old ID are handed on.
func TestTransactionIDsReusedForNewEventsAreHandled(t *testing.T) {
	st := newMemStore()
	st.rooms["!room:example.org"] = "channel"
	b, sink, _ := startOn(t, http.NotFoundHandler(), st)

	first := txnOf(says("$e1", "@carol:example.org", "one"), says("$e2", "@carol:example.org", "two"))
	mustPut(t, b, "1", first, http.StatusOK)
	// The homeserver sends it again (an answer lost on the way): nothing
	// new.
	mustPut(t, b, "1", first, http.StatusOK)
	// After a restart: the same IDs, new events.
	mustPut(t, b, "1", txnOf(says("$e3", "@carol:example.org", "three")), http.StatusOK)
	mustPut(t, b, "2", txnOf(says("$e4", "@carol:example.org", "four")), http.StatusOK)
	mustPut(t, b, "2", txnOf(says("$e4", "@carol:example.org", "four")), http.StatusOK)
	if got, want := sink.ids(), []string{"$e1", "$e2", "$e3", "$e4"}; !slices.Equal(got, want) {
		t.Fatalf("handed on %q, want %q", got, want)
	}
}

// The redaction of the bot's self-check event arriving in a transaction
// proves the homeserver pushes redactions: the bot's sync is not read for
// them any more, in this run or the next. Other redactions prove nothing
// (anyone with the hs_token could send them).
func TestPushedSelfCheckRedactionEndsTheSyncForGood(t *testing.T) {
	st := newMemStore()
	st.rooms["!room:example.org"] = "channel"
	b, _, _ := startOn(t, http.NotFoundHandler(), st)
	b.mu.Lock()
	b.probeRoom = "!check:example.org"
	b.mu.Unlock()
	redaction := func(room, sender string) string {
		return `{"type":"m.room.redaction","room_id":"` + room + `","event_id":"$d` + room + sender + `","sender":"` + sender +
			`","origin_server_ts":1700000000000,"redacts":"$p","content":{"redacts":"$p"}}`
	}
	mustPut(t, b, "1", txnOf(redaction("!room:example.org", "@carol:example.org"), redaction("!room:example.org", string(b.bot)),
		redaction("!check:example.org", "@carol:example.org")), http.StatusOK)
	if b.redactionsPushed() {
		t.Fatal("redactions taken for pushed without the self-check's")
	}
	mustPut(t, b, "2", txnOf(redaction("!check:example.org", string(b.bot))), http.StatusOK)
	if !b.redactionsPushed() {
		t.Fatal("the self-check's pushed redaction was not noticed")
	}

	// The next start, with the same homeserver, does not read the sync at
	// all.
	b2, err := New(b.cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		b2.followRedactions(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the next start reads the sync for redactions")
	}
}
