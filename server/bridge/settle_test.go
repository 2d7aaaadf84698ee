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
	a, b, d := w.Begin("a").Settle, w.Begin("b").Settle, w.Begin("d").Settle
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

func TestWatermarkAbandonedPositionsWaitToBeReadAgain(t *testing.T) {
	var c commits
	w := NewWatermark(c.commit)
	one, two := w.Begin("1"), w.Begin("2")
	two.Abandon()
	two.Settle() // a late settle of an abandoned mark changes nothing
	if got := c.list(); len(got) != 0 {
		t.Fatalf("commits = %v", got)
	}
	again := w.Begin("2") // read again
	again.Settle()
	if got := c.list(); len(got) != 0 {
		t.Fatalf("committed %v while 1 is unsettled", got)
	}
	one.Settle()
	if got := c.list(); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("commits = %v", got)
	}
}

func TestWatermarkAbandonTakesEverythingAfterToo(t *testing.T) {
	var c commits
	w := NewWatermark(c.commit)
	head, next := w.Begin("1"), w.Begin("2")
	next.Settle()
	head.Abandon()
	next.Settle()
	if got := c.list(); len(got) != 0 || w.Pending() != 0 {
		t.Fatalf("commits = %v, pending = %d: 2 was read before 1 was, and both are read again", got, w.Pending())
	}
}

func TestWatermarkEmptyPositionsHoldTheirPlaceButAreNotCommitted(t *testing.T) {
	var c commits
	w := NewWatermark(c.commit)
	first, blank := w.Begin("x"), w.Begin("")
	blank.Settle()
	first.Settle()
	if got := c.list(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("commits = %v, want [x]", got)
	}
	w.Begin("").Settle()
	if got := c.list(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("commits = %v: an empty position was committed", got)
	}
}

func TestSettleGroupSettlesOnceAllMembersAndTheSealAreIn(t *testing.T) {
	var n int
	g := NewSettleGroup(func() { n++ })
	a, b := g.Add(), g.Add()
	a()
	a() // twice is once
	g.Seal()
	if n != 0 {
		t.Fatal("settled with a member outstanding")
	}
	b()
	if n != 1 {
		t.Fatalf("settled %d times", n)
	}

	failed := NewSettleGroup(func() { n++ })
	c := failed.Add()
	failed.Fail()
	c()
	failed.Seal()
	if n != 1 {
		t.Fatal("a group with a failed member settled")
	}
}
