package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// The server fires a hook on the node the change reached. The node that
// holds the bridge handles it; any other hands it there (forward.go). What
// a node-to-node message loses (the holder died, or none holds the lease
// for a moment) the next holder's start-up replay finds: posts, edits and
// deletes since each link's cursors, which only the holder moves.

func (p *Plugin) MessageHasBeenPosted(_ *plugin.Context, post *model.Post) {
	p.onHolder(forwarded{Kind: kindPost, Post: post})
}

func (p *Plugin) MessageHasBeenUpdated(_ *plugin.Context, newPost, oldPost *model.Post) {
	p.onHolder(forwarded{Kind: kindPostUpdated, Post: newPost, OldPost: oldPost})
}

func (p *Plugin) MessageHasBeenDeleted(c *plugin.Context, post *model.Post) {
	f := forwarded{Kind: kindPostDeleted, Post: post}
	if c != nil {
		f.SessionID = c.SessionId
	}
	p.onHolder(f)
}

func (p *Plugin) ReactionHasBeenAdded(_ *plugin.Context, r *model.Reaction) {
	p.onHolder(forwarded{Kind: kindReactionAdded, Reaction: r})
}

func (p *Plugin) ReactionHasBeenRemoved(_ *plugin.Context, r *model.Reaction) {
	p.onHolder(forwarded{Kind: kindReactionRemoved, Reaction: r})
}

// UserHasJoinedChannel gives the person a presence in the channel's linked
// rooms on networks that show members (see memberChanged).
func (p *Plugin) UserHasJoinedChannel(_ *plugin.Context, cm *model.ChannelMember, _ *model.User) {
	if cm != nil {
		p.onHolder(forwarded{Kind: kindMember, ChannelID: cm.ChannelId, UserID: cm.UserId})
	}
}

// UserHasLeftChannel takes that presence away again.
func (p *Plugin) UserHasLeftChannel(_ *plugin.Context, cm *model.ChannelMember, _ *model.User) {
	if cm != nil {
		p.onHolder(forwarded{Kind: kindMember, ChannelID: cm.ChannelId, UserID: cm.UserId})
	}
}

// onHolder handles a hook here when this node holds the bridge, and hands
// it to the holder otherwise.
func (p *Plugin) onHolder(f forwarded) {
	if rt := p.active(); rt != nil {
		p.handleHook(rt, f)
		return
	}
	p.forward(f)
}

// handleHook is a hook's work on the holder.
func (p *Plugin) handleHook(rt *runtime, f forwarded) {
	switch f.Kind {
	case kindPost:
		rt.mm.OnPost(f.Post)
	case kindPostUpdated:
		rt.mm.OnPostUpdated(f.Post, f.OldPost)
	case kindPostDeleted:
		rt.mm.OnPostDeleted(f.Post, f.SessionID)
	case kindReactionAdded:
		rt.mm.OnReaction(f.Reaction, true)
	case kindReactionRemoved:
		rt.mm.OnReaction(f.Reaction, false)
	case kindMember:
		rt.memberChanged(p, f.ChannelID, f.UserID)
	}
}

// commandWait bounds a command, here or on the holder.
const commandWait = 30 * time.Second

func (p *Plugin) ExecuteCommand(_ *plugin.Context, args *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	if rt := p.active(); rt != nil {
		return p.executeCommand(rt, args), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandWait)
	defer cancel()
	r, err := p.call(ctx, forwarded{Kind: kindCommand, Args: args})
	if err != nil || r.Command == nil {
		return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral, Text: "The bridge is starting or stopping; try again in a moment."}, nil
	}
	return r.Command, nil
}

func (p *Plugin) executeCommand(rt *runtime, args *model.CommandArgs) *model.CommandResponse {
	ctx, cancel := context.WithTimeout(rt.ctx, commandWait)
	defer cancel()
	return rt.commands.Execute(ctx, args)
}

// pingWait bounds a shared-channels ping handed to the holder.
const pingWait = 5 * time.Second

// OnSharedChannelsPing lets the Connected Workspaces page show each
// network's health: the server pings every remote the plugin registered.
func (p *Plugin) OnSharedChannelsPing(rc *model.RemoteCluster) bool {
	if rc == nil {
		return false
	}
	if rt := p.active(); rt != nil {
		return p.ping(rt, rc.RemoteId)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingWait)
	defer cancel()
	r, err := p.call(ctx, forwarded{Kind: kindPing, RemoteID: rc.RemoteId})
	return err == nil && r.Online
}

