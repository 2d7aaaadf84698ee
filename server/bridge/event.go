// Package bridge is the network-independent core of the plugin: the event
// model every network speaks, the small Bridge interface each network
// implements, the manager that runs them and the bus that moves events
// between linked rooms. Nothing in this package imports a network library.
package bridge

import (
	"context"
	"io"
	"time"
)

// Network names a chat network. Mattermost is a network like any other so that
// routing never has to special-case it.
type Network string

const (
	NetworkMattermost Network = "mattermost"
	NetworkXMPP       Network = "xmpp"
	NetworkMatrix     Network = "matrix"
	NetworkSlack      Network = "slack"
)

// Label is how people call the network: it is shown with remote people's
// names and in command answers. Networks the bridge does not know (tests
// add some) go by their identifier.
func (n Network) Label() string {
	switch n {
	case NetworkMattermost:
		return "Mattermost"
	case NetworkXMPP:
		return "XMPP"
	case NetworkMatrix:
		return "Matrix"
	case NetworkSlack:
		return "Slack"
	}
	return string(n)
}

// Kind says what an event does.
type Kind string

const (
	KindMessage        Kind = "message"
	KindEdit           Kind = "edit"
	KindDelete         Kind = "delete"
	KindReactionAdd    Kind = "reaction_add"
	KindReactionRemove Kind = "reaction_remove"
)

// Ref points at one thing on one network: a room, or a message in a room when
// ID is set. Native IDs are opaque strings owned by their network.
type Ref struct {
	Network Network `json:"network"`
	Room    string  `json:"room"`
	ID      string  `json:"id,omitempty"`
}

// RoomKey identifies the room part of a ref; it is the unit links are made of.
func (r Ref) RoomKey() string { return string(r.Network) + "|" + r.Room }

// Key identifies a message on its network.
func (r Ref) Key() string { return string(r.Network) + "|" + r.Room + "|" + r.ID }

// Sender is the person behind an event, as their own network knows them.
type Sender struct {
	Network Network `json:"network"`
	// ID is the stable identity on the sender's network (user ID, real JID,
	// occupant-id, Matrix user ID...). Remote-user records are keyed on it.
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	// AvatarURL is informational; Avatar, when set, reads the picture itself.
	AvatarURL string `json:"avatar_url,omitempty"`
	// AvatarHash changes when the picture changes, so receivers update a
	// profile picture only when needed.
	AvatarHash string                                    `json:"avatar_hash,omitempty"`
	Avatar     func(ctx context.Context) ([]byte, error) `json:"-"`
}

// Identity names one person across the bridge: their network and their ID
// there. Two events are by the same person exactly when their senders'
// identities are equal; "" when the ID is unknown.
func (s Sender) Identity() string {
	if s.ID == "" {
		return ""
	}
	return string(s.Network) + "|" + s.ID
}

// Attachment is a file carried by a message. Open reads the bytes lazily so a
// destination that cannot take files never downloads them.
type Attachment struct {
	Name     string                                           `json:"name"`
	MIMEType string                                           `json:"mime_type"`
	Size     int64                                            `json:"size"`
	Open     func(ctx context.Context) (io.ReadCloser, error) `json:"-"`
}

// Event is one thing that happened in a room, in the shared model. Text is
// Mattermost markdown; each network converts to and from its own format.
type Event struct {
	Kind Kind `json:"kind"`
	// Origin is where the event happened. For a message Origin.ID is the
	// message's native ID; for edits, deletes and reactions it is the native ID
	// of the event itself when the network has one (Mattermost edits reuse the
	// post ID).
	Origin Ref `json:"origin"`
	// Target is the native ID, on the origin network, of the message an edit,
	// delete or reaction acts on.
	Target string `json:"target,omitempty"`
	// Parent is the native ID, on the origin network, of the thread root or the
	// message replied to.
	Parent      string       `json:"parent,omitempty"`
	Sender      Sender       `json:"sender"`
	Text        string       `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	// Emoji is a reaction, as a Mattermost emoji name ("thumbsup") when one
	// exists, else the Unicode character.
	Emoji string    `json:"emoji,omitempty"`
	Time  time.Time `json:"time"`
	// Mentions are the people Text mentions, so each network can write
	// them its own way.
	Mentions []Mention `json:"mentions,omitempty"`
	// Moderated marks a delete by someone other than the author whom the
	// origin network itself allows to remove other people's messages in the
	// origin room (a Mattermost user with delete_others_posts, an XEP-0425
	// moderation the room sent, a Matrix redaction by a member with the
	// power level for it). Only the origin's bridge sets it, after checking.
	Moderated bool `json:"moderated,omitempty"`
	// AwaitTarget says Target is a copy the bridge posted on the origin
	// network: its map is written a moment after it appears, so an action
	// on a fresh one waits briefly for it instead of being dropped. Only
	// the Home network's bridge sets it.
	AwaitTarget bool `json:"await_target,omitempty"`
	// Settled, when set, is called once, after the event reached every
	// linked room or was dropped there for good (a duplicate, an
	// unsupported kind...): the source may then move its durable position
	// past it. It is not called when Receive returned an error or a
	// delivery was refused by a full queue or cut off by a shutdown: the
	// source must read the event again.
	Settled func() `json:"-"`
}

// Mention is one mention in an event's text.
type Mention struct {
	// Text is the mention as it appears in Event.Text, e.g. "@alice".
	Text string `json:"text"`
	// Person is who is mentioned; for someone from another network,
	// Network and ID say where they come from.
	Person Sender `json:"person"`
}

// Delivery is an event addressed to one destination room, with the IDs it
// refers to already translated into the destination's native IDs.
type Delivery struct {
	Event
	// Room is the destination room.
	Room string
	// TargetID is the destination's native ID of the message acted on.
	TargetID string
	// ParentID is the destination's native ID of the thread root or replied-to
	// message; empty when the parent never reached this destination.
	ParentID string
	// Moderate says a delete's target in this room was written there by
	// someone of this network, not posted by the bridge: removing it takes
	// the room's moderation rights (XEP-0425, a redaction by the bot). A
	// bridge that does not hold them returns a ReasonNoRights drop.
	Moderate bool
	// Part numbers the parts of a message split for the destination's
	// length limit, from 0; with Origin it names what is delivered.
	Part int
}

// Valid reports whether n can name a network: a short lowercase identifier.
// Tests add in-memory networks, so the set is open.
func (n Network) Valid() bool {
	if len(n) == 0 || len(n) > 32 || n[0] < 'a' || n[0] > 'z' {
		return false
	}
	for _, c := range []byte(n) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
