package bridge

import (
	"slices"
	"sync"
	"testing"
)

type commits struct {
	mu  sync.Mutex
	got []string
}

func (c *commits) commit(pos string) {
	c.mu.Lock()
	c.got = append(c.got, pos)
	c.mu.Unlock()
}

func (c *commits) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

func TestWatermarkCommitsOnlyWhatEverythingBeforeHasSettled(t *testing.T) {
	var c commits
	w := NewWatermark(c.commit)
	a, b, d := w.Begin("a"), w.Begin("b"), w.Begin("d")
	b()
	if got := c.list(); len(got) != 0 {
		t.Fatalf("committed %v while a is unsettled", got)
	}
	a()
	if got := c.list(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("commits = %v, want [b]: a and b in one step", got)
	}
	a() // settling twice changes nothing
	d()
	if got := c.list(); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("commits = %v", got)
	}
	if w.Pending() != 0 {
		t.Fatalf("pending = %d", w.Pending())
	}
}

func TestWatermarkResetForgetsWhatWasInFlight(t *testing.T) {
	var c commits
	w := NewWatermark(c.commit)
	old := w.Begin("1")
	w.Begin("2")
	w.Reset()
	old()
	if got := c.list(); len(got) != 0 {
		t.Fatalf("a settle from before the reset committed %v", got)
	}
	w.Begin("2")()
	if got := c.list(); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("commits = %v", got)
	}
}

func TestWatermarkEmptyPositionsHoldTheirPlaceButAreNotCommitted(t *testing.T) {
	var c commits
	w := NewWatermark(c.commit)
	first, blank := w.Begin("x"), w.Begin("")
	blank()
	first()
	if got := c.list(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("commits = %v, want [x]", got)
	}
	w.Begin("")()
	if got := c.list(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("commits = %v: an empty position was committed", got)
	}
}
