// Package secret encrypts small secrets (ghost account passwords) before
// they go into the KV store, with AES-256-GCM under a key derived from the
// plugin's EncryptionKey setting.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrWrongKey means the ciphertext was sealed under another key (the
// setting was regenerated) or was tampered with.
var ErrWrongKey = errors.New("secret: cannot decrypt: the encryption key changed or the data is corrupt")

// Box seals and opens secrets under one key.
type Box struct{ aead cipher.AEAD }

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
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext; the random nonce is stored in front.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return b.aead.Seal(nonce, nonce, plaintext, nil), nil
}

// Open decrypts what Seal produced.
func (b *Box) Open(sealed []byte) ([]byte, error) {
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
