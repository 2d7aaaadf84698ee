package bridge

import (
	"context"
	"slices"
	"testing"
)

// A busy stream's position is written once per flush, as its newest;
// Close writes what is due, and what settles after it is written at once.
func TestPositionsAreSavedNewestOnlyOncePerFlush(t *testing.T) {
	var saved []string
	save := func(key, pos string) func() { return func() { saved = append(saved, key+"="+pos) } }
	var p Positions
	for _, pos := range []string{"s1", "s2", "s3"} {
		p.Note("dev", save("dev", pos))
	}
	p.Note("ops", save("ops", "o1"))
	p.Flush()
	if want := []string{"dev=s3", "ops=o1"}; !slices.Equal(saved, want) {
		t.Fatalf("first flush saved %v, want %v", saved, want)
	}
	saved = nil
	p.Note("dev", save("dev", "s4"))
	p.Close()
	p.Note("dev", save("dev", "s5")) // a delivery settling after the stop
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.run(ctx) // nothing left for it
	if want := []string{"dev=s4", "dev=s5"}; !slices.Equal(saved, want) {
		t.Fatalf("the stop and after saved %v, want %v", saved, want)
	}
}
