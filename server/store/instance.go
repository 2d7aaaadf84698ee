package store

import (
	"crypto/rand"
	"encoding/hex"
)

const keyInstanceSecret = "instance_secret"

// InstanceSecret returns a random secret made once per installation and
// shared by every node. It stands in for the EncryptionKey setting when an
// admin never generated one.
func (s *Store) InstanceSecret() (string, error) {
	if v, err := s.get(keyInstanceSecret); err != nil || v != nil {
		return string(v), err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	if _, err := s.insert(keyInstanceSecret, []byte(hex.EncodeToString(buf)), 0); err != nil {
		return "", err
	}
	// Another node may have won the insert: read what is there.
	v, err := s.get(keyInstanceSecret)
	return string(v), err
}
