// Package mattermost is the Mattermost side of the bridge: posts, edits,
// deletes and reactions in linked channels become events (from the plugin
// hooks), and events from other networks become posts by remote users that
// stand for their senders.
package mattermost

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Post props the plugin sets on posts it makes, so people and other plugins
// can tell a bridged post apart; the plugin itself recognises its posts by
// their author's RemoteId.
const (
	PropOrigin   = "bridge_origin"    // network the message came from
	PropOriginID = "bridge_origin_id" // its native ID there
)

// Store is the part of the KV store this bridge uses.
type Store interface {
	GetLink(channelID string) (*store.Link, error)
	ListLinks() ([]store.Link, error)
	GetRemoteUser(network bridge.Network, remoteID string) (*store.RemoteUser, error)
	RemoteUserByMattermostID(userID string) (*store.RemoteUser, error)
	SaveRemoteUser(u store.RemoteUser) error
	ClaimRemoteUser(network bridge.Network, remoteID, userID string) (existing string, won bool, err error)
	GetCursor(linkID, name string) (string, bool, error)
	AdvanceCursorInt(linkID, name string, v int64) error
	AwaitReplicas(ctx context.Context) error
	Claim(namespace, id string, ttl time.Duration) (release func() error, ok bool, err error)
}

// Options configures the bridge.
type Options struct {
	// BotUserID is the plugin's bot; its posts are never bridged.
	BotUserID string
	// RemoteIDs maps each network to the shared-channels remote the plugin
	// registered for it. Remote users get it as their RemoteId, which is how
	// the plugin recognises its own users and posts.
	RemoteIDs map[bridge.Network]string
	// MaxFileSize bounds attachments in both directions, in bytes; see
	// SetMaxFileSize for changing it later.
	MaxFileSize int64
	Logger      bridge.Logger
	Now         func() time.Time
}

// Bridge implements bridge.Bridge for Mattermost.
type Bridge struct {
	api   plugin.API
	store Store
	opts  Options
	log   bridge.Logger

	mu     sync.Mutex
	sink   bridge.Sink
	ctx    context.Context
	cancel context.CancelFunc
	// ready is closed when the start-up replay is done; hooks wait for it so
	// live posts never overtake missed ones.
	ready chan struct{}
	// channels holds each linked channel's relay position (*channelState).
	channels sync.Map
	health   bridge.HealthKeeper
	done     chan struct{}

	// ownUsers caches whether a user ID is the bot or one of the plugin's
	// remote users; a user's RemoteId never changes, so entries never go stale.
	ownUsers sync.Map // user ID -> bool
	// members caches user+channel memberships already ensured.
	members sync.Map
	// channelInfo caches the channels deliveries post in (see postChannel).
	channelInfo sync.Map // channel ID -> cachedChannel
	// progress saves the replay cursors (see Progress); nil before a
	// start. reached is the newest time each cursor was moved to.
	progress  atomic.Pointer[bridge.Positions]
	reachedMu sync.Mutex
	reached   map[string]int64
	// maxFileSize is Options.MaxFileSize as it is now: a saved setting
	// applies to the next file without restarting the bridge.
	maxFileSize atomic.Int64

	// rechecks holds, per channel recheckLink looks at again, the newest
	// post waiting for it.
	recheckMu sync.Mutex
	rechecks  map[string]*model.Post
}

var _ bridge.Bridge = (*Bridge)(nil)

// New returns a Mattermost bridge.
func New(api plugin.API, st Store, opts Options) *Bridge {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = bridge.NewPluginLogger(api)
	}
	b := &Bridge{api: api, store: st, opts: opts, log: opts.Logger}
	b.maxFileSize.Store(opts.MaxFileSize)
	return b
}

// SetMaxFileSize changes the attachment limit, in bytes, for the files
// handled from now on (both directions) and in Capabilities.
func (b *Bridge) SetMaxFileSize(n int64) { b.maxFileSize.Store(n) }

func (b *Bridge) Network() bridge.Network { return bridge.NetworkMattermost }

func (b *Bridge) Capabilities() bridge.Capabilities {
	return bridge.Capabilities{
		Edits: true, Deletes: true, Reactions: true, Threads: true, Files: true,
		MaxTextLength: model.PostMessageMaxRunesV2,
		MaxFileSize:   b.maxFileSize.Load(),
	}
}

