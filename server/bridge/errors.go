package bridge

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotConfigured is returned by a bridge whose settings are incomplete.
var ErrNotConfigured = errors.New("bridge is not configured")

// ErrNotLinked is returned when an event comes from a room no channel is linked to.
var ErrNotLinked = errors.New("room is not linked to a channel")

// ErrNotImplemented marks a feature a network does not do yet.
var ErrNotImplemented = errors.New("not implemented")

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the bus counts a drop with the
// error as its reason instead of backing off and trying again.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Permanentf is Permanent(fmt.Errorf(...)).
func Permanentf(format string, args ...any) error { return Permanent(fmt.Errorf(format, args...)) }

// IsPermanent reports whether err, or anything it wraps, was marked Permanent
// (a *DropReason counts as marked).
func IsPermanent(err error) bool {
	var p permanentError
	if errors.As(err, &p) {
		return true
	}
	var d *DropReason
	return errors.As(err, &d)
}

type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e retryAfterError) Error() string { return e.err.Error() }
func (e retryAfterError) Unwrap() error { return e.err }

// RetryAfter wraps err with the delay the destination asked for before the
// next attempt (an HTTP 429's Retry-After, Matrix's retry_after_ms). The bus
// then waits that long instead of its own backoff: retrying sooner only earns
// another refusal, and backing off longer delays the queue for nothing. A
// negative d counts as 0. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return retryAfterError{err: err, delay: max(d, 0)}
}

// RetryDelay returns the delay carried by err, or anything it wraps, from
// RetryAfter; ok is false when there is none.
func RetryDelay(err error) (d time.Duration, ok bool) {
	var r retryAfterError
	if errors.As(err, &r) {
		return r.delay, true
	}
	return 0, false
}

// ErrInvalidEvent is wrapped by the error Receive returns for an event that
// is malformed (unknown kind, missing origin, message without content...).
var ErrInvalidEvent = errors.New("invalid event")

// ErrQueueFull is returned by Bus.Enqueue when the destination queue is at
// capacity. The item is refused (counted as "queue_full"); the caller is
// never blocked, and is expected to read the event again from its own
// durable position once there is space (see QueueFullError).
var ErrQueueFull = errors.New("queue is full")

// QueueFullError is how Enqueue refuses an item for a full queue (it wraps
// ErrQueueFull). A source holding back reads again once Space is closed:
// when the queue has drained to half its capacity, or the bus was closed.
type QueueFullError struct {
	Key   QueueKey
	Items int
	Space <-chan struct{}
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("%s: %s (%d items)", ErrQueueFull, e.Key, e.Items)
}

func (e *QueueFullError) Unwrap() error { return ErrQueueFull }

// ErrBusClosed is returned by Bus.Enqueue once Close has been called.
var ErrBusClosed = errors.New("bus is closed")

// ErrBridgeUnavailable is the transient error a delivery gets while the
// destination's bridge is starting, stopping or being replaced.
var ErrBridgeUnavailable = errors.New("bridge is not running")

// DropReason is a permanent error with a short machine-readable reason code
// ("unknown_target", "too_large"...). The bus counts the drop under Code
// instead of the generic "permanent", and never retries it: IsPermanent is
// true for any error wrapping a *DropReason, with or without Permanent.
type DropReason struct {
	Code string
	Err  error
}

func (d *DropReason) Error() string {
	if d.Err == nil {
		return d.Code
	}
	return d.Err.Error()
}

func (d *DropReason) Unwrap() error { return d.Err }

// Drop returns a permanent error that makes the bus drop the item under code.
func Drop(code string, err error) error {
	if err == nil {
		err = errors.New(code)
	}
	return Permanent(&DropReason{Code: code, Err: err})
}

// Dropf is Drop(code, fmt.Errorf(...)).
func Dropf(code, format string, args ...any) error { return Drop(code, fmt.Errorf(format, args...)) }

// DropCode returns the reason code carried by err: the Code of a wrapped
// *DropReason, else "permanent" for a Permanent error, else "".
func DropCode(err error) string {
	var d *DropReason
	if errors.As(err, &d) && d.Code != "" {
		return d.Code
	}
	if IsPermanent(err) {
		return ReasonPermanent
	}
	return ""
}
