package testhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// Node is one member of the simulated cluster: its own plugin.Environment
// (the real supervisor, go-plugin RPC and hooks/API RPC of the server's
// plugin package), its own plugin process or in-process plugin, its own
// registered slash commands, sharing the Server's state with the other
// nodes.
type Node struct {
	s         *Server
	id        string
	logger    *mlog.Logger
	env       *plugin.Environment
	webappDir string
	// pluginsLink is this node's own path to the server's plugins
	// directory (a symbolic link), so its plugin processes can be told
	// from other nodes' by their command line (Kill).
	pluginsLink string
	cluster     *clusterQueue
	calls       callCounts

	mu       sync.Mutex
	apis     map[string]*API
	active   map[string]*activation
	commands []*pluginCommand
	closed   bool
}

type activation struct {
	manifest  *model.Manifest
	newPlugin func() any // in-process only
	cancel    context.CancelFunc
	closeCh   chan struct{}
}

type pluginCommand struct {
	pluginID string
	cmd      *model.Command
}

func newNode(s *Server, id string) (*Node, error) {
	logger, err := newNodeLogger(s.logs, id)
	if err != nil {
		return nil, err
	}
	webappDir, err := os.MkdirTemp("", "testhost-webapp-")
	if err != nil {
		return nil, err
	}
	n := &Node{
		s:           s,
		id:          id,
		logger:      logger,
		webappDir:   webappDir,
		pluginsLink: filepath.Join(webappDir, "plugins"),
		apis:        map[string]*API{},
		active:      map[string]*activation{},
	}
	if err := os.Symlink(s.pluginsDir, n.pluginsLink); err != nil {
		return nil, err
	}
	env, err := plugin.NewEnvironment(n.newAPIImpl, nil, n.pluginsLink, webappDir, logger, nil)
	if err != nil {
		return nil, err
	}
	n.env = env
	n.cluster = newClusterQueue(n)
	return n, nil
}

// ID is the node's cluster ID ("node0", "node1", ...), the TargetId of
// PublishPluginClusterEvent.
func (n *Node) ID() string { return n.id }

// Server returns the node's server.
func (n *Node) Server() *Server { return n.s }

// Environment is the node's plugin environment, for what the helpers do not
// cover.
func (n *Node) Environment() *plugin.Environment { return n.env }

// Logs returns the log lines collected on this node (see Server.Logs).
func (n *Node) Logs() []string {
	_ = n.logger.Flush()
	return n.s.logs.snapshot(n.id, false)
}

func (n *Node) logf(level mlog.Level, format string, args ...any) {
	n.logger.Log(level, fmt.Sprintf(format, args...), mlog.String("source", "testhost"))
}

// API returns the plugin API instance the node serves to the given plugin
// (the server's plugin if pluginID is ""). Calling it from a test acts as
// that plugin: e.g. API("").CreatePost fires MessageHasBeenPosted on this
// node's plugin like a post the plugin made.
func (n *Node) API(pluginID string) *API {
	if pluginID == "" {
		pluginID = n.s.PluginID()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.apiLocked(pluginID, nil)
}

func (n *Node) apiLocked(pluginID string, m *model.Manifest) *API {
	a := n.apis[pluginID]
	if a == nil {
		a = &API{n: n, s: n.s, pluginID: pluginID}
		n.apis[pluginID] = a
	}
	if m == nil {
		m = n.s.manifest(pluginID)
	}
	if m != nil {
		a.setManifest(m)
	}
	return a
}

// newAPIImpl is the plugin.Environment's API factory: every activation gets
// the node's API for that plugin behind a layer that turns panics into
// errors (a panic in the RPC server would kill the test binary).
func (n *Node) newAPIImpl(m *model.Manifest) plugin.API {
	n.s.registerManifest(m)
	n.mu.Lock()
	a := n.apiLocked(m.Id, m)
	n.mu.Unlock()
	return &safeAPI{api: a}
}

func (s *Server) registerManifest(m *model.Manifest) {
	if m == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.manifests[m.Id] = m
	if s.st.config.PluginSettings.PluginStates == nil {
		s.st.config.PluginSettings.PluginStates = map[string]*model.PluginState{}
	}
	s.st.config.PluginSettings.PluginStates[m.Id] = &model.PluginState{Enable: true}
}

func (s *Server) manifest(id string) *model.Manifest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.manifests[id]
}