func (p *Plugin) ping(rt *runtime, remoteID string) bool {
	for n, id := range rt.remoteIDs {
		if id == remoteID {
			return online(p.health(rt, n), time.Now())
		}
	}
	return false
}

// pingGrace is how long a network that lost its connection still reads
// online while it gets it back, so a reconnect does not make the Connected
// Workspaces page flap.
const pingGrace = 30 * time.Second

// online is what a shared-channels ping answers for a network in health h.
func online(h bridge.Health, now time.Time) bool {
	if h.State == bridge.StateConnected {
		return true
	}
	return h.State != bridge.StateDisabled && !h.LostAt.IsZero() && now.Sub(h.LostAt) < pingGrace
}

// syncWait bounds a shared-channels sync message handed to the holder.
const syncWait = 30 * time.Second

// OnSharedChannelsSyncMsg is the server's sync service sending a channel
// shared with a network's remote: a second source of the posts, edits,
// deletes and reactions the hooks report, relayed once with them (see
// bridge/mattermost/sync.go). What could not be handed on is listed in
// PostErrors, never answered with an error: the server moves the remote's
// cursor past a message whatever the plugin answers, and sends again alone
// only the posts in PostErrors.
func (p *Plugin) OnSharedChannelsSyncMsg(msg *model.SyncMsg, rc *model.RemoteCluster) (model.SyncResponse, error) {
	if msg == nil || rc == nil {
		return model.SyncResponse{}, nil
	}
	if !p.ownRemote(rc.RemoteId) {
		return model.SyncResponse{}, fmt.Errorf("remote %s is not one of this plugin's", rc.RemoteId)
	}
	if rt := p.active(); rt != nil {
		return rt.mm.OnSyncMsg(msg), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncWait)
	defer cancel()
	r, err := p.call(ctx, forwarded{Kind: kindSync, Sync: msg, RemoteID: rc.RemoteId})
	if err != nil || r.Sync == nil {
		return notHandled(msg), nil
	}
	return *r.Sync, nil
}

// notHandled is the answer for a message nothing of which was handled.
func notHandled(msg *model.SyncMsg) model.SyncResponse {
	var resp model.SyncResponse
	for _, post := range msg.Posts {
		if post != nil {
			resp.PostErrors = append(resp.PostErrors, post.Id)
		}
	}
	for _, r := range msg.Reactions {
		if r != nil {
			resp.ReactionErrors = append(resp.ReactionErrors, r.PostId)
		}
	}
	return resp
}

// OnSharedChannelsAttachmentSyncMsg: a file goes with its post's message,
// so it is handled once the post is.
func (p *Plugin) OnSharedChannelsAttachmentSyncMsg(fi *model.FileInfo, post *model.Post, rc *model.RemoteCluster) error {
	if fi == nil || post == nil || rc == nil {
		return nil
	}
	if !p.ownRemote(rc.RemoteId) {
		return fmt.Errorf("remote %s is not one of this plugin's", rc.RemoteId)
	}
	handled := false
	if rt := p.active(); rt != nil {
		handled = rt.mm.SyncAttachment(post)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), syncWait)
		defer cancel()
		r, err := p.call(ctx, forwarded{Kind: kindSyncFile, Post: post, RemoteID: rc.RemoteId})
		handled = err == nil && r.Handled
	}
	if !handled {
		return fmt.Errorf("the post of file %s is not relayed yet", fi.Id)
	}
	return nil
}

// OnSharedChannelsProfileImageSyncMsg needs nothing: each message carries
// its author's picture version, and a new one is fetched with the next.
func (p *Plugin) OnSharedChannelsProfileImageSyncMsg(_ *model.User, rc *model.RemoteCluster) error {
	if rc == nil || !p.ownRemote(rc.RemoteId) {
		return errors.New("not one of this plugin's remotes")
	}
	return nil
}

// ownRemote reports whether remoteID is one of the remotes this plugin
// registered.
func (p *Plugin) ownRemote(remoteID string) bool {
	n := p.currentNode()
	if n == nil || remoteID == "" {
		return false
	}
	for _, id := range n.remoteIDs {
		if id == remoteID {
			return true
		}
	}
	return false
}
