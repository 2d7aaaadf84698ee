package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// linkInfo is one link of GET /api/v1/links.
type linkInfo struct {
	ChannelID          string     `json:"channel_id"`
	ChannelName        string     `json:"channel_name"`
	ChannelDisplayName string     `json:"channel_display_name"`
	TeamID             string     `json:"team_id"`
	TeamName           string     `json:"team_name"`
	Since              time.Time  `json:"since"`
	Rooms              []roomInfo `json:"rooms"`
	LastIn             time.Time  `json:"last_in,omitzero"`
	LastOut            time.Time  `json:"last_out,omitzero"`
	Health             string     `json:"health"`
}

// roomInfo is a remote room of a link. The channel route shows only its
// first four fields.
type roomInfo struct {
	Network  bridge.Network `json:"network"`
	Room     string         `json:"room"`
	Name     string         `json:"name"`
	State    bridge.State   `json:"state"`
	Archived bool           `json:"archived"`
	LastIn   time.Time      `json:"last_in,omitzero"`
	LastOut  time.Time      `json:"last_out,omitzero"`
	// ok: the room relays now (see linkHealth).
	ok bool
}

// Link health, as the links API reports it.
const (
	healthOK       = "ok"
	healthDegraded = "degraded"
	healthDown     = "down"
)

// backlogLimit is how old the oldest event waiting for a room may be before
// the room counts as not relaying.
const backlogLimit = time.Minute

// describeTimeout bounds what the bridges take to name the rooms of one
// request.
const describeTimeout = 5 * time.Second

func (p *Plugin) serveLinks(rt *runtime, w http.ResponseWriter, r *http.Request) {
	links, err := rt.store.ListLinks()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.writeError(w, http.StatusInternalServerError, "could not list the links: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), describeTimeout)
	defer cancel()
	states := p.states(rt)
	backlog := map[bridge.QueueKey]time.Time{}
	for _, q := range rt.manager.Stats().Queues {
		if q.Depth > 0 {
			backlog[q.Key] = q.OldestQueuedAt
		}
	}
	teams := map[string]string{}
	out := make([]linkInfo, 0, len(links))
	for _, l := range links {
		li := linkInfo{ChannelID: l.ChannelID, TeamID: l.TeamID, Since: l.CreatedAt, Rooms: []roomInfo{}}
		if ch, appErr := p.API.GetChannel(l.ChannelID); appErr == nil {
			li.ChannelName, li.ChannelDisplayName, li.TeamID = ch.Name, ch.DisplayName, ch.TeamId
		}
		if _, ok := teams[li.TeamID]; !ok {
			if team, appErr := p.API.GetTeam(li.TeamID); appErr == nil {
				teams[li.TeamID] = team.Name
			}
		}
		li.TeamName = teams[li.TeamID]
		for _, remote := range l.Remotes {
			room := p.room(ctx, rt, states, l.ChannelID, remote)
			oldest, waiting := backlog[bridge.QueueKey{Link: l.ChannelID, Dest: remote.Ref().RoomKey()}]
			room.ok = room.ok && (!waiting || time.Since(oldest) < backlogLimit)
			if room.LastIn.After(li.LastIn) {
				li.LastIn = room.LastIn
			}
			if room.LastOut.After(li.LastOut) {
				li.LastOut = room.LastOut
			}
			li.Rooms = append(li.Rooms, room)
		}
		li.Health = linkHealth(li.Rooms)
		out = append(out, li)
	}
	slices.SortFunc(out, func(a, b linkInfo) int { return a.Since.Compare(b.Since) })
	writeJSON(w, http.StatusOK, map[string][]linkInfo{"links": out})
}

// linkHealth is ok when every room relays, down when none does, else
// degraded. A room relays when its network is connected (and so is
// Mattermost), it is not archived and nothing waits for it longer than
// backlogLimit.
func linkHealth(rooms []roomInfo) string {
	ok := 0
	for _, r := range rooms {
		if r.ok {
			ok++
		}
	}
	switch {
	case ok == len(rooms) && ok > 0:
		return healthOK
	case ok == 0:
		return healthDown
	}
	return healthDegraded
}

// states are the connection states of every network, Mattermost's
// included.
func (p *Plugin) states(rt *runtime) map[bridge.Network]bridge.State {
	out := map[bridge.Network]bridge.State{bridge.NetworkMattermost: p.health(rt, bridge.NetworkMattermost).State}
	for _, d := range p.allNetworks() {
		out[d.Network()] = p.health(rt, d.Network()).State
	}
	return out
}

// room describes a remote room of a link.
func (p *Plugin) room(ctx context.Context, rt *runtime, states map[bridge.Network]bridge.State, linkID string, remote store.RemoteRoom) roomInfo {
	ri := roomInfo{Network: remote.Network, Room: remote.Room, State: states[remote.Network],
		LastIn:  rt.manager.Counters().LastIn(linkID, remote.Ref()),
		LastOut: rt.manager.Counters().LastOut(linkID, remote.Ref()),
	}
	if b, ok := rt.manager.Bridge(remote.Network); ok {
		if d, ok := b.(bridge.RoomDescriber); ok {
			info := d.DescribeRoom(ctx, remote.Room)
			ri.Name, ri.Archived = p.redact(info.Name), info.Archived
		}
	}
	ri.ok = ri.State == bridge.StateConnected && states[bridge.NetworkMattermost] == bridge.StateConnected && !ri.Archived
	return ri
}

// serveUnlink is DELETE /api/v1/links/{channel_id}[/{network}]: it unlinks
// the channel's rooms (of one network) as /<network>bridge unmap does.
func (p *Plugin) serveUnlink(rt *runtime, w http.ResponseWriter, r *http.Request) {
	channelID, network := r.PathValue("channel_id"), bridge.Network(r.PathValue("network"))
	if !model.IsValidId(channelID) {
		p.writeError(w, http.StatusBadRequest, "not a channel ID: "+channelID)
		return
	}
	link, err := rt.store.GetLink(channelID)
	if errors.Is(err, store.ErrNotFound) {
		p.writeError(w, http.StatusNotFound, "the channel is not linked with any room")
		return
	}
	if err != nil {
		p.writeError(w, http.StatusInternalServerError, "could not read the channel's link: "+err.Error())
		return
	}
	var rooms []store.RemoteRoom
	for _, remote := range link.Remotes {
		if network == "" || remote.Network == network {
			rooms = append(rooms, remote)
		}
	}
	if len(rooms) == 0 {
		p.writeError(w, http.StatusNotFound, "the channel is not linked with any "+network.Label()+" room")
		return
	}
	unlinked := []bridge.Network{}
	for _, remote := range rooms {
		err := rt.commands.Unlink(r.Context(), channelID, remote.Network, remote.Room)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Unlinked meanwhile: the link was read from a replica.
		case err != nil:
			p.writeError(w, http.StatusInternalServerError, "could not unlink "+remote.Network.Label()+" room "+remote.Room+": "+err.Error())
			return
		case !slices.Contains(unlinked, remote.Network):
			unlinked = append(unlinked, remote.Network)
		}
	}
	if len(unlinked) == 0 {
		p.writeError(w, http.StatusNotFound, "the channel is not linked with any such room")
		return
	}
	writeJSON(w, http.StatusOK, map[string][]bridge.Network{"unlinked": unlinked})
}

