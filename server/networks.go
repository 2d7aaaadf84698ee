package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
)

// defaultNetworks are the networks the plugin bridges, each described by
// its own package (see package connector).
func defaultNetworks() []connector.Descriptor {
	return []connector.Descriptor{
		xmpp.Descriptor(),
		matrix.Descriptor(),
		slackDescriptor(),
	}
}

// remoteSiteURL is the stable identity of a network's shared-channels
// remote.
func remoteSiteURL(n connector.Descriptor, pluginID string) string {
	return string(n.Network()) + "://" + pluginID
}

// networkHost is the plugin as one network's subcommands and routes see it.
type networkHost struct {
	p       *Plugin
	network bridge.Network
}

func (h networkHost) Running() (bridge.Bridge, bool) {
	rt := h.p.active()
	if rt == nil {
		return nil, false
	}
	return rt.manager.Bridge(h.network)
}

func (h networkHost) Config() connector.Config {
	return h.p.getConfiguration().networks[h.network]
}

func (h networkHost) PluginURL() (string, error) { return h.p.pluginURL() }

func (h networkHost) IsSystemAdmin(r *http.Request) bool { return h.p.isSystemAdmin(r) }

func (h networkHost) LogError(msg string, keyValuePairs ...any) {
	h.p.logger().Error(msg, keyValuePairs...)
}

// subcommands are a network's own subcommands and, when it creates rooms,
// create.
func (p *Plugin) subcommands(n connector.Descriptor) []command.Subcommand {
	var out []command.Subcommand
	if n.CreatesRooms {
		out = append(out, command.Subcommand{
			Name: "create",
			Help: "Create a new " + n.Command.Title + " room named after this channel and link it; the channel's members join it",
			Run:  p.createRoom,
		})
	}
	if n.Subcommands != nil {
		out = append(out, n.Subcommands(networkHost{p, n.Network()})...)
	}
	if n.Doctor != nil {
		out = append(out, p.doctorSubcommand(n))
	}
	return out
}

// createRoom makes a room for the channel, links it like map does and puts
// the channel's members in it.
func (p *Plugin) createRoom(ctx context.Context, call command.Call) (string, error) {
	if len(call.Fields) != 0 {
		return "", fmt.Errorf("usage: `/%s create`", call.Spec.Trigger)
	}
	rt := p.active()
	if rt == nil {
		return "", errors.New("the bridge is not running")
	}
	title := call.Spec.Title
	b, ok := rt.manager.Bridge(call.Spec.Network)
	creator, can := b.(bridge.RoomCreator)
	if !ok || !can {
		return "", fmt.Errorf("the %s bridge is not configured or not running; set it up in the System Console first. Nothing was changed", title)
	}
	ch, appErr := p.API.GetChannel(call.Args.ChannelId)
	if appErr != nil {
		return "", fmt.Errorf("could not read this channel: %v", appErr)
	}
	if link, err := rt.store.GetLink(ch.Id); err == nil {
		for _, r := range link.Remotes {
			if r.Network == call.Spec.Network {
				return "", fmt.Errorf("this channel is already linked with %s room %s. Nothing was changed", title, r.Room)
			}
		}
	}
	name := ch.DisplayName
	if name == "" {
		name = ch.Name
	}
	// Only a public channel gets a room anyone may join.
	inviteOnly := ch.Type != model.ChannelTypeOpen
	room, err := creator.CreateRoom(ctx, name, ch.Purpose, inviteOnly)
	if err != nil {
		return "", fmt.Errorf("could not create a %s room: %w. Nothing was changed", title, err)
	}
	text := rt.commands.Link(ctx, call.Spec, call.Args, room)
	for page := 0; ; page++ {
		members, appErr := p.API.GetChannelMembers(ch.Id, page, 200)
		if appErr != nil {
			return text + fmt.Sprintf("\nCould not list the channel's members: %v.", appErr), nil
		}
		for _, m := range members {
			rt.memberChanged(p, ch.Id, m.UserId)
		}
		if len(members) < 200 {
			break
		}
	}
	text += "\nThe channel's members are joining the room."
	if inviteOnly {
		text += " The room is invite-only, as the channel is not public."
	}
	return text, nil
}

// serveNetworkRoute hands a request to the network route that serves its
// path; false when none does.
func (p *Plugin) serveNetworkRoute(w http.ResponseWriter, r *http.Request) bool {
	for _, n := range p.allNetworks() {
		for _, route := range n.Routes {
			if route.Matches(r.URL.Path) {
				route.Handle(networkHost{p, n.Network()}, w, r)
				return true
			}
		}
	}
	return false
}
