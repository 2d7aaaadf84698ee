package main

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// A follower asks again when the holder's answer is slow: the holder must
// act once and give every copy of the question the same answer, whether
// the copy comes while it works or after.
func TestRepeatedQuestionIsAnsweredOnce(t *testing.T) {
	c := newCalls()
	var runs atomic.Int32
	release := make(chan struct{})
	slow := func() reply {
		runs.Add(1)
		<-release
		return reply{ID: "q1", Online: true}
	}
	var wg sync.WaitGroup
	answers := make(chan reply, 3)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- c.answerOnce("q1", slow)
		}()
	}
	time.Sleep(50 * time.Millisecond) // both copies are in
	close(release)
	wg.Wait()
	answers <- c.answerOnce("q1", slow) // a copy after the answer
	close(answers)
	for r := range answers {
		if !r.Online {
			t.Errorf("a copy got %+v", r)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the question was worked on %d times", n)
	}
}

// The ping reads a network online while connected and for pingGrace after
// it lost the connection (a reconnect in progress), then offline; a
// network that never connected, or was turned off, is offline.
func TestPingGraceCoversAReconnect(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		h    bridge.Health
		want bool
	}{
		{bridge.Health{State: bridge.StateConnected}, true},
		{bridge.Health{State: bridge.StateError, LostAt: now.Add(-5 * time.Second)}, true},
		{bridge.Health{State: bridge.StateConnecting, LostAt: now.Add(-5 * time.Second)}, true},
		{bridge.Health{State: bridge.StateError, LostAt: now.Add(-pingGrace - time.Second)}, false},
		{bridge.Health{State: bridge.StateConnecting}, false},
		{bridge.Health{State: bridge.StateDisabled, LostAt: now.Add(-time.Second)}, false},
	} {
		if got := online(c.h, now); got != c.want {
			t.Errorf("online(%+v) = %v, want %v", c.h, got, c.want)
		}
	}
}
