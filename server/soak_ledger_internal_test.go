package main

import (
	"testing"
	"time"
)

// The soak's verdict is only as good as its books: a loss, a double, a
// message overtaken and an echo must each land where they belong.
func TestSoakLedgerCountsLossesDoublesAndReorders(t *testing.T) {
	l := newSoakLedger()
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	to := []string{"xmpp", "matrix"}
	for i, tag := range []string{"a", "b", "c", "d"} {
		l.send(tag, "mattermost", 1, i, ms(i), to)
	}
	// Watchers see when copies come (the first sight counts) ...
	l.arrived("a", "xmpp", ms(10))
	l.arrived("c", "xmpp", ms(12))
	l.arrived("b", "xmpp", ms(13))
	l.arrived("d", "xmpp", ms(14))
	l.arrived("d", "xmpp", ms(40))
	l.arrived("a", "matrix", ms(20))
	l.arrived("b", "matrix", ms(21))
	// ... the sides' records say what is there: xmpp has a, c, b (b
	// overtaken by c) and d twice; matrix a and b only. An echo and a
	// stranger are not the ledger's.
	l.recount("xmpp", []string{"a", "c", "b", "zz", "d", "d"})
	l.recount("matrix", []string{"a", "b"})
	l.recount("mattermost", []string{"a", "b", "c", "d"})
	if l.complete() {
		t.Fatal("complete with c and d missing from matrix")
	}
	got := l.report()
	want := []soakPathReport{
		{From: "mattermost", To: "matrix", Sent: 4, Received: 2, Lost: 2, P50Ms: 20, P99Ms: 20},
		{From: "mattermost", To: "xmpp", Sent: 4, Received: 4, Duplicated: 1, Reordered: 1, P50Ms: 10, P99Ms: 12},
	}
	if len(got) != len(want) {
		t.Fatalf("report = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("path %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// A later record replaces the earlier one.
	l.recount("matrix", []string{"a", "b", "c", "d"})
	if !l.complete() {
		t.Error("not complete with every copy in")
	}
	l.recount("xmpp", []string{"a", "b", "c"})
	got = l.report()
	if want := (soakPathReport{From: "mattermost", To: "xmpp", Sent: 4, Received: 3, Lost: 1, P50Ms: 10, P99Ms: 12}); got[1] != want {
		t.Errorf("after the recount: %+v, want %+v", got[1], want)
	}
	if l.complete() {
		t.Error("complete with d missing from the XMPP record")
	}
}
