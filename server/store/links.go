package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// RemoteRoom is a room on another network linked to a Mattermost channel.
type RemoteRoom struct {
	Network bridge.Network `json:"network"`
	Room    string         `json:"room"`
	// LinkedBy is the Mattermost user ID of who made the link; empty when the
	// system did.
	LinkedBy string    `json:"linked_by,omitempty"`
	LinkedAt time.Time `json:"linked_at"`
}

// Ref returns the room as a bridge.Ref.
func (r RemoteRoom) Ref() bridge.Ref { return bridge.Ref{Network: r.Network, Room: r.Room} }

// Link is a Mattermost channel and the remote rooms bridged with it. Its ID,
// as the router knows it, is the channel ID.
type Link struct {
	ChannelID string       `json:"channel_id"`
	TeamID    string       `json:"team_id"`
	Remotes   []RemoteRoom `json:"remotes"`
	CreatedBy string       `json:"created_by,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
}

// Remote returns the remote room of the link on network named room.
func (l *Link) Remote(network bridge.Network, room string) (RemoteRoom, bool) {
	if i := l.index(network, room); i >= 0 {
		return l.Remotes[i], true
	}
	return RemoteRoom{}, false
}

func (l *Link) index(network bridge.Network, room string) int {
	if l == nil {
		return -1
	}
	return slices.IndexFunc(l.Remotes, func(r RemoteRoom) bool { return r.Network == network && r.Room == room })
}

// roomClaim is the reverse lookup of a remote room: the channel holding it.
// It is written insert-if-absent before the link record, so it acts as the
// lock that lets only one channel have the room; the link record is the
// truth, and readers check the two agree.
type roomClaim struct {
	Network   bridge.Network `json:"network"`
	Room      string         `json:"room"`
	ChannelID string         `json:"channel_id"`
	ClaimedAt time.Time      `json:"claimed_at"`
}

// staleClaimAge is how old a claim must be before AddRemote may take it over
// when the channel it names does not hold the room (a call interrupted
// between its two writes). Younger ones may belong to a call in progress.
const staleClaimAge = 2 * time.Minute

var errClaimLost = errors.New("store: the room claim changed during the update; try again")

// GetLink returns the link of a channel, ErrNotFound when it has none.
func (s *Store) GetLink(channelID string) (*Link, error) {
	if err := checkID("channel ID", channelID); err != nil {
		return nil, err
	}
	l, _, err := getJSON[Link](s, linkKey(channelID))
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("%w: channel %s has no link", ErrNotFound, channelID)
	}
	return l, nil
}

// ProvenLink is GetLink for callers that must not miss a link made just
// now: a read replica may not have it yet, so "no link" is proven on the
// master before it is returned, at the cost of a write (a placeholder
// inserted and removed).
func (s *Store) ProvenLink(ctx context.Context, channelID string) (*Link, error) {
	if err := checkID("channel ID", channelID); err != nil {
		return nil, err
	}
	l, err := s.channelLink(ctx, channelID)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("%w: channel %s has no link", ErrNotFound, channelID)
	}
	return l, nil
}

// ListLinks returns every link: one read for the index, one per link. A
// store not migrated yet (no index) is walked key by key.
func (s *Store) ListLinks() ([]Link, error) {
	idx, _, err := getJSON[linkIndex](s, keyLinkIndex)
	if err != nil {
		return nil, err
	}
	if idx == nil {
		return listJSON[Link](s, prefixLink)
	}
	out := make([]Link, 0, len(idx.IDs))
	for _, id := range idx.IDs {
		l, _, err := getJSON[Link](s, linkKey(id))
		if err != nil {
			return nil, err
		}
		if l != nil { // indexed before its link was written, or after it went
			out = append(out, *l)
		}
	}
	return out, nil
}

// linkIndex holds every link's channel ID, and maybe some with no link: a
// channel is added before its link is written and removed after its link
// is deleted (and only while it has none), so a node dying in between
// leaves an extra ID, never a missing one. Gen changes with every
// indexLink, so that an unindexLink racing with a new link of the same
// channel loses its compare-and-set and looks at the link again.
type linkIndex struct {
	IDs []string `json:"ids"`
	Gen int64    `json:"gen"`
}

// indexLink adds channelID to the link index.
func (s *Store) indexLink(channelID string) error {
	_, err := update(context.Background(), s, keyLinkIndex, 0, func(old *linkIndex) (*linkIndex, error) {
		next := linkIndex{}
		if old != nil {
			next = linkIndex{IDs: slices.Clone(old.IDs), Gen: old.Gen}
		}
		if i, found := slices.BinarySearch(next.IDs, channelID); !found {
			next.IDs = slices.Insert(next.IDs, i, channelID)
		}
		next.Gen++
		return &next, nil
	})
	return err
}

// unindexLink removes channelID from the link index unless it has a link.
func (s *Store) unindexLink(channelID string) error {
	_, err := update(context.Background(), s, keyLinkIndex, 0, func(old *linkIndex) (*linkIndex, error) {
		if old == nil {
			return nil, errNoChange
		}
		i, found := slices.BinarySearch(old.IDs, channelID)
		if !found {
			return nil, errNoChange
		}
		if l, _, err := getJSON[Link](s, linkKey(channelID)); err != nil || l != nil {
			return nil, cmpErr(err, errNoChange)
		}
		return &linkIndex{IDs: slices.Delete(slices.Clone(old.IDs), i, i+1), Gen: old.Gen}, nil
	})
	return err
}

// cmpErr is err, or def when err is nil.
func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// buildLinkIndex indexes every link a walk of the store finds (the
// migration to schema 2).
func (s *Store) buildLinkIndex() error {
	links, err := listJSON[Link](s, prefixLink)
	if err != nil {
		return err
	}
	if len(links) == 0 {
		_, err := s.insert(keyLinkIndex, []byte(`{"ids":[]}`), 0)
		return err
	}
	for _, l := range links {
		if err := s.indexLink(l.ChannelID); err != nil {
			return err
		}
	}
	return nil
}

// AddRemote links the remote room r to a channel of a team, creating the
// link if needed, and returns the link. A zero r.LinkedAt means now. It
// fails with a *RoomTakenError (wrapping ErrRoomTaken) when another channel
// holds the room and with ErrAlreadyLinked when this one already does. The
// reverse lookup is claimed insert-if-absent first, so of two channels racing
// for one room exactly one wins. The team ID is updated on every call (a
// channel can move to another team).
func (s *Store) AddRemote(channelID, teamID string, r RemoteRoom) (*Link, error) {
	if err := checkID("channel ID", channelID); err != nil {
		return nil, err
	}
	if err := checkID("team ID", teamID); err != nil {
		return nil, err
	}
	if err := checkRemoteNetwork(r.Network); err != nil {
		return nil, err
	}
	if err := checkString("room", r.Room); err != nil {
		return nil, err
	}
	if r.LinkedBy != "" {
		if err := checkID("linked-by user ID", r.LinkedBy); err != nil {
			return nil, err
		}
	}
	if r.LinkedAt.IsZero() {
		r.LinkedAt = s.stamp()
	}
	r.LinkedAt = r.LinkedAt.UTC()

	if err := s.indexLink(channelID); err != nil {
		return nil, err
	}
	ctx := context.Background()
	key := roomKey(r.Network, r.Room)
	for attempt := 1; ; attempt++ {
		claim, created, err := s.claimRoom(ctx, channelID, r.Network, r.Room)
		if err != nil {
			return nil, err
		}
		link, err := update(ctx, s, linkKey(channelID), 0, func(old *Link) (*Link, error) {
			// The claim must still be ours. Setting it onto itself proves
			// it on the master, where reading it could hit a replica that
			// does not have it yet.
			ok, err := s.set(key, claim, model.PluginKVSetOptions{Atomic: true, OldValue: claim})
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errClaimLost
			}
			if old == nil {
				old = &Link{ChannelID: channelID, CreatedBy: r.LinkedBy, CreatedAt: r.LinkedAt}
			}
			if old.index(r.Network, r.Room) >= 0 {
				return nil, ErrAlreadyLinked
			}
			old.TeamID = teamID
			old.Remotes = append(old.Remotes, r)
			return old, nil
		})
		switch {
		case err == nil:
			return link, nil
		case errors.Is(err, ErrAlreadyLinked):
			return nil, fmt.Errorf("%w: %s room %q, channel %s", ErrAlreadyLinked, r.Network, r.Room, channelID)
		case errors.Is(err, errClaimLost) && attempt < maxAttempts:
			continue
		}
		if created {
			_ = s.releaseUnusedClaim(channelID, r.Network, r.Room, claim)
		}
		return nil, err
	}
}

// claimRoom makes the reverse lookup of a room name channelID and returns
// the claim as stored, which AddRemote checks is still there before it
// writes the link. created says whether this call wrote it (false: it
// already named channelID).
func (s *Store) claimRoom(ctx context.Context, channelID string, network bridge.Network, room string) (claim []byte, created bool, err error) {
	key := roomKey(network, room)
	r := newRetry()
	for {
		b, err := json.Marshal(roomClaim{Network: network, Room: room, ChannelID: channelID, ClaimedAt: s.stamp()})
		if err != nil {
			return nil, false, err
		}
		ok, err := s.insert(key, b, 0)
		if err != nil || ok {
			return b, ok, err
		}
		cur, raw, err := getJSON[roomClaim](s, key)
		if err != nil {
			return nil, false, err
		}
		switch {
		case cur == nil:
			// The replica does not have the claim the insert ran into yet,
			// or it was released meanwhile: insert again.
		case cur.Network != network || cur.Room != room:
			return nil, false, fmt.Errorf("store: key %q holds %s room %q, not %q", key, cur.Network, cur.Room, room)
		case cur.ChannelID == channelID:
			// Ours already (a concurrent or retried call): setting it onto
			// itself proves the master still has it. Unchanged, so calls
			// racing for one channel all hold the same claim.
			ok, err := s.set(key, raw, model.PluginKVSetOptions{Atomic: true, OldValue: raw})
			if err != nil || ok {
				return raw, false, err
			}
		default:
			holds, err := s.linkHolds(cur.ChannelID, network, room)
			if err != nil {
				return nil, false, err
			}
			if holds || s.now().Sub(cur.ClaimedAt) < s.staleClaim {
				return nil, false, &RoomTakenError{Network: network, Room: room, ChannelID: cur.ChannelID}
			}
			// A claim left behind by an interrupted call: drop it.
			if _, err := s.deleteIf(key, raw); err != nil {
				return nil, false, err
			}
		}
		if err := r.wait(ctx, key); err != nil {
			return nil, false, err
		}
	}
}

// linkHolds reports whether channelID's link record has the room.
func (s *Store) linkHolds(channelID string, network bridge.Network, room string) (bool, error) {
	l, _, err := getJSON[Link](s, linkKey(channelID))
	if err != nil {
		return false, err
	}
	return l.index(network, room) >= 0, nil
}

// releaseUnusedClaim deletes channelID's claim on a room its link does not
// hold (undoing a failed AddRemote); claim is the claim as AddRemote wrote
// it, so a claim renewed meanwhile by another call stays.
func (s *Store) releaseUnusedClaim(channelID string, network bridge.Network, room string, claim []byte) error {
	holds, err := s.linkHolds(channelID, network, room)
	if err != nil || holds {
		return err
	}
	_, err = s.deleteIf(roomKey(network, room), claim)
	return err
}

// RemoveRemote unlinks a remote room from a channel and returns what is left
// of the link; when no remote remains the link record is deleted (the
// returned Link then has no remotes) and so are the link's cursors. The
// reverse lookup is removed too, including one left behind by an interrupted
// call. ErrNotFound when the room was not linked to the channel.
func (s *Store) RemoveRemote(channelID string, network bridge.Network, room string) (*Link, error) {
	if err := checkID("channel ID", channelID); err != nil {
		return nil, err
	}
	if err := checkRemoteNetwork(network); err != nil {
		return nil, err
	}
	if err := checkString("room", room); err != nil {
		return nil, err
	}
	var found bool
	var after Link
	_, err := update(context.Background(), s, linkKey(channelID), 0, func(old *Link) (*Link, error) {
		found = false
		i := old.index(network, room)
		if i < 0 {
			return nil, errNoChange
		}
		found = true
		old.Remotes = slices.Delete(old.Remotes, i, i+1)
		after = *old
		if len(old.Remotes) == 0 {
			after.Remotes = []RemoteRoom{}
			return nil, nil
		}
		return old, nil
	})
	if err != nil {
		return nil, err
	}

	cleaned := false
	_, err = update(context.Background(), s, roomKey(network, room), 0, func(old *roomClaim) (*roomClaim, error) {
		cleaned = old != nil && old.Network == network && old.Room == room && old.ChannelID == channelID
		if !cleaned {
			return nil, errNoChange
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		if !cleaned {
			return nil, fmt.Errorf("%w: %s room %q is not linked to channel %s", ErrNotFound, network, room, channelID)
		}
		// Only a leftover reverse lookup: report the link as it is.
		l, _, err := getJSON[Link](s, linkKey(channelID))
		if err != nil {
			return nil, err
		}
		if l == nil {
			l = &Link{ChannelID: channelID, Remotes: []RemoteRoom{}}
		}
		return l, nil
	}
	if len(after.Remotes) == 0 {
		if err := s.unindexLink(channelID); err != nil {
			return &after, fmt.Errorf("store: link of channel %s removed, but not from the index: %w", channelID, err)
		}
		if err := s.deleteCursors(channelID); err != nil {
			return &after, fmt.Errorf("store: link of channel %s removed, but not its cursors: %w", channelID, err)
		}
	}
	return &after, nil
}

// ChannelForRoom returns the channel a remote room is linked to, ErrNotFound
// when none: proven on the master, as a room linked just now may not be on
// a lagging read replica yet.
func (s *Store) ChannelForRoom(network bridge.Network, room string) (string, error) {
	if err := checkRemoteNetwork(network); err != nil {
		return "", err
	}
	if err := checkString("room", room); err != nil {
		return "", err
	}
	link, err := s.roomLink(context.Background(), network, room)
	if err != nil {
		return "", err
	}
	if link == nil {
		return "", fmt.Errorf("%w: %s room %q is not linked", ErrNotFound, network, room)
	}
	return link.ChannelID, nil
}

// LinkedRooms implements bridge.Directory: every room of the link holding
// room (the Mattermost channel as a Ref with Network mattermost), excluding
// room itself, and the link ID (the channel ID). The error wraps
// bridge.ErrNotLinked when room is not linked.
func (s *Store) LinkedRooms(ctx context.Context, room bridge.Ref) (string, []bridge.Ref, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	notLinked := fmt.Errorf("%w: %s", bridge.ErrNotLinked, room.RoomKey())
	var link *Link
	var err error
	switch {
	case room.Network == bridge.NetworkMattermost:
		if checkID("channel ID", room.Room) != nil {
			return "", nil, notLinked
		}
		link, err = s.channelLink(ctx, room.Room)
	case room.Network.Valid() && checkString("room", room.Room) == nil:
		link, err = s.roomLink(ctx, room.Network, room.Room)
	default:
		return "", nil, notLinked
	}
	if err != nil {
		return "", nil, err
	}
	if link == nil || len(link.Remotes) == 0 {
		return "", nil, notLinked
	}
	rooms := make([]bridge.Ref, 0, len(link.Remotes)+1)
	if room.Network != bridge.NetworkMattermost {
		rooms = append(rooms, bridge.Ref{Network: bridge.NetworkMattermost, Room: link.ChannelID})
	}
	for _, r := range link.Remotes {
		if r.Network == room.Network && r.Room == room.Room {
			continue
		}
		rooms = append(rooms, r.Ref())
	}
	return link.ChannelID, rooms, nil
}

// channelLink is the link of a channel for LinkedRooms. A read replica may
// not have a link made just now, so finding none is proven on the master
// before it is believed; a link found is used as read, unless it is older
// than what this store last wrote there (a room linked a moment ago).
func (s *Store) channelLink(ctx context.Context, channelID string) (*Link, error) {
	key := linkKey(channelID)
	for r := newRetry(); ; {
		l, raw, err := getJSON[Link](s, key)
		if err != nil || (l != nil && len(l.Remotes) > 0 && !s.behindOwnWrite(key, raw)) {
			return l, err
		}
		ok, err := s.confirmKeepingHint(key, raw)
		if err != nil || ok {
			return l, err
		}
		if err := r.wait(ctx, key); err != nil {
			return nil, err
		}
	}
}

// roomLink is the link holding a remote room for LinkedRooms, nil when
// none. Like channelLink, it proves "none" on the master: the claim (or its
// absence) and the claimed channel's link, as read.
func (s *Store) roomLink(ctx context.Context, network bridge.Network, room string) (*Link, error) {
	key := roomKey(network, room)
	for r := newRetry(); ; {
		c, craw, err := getJSON[roomClaim](s, key)
		if err != nil {
			return nil, err
		}
		var lraw []byte
		if c != nil {
			var l *Link
			if l, lraw, err = getJSON[Link](s, linkKey(c.ChannelID)); err != nil {
				return nil, err
			}
			if l.index(network, room) >= 0 {
				lk := linkKey(c.ChannelID)
				if !s.behindOwnWrite(lk, lraw) {
					return l, nil
				}
				// Older than this store's own write there: used once the
				// master proves it current, else read again.
				if ok, err := s.confirmKeepingHint(lk, lraw); err != nil || ok {
					return l, err
				}
				if err := r.wait(ctx, key); err != nil {
					return nil, err
				}
				continue
			}
		}
		ok, err := s.confirm(key, craw, 0)
		if err == nil && ok && c != nil {
			ok, err = s.confirm(linkKey(c.ChannelID), lraw, 0)
		}
		if err != nil || ok {
			return nil, err
		}
		if err := r.wait(ctx, key); err != nil {
			return nil, err
		}
	}
}
