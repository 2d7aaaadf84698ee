package store

import (
	"context"
	"time"
)

// keyKeyRotation holds the KeyRotation in progress, if any.
const keyKeyRotation = "key_rotation"

// KeyRotation records that ghost secrets are being re-sealed under a new
// encryption key. It exists from before the first record is re-sealed until
// the last one is, so a plugin that stops halfway (deactivation, crash)
// finishes the work on its next activation instead of losing the records
// still under the old key.
type KeyRotation struct {
	// To is the ID of the key records are re-sealed under (secret.Box.ID).
	To string `json:"to"`
	// Retiring holds the earlier keys, each sealed under the To key: only
	// someone who has the new key can read them, and they are deleted with
	// this record when the re-sealing is done.
	Retiring  [][]byte  `json:"retiring"`
	StartedAt time.Time `json:"started_at"`
}

// GetKeyRotation returns the rotation in progress, or nil when none.
func (s *Store) GetKeyRotation() (*KeyRotation, error) {
	// Proven: an activation right after a rotation began would otherwise
	// miss it on a lagging replica and leave secrets under a retired key.
	return provenRecord[KeyRotation](s, keyKeyRotation)
}

// UpdateKeyRotation changes the rotation record with a compare-and-set
// read-modify-write (several nodes rotate at once): fn gets the current
// record (nil if none) and returns the new one, or nil to delete it.
func (s *Store) UpdateKeyRotation(fn func(old *KeyRotation) (*KeyRotation, error)) error {
	_, err := update(context.Background(), s, keyKeyRotation, 0, func(old *KeyRotation) (*KeyRotation, error) {
		r, err := fn(old)
		if err != nil || r == nil {
			return nil, err
		}
		if err := checkString("key ID", r.To); err != nil {
			return nil, err
		}
		if r.StartedAt.IsZero() {
			r.StartedAt = s.stamp()
		}
		return r, nil
	})
	return err
}

// FinishKeyRotation deletes the rotation record if it is still the rotation
// to the key to (a newer rotation, started meanwhile, stays).
func (s *Store) FinishKeyRotation(to string) error {
	return s.UpdateKeyRotation(func(old *KeyRotation) (*KeyRotation, error) {
		if old != nil && old.To != to {
			return old, nil
		}
		return nil, nil
	})
}

// AllGhosts returns the ghosts of every network, in one walk of the store.
func (s *Store) AllGhosts() ([]Ghost, error) { return listJSON[Ghost](s, prefixGhost) }
