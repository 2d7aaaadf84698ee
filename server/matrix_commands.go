package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
)

// matrixSubcommands are /matrixbridge's own subcommands.
func (p *Plugin) matrixSubcommands() []command.Subcommand {
	return []command.Subcommand{
		{
			Name: "create",
			Help: "Create a new Matrix room named after this channel and link it; the channel's members join it",
			Run:  p.createMatrixRoom,
		},
		{
			Name: "registration",
			Help: "Show the application-service registration file to install on the homeserver",
			Run: func(context.Context, command.Call) (string, error) {
				y, err := p.matrixRegistration()
				if err != nil {
					return "", err
				}
				return "Install this as the homeserver's application-service registration file (see the README), then restart the homeserver:\n```yaml\n" + y + "```", nil
			},
		},
	}
}

// createMatrixRoom makes a room for the channel, links it like map does and
// puts the channel's members' puppets in it.
func (p *Plugin) createMatrixRoom(ctx context.Context, call command.Call) (string, error) {
	if len(call.Fields) != 0 {
		return "", fmt.Errorf("usage: `/%s create`", call.Spec.Trigger)
	}
	rt := p.active()
	if rt == nil {
		return "", errors.New("the bridge is not running")
	}
	b, ok := rt.manager.Bridge(bridge.NetworkMatrix)
	creator, can := b.(bridge.RoomCreator)
	if !ok || !can {
		return "", errors.New("the Matrix bridge is not configured or not running; set it up in the System Console first. Nothing was changed")
	}
	ch, appErr := p.API.GetChannel(call.Args.ChannelId)
	if appErr != nil {
		return "", fmt.Errorf("could not read this channel: %v", appErr)
	}
	if link, err := rt.store.GetLink(ch.Id); err == nil {
		for _, r := range link.Remotes {
			if r.Network == bridge.NetworkMatrix {
				return "", fmt.Errorf("this channel is already linked with Matrix room %s. Nothing was changed", r.Room)
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
		return "", fmt.Errorf("could not create a Matrix room: %w. Nothing was changed", err)
	}
	text := rt.commands.Link(ctx, call.Spec, call.Args, room)
	for page := 0; ; page++ {
		members, appErr := p.API.GetChannelMembers(ch.Id, page, 200)
		if appErr != nil {
			return text + fmt.Sprintf("\nCould not list the channel's members: %v.", appErr), nil
		}
		for _, m := range members {
			p.memberChanged(ch.Id, m.UserId)
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
