package secret

import (
	"slices"
	"sync"
)

// Keyring seals with the current key and opens with it or, while records
// sealed under earlier keys are being re-sealed, with those retiring keys.
// When the re-sealing is done the retiring keys are dropped and never used
// again. It is safe for concurrent use.
type Keyring struct {
	mu       sync.RWMutex
	current  *Box
	retiring []*Box
}

// NewKeyring returns a keyring sealing under current.
func NewKeyring(current *Box) *Keyring { return &Keyring{current: current} }

// Current returns the box that seals.
func (k *Keyring) Current() *Box {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// Rotate makes next the sealing key. The previous current key and the given
// retiring keys still open (never seal) until Retire.
func (k *Keyring) Rotate(next *Box, retiring ...*Box) {
	k.mu.Lock()
	defer k.mu.Unlock()
	keep := append([]*Box{k.current}, retiring...)
	keep = append(keep, k.retiring...)
	k.current, k.retiring = next, nil
	for _, b := range keep {
		if b != nil && b.ID() != next.ID() && !slices.ContainsFunc(k.retiring, func(r *Box) bool { return r.ID() == b.ID() }) {
			k.retiring = append(k.retiring, b)
		}
	}
}

// Retire drops every retiring key: nothing opens with them any more.
func (k *Keyring) Retire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.retiring = nil
}

// Retiring returns the keys that still open but no longer seal.
func (k *Keyring) Retiring() []*Box {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Clone(k.retiring)
}

// Seal seals under the current key.
func (k *Keyring) Seal(plaintext []byte) ([]byte, error) { return k.Current().Seal(plaintext) }

// Open opens with the key the value names, or failing that with any key
// the keyring holds.
func (k *Keyring) Open(sealed []byte) ([]byte, error) {
	k.mu.RLock()
	boxes := append([]*Box{k.current}, k.retiring...)
	k.mu.RUnlock()
	slices.SortStableFunc(boxes, func(a, b *Box) int { // the named key first
		switch {
		case a.Sealed(sealed) && !b.Sealed(sealed):
			return -1
		case b.Sealed(sealed) && !a.Sealed(sealed):
			return 1
		}
		return 0
	})
	for _, b := range boxes {
		if out, err := b.Open(sealed); err == nil {
			return out, nil
		}
	}
	return nil, ErrWrongKey
}

// SealedUnderCurrent reports whether sealed names the current key, i.e. it
// needs no re-sealing.
func (k *Keyring) SealedUnderCurrent(sealed []byte) bool { return k.Current().Sealed(sealed) }
