package bridge

import (
	"errors"
	"fmt"
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

// IsPermanent reports whether err, or anything it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
