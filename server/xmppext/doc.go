// Package xmppext holds what the XMPP extension packages below it share:
// the errors they return for bad input.
//
// Each subpackage implements one XEP (or two closely tied ones) in the style
// of mellium.im/xmpp: payload types with XML tags and a namespace constant
// NS, which marshal themselves through TokenReader, WriteXML and MarshalXML;
// a Decode function for when the payload's start element has been read; and
// a From function that finds the payload in a whole stanza given as an
// xml.TokenReader, which is what a mellium mux handler receives. To read
// everything the bridge needs from a message in one pass, use msgparse.
//
// All decoding is of untrusted input: it is bounded in size and depth, never
// panics, and fails with an error wrapping one of the errors below.
package xmppext

import "errors"

// Errors for bad input. They are wrapped with context, so test for them with
// errors.Is.
var (
	// ErrMalformed reports input that is not well-formed XML, or not what the
	// protocol allows (a missing required attribute, a bad JID, a number
	// that is not one).
	ErrMalformed = errors.New("xmppext: malformed input")
	// ErrTooLarge reports input over a size limit.
	ErrTooLarge = errors.New("xmppext: input too large")
	// ErrDuplicate reports a payload that may occur at most once but was
	// repeated, which would make the stanza ambiguous.
	ErrDuplicate = errors.New("xmppext: duplicate payload")
)
