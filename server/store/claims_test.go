package store

import (
	"testing"
	"time"
)

// A claim is taken by one caller at a time; releasing it lets the next
// caller take it at once, without waiting for it to expire; a release
// never gives up a claim someone else took after this one expired.
func TestClaimAndRelease(t *testing.T) {
	s, kv, clock := newClockedStore(t)
	release, ok, err := s.Claim("portal-claim", "slack|C1", time.Minute)
	must(t, err)
	if !ok {
		t.Fatal("the first claim was refused")
	}
	if _, ok, _ := New(kv).Claim("portal-claim", "slack|C1", time.Minute); ok {
		t.Fatal("a claim held was taken again")
	}
	must(t, release())
	again, ok, err := New(kv).Claim("portal-claim", "slack|C1", time.Minute)
	must(t, err)
	if !ok {
		t.Fatal("a released claim could not be taken")
	}

	// again expires; another caller takes the claim; again's release
	// leaves it alone.
	clock.Advance(time.Minute)
	_, ok, err = New(kv).Claim("portal-claim", "slack|C1", time.Minute)
	must(t, err)
	if !ok {
		t.Fatal("an expired claim could not be taken")
	}
	must(t, again())
	if _, ok, _ := s.Claim("portal-claim", "slack|C1", time.Minute); ok {
		t.Fatal("a stale release gave up another caller's claim")
	}
	if _, _, err := s.Claim("", "x", time.Minute); err == nil {
		t.Fatal("an empty namespace was accepted")
	}
}
