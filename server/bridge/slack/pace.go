package slack

import (
	"context"
	"sync"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Slack's rate-limit guide gives apps.connections.open Tier 1 ("1+ per
// minute", a small burst tolerated) and chat.postMessage "one message per
// second per channel", short bursts allowed. Waiting for a 429 to say so
// costs a refused call each time and, for posts, one per message of a
// flood; the bridge keeps under the documented rates itself instead, and
// still honours a 429's Retry-After when one comes (another app instance,
// a restart that forgot the last call).
const (
	openEvery = time.Minute
	openBurst = 1
	postEvery = time.Second
	// postBurst: "short bursts" are not quantified; three is what the
	// Slack test server allows, and small enough to be short.
	postBurst = 3
)

// pace waits for p's turn, makes one call and counts it as answered (or
// as refused with its Retry-After).
func pace(ctx context.Context, p *pacer, call func() error) error {
	if err := p.wait(ctx); err != nil {
		return err
	}
	err := call()
	if d, limited := bridge.RetryDelay(err); limited {
		p.limited(time.Now(), d)
	} else {
		p.answered(time.Now())
	}
	return err
}

// pacer is a token bucket of burst calls refilled at one per every, kept
// in its virtual-scheduling form: full is when the bucket is full again.
type pacer struct {
	every time.Duration
	burst int

	mu   sync.Mutex
	full time.Time
}

func newPacer(every time.Duration, burst int) *pacer {
	return &pacer{every: every, burst: max(burst, 1)}
}

// allowedAt is the earliest a call may start.
func (p *pacer) allowedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.allowedAtLocked()
}

func (p *pacer) allowedAtLocked() time.Time {
	return p.full.Add(-time.Duration(p.burst-1) * p.every)
}

// take spends a call at now, or says when to come back.
func (p *pacer) take(now time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at := p.allowedAtLocked(); now.Before(at) {
		return at, false
	}
	p.full = later(p.full, now).Add(p.every)
	return time.Time{}, true
}

// wait takes a call as soon as one is allowed.
func (p *pacer) wait(ctx context.Context) error {
	for {
		at, ok := p.take(time.Now())
		if ok {
			return nil
		}
		if !sleep(ctx, time.Until(at)) {
			return ctx.Err()
		}
	}
}

// answered counts the call again at the time its answer came. Slack took
// its token somewhere between the send and the answer, on its own clock;
// counting from the answer keeps this bucket behind Slack's whatever the
// latency, and the margin keeps rounding on either side from costing a
// 429 when the two buckets meet.
func (p *pacer) answered(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.full = later(p.full, at.Add(p.every+p.every/64))
}

// limited records a 429: Slack allows the next call retryAfter after at,
// and then only one until its bucket refills.
func (p *pacer) limited(at time.Time, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.full = later(p.full, at.Add(retryAfter+time.Duration(p.burst-1)*p.every))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// channelPacers paces each channel on its own, so one channel's flood
// never slows another.
type channelPacers struct {
	every time.Duration
	burst int

	mu sync.Mutex
	m  map[string]*pacer
}

func newChannelPacers(every time.Duration, burst int) *channelPacers {
	return &channelPacers{every: every, burst: burst, m: map[string]*pacer{}}
}

// maxIdlePacers bounds the map: past it, the pacers of channels whose
// bucket is full again (the same as a new one) are forgotten.
const maxIdlePacers = 256

func (c *channelPacers) get(channel string) *pacer {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.m[channel]
	if p != nil {
		return p
	}
	if len(c.m) >= maxIdlePacers {
		now := time.Now()
		for ch, o := range c.m {
			o.mu.Lock()
			idle := !o.full.After(now)
			o.mu.Unlock()
			if idle {
				delete(c.m, ch)
			}
		}
	}
	p = newPacer(c.every, c.burst)
	c.m[channel] = p
	return p
}
