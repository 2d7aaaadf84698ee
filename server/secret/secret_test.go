package secret

import (
	"bytes"
	"errors"
	"strings"
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

func TestSealedValuesNameTheirKey(t *testing.T) {
	a, _ := New("key a")
	b, _ := New("key b")
	again, _ := New("key a")
	if a.ID() == b.ID() || a.ID() != again.ID() || len(a.ID()) != 16 {
		t.Fatalf("key IDs: %s %s %s", a.ID(), b.ID(), again.ID())
	}
	if strings.Contains(a.ID(), "key a") {
		t.Fatal("the key ID shows the key")
	}
	sealed, _ := a.Seal([]byte("pw"))
	if !a.Sealed(sealed) || b.Sealed(sealed) {
		t.Fatal("Sealed does not tell the keys apart")
	}
	// A value sealed before key IDs (nonce | ciphertext) still opens.
	nonce := make([]byte, a.aead.NonceSize())
	legacy := a.aead.Seal(nonce, nonce, []byte("old pw"), nil)
	if got, err := a.Open(legacy); err != nil || string(got) != "old pw" {
		t.Fatalf("legacy value: %q, %v", got, err)
	}
	if a.Sealed(legacy) {
		t.Fatal("a legacy value counts as sealed under a named key")
	}
}

func TestKeyringRotation(t *testing.T) {
	old, _ := New("old key")
	next, _ := New("next key")
	k := NewKeyring(old)
	underOld, _ := k.Seal([]byte("under old"))

	k.Rotate(next)
	underNext, _ := k.Seal([]byte("under next"))
	if !next.Sealed(underNext) || !k.SealedUnderCurrent(underNext) || k.SealedUnderCurrent(underOld) {
		t.Fatal("after Rotate the keyring does not seal under the new key")
	}
	for _, v := range [][]byte{underOld, underNext} {
		if _, err := k.Open(v); err != nil {
			t.Fatalf("during the rotation: %v", err)
		}
	}
	if got := k.Retiring(); len(got) != 1 || got[0].ID() != old.ID() {
		t.Fatalf("retiring = %v", got)
	}
	k.Retire()
	if _, err := k.Open(underOld); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("the retired key still opens: %v", err)
	}
	if got, err := k.Open(underNext); err != nil || string(got) != "under next" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Rotating to the current key keeps nothing extra around.
	k.Rotate(next)
	if len(k.Retiring()) != 0 {
		t.Fatal("rotating to the same key retired it")
	}
}