func (s *Server) manifestList() []*model.Manifest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*model.Manifest
	for _, m := range s.st.manifests {
		out = append(out, m)
	}
	return out
}

// --- activation ------------------------------------------------------------------

// Activate starts the server's bundle (see WithBundle) on this node as a
// separate process, through plugin.Environment.Activate: the supervisor
// launches the executable for this platform from the manifest, go-plugin
// connects, and OnActivate runs over RPC. It returns OnActivate's error.
func (n *Node) Activate() error {
	b := n.s.opts.bundle
	if b == nil || b.Manifest == nil {
		return errors.New("testhost: Activate: the server has no bundle (use WithBundle, or ActivateInProcess)")
	}
	return n.ActivatePlugin(b.Manifest.Id)
}

// ActivatePlugin activates a plugin found in the plugins directory by ID.
func (n *Node) ActivatePlugin(id string) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errors.New("testhost: node is shut down")
	}
	if n.active[id] != nil {
		n.mu.Unlock()
		return fmt.Errorf("testhost: plugin %s is already active on %s", id, n.id)
	}
	act := &activation{}
	n.active[id] = act // reserved while activating
	n.mu.Unlock()

	m, activated, err := n.env.Activate(id)
	if err == nil && !activated {
		err = errors.New("the environment reports it already active")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		delete(n.active, id)
		return fmt.Errorf("testhost: activating %s on %s: %w", id, n.id, err)
	}
	act.manifest = m
	return nil
}

