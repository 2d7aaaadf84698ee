package bridge

import (
	"sync"
	"time"
)

// HealthKeeper holds a bridge's Health for concurrent use: the bridge's
// loops write it while status pages read it. The zero value is a disabled
// bridge.
type HealthKeeper struct {
	mu sync.Mutex
	h  Health
}

// NewHealthKeeper starts from h.
func NewHealthKeeper(h Health) *HealthKeeper { return &HealthKeeper{h: h} }

// Health returns a copy of the current health.
func (k *HealthKeeper) Health() Health {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.h.State == "" {
		k.h.State = StateDisabled
	}
	return k.h
}

// Set changes the state; a non-nil err becomes the last error, which
// otherwise stays as it was.
func (k *HealthKeeper) Set(state State, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setState(state)
	if err != nil {
		k.h.LastError = err.Error()
	}
}

// Connected marks the bridge connected and forgets the last error.
func (k *HealthKeeper) Connected() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setState(StateConnected)
	k.h.LastError = ""
}

func (k *HealthKeeper) setState(s State) {
	if k.h.State == s {
		return
	}
	now := time.Now().UTC()
	switch {
	case s == StateConnected:
		k.h.LostAt = time.Time{}
	case k.h.State == StateConnected:
		k.h.LostAt = now
	}
	k.h.State, k.h.Since = s, now
}

// Failed records err as the last error without changing the state.
func (k *HealthKeeper) Failed(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.h.LastError = err.Error()
}

// Touch records a message relayed at t, keeping the latest time.
func (k *HealthKeeper) Touch(t time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t.After(k.h.LastMessage) {
		k.h.LastMessage = t.UTC()
	}
}

// Reconnecting records that the bridge tries to connect again after a
// failed attempt or a lost connection.
func (k *HealthKeeper) Reconnecting() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.h.ReconnectAttempts++
}

// SetDetail replaces the network-specific note status pages show.
func (k *HealthKeeper) SetDetail(detail string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.h.Detail = detail
}
