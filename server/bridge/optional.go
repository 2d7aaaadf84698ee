package bridge

import "context"

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
// room than its ID, for status and list: its name, and whether it takes
// messages ("#general, archived in Slack: read-only"). DescribeRoom
// returns "" when there is nothing to add; it must be quick (cached
// answers), as status lists every room of a channel.
type RoomDescriber interface {
	DescribeRoom(ctx context.Context, room string) string
}