// ActivateInProcess runs a plugin inside the test binary — for coverage, and
// for plugins built by the test with test-only code — and attaches it to
// this node's environment with plugin.Environment.Reattach, so it is still
// driven through the real go-plugin RPC boundary: newPlugin returns the
// plugin implementation (a type embedding plugin.MattermostPlugin), which is
// served with plugin.ClientMain in test mode. newPlugin is called again by
// Restart, so each activation gets a fresh instance.
func (n *Node) ActivateInProcess(manifest *model.Manifest, newPlugin func() any) error {
	if manifest == nil || manifest.Id == "" {
		return errors.New("testhost: ActivateInProcess: a manifest with an ID is required")
	}
	if newPlugin == nil {
		return errors.New("testhost: ActivateInProcess: newPlugin is nil")
	}
	m := cloneManifest(manifest)
	if m.Server == nil {
		m.Server = &model.ManifestServer{} // Reattach requires a server component
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errors.New("testhost: node is shut down")
	}
	if n.active[m.Id] != nil {
		n.mu.Unlock()
		return fmt.Errorf("testhost: plugin %s is already active on %s", m.Id, n.id)
	}
	act := &activation{manifest: m, newPlugin: newPlugin}
	n.active[m.Id] = act // reserved while activating
	n.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			n.mu.Lock()
			delete(n.active, m.Id)
			n.mu.Unlock()
		}
	}()

	n.s.registerManifest(m)
	if err := n.s.ensurePluginFolder(m); err != nil {
		return err
	}

	impl := newPlugin()
	if _, ok := impl.(interface {
		SetAPI(plugin.API)
		SetDriver(plugin.Driver)
	}); !ok {
		return fmt.Errorf("testhost: ActivateInProcess: %T does not embed plugin.MattermostPlugin", impl)
	}

	ctx, cancel := context.WithCancel(context.Background())
	reattachCh := make(chan *goplugin.ReattachConfig, 1)
	closeCh := make(chan struct{})
	failed := make(chan any, 1)
	serveLogger := hclog.New(&hclog.LoggerOptions{
		Name:   "in-process plugin server",
		Level:  hclog.Warn,
		Output: lineWriter{c: n.s.logs, node: n.id},
	})
	go func() {
		defer func() {
			if r := recover(); r != nil {
				failed <- r
			}
		}()
		plugin.ClientMain(impl,
			plugin.WithTestReattachConfigCh(reattachCh),
			plugin.WithTestContext(ctx),
			plugin.WithTestCloseCh(closeCh),
			func(c *goplugin.ServeConfig) error { c.Logger = serveLogger; return nil },
		)
	}()
	stop := func() {
		cancel()
		select {
		case <-closeCh:
		case <-failed:
		case <-time.After(10 * time.Second):
			n.logf(mlog.LvlWarn, "in-process plugin %s did not stop within 10s", m.Id)
		}
	}

	var rc *goplugin.ReattachConfig
	select {
	case rc = <-reattachCh:
	case r := <-failed:
		cancel()
		return fmt.Errorf("testhost: in-process plugin %s panicked while starting: %v", m.Id, r)
	case <-closeCh:
		cancel()
		return fmt.Errorf("testhost: in-process plugin %s stopped before it was ready", m.Id)
	case <-time.After(10 * time.Second):
		stop()
		return fmt.Errorf("testhost: in-process plugin %s did not start within 10s", m.Id)
	}

	if err := n.env.Reattach(m, model.NewPluginReattachConfig(rc)); err != nil {
		n.env.Deactivate(m.Id)
		stop()
		return fmt.Errorf("testhost: reattaching %s on %s: %w", m.Id, n.id, err)
	}
	// Reattach returns nil even when the connection or OnActivate failed,
	// so check what it left behind.
	if state := n.env.GetPluginState(m.Id); state != model.PluginStateRunning {
		n.env.Deactivate(m.Id)
		stop()
		return fmt.Errorf("testhost: reattaching %s on %s: plugin state %d, not running", m.Id, n.id, state)
	}
	if _, err := n.env.HooksForPlugin(m.Id); err != nil {
		n.env.Deactivate(m.Id)
		stop()
		return fmt.Errorf("testhost: reattaching %s on %s: the plugin did not activate — OnActivate returned an error "+
			"or the RPC connection failed (plugin.Environment.Reattach does not report which); recent log lines:\n%s",
			m.Id, n.id, strings.Join(lastN(n.Logs(), 15), "\n"))
	}

	n.mu.Lock()
	act.cancel, act.closeCh = cancel, closeCh
	n.mu.Unlock()
	ok = true
	return nil
}

func lastN(lines []string, k int) []string {
	if len(lines) > k {
		return lines[len(lines)-k:]
	}
	return lines
}

func cloneManifest(m *model.Manifest) *model.Manifest {
	b, err := json.Marshal(m)
	if err != nil {
		c := *m
		return &c
	}
	var c model.Manifest
	if err := json.Unmarshal(b, &c); err != nil {
		c2 := *m
		return &c2
	}
	return &c
}

// ensurePluginFolder gives an in-process plugin a bundle folder, so that
// GetBundlePath points at a directory with its manifest.
func (s *Server) ensurePluginFolder(m *model.Manifest) error {
	dir := filepath.Join(s.pluginsDir, m.Id)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if s.opts.bundle != nil {
		return nil // never write into a (possibly shared) bundle directory
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "plugin.json"), b, 0o644)
}

// Deactivate deactivates every plugin active on this node, like disabling
// it: OnDeactivate runs, the RPC connection is closed and the plugin process
// (or in-process plugin server) stops. Its slash commands are unregistered.
func (n *Node) Deactivate() {
	n.mu.Lock()
	ids := make([]string, 0, len(n.active))
	for id := range n.active {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		n.DeactivatePlugin(id)
	}
}

