package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// RemoteUser is a person from another network represented in Mattermost by
// the user UserID.
type RemoteUser struct {
	Network     bridge.Network `json:"network"`
	RemoteID    string         `json:"remote_id"`
	UserID      string         `json:"user_id"`
	Username    string         `json:"username,omitempty"`
	DisplayName string         `json:"display_name,omitempty"`
	AvatarHash  string         `json:"avatar_hash,omitempty"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

// remoteUserRef is the reverse lookup of a remote user.
type remoteUserRef struct {
	Network  bridge.Network `json:"network"`
	RemoteID string         `json:"remote_id"`
	UserID   string         `json:"user_id"`
}

func checkRemoteUser(network bridge.Network, remoteID string) error {
	if err := checkRemoteNetwork(network); err != nil {
		return err
	}
	return checkString("remote user ID", remoteID)
}

// GetRemoteUser returns the remote user of network known there as remoteID,
// ErrNotFound when none: proven on the master, since a caller that finds
// none makes one, and a record made just now may not be on a lagging read
// replica.
func (s *Store) GetRemoteUser(network bridge.Network, remoteID string) (*RemoteUser, error) {
	if err := checkRemoteUser(network, remoteID); err != nil {
		return nil, err
	}
	u, err := provenRecord[RemoteUser](s, remoteUserKey(network, remoteID))
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, fmt.Errorf("%w: no %s remote user %q", ErrNotFound, network, remoteID)
	}
	return u, nil
}

// RemoteUserByMattermostID returns the remote user the Mattermost user
// userID stands for, ErrNotFound when none.
func (s *Store) RemoteUserByMattermostID(userID string) (*RemoteUser, error) {
	if err := checkID("user ID", userID); err != nil {
		return nil, err
	}
	notFound := fmt.Errorf("%w: user %s is not a remote user", ErrNotFound, userID)
	ref, _, err := getJSON[remoteUserRef](s, userByMMKey(userID))
	if err != nil {
		return nil, err
	}
	if ref == nil {
		return nil, notFound
	}
	u, _, err := getJSON[RemoteUser](s, remoteUserKey(ref.Network, ref.RemoteID))
	if err != nil {
		return nil, err
	}
	if u == nil || u.UserID != userID {
		return nil, notFound // stale reverse lookup
	}
	return u, nil
}

// SaveRemoteUser creates or replaces a remote user record, stamping
// UpdatedAt, and keeps the lookup by Mattermost user ID in step (moving it if
// UserID changed). To create the record when several nodes may race, use
// ClaimRemoteUser first.
func (s *Store) SaveRemoteUser(u RemoteUser) error {
	if err := checkRemoteUser(u.Network, u.RemoteID); err != nil {
		return err
	}
	if err := checkID("user ID", u.UserID); err != nil {
		return err
	}
	for _, f := range [][2]string{{"username", u.Username}, {"display name", u.DisplayName}, {"avatar hash", u.AvatarHash}} {
		if err := checkOptional(f[0], f[1]); err != nil {
			return err
		}
	}
	u.UpdatedAt = s.stamp()
	var prev string
	_, err := update(context.Background(), s, remoteUserKey(u.Network, u.RemoteID), 0, func(old *RemoteUser) (*RemoteUser, error) {
		prev = ""
		if old != nil {
			prev = old.UserID
		}
		return &u, nil
	})
	if err != nil {
		return err
	}
	if err := s.putJSON(userByMMKey(u.UserID), remoteUserRef{Network: u.Network, RemoteID: u.RemoteID, UserID: u.UserID}, 0); err != nil {
		return err
	}
	if prev != "" && prev != u.UserID {
		return s.dropUserRef(prev, u.Network, u.RemoteID)
	}
	return nil
}

// dropUserRef deletes the reverse lookup of userID if it still names the
// remote user.
func (s *Store) dropUserRef(userID string, network bridge.Network, remoteID string) error {
	_, err := update(context.Background(), s, userByMMKey(userID), 0, func(old *remoteUserRef) (*remoteUserRef, error) {
		if old == nil || old.Network != network || old.RemoteID != remoteID {
			return nil, errNoChange
		}
		return nil, nil
	})
	return err
}

// ClaimRemoteUser records, once, that the remote user of network known as
// remoteID is the Mattermost user userID. Of several callers racing to create
// the same remote user exactly one wins; the others get the winner's user ID
// in existing (and should discard the user they made). won is also true when
// the record already names userID, so a retried call is harmless.
func (s *Store) ClaimRemoteUser(network bridge.Network, remoteID, userID string) (existing string, won bool, err error) {
	if err := checkRemoteUser(network, remoteID); err != nil {
		return "", false, err
	}
	if err := checkID("user ID", userID); err != nil {
		return "", false, err
	}
	key := remoteUserKey(network, remoteID)
	b, err := json.Marshal(RemoteUser{Network: network, RemoteID: remoteID, UserID: userID, UpdatedAt: s.stamp()})
	if err != nil {
		return "", false, err
	}
	r := newRetry()
	for {
		ok, err := s.insert(key, b, 0)
		if err != nil {
			return "", false, err
		}
		if !ok {
			existing, err := s.claimant(key)
			switch {
			case err != nil:
				return "", false, err
			case existing == "":
				// The replica does not have the record the insert ran
				// into yet, or it was deleted meanwhile: insert again.
				if err := r.wait(context.Background(), key); err != nil {
					return "", false, err
				}
				continue
			case existing != userID:
				return existing, false, nil
			}
		}
		ref := remoteUserRef{Network: network, RemoteID: remoteID, UserID: userID}
		if err := s.putJSON(userByMMKey(userID), ref, 0); err != nil {
			return "", false, err
		}
		return userID, true, nil
	}
}

// claimant returns the user ID of the remote user record at key, "" when
// there is none on the master. What a possibly lagging read returned is set
// onto itself, which proves the master has it.
func (s *Store) claimant(key string) (string, error) {
	cur, raw, err := getJSON[RemoteUser](s, key)
	if err != nil || cur == nil {
		return "", err
	}
	ok, err := s.confirm(key, raw, 0)
	if err != nil || !ok {
		return "", err
	}
	return cur.UserID, nil
}

// DeleteRemoteUser deletes a remote user record and its reverse lookup.
// Deleting one that does not exist is not an error.
func (s *Store) DeleteRemoteUser(network bridge.Network, remoteID string) error {
	if err := checkRemoteUser(network, remoteID); err != nil {
		return err
	}
	var prev string
	_, err := update(context.Background(), s, remoteUserKey(network, remoteID), 0, func(old *RemoteUser) (*RemoteUser, error) {
		prev = ""
		if old != nil {
			prev = old.UserID
		}
		return nil, nil
	})
	if err != nil || prev == "" {
		return err
	}
	return s.dropUserRef(prev, network, remoteID)
}

// Ghost is a Mattermost user represented on another network (an XMPP
// account, a Matrix puppet...).
type Ghost struct {
	Network bridge.Network `json:"network"`
	UserID  string         `json:"user_id"`
	// RemoteID is the ghost's identity on Network (JID, Matrix user ID...).
	RemoteID string `json:"remote_id,omitempty"`
	// Secret is a credential, already encrypted by the caller.
	Secret    []byte            `json:"secret,omitempty"`
	Data      map[string]string `json:"data,omitempty"`
	UpdatedAt time.Time         `json:"updated_at"`
}

func checkGhostKey(network bridge.Network, userID string) error {
	if err := checkRemoteNetwork(network); err != nil {
		return err
	}
	return checkID("user ID", userID)
}

func checkGhost(g *Ghost) error {
	if err := checkGhostKey(g.Network, g.UserID); err != nil {
		return err
	}
	if err := checkOptional("remote ID", g.RemoteID); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(g.Data)) {
		if err := checkString("data key", k); err != nil {
			return err
		}
		if len(g.Data[k]) > maxField {
			return invalid("data value %q is longer than %d bytes", k, maxField)
		}
	}
	return nil
}

// GetGhost returns the ghost of Mattermost user userID on network,
// ErrNotFound when none: proven on the master, like GetRemoteUser.
func (s *Store) GetGhost(network bridge.Network, userID string) (*Ghost, error) {
	if err := checkGhostKey(network, userID); err != nil {
		return nil, err
	}
	g, err := provenRecord[Ghost](s, ghostKey(network, userID))
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("%w: user %s has no %s ghost", ErrNotFound, userID, network)
	}
	return g, nil
}

// SaveGhost creates or replaces a ghost, stamping UpdatedAt.
func (s *Store) SaveGhost(g Ghost) error {
	if err := checkGhost(&g); err != nil {
		return err
	}
	g.UpdatedAt = s.stamp()
	return s.putJSON(ghostKey(g.Network, g.UserID), g, 0)
}

// UpdateGhost changes a ghost with a compare-and-set read-modify-write: fn
// gets the current ghost (nil if none) and returns the new one, or nil to
// delete it. Concurrent updates are never lost; fn may run several times.
// The returned ghost is what is now stored (nil if deleted).
func (s *Store) UpdateGhost(network bridge.Network, userID string, fn func(old *Ghost) (*Ghost, error)) (*Ghost, error) {
	if err := checkGhostKey(network, userID); err != nil {
		return nil, err
	}
	return update(context.Background(), s, ghostKey(network, userID), 0, func(old *Ghost) (*Ghost, error) {
		g, err := fn(old)
		if err != nil || g == nil {
			return nil, err
		}
		if g.Network != network || g.UserID != userID {
			return nil, invalid("UpdateGhost cannot change the network or user ID")
		}
		if err := checkGhost(g); err != nil {
			return nil, err
		}
		g.UpdatedAt = s.stamp()
		return g, nil
	})
}

// DeleteGhost deletes a ghost; deleting one that does not exist is not an
// error.
func (s *Store) DeleteGhost(network bridge.Network, userID string) error {
	if err := checkGhostKey(network, userID); err != nil {
		return err
	}
	return s.del(ghostKey(network, userID))
}

// People counts the people of one network the bridge represents.
type People struct {
	// RemoteUsers are the network's people represented in Mattermost.
	RemoteUsers int
	// Ghosts are Mattermost people represented on the network (XMPP
	// accounts, Matrix puppets).
	Ghosts int
}

// CountPeople counts remote users and ghosts per network in one walk of
// the keys, reading no record: network names are written verbatim in the
// keys (see keys.go).
func (s *Store) CountPeople() (map[bridge.Network]People, error) {
	out := map[bridge.Network]People{}
	err := s.walkKeys(func(k string) {
		var ghost bool
		rest, ok := strings.CutPrefix(k, prefixRemoteUser)
		if !ok {
			if rest, ok = strings.CutPrefix(k, prefixGhost); !ok {
				return
			}
			ghost = true
		}
		network, _, ok := strings.Cut(rest, ":")
		if !ok {
			return
		}
		p := out[bridge.Network(network)]
		if ghost {
			p.Ghosts++
		} else {
			p.RemoteUsers++
		}
		out[bridge.Network(network)] = p
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListGhosts returns every ghost on network.
func (s *Store) ListGhosts(network bridge.Network) ([]Ghost, error) {
	if err := checkRemoteNetwork(network); err != nil {
		return nil, err
	}
	return listJSON[Ghost](s, ghostPrefix(network))
}
