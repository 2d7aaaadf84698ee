package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Automatic portals: a bridge whose bot was invited to a room no channel
// is linked with asks, through bridge.Portals, for a channel to be made
// for it. The plugin makes it here, the same way for every network.
//
// At most one channel per room, ever: a room linked already gets none; a
// claim in the store (insert-if-absent, so of calls racing on any number
// of nodes exactly one wins) lets only one call make it; and once made, a
// mark that never expires keeps a room whose link an admin removed from
// getting another channel. The claim expires (portalClaimTTL) so that a
// failed attempt (no such team, the server refused) does not block the
// room for good.

const (
	nsPortalClaim  = "portal-claim" // network|room: a call is making its portal
	nsPortalMade   = "portal-made"  // network|room: its portal was made
	portalClaimTTL = 5 * time.Minute
	// portalNameMax leaves room for a "-NN" suffix within the server's
	// 64-character limit on channel names.
	portalNameMax = 56
	// portalNameTries bounds the suffixes tried for a taken name.
	portalNameTries = 50
	// errChannelNameTaken is the app error the server answers CreateChannel
	// with for a name its team has already (archived channels included).
	errChannelNameTaken = "store.sql_channel.save_channel.exists.app_error"
)

// portalMaker is the plugin as bridge.Portals.
type portalMaker struct{ p *Plugin }

func (p *Plugin) portals() bridge.Portals { return portalMaker{p} }

func (m portalMaker) OpenPortal(_ context.Context, req bridge.PortalRequest) (string, bool, error) {
	p := m.p
	rt := p.active()
	if rt == nil {
		return "", false, errors.New("the plugin is not running")
	}
	if req.Network == "" || req.Room == "" || strings.TrimSpace(req.Team) == "" {
		return "", false, errors.New("a portal needs a network, a room and a team")
	}
	st := rt.store
	key := string(req.Network) + "|" + req.Room
	if id, err := st.ChannelForRoom(req.Network, req.Room); err == nil {
		return id, false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", false, err
	}
	if made, err := st.Seen(nsPortalMade, key); err != nil || made {
		return "", false, err
	}
	if first, err := st.MarkSeen(nsPortalClaim, key, portalClaimTTL); err != nil || !first {
		return "", false, err
	}

	team, appErr := p.API.GetTeamByName(strings.TrimSpace(req.Team))
	if appErr != nil {
		if appErr.StatusCode == 404 {
			return "", false, fmt.Errorf("no team named %q", req.Team)
		}
		return "", false, fmt.Errorf("could not read team %q: %v", req.Team, appErr)
	}
	ch, err := m.createChannel(rt.botID, team, req)
	if err != nil {
		return "", false, err
	}
	if _, err := st.AddRemote(ch.Id, team.Id, store.RemoteRoom{Network: req.Network, Room: req.Room}); err != nil {
		return "", false, fmt.Errorf("created channel ~%s but could not link it: %w", ch.Name, err)
	}
	if _, err := st.MarkSeen(nsPortalMade, key, 0); err != nil {
		p.logger().Warn("Could not record that a portal was made", "network", string(req.Network), "room", req.Room, "error", err.Error())
	}
	title, trigger := string(req.Network), ""
	for _, n := range p.allNetworks() {
		if n.Network() == req.Network {
			title, trigger = n.Command.Title, n.Command.Trigger
		}
	}
	note := fmt.Sprintf("This channel was created for the %s room %q (%s), which the bridge was invited to, and is linked with it: messages now flow both ways.", title, req.Name, req.Room)
	if trigger != "" {
		note += fmt.Sprintf(" A system admin can unlink it with `/%s unmap`.", trigger)
	}
	if _, appErr := p.API.CreatePost(&model.Post{UserId: rt.botID, ChannelId: ch.Id, Message: note}); appErr != nil {
		p.logger().Warn("Could not post the note in a new portal", "channel", ch.Id, "error", appErr.Error())
	}
	p.logger().Info("Created a channel for a remote room and linked them", "network", string(req.Network), "room", req.Room, "channel", ch.Id, "team", team.Name)
	return ch.Id, true, nil
}

// createChannel makes the portal's channel: named after the room, with
// "-2", "-3"... when the name is taken.
func (m portalMaker) createChannel(creatorID string, team *model.Team, req bridge.PortalRequest) (*model.Channel, error) {
	typ := model.ChannelTypeOpen
	if req.Private {
		typ = model.ChannelTypePrivate
	}
	display := strings.TrimSpace(req.Name)
	if display == "" {
		display = req.Room
	}
	if utf8.RuneCountInString(display) > model.ChannelDisplayNameMaxRunes {
		display = string([]rune(display)[:model.ChannelDisplayNameMaxRunes])
	}
	base := portalName(req)
	for i := 1; i <= portalNameTries; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		ch, appErr := m.p.API.CreateChannel(&model.Channel{
			TeamId: team.Id, Type: typ, Name: name, DisplayName: display, CreatorId: creatorID,
		})
		if appErr == nil {
			return ch, nil
		}
		if appErr.Id != errChannelNameTaken {
			return nil, fmt.Errorf("could not create channel %s in team %s: %v", name, team.Name, appErr)
		}
	}
	return nil, fmt.Errorf("could not create a channel in team %s: %s and %d more names are taken", team.Name, base, portalNameTries-1)
}

// portalName is a valid channel name (lower-case letters, digits, '-' and
// '_', see model.IsValidChannelIdentifier) made from the room's name, or
// from the network and room ID when nothing of the name is left.
func portalName(req bridge.PortalRequest) string {
	clean := func(s string) string {
		var b strings.Builder
		dash := false
		for _, r := range strings.ToLower(s) {
			switch {
			case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_':
				b.WriteRune(r)
				dash = false
			case !dash:
				b.WriteByte('-')
				dash = true
			}
		}
		out := b.String()
		if len(out) > portalNameMax {
			out = out[:portalNameMax]
		}
		return strings.Trim(out, "-_")
	}
	if name := clean(req.Name); name != "" && model.IsValidChannelIdentifier(name) {
		return name
	}
	return clean(string(req.Network) + "-" + req.Room)
}