// DeactivatePlugin deactivates one plugin; it reports whether it was active.
func (n *Node) DeactivatePlugin(id string) bool {
	n.mu.Lock()
	p := n.active[id]
	delete(n.active, id)
	var act activation
	if p != nil {
		act = *p
	}
	n.mu.Unlock()
	if p == nil {
		return false
	}
	n.env.Deactivate(id)
	n.unregisterCommands(id)
	if act.cancel != nil {
		act.cancel()
		select {
		case <-act.closeCh:
		case <-time.After(10 * time.Second):
			n.logf(mlog.LvlWarn, "in-process plugin %s did not stop within 10s of deactivation", id)
		}
	}
	return true
}

// Kill ends this node's plugin processes at once, the way a node dies:
// OnDeactivate does not run, the processes' connections drop, and the
// node, like a server that noticed, stops dispatching to its plugins. It
// works for bundles (Activate), not in-process plugins, which share the
// test's process.
func (n *Node) Kill() error {
	pids := n.pluginProcesses()
	if len(pids) == 0 {
		return fmt.Errorf("testhost: Kill: no plugin process runs on %s (in-process plugins cannot be killed)", n.id)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("testhost: Kill %d: %w", pid, err)
		}
	}
	for _, pid := range pids {
		for i := 0; i < 500 && processExists(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	n.Deactivate()
	return nil
}

// PluginProcesses lists the processes of the bundles running on this node,
// so a test can tell which node opened a connection it sees.
func (n *Node) PluginProcesses() []int { return n.pluginProcesses() }

// APICalls returns how many plugin API calls this node has served so far,
// every plugin together, by method: what crosses the RPC boundary (a
// benchmark divides the difference over a run by its messages).
func (n *Node) APICalls() map[string]int64 { return n.calls.snapshot() }

type callCounts struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *callCounts) add(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[method]++
}

