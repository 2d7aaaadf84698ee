package store

import "testing"

func TestInstanceSecretIsMadeOnceAndShared(t *testing.T) {
	s, kv := newTestStore(t)
	a, err := s.InstanceSecret()
	if err != nil || len(a) != 64 {
		t.Fatalf("secret = %q, %v", a, err)
	}
	b, err := New(kv).InstanceSecret()
	if err != nil || b != a {
		t.Fatalf("a second node got %q, want %q (%v)", b, a, err)
	}
}
