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
	k.Connected()
	if h := k.Health(); h.State != StateConnected || h.LastError != "" {
		t.Fatalf("connected: %+v", h)
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
