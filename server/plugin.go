package main

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/mattermost"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Plugin is the plugin entry: it wires the hooks to the bridge core and
// holds no bridging logic of its own.
type Plugin struct {
	plugin.MattermostPlugin

	// networks are the remote networks this build bridges; tests add
	// in-memory ones.
	networks []connector.Descriptor

	configLock sync.RWMutex
	config     *configuration

	// lifecycle serialises activation, deactivation and reconfiguration.
	lifecycle sync.Mutex
	running   *runtime

	// portalStep, when set (by tests), runs at each step of opening a
	// portal (see portals.go) and stops it there with the error it
	// returns, as a failure or a crash at that point would.
	portalStep func(ctx context.Context, step string) error
}

// runtime is what exists while the plugin is active.
type runtime struct {
	ctx       context.Context
	cancel    context.CancelFunc
	store     *store.Store
	manager   *bridge.Manager
	mm        *mattermost.Bridge
	commands  *command.Handler
	botID     string
	logger    bridge.Logger
	remoteIDs map[bridge.Network]string
	// startErrors holds why an enabled network is not running.
	startErrors sync.Map // bridge.Network -> string
	members     *memberSync
	// keys seals ghost secrets and follows the EncryptionKey setting.
	keys *keyRotator
}

const (
	botUsername  = "bridge"
	settingsPath = "System Console > Plugins > Mattermost Bridge for XMPP, Matrix and Slack"
	// shutdownGrace bounds the drain on deactivation: the server gives
	// OnDeactivate 10 s in all, and bridges get up to 5 s more to stop. What is
	// not delivered by then is replayed on the next activation.
	shutdownGrace = 4 * time.Second
)

func (p *Plugin) getConfiguration() *configuration {
	p.configLock.RLock()
	defer p.configLock.RUnlock()
	if p.config == nil {
		cfg, _ := parseConfiguration(map[string]any{}, p.allNetworks())
		return cfg
	}
	return p.config
}

func (p *Plugin) getConfigurationOrNil() *configuration {
	p.configLock.RLock()
	defer p.configLock.RUnlock()
	return p.config
}

// logger logs through the server, with every secret of the settings
// removed.
func (p *Plugin) logger() bridge.Logger {
	return redactingLogger{base: bridge.NewPluginLogger(p.API), secrets: func() []string { return p.getConfiguration().secrets() }}
}

func (p *Plugin) allNetworks() []connector.Descriptor {
	if p.networks == nil {
		p.networks = defaultNetworks()
	}
	return p.networks
}

// loadConfiguration reads and checks the settings the server holds.
func (p *Plugin) loadConfiguration() (*configuration, error) {
	raw := map[string]any{}
	if err := p.API.LoadPluginConfiguration(&raw); err != nil {
		return nil, fmt.Errorf("load plugin configuration: %w", err)
	}
	cfg, err := parseConfiguration(raw, p.allNetworks())
	if err != nil {
		return nil, err
	}
	if verr := cfg.validate(); verr != nil {
		return nil, verr
	}
	return cfg, nil
}

func (p *Plugin) setConfiguration(cfg *configuration) (old *configuration) {
	p.configLock.Lock()
	defer p.configLock.Unlock()
	old, p.config = p.config, cfg
	return old
}

// OnConfigurationChange validates new settings before taking them: invalid
// settings are refused with a clear error and the running ones stay.
func (p *Plugin) OnConfigurationChange() error {
	cfg, err := p.loadConfiguration()
	if err != nil {
		p.API.LogError("Refusing the new plugin configuration", "error", err.Error())
		return err
	}
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	old := p.setConfiguration(cfg)
	if p.running != nil {
		p.reconfigure(old, cfg)
	}
	return nil
}

