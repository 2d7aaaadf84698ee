package main

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/avatarurl"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/mattermost"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/holder"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/metrics"
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

	// lifecycle serialises activation and deactivation on this node.
	lifecycle sync.Mutex
	node      *node
	// work serialises starting, stopping and reconfiguring the bridge,
	// which runs on the one node that holds the lease (see server/holder).
	work    sync.Mutex
	running *runtime
	// leaseTiming replaces holder.DefaultTiming when set (tests).
	leaseTiming holder.Timing

	// inflight counts the requests ServeHTTP is answering.
	inflight atomic.Int64

	// api routes the REST API (http.go); made on the first request.
	apiOnce sync.Once
	api     *http.ServeMux
	// metrics are served by ServeMetrics; made on the first scrape.
	metricsOnce sync.Once
	metrics     *metrics.Metrics

	// portalStep, when set (by tests), runs at each step of opening a
	// portal (see portals.go) and stops it there with the error it
	// returns, as a failure or a crash at that point would.
	portalStep func(ctx context.Context, step string) error
}

// node is what exists on every node of the cluster while the plugin is
// active there: enough to hand hooks, commands and requests to the node
// that holds the bridge, and to take over from it.
type node struct {
	id        string // this activation's, unique in the cluster
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{} // closed when the elector stopped
	store     *store.Store
	botID     string
	remoteIDs map[bridge.Network]string
	elector   *holder.Elector
	calls     *calls
	hooks     *outbox // hooks handed to the holder, until it acknowledges them
	// avatars signs the public URLs of Mattermost people's pictures,
	// which every node serves.
	avatars avatarSigner
	// sharing is whether shared channels can be used (sharedchannels.go).
	sharing sharing
	// counters count what the bridge relays while this node holds it; they
	// outlive a lease lost and taken again, as the metrics want.
	counters *bridge.Counters
}

// runtime is what exists while this node holds the bridge's work.
type runtime struct {
	node      *node
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
	// people caches the count of remote users for the status API.
	people peopleCount
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
	p.work.Lock()
	defer p.work.Unlock()
	old := p.setConfiguration(cfg)
	if p.running != nil {
		p.reconfigure(old, cfg)
	}
	return nil
}

// readReplicas reports whether the server reads from read replicas, which
// may lag behind its writes. The sanitized configuration keeps one entry
// per replica; a change needs a server restart.
func readReplicas(cfg *model.Config) bool {
	return cfg == nil || len(cfg.SqlSettings.DataSourceReplicas) > 0
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
	st.SetReadReplicas(readReplicas(p.API.GetConfig()))
	ctx, cancel := context.WithCancel(context.Background())
	if err = st.Migrate(ctx); err != nil {
		cancel()
		return fmt.Errorf("migrate KV store: %w", err)
	}
	st.SetMessageRetention(time.Duration(cfg.MessageMapRetentionDays) * 24 * time.Hour)

	n := &node{id: model.NewId(), ctx: ctx, cancel: cancel, done: make(chan struct{}), store: st, botID: botID,
		remoteIDs: map[bridge.Network]string{}, calls: newCalls(), hooks: &outbox{}, counters: bridge.NewCounters()}
	for _, d := range p.allNetworks() {
		remoteID, rerr := p.API.RegisterPluginForSharedChannels(model.RegisterPluginOpts{
			Displayname: d.Command.Title,
			PluginID:    manifest.Id,
			CreatorID:   botID,
			SiteURL:     remoteSiteURL(d, manifest.Id),
		})
		if rerr != nil {
			// The server registers a plugin remote whatever its license and
			// settings (app.RegisterPluginForSharedChannels only writes the
			// row; sharing is what needs shared channels), so this is the
			// database failing. The remote ID is how the bridge knows its own
			// remote users and posts: running without it would echo them.
			cancel()
			return fmt.Errorf("register the %s shared-channels remote: %w", d.Command.Title, rerr)
		}
		n.remoteIDs[d.Command.Network] = remoteID
	}
	// Every node registers the commands: the server runs a command on the
	// node the request reached, which hands it to the holder if need be.
	for _, c := range command.NewHandler(command.Env{}, p.commandSpecs()...).Commands() {
		if err = p.API.RegisterCommand(c); err != nil {
			cancel()
			return fmt.Errorf("register /%s: %w", c.Trigger, err)
		}
	}

	timing := p.leaseTiming
	if timing == (holder.Timing{}) {
		timing = holder.DefaultTiming
	}
	n.elector = holder.New(st, holder.Options{
		Lease: bridgeLease, Node: n.id, Timing: timing, Logger: p.logger(),
		Start: func(ctx context.Context) error { return p.startRuntime(ctx, n) },
		Stop:  func() { _ = p.stopRuntime() },
	})
	// A lone node, or the first of a cluster, starts the bridge before
	// activation returns; on the others Run takes over when it is free.
	if _, err = n.elector.TryTake(ctx); err != nil {
		cancel()
		return err
	}
	p.node = n
	var running sync.WaitGroup
	running.Go(func() { n.elector.Run(ctx) })
	running.Go(func() { p.resendHooks(n) })
	go func() {
		running.Wait()
		close(n.done)
	}()
	return nil
}

// bridgeLease names the lease of the node that holds the bridge's work.
const bridgeLease = "bridge"