func (b *Bridge) Health() bridge.Health { return b.health.Health() }

// Start begins relaying. Posts made while the plugin was not running are
// replayed first, from each link's cursors; hooks wait until that is done.
func (b *Bridge) Start(ctx context.Context, sink bridge.Sink) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sink = sink
	b.ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.health.Connected()
	b.done = make(chan struct{})
	b.ready = make(chan struct{})
	b.recheckMu.Lock()
	b.rechecks = map[string]*model.Post{} // those of an earlier run ended with it
	b.recheckMu.Unlock()
	b.progress.Store(bridge.StartPositions(b.ctx))
	go b.replay(b.ctx, b.done, b.ready)
	return nil
}

func (b *Bridge) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.health.Set(bridge.StateDisabled, nil)
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	b.progress.Load().Close()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// emit hands an event to the core.
func (b *Bridge) emit(ev bridge.Event) error {
	b.mu.Lock()
	sink, ctx := b.sink, b.ctx
	b.mu.Unlock()
	if sink == nil {
		return nil
	}
	return b.send(ctx, sink, ev)
}

// awaitReady blocks a hook until the start-up replay is over; false means
// the bridge stopped or never started.
func (b *Bridge) awaitReady() bool {
	b.mu.Lock()
	ready, ctx := b.ready, b.ctx
	b.mu.Unlock()
	if ready == nil {
		return false
	}
	select {
	case <-ready:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

func (b *Bridge) send(ctx context.Context, sink bridge.Sink, ev bridge.Event) error {
	err := sink.Receive(ctx, ev)
	if err != nil && !errors.Is(err, bridge.ErrNotLinked) {
		b.log.Warn("Could not relay a Mattermost event", "kind", string(ev.Kind), "channel_id", ev.Origin.Room, "error", err.Error())
		b.health.Failed(err)
	}
	return err
}

// isOwnUser reports whether userID is the plugin's bot or a remote user the
// plugin created: their posts and reactions are copies and must not go back.
func (b *Bridge) isOwnUser(userID string) bool {
	if userID == b.opts.BotUserID {
		return true
	}
	if v, ok := b.ownUsers.Load(userID); ok {
		return v.(bool)
	}
	user, appErr := b.api.GetUser(userID)
	if appErr != nil {
		// Unknown author: not cached, so a later lookup can still succeed.
		return false
	}
	return b.ownUser(user)
}

// ownUser is isOwnUser for a user already read; it caches the answer.
func (b *Bridge) ownUser(user *model.User) bool {
	own := user.Id == b.opts.BotUserID
	if user.RemoteId != nil && *user.RemoteId != "" {
		for _, id := range b.opts.RemoteIDs {
			if id == *user.RemoteId {
				own = true
			}
		}
	}
	b.ownUsers.Store(user.Id, own)
	return own
}

func (b *Bridge) linked(channelID string) bool {
	link, err := b.store.GetLink(channelID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			b.log.Warn("Could not read a channel's link", "channel_id", channelID, "error", err.Error())
		}
		return false
	}
	return len(link.Remotes) > 0
}

func millis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// cursorName names the per-destination cursor of posts relayed from a
// channel: the update time of the last post delivered to (or dropped for)
// that destination.
func cursorName(dest bridge.Ref) string { return "mm_out|" + dest.RoomKey() }

// Progress advances the replay cursor of a link's destination; the plugin
// calls it from the router's delivered and dropped callbacks.
// The cursor is saved soon rather than at once (see bridge.Positions): a
// crash replays a little more, which the router recognizes as bridged.
func (b *Bridge) Progress(linkID string, dest bridge.Ref, ev bridge.Event) {
	if ev.Origin.Network != bridge.NetworkMattermost || dest.Network == "" || ev.Time.IsZero() {
		return
	}
	name := cursorName(dest)
	key := linkID + "|" + name
	b.reachedMu.Lock()
	if b.reached == nil {
		b.reached = map[string]int64{}
	}
	at := max(b.reached[key], ev.Time.UnixMilli())
	b.reached[key] = at
	b.reachedMu.Unlock()
	b.progress.Load().Note(key, func() {
		if err := b.store.AdvanceCursorInt(linkID, name, at); err != nil {
			b.log.Warn("Could not advance a replay cursor", "channel_id", linkID, "error", err.Error())
		}
	})
}