func (c *callCounts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// pluginProcesses lists the processes started from this node's plugins
// directory.
func (n *Node) pluginProcesses() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	prefix := n.pluginsLink + string(filepath.Separator)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if strings.HasPrefix(argv0, prefix) && processExists(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processExists reports whether pid runs (a zombie does not count).
func processExists(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// Restart deactivates and re-activates every plugin active on this node,
// the same way each was activated (in-process plugins get a fresh instance
// from their newPlugin function).
func (n *Node) Restart() error {
	n.mu.Lock()
	acts := make(map[string]activation, len(n.active))
	for id, a := range n.active {
		acts[id] = *a
	}
	n.mu.Unlock()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(acts)) {
		a := acts[id]
		n.DeactivatePlugin(id)
		if a.newPlugin != nil {
			errs = append(errs, n.ActivateInProcess(a.manifest, a.newPlugin))
		} else {
			errs = append(errs, n.ActivatePlugin(id))
		}
	}
	return errors.Join(errs...)
}

// IsActive reports whether the server's plugin (or the given one) is
// running on this node.
func (n *Node) IsActive(pluginID ...string) bool {
	id := n.s.PluginID()
	if len(pluginID) > 0 {
		id = pluginID[0]
	}
	if !n.env.IsActive(id) {
		return false
	}
	_, err := n.env.HooksForPlugin(id)
	return err == nil
}

// Hooks returns the RPC client of the server's plugin on this node, to
// call hooks the helpers do not cover (e.g. OnSharedChannelsSyncMsg).
func (n *Node) Hooks() (plugin.Hooks, error) {
	return n.env.HooksForPlugin(n.s.PluginID())
}

// HealthCheck pings the server's plugin over RPC, like the server's
// health-check job.
func (n *Node) HealthCheck() error {
	return n.env.PerformHealthCheck(n.s.PluginID())
}

func (n *Node) shutdown() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	acts := make(map[string]activation, len(n.active))
	for id, a := range n.active {
		acts[id] = *a
	}
	n.active = map[string]*activation{}
	n.mu.Unlock()

	n.env.Shutdown()
	for id, a := range acts {
		n.unregisterCommands(id)
		if a.cancel != nil {
			a.cancel()
			select {
			case <-a.closeCh:
			case <-time.After(10 * time.Second):
				n.logf(mlog.LvlWarn, "in-process plugin %s did not stop within 10s of shutdown", id)
			}
		}
	}
	n.cluster.close()
	_ = os.RemoveAll(n.webappDir)
}

// --- hook dispatch -------------------------------------------------------------

func newPluginContext() *plugin.Context {
	return &plugin.Context{RequestId: model.NewId()}
}

// userPluginContext is the context of a hook fired by userID's request:
// like app's pluginContext, it carries the request's session, which
// GetSession resolves to the user.
func (s *Server) userPluginContext(userID string) *plugin.Context {
	c := newPluginContext()
	if userID != "" {
		c.SessionId = model.NewId()
		c.UserAgent = "testhost"
		c.IPAddress = "127.0.0.1"
		s.sessions.Store(c.SessionId, userID)
	}
	return c
}

// runHook runs a hook on every plugin of this node that implements it, in
// the calling goroutine.
func (n *Node) runHook(hookID int, f func(h plugin.Hooks, m *model.Manifest) bool) {
	n.env.RunMultiPluginHook(f, hookID)
}

// goHook runs a hook asynchronously, the way the server runs the
// "has been" hooks (MessageHasBeenPosted, ReactionHasBeenAdded, ...) in a
// goroutine.
func (n *Node) goHook(hookID int, f func(h plugin.Hooks)) {
	n.s.track.add()
	go func() {
		defer n.s.track.done()
		n.env.RunMultiPluginHook(func(h plugin.Hooks, _ *model.Manifest) bool {
			f(h)
			return true
		}, hookID)
	}()
}

// --- cluster events ------------------------------------------------------------

type clusterItem struct {
	pluginID string
	ev       model.PluginClusterEvent
}

// clusterQueue delivers cluster events to one node in order, asynchronously.
type clusterQueue struct {
	n      *Node
	mu     sync.Mutex
	cond   *sync.Cond
	items  []clusterItem
	closed bool
	done   chan struct{}
}

func newClusterQueue(n *Node) *clusterQueue {
	q := &clusterQueue{n: n, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

func (q *clusterQueue) push(it clusterItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.n.s.track.add()
	q.items = append(q.items, it)
	q.cond.Signal()
	return true
}

func (q *clusterQueue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		it := q.items[0]
		q.items = q.items[1:]
		q.mu.Unlock()

		if hooks, err := q.n.env.HooksForPlugin(it.pluginID); err == nil {
			hooks.OnPluginClusterEvent(newPluginContext(), it.ev)
		}
		q.n.s.track.done()
	}
}

func (q *clusterQueue) close() {
	q.mu.Lock()
	q.closed = true
	dropped := len(q.items)
	q.items = nil
	q.cond.Broadcast()
	q.mu.Unlock()
	for range dropped {
		q.n.s.track.done()
	}
	<-q.done
}

// publishClusterEvent sends ev to the other nodes (or the target node),
// like the server's cluster service: asynchronously, each node receiving
// the events of a sender in order.
func (n *Node) publishClusterEvent(pluginID string, ev model.PluginClusterEvent, opts model.PluginClusterEventSendOptions) error {
	ev.Data = slices.Clone(ev.Data)
	if opts.TargetId != "" {
		target := n.s.nodeByID(opts.TargetId)
		if target == nil || target == n {
			return fmt.Errorf("failed to send message to cluster node %q: no such node", opts.TargetId)
		}
		target.cluster.push(clusterItem{pluginID: pluginID, ev: ev})
		return nil
	}
	for _, other := range n.s.Nodes() {
		if other != n {
			other.cluster.push(clusterItem{pluginID: pluginID, ev: ev})
		}
	}
	return nil
}
