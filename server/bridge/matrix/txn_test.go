package matrix

import (
	"net/http"
	"slices"
	"testing"
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
