package store

import (
	"context"
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
	mine := hex.EncodeToString(buf)
	ok, err := s.insert(keyInstanceSecret, []byte(mine), 0)
	if err != nil || ok {
		return mine, err
	}
	// Another node won the insert: read theirs, once the replica KVGet may
	// read from has it.
	for r := newRetry(); ; {
		v, err := s.get(keyInstanceSecret)
		if err != nil || v != nil {
			return string(v), err
		}
		if err := r.wait(context.Background(), keyInstanceSecret); err != nil {
			return "", err
		}
	}
}
