package bridge

import (
	"context"
	"time"
)

// Bridge is what a network implements. It is deliberately small: the core
// owns routing, ordering, retries, ID maps and loop prevention.
type Bridge interface {
	Network() Network
	// Start connects and begins handing events from linked rooms to sink. It
	// must return promptly; connection work continues in the background and
	// shows up in Health.
	Start(ctx context.Context, sink Sink) error
	// Stop disconnects and releases everything Start acquired.
	Stop(ctx context.Context) error
	// Deliver posts d into d.Room and returns the native ID of what it created
	// (for a message) or acted on. Errors are transient unless wrapped with
	// Permanent.
	Deliver(ctx context.Context, d *Delivery) (nativeID string, err error)
	Health() Health
	Capabilities() Capabilities
}

// Sink receives events a bridge saw in its rooms. Receive returns once the
// event has been accepted by the core (queued for every destination).
type Sink interface {
	Receive(ctx context.Context, ev Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, ev Event) error

func (f SinkFunc) Receive(ctx context.Context, ev Event) error { return f(ctx, ev) }

// State is a bridge's connection state.
type State string

const (
	StateDisabled     State = "disabled"
	StateConnecting   State = "connecting"
	StateConnected    State = "connected"
	StateDisconnected State = "disconnected"
	StateError        State = "error"
)

// Health is what status pages show about a bridge.
type Health struct {
	State State `json:"state"`
	// Since is when State last changed (zero before the first change).
	Since time.Time `json:"since,omitzero"`
	// LostAt is when the connection was last lost; zero while connected.
	LostAt      time.Time `json:"lost_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastMessage time.Time `json:"last_message,omitempty"`
	// ReconnectAttempts counts the connection attempts made after a
	// failed one or a lost connection, since the bridge was built.
	ReconnectAttempts int64 `json:"reconnect_attempts"`
	// Detail carries network-specific notes, e.g. "TLS verification disabled".
	Detail string `json:"detail,omitempty"`
}

// Capabilities declares what a network can carry, so the core drops or adapts
// events instead of every bridge checking for every kind.
type Capabilities struct {
	Edits     bool `json:"edits"`
	Deletes   bool `json:"deletes"`
	Reactions bool `json:"reactions"`
	Threads   bool `json:"threads"`
	Files     bool `json:"files"`
	// MaxTextLength is the largest message text in bytes; 0 means unlimited.
	MaxTextLength int `json:"max_text_length"`
	// MaxFileSize is the largest attachment in bytes; 0 means unlimited.
	MaxFileSize int64 `json:"max_file_size"`
}

// Supports reports whether the capabilities allow an event kind.
func (c Capabilities) Supports(k Kind) bool {
	switch k {
	case KindMessage:
		return true
	case KindEdit:
		return c.Edits
	case KindDelete:
		return c.Deletes
	case KindReactionAdd, KindReactionRemove:
		return c.Reactions
	}
	return false
}

// DeliveryChecker is implemented by a Sink that can tell whether a message
// already reached every room its room is linked with, so a source reading
// it again can skip costly work (fetching its files).
type DeliveryChecker interface {
	BridgedEverywhere(ctx context.Context, msg Ref) (bool, error)
}
