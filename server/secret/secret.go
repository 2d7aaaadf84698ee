// Package secret encrypts small secrets (ghost account passwords) before
// they go into the KV store, with AES-256-GCM under a key derived from the
// plugin's EncryptionKey setting.
//
// Every sealed value names the key it was sealed under (a key ID, a one-way
// fingerprint that reveals nothing of the key), so that while a regenerated
// key is being rolled out each record is opened with the right key, and a
// record still under an old key is easy to find.
package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrWrongKey means the ciphertext was sealed under another key (the
// setting was regenerated) or was tampered with.
var ErrWrongKey = errors.New("secret: cannot decrypt: the encryption key changed or the data is corrupt")

const (
	// formatKeyed starts a sealed value that carries its key ID:
	// formatKeyed | key ID (idLen bytes) | nonce | ciphertext.
	// Values sealed before key IDs existed are nonce | ciphertext.
	formatKeyed = 0x02
	idLen       = 8
)

// Box seals and opens secrets under one key.
type Box struct {
	aead cipher.AEAD
	id   []byte
}

// New derives the AES key from the setting's value, whatever its length.
func New(key string) (*Box, error) {
	if key == "" {
		return nil, errors.New("secret: empty encryption key")
	}
	sum := sha256.Sum256([]byte("mattermost-bridge/v1|" + key))
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, sum[:])
	mac.Write([]byte("mattermost-bridge/key-id"))
	return &Box{aead: aead, id: mac.Sum(nil)[:idLen]}, nil
}

// ID names the key; it is safe to store and to log.
func (b *Box) ID() string { return hex.EncodeToString(b.id) }

// Seal encrypts plaintext; the key ID and the random nonce are stored in
// front.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	out := append([]byte{formatKeyed}, b.id...)
	out = append(out, nonce...)
	return b.aead.Seal(out, nonce, plaintext, nil), nil
}

// Sealed reports whether sealed names this box's key.
func (b *Box) Sealed(sealed []byte) bool {
	return len(sealed) > 1+idLen && sealed[0] == formatKeyed && bytes.Equal(sealed[1:1+idLen], b.id)
}

// Open decrypts what Seal produced, and values sealed before key IDs.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	if b.Sealed(sealed) {
		if out, err := b.open(sealed[1+idLen:]); err == nil {
			return out, nil
		}
	}
	// An old value's random nonce may start like a keyed one: try it whole.
	return b.open(sealed)
}

func (b *Box) open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrWrongKey
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, ErrWrongKey
	}
	return out, nil
}
