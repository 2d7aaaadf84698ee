package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Each network is one shared-channels remote (registered in OnActivate). With
// the ShareLinkedChannels setting, a channel linked with a network is shared
// with that network's remote and the remote invited, so the System
// Console's Connected Workspaces page lists the networks, their health
// (OnSharedChannelsPing) and the channels each bridges; unlinking a
// network's last room uninvites its remote (the server unshares a channel
// left without remotes). Links are made and removed on the node holding the
// bridge, so that is where this runs.
//
// Without shared channels (no license, or Connected Workspaces off) the
// server still registers remotes, but sharing and inviting fail with
// api.command_share.service_disabled: links work as before and status
// says why nothing is shared.

// errServiceDisabled is the error ID of the server's refusal.
const errServiceDisabled = "api.command_share.service_disabled"

// sharing is what the node knows about shared channels.
type sharing struct {
	mu sync.Mutex
	// unavailable says why shared channels cannot be used, "" when they
	// can (or nothing was tried yet).
	unavailable string
}

func (s *sharing) set(reason string) {
	s.mu.Lock()
	s.unavailable = reason
	s.mu.Unlock()
}

func (s *sharing) reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unavailable
}

// noteShareResult records whether a share call found shared channels
// available.
func (n *node) noteShareResult(err error) {
	var appErr *model.AppError
	switch {
	case err == nil:
		n.sharing.set("")
	case errors.As(err, &appErr) && appErr.Id == errServiceDisabled, strings.Contains(err.Error(), errServiceDisabled):
		// Across the plugin RPC the error may arrive as its text.
		n.sharing.set(sharedChannelsOff)
	}
}

const sharedChannelsOff = "the server has shared channels turned off or no license for them (System Console > Connected Workspaces)"

// sharedChannelsEnabled reports whether the settings turn the server's
// shared-channels service on (the license is checked by the server: a
// share call says).
func sharedChannelsEnabled(s model.ConnectedWorkspacesSettings) bool {
	return s.EnableSharedChannels != nil && *s.EnableSharedChannels &&
		s.EnableRemoteClusterService != nil && *s.EnableRemoteClusterService
}

// shareLinked shares a channel with the remote of a network it was just
// linked with, and invites the remote; both are no-ops when done already.
func (p *Plugin) shareLinked(n *node, channelID string, network bridge.Network) {
	remoteID := n.remoteIDs[network]
	if remoteID == "" || !p.getConfiguration().ShareLinkedChannels {
		return
	}
	err := p.API.InviteRemoteToChannel(channelID, remoteID, n.botID, true)
	n.noteShareResult(err)
	if err != nil && n.sharing.reason() == "" {
		p.API.LogWarn("Could not share a linked channel with its network's remote", "channel_id", channelID, "network", string(network), "error", err.Error())
	}
}

// unshareUnlinked uninvites a network's remote from a channel once no room
// of that network is linked with it (link is the channel's link after the
// change, nil when it is gone).
func (p *Plugin) unshareUnlinked(n *node, channelID string, network bridge.Network, link *store.Link) {
	remoteID := n.remoteIDs[network]
	if remoteID == "" {
		return
	}
	if link != nil {
		for _, r := range link.Remotes {
			if r.Network == network {
				return
			}
		}
	}
	// Also when the setting was turned off since: the invitation is ours.
	// An error mostly means it was never invited.
	if err := p.API.UninviteRemoteFromChannel(channelID, remoteID); err != nil {
		n.noteShareResult(err)
	}
}

// shareAllLinks shares every linked channel with its networks' remotes,
// for links made before the setting was on or before an upgrade.
func (p *Plugin) shareAllLinks(n *node) {
	if !p.getConfiguration().ShareLinkedChannels {
		return
	}
	links, err := n.store.ListLinks()
	if err != nil {
		p.API.LogWarn("Could not list links to share them", "error", err.Error())
		return
	}
	for _, l := range links {
		seen := map[bridge.Network]bool{}
		for _, r := range l.Remotes {
			if !seen[r.Network] {
				seen[r.Network] = true
				p.shareLinked(n, l.ChannelID, r.Network)
			}
		}
		if n.ctx.Err() != nil {
			return
		}
	}
}

// sharedChannelsNote is the status line about shared channels.
func (p *Plugin) sharedChannelsNote(n *node) string {
	if !p.getConfiguration().ShareLinkedChannels {
		return "Shared channels: off (the Show links under Connected Workspaces setting)."
	}
	reason := n.sharing.reason()
	if cfg := p.API.GetConfig(); cfg != nil && !sharedChannelsEnabled(cfg.ConnectedWorkspacesSettings) {
		reason = sharedChannelsOff
	}
	if reason != "" {
		return fmt.Sprintf("Shared channels: unavailable, %s. Links work as before; they are not listed under Connected Workspaces.", reason)
	}
	return "Shared channels: linked channels are listed under System Console > Connected Workspaces."
}

// sharingLinks is the store as the commands see it: a link made or removed
// also shares or unshares the channel.
type sharingLinks struct {
	*store.Store
	p *Plugin
	n *node
}

func (l sharingLinks) AddRemote(channelID, teamID string, r store.RemoteRoom) (*store.Link, error) {
	link, err := l.Store.AddRemote(channelID, teamID, r)
	if err == nil {
		l.p.shareLinked(l.n, channelID, r.Network)
	}
	return link, err
}

func (l sharingLinks) RemoveRemote(channelID string, network bridge.Network, room string) (*store.Link, error) {
	link, err := l.Store.RemoveRemote(channelID, network, room)
	if err == nil {
		l.p.unshareUnlinked(l.n, channelID, network, link)
	}
	return link, err
}