func (p *Plugin) OnActivate() error {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	if p.getConfigurationOrNil() == nil {
		// OnConfigurationChange runs before OnActivate; no configuration here
		// means it refused the settings, and activating would hide that.
		cfg, err := p.loadConfiguration()
		if err != nil {
			return err
		}
		p.setConfiguration(cfg)
	}
	cfg := p.getConfiguration()

	botID, err := p.API.EnsureBotUser(&model.Bot{
		Username:    botUsername,
		DisplayName: "Bridge",
		Description: "Relays messages between Mattermost channels and XMPP, Matrix and Slack rooms.",
	})
	if err != nil {
		return fmt.Errorf("ensure bot user: %w", err)
	}

	st := store.New(p.API)
	ctx, cancel := context.WithCancel(context.Background())
	if err = st.Migrate(ctx); err != nil {
		cancel()
		return fmt.Errorf("migrate KV store: %w", err)
	}
	st.SetMessageRetention(time.Duration(cfg.MessageMapRetentionDays) * 24 * time.Hour)

	rt := &runtime{ctx: ctx, cancel: cancel, store: st, botID: botID, remoteIDs: map[bridge.Network]string{}, members: newMemberSync()}
	for _, n := range p.allNetworks() {
		remoteID, rerr := p.API.RegisterPluginForSharedChannels(model.RegisterPluginOpts{
			Displayname: n.Command.Title,
			PluginID:    manifest.Id,
			CreatorID:   botID,
			SiteURL:     remoteSiteURL(n, manifest.Id),
		})
		if rerr != nil {
			cancel()
			return fmt.Errorf("register the %s shared-channels remote: %w", n.Command.Title, rerr)
		}
		rt.remoteIDs[n.Command.Network] = remoteID
	}

	logger := p.logger()
	rt.logger = logger
	key, err := effectiveKey(st, cfg)
	if err != nil {
		cancel()
		return err
	}
	if rt.keys, err = newKeyRotator(st, logger, key); err != nil {
		cancel()
		return err
	}
	rt.mm = mattermost.New(p.API, st, mattermost.Options{
		BotUserID:   botID,
		RemoteIDs:   rt.remoteIDs,
		MaxFileSize: int64(cfg.MaxFileSizeMB) << 20,
		Logger:      logger,
	})
	rt.manager = bridge.NewManager(st, bridge.ManagerOptions{
		Bus: bridge.BusOptions{QueueCapacity: int(cfg.QueueSize)},
		Router: bridge.RouterOptions{
			Home:        bridge.NetworkMattermost,
			OnDelivered: func(linkID string, dest bridge.Ref, ev bridge.Event, _ string) { rt.mm.Progress(linkID, dest, ev) },
			OnDropped: func(linkID string, dest bridge.Ref, ev bridge.Event, reason string, _ error) {
				// Work cut off by a shutdown is replayed on the next
				// activation, so it must not move the cursor past it.
				// A full queue is retried by the Mattermost bridge.
				if reason != bridge.ReasonShutdown && reason != bridge.ReasonClosed && reason != bridge.ReasonQueueFull {
					rt.mm.Progress(linkID, dest, ev)
				}
			},
		},
		Logger: logger,
	})
	if err = rt.manager.Register(rt.mm); err != nil {
		cancel()
		return err
	}
	if cfg.EnableBridge {
		for _, n := range p.allNetworks() {
			if b := p.buildBridge(rt, n, cfg); b != nil {
				if err = rt.manager.Register(b); err != nil {
					cancel()
					return err
				}
			}
		}
	}

	rt.commands = command.NewHandler(command.Env{
		Links:         st,
		Bridge:        rt.manager.Bridge,
		Health:        func(n bridge.Network) bridge.Health { return p.health(rt, n) },
		IsSystemAdmin: func(userID string) bool { return p.API.HasPermissionTo(userID, model.PermissionManageSystem) },
		ChannelName:   p.channelName,
		SettingsPath:  settingsPath,
		Stats:         rt.manager.Stats,
	}, p.commandSpecs()...)
	for _, c := range rt.commands.Commands() {
		if err = p.API.RegisterCommand(c); err != nil {
			cancel()
			return fmt.Errorf("register /%s: %w", c.Trigger, err)
		}
	}

	if err = rt.manager.Start(ctx); err != nil {
		p.API.LogWarn("Some bridges did not start", "error", err.Error())
	}
	if err = rt.keys.resume(ctx); err != nil {
		p.API.LogError("Cannot resume re-sealing ghost passwords under the new encryption key", "error", err.Error())
	}
	p.running = rt
	return nil
}

func (p *Plugin) commandSpecs() []command.Spec {
	specs := make([]command.Spec, 0, len(p.allNetworks()))
	for _, n := range p.allNetworks() {
		spec := n.Command
		spec.Extra = p.subcommands(n)
		specs = append(specs, spec)
	}
	return specs
}

// buildBridge returns the bridge a network's settings ask for, or nil when
// the network is off or cannot start (the reason shows in its status).
func (p *Plugin) buildBridge(rt *runtime, n connector.Descriptor, cfg *configuration) bridge.Bridge {
	rt.startErrors.Delete(n.Network())
	nc := cfg.networks[n.Network()]
	if !cfg.EnableBridge || nc == nil || !nc.Enabled() {
		return nil
	}
	b, err := n.Build(connector.Env{Store: rt.store, Logger: rt.logger, Keys: rt.keys.keys, InstanceSecret: rt.store.InstanceSecret, Portals: p.portals()}, nc)
	if err != nil {
		rt.startErrors.Store(n.Network(), err.Error())
		p.API.LogError("Cannot start a bridge", "network", string(n.Network()), "error", err.Error())
		return nil
	}
	return b
}

// applyLive hands the settings the running plugin takes in place (no
// bridge is rebuilt for them) to the parts that read them.
func (rt *runtime) applyLive(cfg *configuration) {
	rt.store.SetMessageRetention(time.Duration(cfg.MessageMapRetentionDays) * 24 * time.Hour)
	rt.manager.SetQueueCapacity(int(cfg.QueueSize))
	rt.mm.SetMaxFileSize(int64(cfg.MaxFileSizeMB) << 20)
	key, err := effectiveKey(rt.store, cfg)
	if err == nil {
		err = rt.keys.rotateTo(rt.ctx, key)
	}
	if err != nil {
		rt.logger.Error("Cannot switch to the new encryption key", "error", err.Error())
	}
}

