package bridge

import (
	"errors"
	"testing"
	"time"
)

func TestHealthKeeper(t *testing.T) {
	var k HealthKeeper
	if h := k.Health(); h.State != StateDisabled {
		t.Fatalf("zero value: %+v", h)
	}
	k.Set(StateError, errors.New("refused"))
	k.Set(StateConnecting, nil)
	if h := k.Health(); h.State != StateConnecting || h.LastError != "refused" {
		t.Fatalf("the last error did not stay: %+v", h)
	}
	before := time.Now()
	k.Connected()
	h := k.Health()
	if h.State != StateConnected || h.LastError != "" {
		t.Fatalf("connected: %+v", h)
	}
	if h.Since.Before(before) {
		t.Fatalf("Since %v is not when it connected (after %v)", h.Since, before)
	}
	k.Connected()
	if again := k.Health(); !again.Since.Equal(h.Since) || !again.LostAt.IsZero() {
		t.Fatalf("Since moved without a change of state: %v -> %v", h.Since, again.Since)
	}
	k.Set(StateDisconnected, errors.New("dropped"))
	k.Set(StateError, errors.New("refused"))
	lost := k.Health()
	if lost.LostAt.IsZero() || lost.LostAt.After(lost.Since) {
		t.Fatalf("LostAt %v should be when it stopped being connected (before %v)", lost.LostAt, lost.Since)
	}
	k.Connected()
	if h := k.Health(); !h.LostAt.IsZero() {
		t.Fatalf("reconnected, LostAt = %v", h.LostAt)
	}
	now := time.Now()
	k.Touch(now)
	k.Touch(now.Add(-time.Hour))
	if h := k.Health(); !h.LastMessage.Equal(now) {
		t.Fatalf("an older message moved LastMessage back: %v", h.LastMessage)
	}
	k.SetDetail("TLS verification disabled")
	if h := k.Health(); h.Detail != "TLS verification disabled" {
		t.Fatalf("detail: %+v", h)
	}
	k.Failed(errors.New("one post failed"))
	if h := k.Health(); h.State != StateConnected || h.LastError != "one post failed" {
		t.Fatalf("failed: %+v", h)
	}
}

// Reconnect attempts add up over the bridge's life: a connection that
// comes back does not reset them.
func TestHealthKeeperCountsReconnectAttempts(t *testing.T) {
	var k HealthKeeper
	k.Connected()
	k.Reconnecting()
	k.Reconnecting()
	k.Connected()
	k.Reconnecting()
	if h := k.Health(); h.ReconnectAttempts != 3 {
		t.Fatalf("%d reconnect attempts, want 3", h.ReconnectAttempts)
	}
}
