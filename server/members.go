package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

const (
	// memberTimeout bounds one membership change's calls to the bridges, so
	// a homeserver that does not answer cannot hold a worker for long.
	memberTimeout = 30 * time.Second
	// memberWorkers bounds how many membership changes are worked on at
	// once: adding a whole team to a linked channel must not open thousands
	// of requests to a homeserver together.
	memberWorkers = 4
)

type memberKey struct{ channelID, userID string }

// memberSync relays membership changes of linked channels to the bridges
// that show members (bridge.MemberWatcher), off the hook goroutine.
//
// The server fires its hooks on goroutines, so a quick join and leave can
// arrive in either order. Each run therefore looks at the membership as it
// is then instead of trusting the hook, and changes of one person in one
// channel run one at a time: the last run sees the final state, so the
// remote side ends up like Mattermost.
type memberSync struct {
	mu sync.Mutex
	// pending has a key while a worker owns it; true means another change
	// came in meanwhile and the worker must look again.
	pending map[memberKey]bool
	slots   chan struct{}
}

func newMemberSync() *memberSync {
	return &memberSync{pending: map[memberKey]bool{}, slots: make(chan struct{}, memberWorkers)}
}

// changed makes run(key) happen after this call, once for any number of
// changes that arrive while a run for key is waiting or working.
func (m *memberSync) changed(key memberKey, run func(memberKey)) {
	m.mu.Lock()
	if _, owned := m.pending[key]; owned {
		m.pending[key] = true
		m.mu.Unlock()
		return
	}
	m.pending[key] = false
	m.mu.Unlock()
	go func() {
		m.slots <- struct{}{}
		defer func() { <-m.slots }()
		for {
			m.mu.Lock()
			m.pending[key] = false
			m.mu.Unlock()
			run(key)
			m.mu.Lock()
			again := m.pending[key]
			if !again {
				delete(m.pending, key)
			}
			m.mu.Unlock()
			if !again {
				return
			}
		}
	}()
}

// memberChanged handles UserHasJoinedChannel and UserHasLeftChannel.
//
// memberChanged runs on the node that holds the bridge (hooks.go hands the
// change there); joining and leaving are idempotent on the remote side, so
// a change seen twice does no harm.
func (rt *runtime) memberChanged(p *Plugin, channelID, userID string) {
	if channelID == "" || userID == "" {
		return
	}
	rt.members.changed(memberKey{channelID, userID}, func(k memberKey) { p.syncMember(rt, k) })
}

type memberTarget struct {
	w    bridge.MemberWatcher
	room store.RemoteRoom
}

// syncMember shows the person as in or out of each linked room whose bridge
// shows members, as their channel membership now is.
func (p *Plugin) syncMember(rt *runtime, k memberKey) {
	if rt.ctx.Err() != nil {
		return
	}
	// A channel linked just now may not be on the read replica yet: the
	// first members to show would be missed.
	link, err := rt.store.ProvenLink(rt.ctx, k.channelID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			rt.logger.Warn("Could not read a channel's link for a membership change", "channel_id", k.channelID, "error", err.Error())
		}
		return
	}
	var targets []memberTarget
	for _, r := range link.Remotes {
		if b, ok := rt.manager.Bridge(r.Network); ok {
			if w, ok := b.(bridge.MemberWatcher); ok {
				targets = append(targets, memberTarget{w, r})
			}
		}
	}
	if len(targets) == 0 {
		return
	}
	member, ok, err := rt.mm.Member(k.userID)
	if err != nil {
		rt.logger.Warn("Could not read a user for a membership change", "user_id", k.userID, "error", err.Error())
		return
	}
	if !ok {
		return
	}
	_, appErr := p.API.GetChannelMember(k.channelID, k.userID)
	if appErr != nil && appErr.StatusCode != http.StatusNotFound {
		rt.logger.Warn("Could not read a channel membership", "channel_id", k.channelID, "user_id", k.userID, "error", appErr.Error())
		return
	}
	joined := appErr == nil

	ctx, cancel := context.WithTimeout(rt.ctx, memberTimeout)
	defer cancel()
	for _, t := range targets {
		if joined {
			err = t.w.MemberJoined(ctx, t.room.Room, member)
		} else {
			err = t.w.MemberLeft(ctx, t.room.Room, member)
		}
		if err != nil && rt.ctx.Err() == nil {
			rt.logger.Warn("Could not show a membership change in a linked room",
				"network", string(t.room.Network), "room", t.room.Room, "channel_id", k.channelID,
				"user_id", k.userID, "joined", joined, "error", err.Error())
		}
	}
}