func (p *Plugin) reconfigure(old, cfg *configuration) {
	rt := p.running
	rt.applyLive(cfg)
	want := map[bridge.Network]bridge.Bridge{bridge.NetworkMattermost: rt.mm}
	for _, n := range p.allNetworks() {
		cur, running := rt.manager.Bridge(n.Command.Network)
		if running && old != nil && old.EnableBridge == cfg.EnableBridge && !bridgeSettingsChanged(n, old, cfg) {
			want[n.Network()] = cur
			continue
		}
		if b := p.buildBridge(rt, n, cfg); b != nil {
			want[n.Command.Network] = b
		}
	}
	if err := rt.manager.Reconfigure(rt.ctx, want); err != nil {
		p.API.LogWarn("Some bridges did not restart cleanly", "error", err.Error())
	}
}

// bridgeSettingsChanged reports whether a running bridge of n must be
// rebuilt to follow the change from old to cfg.
func bridgeSettingsChanged(n connector.Descriptor, old, cfg *configuration) bool {
	return !reflect.DeepEqual(old.networks[n.Network()], cfg.networks[n.Network()])
}

func (p *Plugin) OnDeactivate() error {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	rt := p.running
	if rt == nil {
		return nil
	}
	p.running = nil
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	abandoned, err := rt.manager.Stop(ctx)
	rt.keys.stop() // an unfinished re-sealing resumes on activation
	rt.cancel()
	if abandoned > 0 {
		// Not lost: Mattermost posts replay from their cursors on the next
		// activation, and remote networks replay from their own archives.
		p.API.LogWarn("Deactivated with undelivered messages; they will be replayed on activation", "count", abandoned)
	}
	return err
}

// active returns the runtime for hooks, or nil while the plugin is starting
// or stopping.
func (p *Plugin) active() *runtime {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	return p.running
}

func (p *Plugin) health(rt *runtime, n bridge.Network) bridge.Health {
	if msg, ok := rt.startErrors.Load(n); ok {
		return bridge.Health{State: bridge.StateError, LastError: msg.(string)}
	}
	if h, ok := rt.manager.Health()[n]; ok {
		return h
	}
	return bridge.Health{State: bridge.StateDisabled}
}

func (p *Plugin) channelName(channelID string) string {
	ch, appErr := p.API.GetChannel(channelID)
	if appErr != nil {
		return channelID
	}
	return "~" + ch.Name
}

func (p *Plugin) MessageHasBeenPosted(_ *plugin.Context, post *model.Post) {
	if rt := p.active(); rt != nil {
		rt.mm.OnPost(post)
	}
}

func (p *Plugin) MessageHasBeenUpdated(_ *plugin.Context, newPost, oldPost *model.Post) {
	if rt := p.active(); rt != nil {
		rt.mm.OnPostUpdated(newPost, oldPost)
	}
}

func (p *Plugin) MessageHasBeenDeleted(c *plugin.Context, post *model.Post) {
	if rt := p.active(); rt != nil {
		sessionID := ""
		if c != nil {
			sessionID = c.SessionId
		}
		rt.mm.OnPostDeleted(post, sessionID)
	}
}

func (p *Plugin) ReactionHasBeenAdded(_ *plugin.Context, r *model.Reaction) {
	if rt := p.active(); rt != nil {
		rt.mm.OnReaction(r, true)
	}
}

func (p *Plugin) ReactionHasBeenRemoved(_ *plugin.Context, r *model.Reaction) {
	if rt := p.active(); rt != nil {
		rt.mm.OnReaction(r, false)
	}
}

// UserHasJoinedChannel gives the person a presence in the channel's linked
// rooms on networks that show members (see memberChanged).
func (p *Plugin) UserHasJoinedChannel(_ *plugin.Context, cm *model.ChannelMember, _ *model.User) {
	if cm != nil {
		p.memberChanged(cm.ChannelId, cm.UserId)
	}
}

// UserHasLeftChannel takes that presence away again.
func (p *Plugin) UserHasLeftChannel(_ *plugin.Context, cm *model.ChannelMember, _ *model.User) {
	if cm != nil {
		p.memberChanged(cm.ChannelId, cm.UserId)
	}
}

func (p *Plugin) ExecuteCommand(_ *plugin.Context, args *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	rt := p.active()
	if rt == nil {
		return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral, Text: "The bridge is starting or stopping; try again in a moment."}, nil
	}
	ctx, cancel := context.WithTimeout(rt.ctx, 30*time.Second)
	defer cancel()
	return rt.commands.Execute(ctx, args), nil
}

// OnSharedChannelsPing lets the Connected Workspaces page show each
// network's health: the server pings every remote the plugin registered.
func (p *Plugin) OnSharedChannelsPing(rc *model.RemoteCluster) bool {
	rt := p.active()
	if rt == nil || rc == nil {
		return false
	}
	for n, id := range rt.remoteIDs {
		if id == rc.RemoteId {
			return p.health(rt, n).State == bridge.StateConnected
		}
	}
	return false
}

func (p *Plugin) ServeHTTP(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/api/v1/status":
		p.serveStatus(w, r)
	case p.serveNetworkRoute(w, r):
	default:
		http.NotFound(w, r)
	}
}
