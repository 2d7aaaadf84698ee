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
