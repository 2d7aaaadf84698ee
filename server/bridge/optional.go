package bridge

import (
	"context"
	"errors"
	"strings"
)

// RoomChecker is implemented by bridges that can check a room before it is
// linked (XMPP disco#info, Matrix alias resolution). CheckRoom returns the
// room's canonical ID, or an error a person can act on.
type RoomChecker interface {
	CheckRoom(ctx context.Context, room string) (canonical string, err error)
}

// RoomWatcher is implemented by bridges that must act when a room is linked
// or unlinked, such as joining or leaving it.
type RoomWatcher interface {
	RoomLinked(ctx context.Context, room string) error
	RoomUnlinked(ctx context.Context, room string) error
}

// MemberWatcher is implemented by bridges that show who is in a linked
// channel on the remote side (Matrix puppets join and leave with their
// Mattermost users). member is the Mattermost user, as a Sender.
type MemberWatcher interface {
	MemberJoined(ctx context.Context, room string, member Sender) error
	MemberLeft(ctx context.Context, room string, member Sender) error
}

// RoomCreator is implemented by bridges that can make a new remote room for
// a channel. It returns the new room's canonical ID. inviteOnly asks for a
// room only invited people may join, for a channel that is not public.
type RoomCreator interface {
	CreateRoom(ctx context.Context, name, topic string, inviteOnly bool) (room string, err error)
}

// RoomDescriber is implemented by bridges that can say more about a linked
// room than its ID, for status, list and the links API: its name, and
// whether it takes messages. DescribeRoom returns the zero RoomInfo when
// there is nothing to add; it must be quick (cached answers), as status
// lists every room of a channel.
type RoomDescriber interface {
	DescribeRoom(ctx context.Context, room string) RoomInfo
}

// RoomInfo is what a bridge knows of a linked room beyond its ID.
type RoomInfo struct {
	// Name is how the room's people call it ("#general"); "" when unknown.
	Name string
	// Archived: the room takes no messages until it is unarchived.
	Archived bool
}

// Describe says it in words for people, "" when there is nothing to say:
// "#general, archived in Slack: read-only until it is unarchived".
func (i RoomInfo) Describe(n Network) string {
	var parts []string
	if i.Name != "" {
		parts = append(parts, i.Name)
	}
	if i.Archived {
		parts = append(parts, "archived in "+n.Label()+": read-only until it is unarchived")
	}
	return strings.Join(parts, ", ")
}

// PortalRequest asks for a Mattermost channel for a remote room: an
// automatic portal.
type PortalRequest struct {
	Network Network
	// Room is the room's canonical ID.
	Room string
	// Name is the room's name; the channel is named after it.
	Name string
	// Private: the room is invite-only, so the channel is private.
	Private bool
	// Team is the name of the Mattermost team to create the channel in,
	// from the network's own settings.
	Team string
}

// Portals is what the plugin lends a bridge (connector.Env.Portals) to have
// a Mattermost channel created for a remote room and linked with it, when
// the bot was invited to a room no channel is linked with. The bridge
// decides when (only when its settings turn automatic portals on, and only
// for a room its bot was invited to); the plugin does it safely.
type Portals interface {
	// OpenPortal creates a channel in req.Team for req.Room, named after
	// it (another name when the name is taken), links the two and posts a
	// note in the channel. It returns the channel and whether this call
	// created it (or finished what an earlier call left half-done). At
	// most one channel is ever made for a room, however many calls race on
	// however many nodes: a room linked already, or whose portal was made
	// once (even if unlinked since), gets none (created false, no error).
	// While another call is opening the room's portal it returns
	// ErrPortalInProgress. An error says what stopped it (such as no team
	// of that name); the bridge asks again later, and that call takes up
	// where this one stopped.
	OpenPortal(ctx context.Context, req PortalRequest) (channelID string, created bool, err error)
}

// ErrPortalInProgress is OpenPortal's answer while another call holds the
// room: one opening it now, or one that stopped without a word (a crash)
// until its claim expires. The bridge asks again later.
var ErrPortalInProgress = errors.New("another call is opening this room's portal")
