package main

import (
	"slices"
	"testing"
	"time"
)

func hookIDs(fs []forwarded) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

// A hook no holder acknowledges is handed on again with every hook after
// it, in the order they fired, until one does or the outbox gives up.
func TestOutboxHandsHooksOnAgainInOrderUntilAcknowledged(t *testing.T) {
	var o outbox
	t0 := time.Unix(1000, 0)
	at := t0.Add

	// Acknowledged at once: nothing to hand on again.
	if !o.add(forwarded{ID: "a"}, at(0)) {
		t.Fatal("the first hook waits")
	}
	o.ack("a")
	if again, _ := o.due(at(time.Second)); len(again) != 0 {
		t.Fatalf("acknowledged hooks handed on again: %v", hookIDs(again))
	}

	// b goes unanswered (no holder); c, fired before b is overdue, goes
	// out at once; d, after, waits so as not to pass b.
	if !o.add(forwarded{ID: "b"}, at(2*time.Second)) {
		t.Fatal("b waits")
	}
	if !o.add(forwarded{ID: "c"}, at(2*time.Second+hookResend/2)) {
		t.Fatal("c waits though b is not overdue yet")
	}
	if o.add(forwarded{ID: "d"}, at(2*time.Second+hookResend)) {
		t.Error("d goes out before the overdue b")
	}
	if again, _ := o.due(at(2*time.Second + hookResend/4)); len(again) != 0 {
		t.Errorf("handed on again before hookResend: %v", hookIDs(again))
	}
	again, _ := o.due(at(2*time.Second + hookResend))
	if got := hookIDs(again); !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Errorf("handed on again: %v, want b c d", got)
	}
	// A holder acknowledges c and b; d is left, and handed on alone.
	o.ack("c")
	o.ack("b")
	again, _ = o.due(at(2*time.Second + 2*hookResend))
	if got := hookIDs(again); !slices.Equal(got, []string{"d"}) {
		t.Errorf("handed on again: %v, want d", got)
	}

	// Past hookGiveUp the outbox stops and says so.
	again, dropped := o.due(at(2*time.Second + hookResend + hookGiveUp))
	if len(again) != 0 || !slices.Equal(hookIDs(dropped), []string{"d"}) {
		t.Errorf("after hookGiveUp: again %v, dropped %v", hookIDs(again), hookIDs(dropped))
	}

	// A node that takes the bridge handles what it kept itself.
	o.add(forwarded{ID: "e"}, at(time.Hour))
	o.add(forwarded{ID: "f"}, at(time.Hour))
	if got := hookIDs(o.takeAll()); !slices.Equal(got, []string{"e", "f"}) {
		t.Errorf("takeAll: %v", got)
	}
	if again, _ := o.due(at(2 * time.Hour)); len(again) != 0 {
		t.Errorf("left after takeAll: %v", hookIDs(again))
	}
}
