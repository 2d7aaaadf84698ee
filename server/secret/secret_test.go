package secret

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	box, err := New("generated-key-value")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal([]byte("ghost password"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("ghost password")) {
		t.Fatal("plaintext visible in the sealed bytes")
	}
	again, _ := box.Seal([]byte("ghost password"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one secret are equal: the nonce is not random")
	}
	got, err := box.Open(sealed)
	if err != nil || string(got) != "ghost password" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := New("another key")
	if _, err = other.Open(sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("open under another key: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err = box.Open(sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("tampered data opened: %v", err)
	}
	if _, err = New(""); err == nil {
		t.Fatal("empty key accepted")
	}
}
