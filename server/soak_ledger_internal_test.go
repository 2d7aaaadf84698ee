package main

import (
	"strings"
	"testing"
	"time"
)

func copiesOf(tags ...string) []soakCopy {
	out := make([]soakCopy, 0, len(tags))
	for _, tag := range tags {
		out = append(out, soakCopy{Tag: tag})
	}
	return out
}

// The soak's verdict is only as good as its books: a loss, a double, a
// message overtaken, an edit or a delete not carried out, and an echo
// must each land where they belong.
func TestSoakLedgerCountsLossesDoublesReordersEditsAndDeletes(t *testing.T) {
	l := newSoakLedger()
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	to := []string{"xmpp", "matrix"}
	for i, tag := range []string{"a", "b", "c", "d", "e", "f"} {
		l.send(tag, "mattermost", 1, i, ms(i), to)
	}
	l.edit("e")
	l.remove("f")
	l.react("a")
	l.reply("d", "b")
	// Watchers see when copies come (the first sight counts) ...
	l.arrived("a", "xmpp", ms(10))
	l.arrived("c", "xmpp", ms(12))
	l.arrived("b", "xmpp", ms(13))
	l.arrived("d", "xmpp", ms(14))
	l.arrived("d", "xmpp", ms(40))
	l.arrived("a", "matrix", ms(20))
	l.arrived("b", "matrix", ms(21))
	// ... the sides' records say what is there: xmpp has a, c, b (b
	// overtaken by c), d twice, e edited and f retracted; matrix a and b,
	// e unedited and f still there. An echo and a stranger are not the
	// ledger's.
	// a has its reaction on xmpp only; d is in b's thread on xmpp, once
	// of its two copies.
	l.recount("xmpp", []soakCopy{{Tag: "a", Reacted: true}, {Tag: "c"}, {Tag: "b"}, {Tag: "zz"}, {Tag: "d", Parent: "b"}, {Tag: "d"},
		{Tag: "e", Edited: true}, {Tag: "f", Gone: true}})
	l.recount("matrix", copiesOf("a", "b", "e", "f"))
	l.recount("mattermost", copiesOf("a", "b", "c", "d"))
	if l.complete() {
		t.Fatal("complete with c and d missing from matrix")
	}
	got := l.report()
	want := []soakPathReport{
		{From: "mattermost", To: "matrix", Sent: 5, Received: 3, Lost: 2, P50Ms: 20, P99Ms: 20, Edits: 1, EditsMissed: 1, Deletes: 1, DeletesMissed: 1,
			Reactions: 1, ReactionsMissed: 1, Replies: 1},
		{From: "mattermost", To: "xmpp", Sent: 5, Received: 5, Duplicated: 1, Reordered: 1, P50Ms: 10, P99Ms: 12, Edits: 1, Deletes: 1,
			Reactions: 1, Replies: 1, Misplaced: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("report = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("path %d = %+v\nwant %+v", i, got[i], want[i])
		}
	}
	wantMisses := []string{
		"mattermost -> matrix: reaction missed: a",
		"mattermost -> matrix: lost: c",
		"mattermost -> xmpp: duplicated: d",
		"mattermost -> xmpp: out of its thread: d",
		"mattermost -> matrix: lost: d",
		"mattermost -> matrix: edit missed: e",
		"mattermost -> matrix: delete missed: f",
	}
	if got := l.misses(5); strings.Join(got, "\n") != strings.Join(wantMisses, "\n") {
		t.Errorf("misses:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantMisses, "\n"))
	}
	// A later record replaces the earlier one.
	whole := []soakCopy{{Tag: "a", Reacted: true}, {Tag: "b"}, {Tag: "c"}, {Tag: "d", Parent: "b"}, {Tag: "e", Edited: true}}
	l.recount("matrix", whole)
	l.recount("xmpp", whole)
	if !l.complete() {
		t.Errorf("not complete with every copy in: %+v", l.report())
	}
	l.recount("xmpp", append([]soakCopy{{Tag: "a", Reacted: true}}, copiesOf("b", "c", "e")...))
	got = l.report()
	if want := (soakPathReport{From: "mattermost", To: "xmpp", Sent: 5, Received: 4, Lost: 1, P50Ms: 10, P99Ms: 12, Edits: 1, EditsMissed: 1, Deletes: 1,
		Reactions: 1, Replies: 1}); got[1] != want {
		t.Errorf("after the recount: %+v\nwant %+v", got[1], want)
	}
	if l.complete() {
		t.Error("complete with d missing and e unedited in the XMPP record")
	}
}