// startRuntime builds and starts the bridge on this node, which has just
// taken the lease.
func (p *Plugin) startRuntime(ctx context.Context, n *node) error {
	p.work.Lock()
	defer p.work.Unlock()
	cfg := p.getConfiguration()
	// Records another node changed while it held the bridge.
	n.store.ForgetCachedReads()
	ctx, cancel := context.WithCancel(ctx)
	rt := &runtime{ctx: ctx, cancel: cancel, store: n.store, botID: n.botID, remoteIDs: n.remoteIDs, members: newMemberSync(), node: n}
	logger := p.logger()
	rt.logger = logger
	key, err := effectiveKey(n.store, cfg)
	if err != nil {
		cancel()
		return err
	}
	if rt.keys, err = newKeyRotator(n.store, logger, key); err != nil {
		cancel()
		return err
	}
	rt.mm = mattermost.New(p.API, n.store, mattermost.Options{
		BotUserID:   n.botID,
		RemoteIDs:   rt.remoteIDs,
		MaxFileSize: int64(cfg.MaxFileSizeMB) << 20,
		Logger:      logger,
	})
	rt.manager = bridge.NewManager(n.store, bridge.ManagerOptions{
		Bus: bridge.BusOptions{QueueCapacity: int(cfg.QueueSize)},
		Router: bridge.RouterOptions{
			Home:        bridge.NetworkMattermost,
			Counters:    n.counters,
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
		for _, d := range p.allNetworks() {
			if b := p.buildBridge(rt, d, cfg); b != nil {
				if err = rt.manager.Register(b); err != nil {
					cancel()
					return err
				}
			}
		}
	}

	rt.commands = command.NewHandler(command.Env{
		Links:          sharingLinks{Store: n.store, p: p, n: n},
		SharedChannels: func() string { return p.sharedChannelsNote(n) },
		Bridge:         rt.manager.Bridge,
		Health:         func(nw bridge.Network) bridge.Health { return p.health(rt, nw) },
		IsSystemAdmin:  func(userID string) bool { return p.API.HasPermissionTo(userID, model.PermissionManageSystem) },
		ChannelName:    p.channelName,
		SettingsPath:   settingsPath,
		Stats:          rt.manager.Stats,
	}, p.commandSpecs()...)

	if err = rt.manager.Start(ctx); err != nil {
		p.API.LogWarn("Some bridges did not start", "error", err.Error())
	}
	if err = rt.keys.resume(ctx); err != nil {
		p.API.LogError("Cannot resume re-sealing ghost passwords under the new encryption key", "error", err.Error())
	}
	go p.shareAllLinks(n)
	p.running = rt
	return nil
}

// stopRuntime stops the bridge on this node: it deactivates, or lost the
// lease.
func (p *Plugin) stopRuntime() error {
	p.work.Lock()
	defer p.work.Unlock()
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
		// start, and remote networks replay from their own archives.
		p.API.LogWarn("Stopped with undelivered messages; they will be replayed when the bridge starts again", "count", abandoned)
	}
	return err
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
	b, err := n.Build(connector.Env{Store: rt.store, Logger: rt.logger, Keys: rt.keys.keys, InstanceSecret: rt.store.InstanceSecret, Portals: p.portals(),
		AvatarURL: func(s bridge.Sender) string { return p.avatarURL(rt, s) },
	}, nc)
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
	if old != nil && !old.ShareLinkedChannels && cfg.ShareLinkedChannels {
		go p.shareAllLinks(rt.node)
	}
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
	n := p.node
	if n == nil {
		return nil
	}
	p.node = nil
	// Stopped here rather than by the elector, to return its error; the
	// elector then gives the lease back, and tells the other nodes so one
	// takes over at once.
	err := p.stopRuntime()
	n.cancel()
	<-n.done
	p.announceRelease()
	p.drainRequests()
	return err
}

// requestDrain bounds how long deactivation waits for requests being
// answered.
const requestDrain = 5 * time.Second

// drainRequests waits until no request is being answered: the server ends
// the plugin's process once OnDeactivate returns, and a request cut off
// mid-answer fails for its sender (with the bridge stopped, what is left
// of one answers at once).
func (p *Plugin) drainRequests() {
	for deadline := time.Now().Add(requestDrain); p.inflight.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// active returns the runtime when this node holds the bridge's work, or
// nil while another node does, or the plugin is starting or stopping.
func (p *Plugin) active() *runtime {
	p.work.Lock()
	defer p.work.Unlock()
	return p.running
}

// currentNode returns this node's part while the plugin is active.
func (p *Plugin) currentNode() *node {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	return p.node
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

// ServeHTTP serves pictures on any node and hands every other request to
// the node that holds the bridge.
func (p *Plugin) ServeHTTP(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if strings.HasPrefix(r.URL.Path, avatarurl.Prefix) {
		p.serveAvatar(w, r)
		return
	}
	if rt := p.active(); rt != nil {
		p.serveOnHolder(w, r)
		return
	}
	p.forwardHTTP(w, r)
}

// serveOnHolder serves the routes that need the running bridge: the
// networks' own, then the REST API (http.go).
func (p *Plugin) serveOnHolder(w http.ResponseWriter, r *http.Request) {
	if !p.serveNetworkRoute(w, r) {
		p.apiOnce.Do(func() { p.api = p.apiRoutes() })
		p.api.ServeHTTP(w, r)
	}
}
