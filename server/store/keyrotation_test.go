package store

import (
	"errors"
	"testing"
)

func TestKeyRotationRecord(t *testing.T) {
	s, kv := newTestStore(t)
	if r, err := s.GetKeyRotation(); err != nil || r != nil {
		t.Fatalf("no rotation yet: %+v, %v", r, err)
	}
	must(t, s.UpdateKeyRotation(func(old *KeyRotation) (*KeyRotation, error) {
		return &KeyRotation{To: "new-id", Retiring: [][]byte{[]byte("sealed old key")}}, nil
	}))
	// Another node sees it.
	r, err := New(kv).GetKeyRotation()
	if err != nil || r == nil || r.To != "new-id" || string(r.Retiring[0]) != "sealed old key" || r.StartedAt.IsZero() {
		t.Fatalf("rotation = %+v, %v", r, err)
	}
	if err = s.UpdateKeyRotation(func(*KeyRotation) (*KeyRotation, error) { return &KeyRotation{}, nil }); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("a rotation without a key ID: %v", err)
	}
	// Finishing an older rotation leaves a newer one alone.
	must(t, s.FinishKeyRotation("older-id"))
	if r, _ = s.GetKeyRotation(); r == nil {
		t.Fatal("finishing another rotation deleted this one")
	}
	must(t, s.FinishKeyRotation("new-id"))
	if r, _ = s.GetKeyRotation(); r != nil {
		t.Fatalf("finished rotation still there: %+v", r)
	}
}
