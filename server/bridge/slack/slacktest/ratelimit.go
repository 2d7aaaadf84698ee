package slacktest

import (
	"math"
	"time"
)

// tier is a Web API rate-limit tier. Slack's rate-limit guide: Tier 1 is
// 1+ requests per minute, Tier 2 20+, Tier 3 50+, Tier 4 100+, each "per
// API method per app per workspace", with bursts tolerated; special-tier
// methods have their own conditions.
type tier int

const (
	tier1 tier = iota + 1
	tier2
	tier3
	tier4
	// tierPostMessage: chat.postMessage "generally allows posting one
	// message per second per channel", short bursts allowed.
	tierPostMessage
	// tierSpecialAuth: auth.test "allows hundreds of requests per minute".
	tierSpecialAuth
)

// perMinute is the documented floor of each tier; the server allows exactly
// that, so a client that stays under the documented numbers never sees 429.
func (t tier) perMinute() float64 {
	switch t {
	case tier1:
		return 1
	case tier2:
		return 20
	case tier3:
		return 50
	case tier4:
		return 100
	case tierPostMessage:
		return 60
	default:
		return 600
	}
}

// burst is how many calls may come at once before the steady rate applies.
// The tiers tolerate bursts without saying how large; a minute's quota is
// the reading that keeps "N per minute" true. chat.postMessage's "short
// bursts" are modelled as three messages.
func (t tier) burst() float64 {
	if t == tierPostMessage {
		return 3
	}
	return t.perMinute()
}

// bucket is a token bucket: capacity burst, refilled at rate per second.
type bucket struct {
	tokens float64
	rate   float64
	burst  float64
	last   time.Time
}

// take spends a token if there is one; if not it says how many whole
// seconds until there is (at least 1, as Retry-After is in seconds).
func (b *bucket) take(now time.Time) (int, bool) {
	b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := (1 - b.tokens) / b.rate
	return max(1, int(math.Ceil(wait))), false
}

type limiter struct {
	buckets map[string]*bucket
	// override replaces a tier's rate for a method (SetRateLimit).
	override map[string]bucket
}

func newLimiter() *limiter {
	return &limiter{buckets: map[string]*bucket{}, override: map[string]bucket{}}
}

// forcedLimit answers every nth call of a method with 429.
type forcedLimit struct {
	every      int
	retryAfter int
	seen       int
}

// rateLimitedLocked decides whether the call is answered with 429 and the
// Retry-After seconds. Forced limits come first, so a test's hook holds
// even with NoRateLimits.
func (s *Server) rateLimitedLocked(r *request, spec methodSpec) (int, bool) {
	if f := s.forced[r.method]; f != nil {
		f.seen++
		if f.seen%f.every == 0 {
			return f.retryAfter, true
		}
	}
	if s.opts.NoRateLimits {
		return 0, false
	}
	key := r.method
	if spec.tier == tierPostMessage {
		// Per channel: one channel's flood does not slow another's.
		key += "/" + r.get("channel")
	}
	b := s.limits.buckets[key]
	if b == nil {
		now := time.Now()
		if o, ok := s.limits.override[r.method]; ok {
			b = &bucket{tokens: o.burst, rate: o.rate, burst: o.burst, last: now}
		} else {
			b = &bucket{tokens: spec.tier.burst(), rate: spec.tier.perMinute() / 60, burst: spec.tier.burst(), last: now}
		}
		s.limits.buckets[key] = b
	}
	retry, ok := b.take(time.Now())
	return retry, !ok
}

// ForceRateLimit makes every nth call of a method (the nth, 2nth...,
// counted from now) answer HTTP 429 with Retry-After: retryAfterSeconds.
// Slack's Retry-After is at least 1; 0 is allowed here so a test can
// check that the client waits as told without making the test slow.
// n <= 0 removes the hook.
func (s *Server) ForceRateLimit(method string, n, retryAfterSeconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.forced, method)
		return
	}
	s.forced[method] = &forcedLimit{every: n, retryAfter: retryAfterSeconds}
}

// SetRateLimit replaces a method's documented limit: perMinute calls a
// minute with bursts of burst. For chat.postMessage it applies per channel.
// The method's buckets start full again.
func (s *Server) SetRateLimit(method string, perMinute, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.override[method] = bucket{rate: float64(perMinute) / 60, burst: float64(max(1, burst))}
	for k := range s.limits.buckets {
		if k == method || len(k) > len(method) && k[:len(method)+1] == method+"/" {
			delete(s.limits.buckets, k)
		}
	}
}