// channelRoom is what a channel's readers see of a room it is linked with.
type channelRoom struct {
	Network bridge.Network `json:"network"`
	Room    string         `json:"room"`
	Name    string         `json:"name"`
	State   bridge.State   `json:"state"`
}

// serveChannelLinks is GET /api/v1/channels/{channel_id}/links, for anyone
// who can read the channel: the rooms it is linked with and their
// networks' states, no counters and no errors.
func (p *Plugin) serveChannelLinks(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet) {
		return
	}
	userID, channelID := r.Header.Get("Mattermost-User-ID"), r.PathValue("channel_id")
	switch {
	case userID == "":
		p.writeError(w, http.StatusUnauthorized, "log in to Mattermost to use the bridge's API")
		return
	case !model.IsValidId(channelID):
		p.writeError(w, http.StatusBadRequest, "not a channel ID: "+channelID)
		return
	case !p.API.HasPermissionToChannel(userID, channelID, model.PermissionReadChannel):
		p.writeError(w, http.StatusForbidden, "you cannot read this channel")
		return
	}
	rt := p.active()
	if rt == nil {
		p.writeError(w, http.StatusServiceUnavailable, "the bridge is starting or stopping on this node; try again in a moment")
		return
	}
	out := struct {
		ChannelID string        `json:"channel_id"`
		Rooms     []channelRoom `json:"rooms"`
	}{ChannelID: channelID, Rooms: []channelRoom{}}
	link, err := rt.store.GetLink(channelID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		p.writeError(w, http.StatusInternalServerError, "could not read the channel's links")
		return
	default:
		ctx, cancel := context.WithTimeout(r.Context(), describeTimeout)
		defer cancel()
		states := p.states(rt)
		for _, remote := range link.Remotes {
			room := p.room(ctx, rt, states, channelID, remote)
			out.Rooms = append(out.Rooms, channelRoom{Network: room.Network, Room: room.Room, Name: room.Name, State: room.State})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
