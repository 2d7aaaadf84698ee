package testhost

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

// DefaultSiteURL is the SiteURL of a new Server.
const DefaultSiteURL = "http://localhost:8065"

// Option configures a Server.
type Option func(*options)

type options struct {
	bundle         *Bundle
	nodes          int
	siteURL        string
	pluginID       string
	systemMessages bool
	settings       map[string]any
	replicaLag     time.Duration
	clock          func() time.Time // tests of the host itself
	sharedChannels bool
}

// WithBundle sets the plugin bundle Node.Activate activates (and the
// plugin directory of every node).
func WithBundle(b *Bundle) Option { return func(o *options) { o.bundle = b } }

// WithNodes sets how many nodes (cluster members) NewServer starts with; the
// default is 1. More can be added later with Server.AddNode.
func WithNodes(n int) Option { return func(o *options) { o.nodes = n } }

// WithSiteURL sets ServiceSettings.SiteURL (default DefaultSiteURL).
func WithSiteURL(u string) Option { return func(o *options) { o.siteURL = u } }

// WithPluginID names the plugin Server.SetPluginSettings and Server.KV act
// on when there is no bundle (with a bundle, its manifest ID is used).
func WithPluginID(id string) Option { return func(o *options) { o.pluginID = id } }

// WithPluginSettings sets the plugin's settings before any plugin starts.
func WithPluginSettings(settings map[string]any) Option {
	return func(o *options) { o.settings = maps.Clone(settings) }
}

// WithoutSystemMessages stops the host from posting the system messages a
// real server posts on membership changes ("joined the channel", "joined
// the team", ...). By default they are posted, and fire hooks, as on a real
// server.
func WithoutSystemMessages() Option { return func(o *options) { o.systemMessages = false } }

// Server is the state shared by every node of one simulated Mattermost
// installation: users, teams, channels, posts, reactions, files, the
// plugin KV store and the configuration — what a real cluster keeps in its
// database and file store. Its exported setup helpers change state directly,
// like database fixtures, without firing hooks; act through a Node to fire
// hooks the way a user request does.
type Server struct {
	t    testing.TB
	opts options

	logs  *logCollector
	kv    *memkv.Store
	track *tracker

	pluginsDir  string // PluginSettings.Directory
	installDate int64
	telemetryID string

	clockMu  sync.Mutex
	lastTime int64
	// clock is the time the replica lag is measured in (time.Now).
	clock func() time.Time

	ensureBotMu sync.Mutex // EnsureBotUser is serialised server-wide

	allowFailures atomic.Bool
	kvFaults      kvFaults

	// sessions maps the session IDs of hook contexts to their users.
	sessions sync.Map

	// sync is the shared-channels sync service (sync.go).
	sync *syncService

	nodesMu sync.Mutex
	nodes   []*Node
	closed  bool

	mu sync.RWMutex
	st state
}

// state is the server's "database". Guarded by Server.mu. Objects are never
// handed out: every read returns a copy and every write stores one.
type state struct {
	config *model.Config

	users     map[string]*model.User
	usernames map[string]string // username -> user ID
	emails    map[string]string // email -> user ID
	passwords map[string]string // user ID -> hashed password
	bots      map[string]*model.Bot
	images    map[string][]byte // user ID -> profile image

	teams       map[string]*model.Team
	teamMembers map[string]map[string]*model.TeamMember // team -> user -> member
	defaultTeam string

	channels       map[string]*model.Channel
	channelMembers map[string]map[string]*model.ChannelMember // channel -> user -> member

	posts   map[string]*model.Post // includes deleted posts and edit history rows
	postSeq map[string]int64       // insertion order, to break CreateAt ties
	seq     int64
	stored  []string // post IDs in the order they were first stored

	// replicaLag is how far the replica behind the plugin API's replica
	// reads is; postVersions the recent versions of each post it replays
	// (replica.go).
	replicaLag   time.Duration
	postVersions map[string][]postVersion

	reactions map[string][]*model.Reaction // post -> reactions, soft-deleted ones included

	files    map[string]*model.FileInfo
	fileData map[string][]byte

	remotes              map[string]*model.RemoteCluster
	sharedChannels       map[string]*model.SharedChannel
	sharedChannelRemotes map[string]*model.SharedChannelRemote

	manifests map[string]*model.Manifest

	ephemeral     []EphemeralPost
	wsEvents      []WebSocketEvent
	dialogs       []model.OpenDialogRequest
	unimplemented []string
	panics        []string
}

// EphemeralPost is an ephemeral post a plugin (or a command response) sent
// to one user.
type EphemeralPost struct {
	Node   string
	UserID string
	Action string // "send", "update" or "delete"
	Post   *model.Post
}

// WebSocketEvent is an event a plugin published with PublishWebSocketEvent.
type WebSocketEvent struct {
	Node      string
	PluginID  string
	Event     string // as the server names it: "custom_<pluginID>_<event>"
	Payload   map[string]any
	Broadcast *model.WebsocketBroadcast
}

// NewServer returns a Server with one team ("test", with its town-square
// and off-topic channels) and, unless WithNodes says otherwise, one node.
// Everything is torn down by t.Cleanup: plugins are deactivated, plugin
// processes stopped and, if the test failed or BRIDGE_TEST_VERBOSE=1, the
// collected logs are written with t.Log.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{nodes: 1, siteURL: DefaultSiteURL, systemMessages: true, clock: time.Now}
	for _, opt := range append(defaultOptions(), opts...) {
		opt(&o)
	}
	s := &Server{
		t:           t,
		opts:        o,
		clock:       o.clock,
		logs:        &logCollector{verbose: verbose()},
		kv:          memkv.New(o.clock),
		track:       newTracker(),
		installDate: model.GetMillis(),
		telemetryID: model.NewId(),
	}
	registerGlobalSink(s.logs)

	if o.bundle != nil {
		s.pluginsDir = o.bundle.Dir
	} else {
		s.pluginsDir = filepath.Join(t.TempDir(), "plugins")
		if err := os.MkdirAll(s.pluginsDir, 0o755); err != nil {
			t.Fatalf("testhost: %v", err)
		}
	}

	cfg := &model.Config{}
	cfg.SetDefaults()
	cfg.ServiceSettings.SiteURL = model.NewPointer(o.siteURL)
	cfg.PluginSettings.Enable = model.NewPointer(true)
	cfg.ConnectedWorkspacesSettings.EnableSharedChannels = model.NewPointer(o.sharedChannels)
	cfg.ConnectedWorkspacesSettings.EnableRemoteClusterService = model.NewPointer(o.sharedChannels)
	cfg.PluginSettings.Directory = model.NewPointer(s.pluginsDir)
	cfg.PluginSettings.Plugins = map[string]map[string]any{}
	cfg.PluginSettings.PluginStates = map[string]*model.PluginState{}
	if id := s.PluginID(); id != "" {
		cfg.PluginSettings.PluginStates[id] = &model.PluginState{Enable: true}
		if o.settings != nil {
			cfg.PluginSettings.Plugins[id] = o.settings
		}
	} else if o.settings != nil {
		t.Fatalf("testhost: WithPluginSettings needs WithBundle or WithPluginID to know the plugin")
	}

	s.st = state{
		config:               cfg,
		users:                map[string]*model.User{},
		usernames:            map[string]string{},
		emails:               map[string]string{},
		passwords:            map[string]string{},
		bots:                 map[string]*model.Bot{},
		images:               map[string][]byte{},
		teams:                map[string]*model.Team{},
		teamMembers:          map[string]map[string]*model.TeamMember{},
		channels:             map[string]*model.Channel{},
		channelMembers:       map[string]map[string]*model.ChannelMember{},
		posts:                map[string]*model.Post{},
		postSeq:              map[string]int64{},
		reactions:            map[string][]*model.Reaction{},
		files:                map[string]*model.FileInfo{},
		fileData:             map[string][]byte{},
		remotes:              map[string]*model.RemoteCluster{},
		sharedChannels:       map[string]*model.SharedChannel{},
		sharedChannelRemotes: map[string]*model.SharedChannelRemote{},
		manifests:            map[string]*model.Manifest{},
	}
	if o.bundle != nil && o.bundle.Manifest != nil {
		s.st.manifests[o.bundle.Manifest.Id] = o.bundle.Manifest
	}

	team, appErr := s.createTeam(&model.Team{Name: "test", DisplayName: "Test Team", Type: model.TeamOpen})
	if appErr != nil {
		t.Fatalf("testhost: creating the default team: %v", appErr)
	}
	s.st.defaultTeam = team.Id
	s.SetReplicaLag(o.replicaLag)

	s.sync = newSyncService(s)
	t.Cleanup(s.close)
	for range o.nodes {
		s.AddNode()
	}
	return s
}

// PluginID is the ID of the plugin the server is about: the bundle's, or
// the one given with WithPluginID, or else the first plugin a node
// activated. It is "" until one of those is known.
func (s *Server) PluginID() string {
	if s.opts.bundle != nil && s.opts.bundle.Manifest != nil {
		return s.opts.bundle.Manifest.Id
	}
	if s.opts.pluginID != "" {
		return s.opts.pluginID
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := slices.Sorted(maps.Keys(s.st.manifests))
	if len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// Bundle is the bundle given with WithBundle, or nil.
func (s *Server) Bundle() *Bundle { return s.opts.bundle }

// AddNode starts a new node (cluster member) with its own plugin
// environment, sharing this server's state.
func (s *Server) AddNode() *Node {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if s.closed {
		s.t.Fatalf("testhost: AddNode after the server was closed")
	}
	n, err := newNode(s, fmt.Sprintf("node%d", len(s.nodes)))
	if err != nil {
		s.t.Fatalf("testhost: starting a node: %v", err)
	}
	s.nodes = append(s.nodes, n)
	return n
}

// Nodes returns the server's nodes in creation order.
func (s *Server) Nodes() []*Node {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	return slices.Clone(s.nodes)
}

// Node returns the i-th node.
func (s *Server) Node(i int) *Node {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if i < 0 || i >= len(s.nodes) {
		s.t.Fatalf("testhost: no node %d (have %d)", i, len(s.nodes))
	}
	return s.nodes[i]
}

func (s *Server) nodeByID(id string) *Node {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	for _, n := range s.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// now returns the current time in milliseconds, strictly increasing across
// the server so that every post, edit, deletion and reaction gets its own
// timestamp (a real database can give two rows the same millisecond; tests
// should not depend on winning that race).
func (s *Server) now() int64 {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	t := model.GetMillis()
	if t <= s.lastTime {
		t = s.lastTime + 1
	}
	s.lastTime = t
	return t
}

// close tears everything down; registered with t.Cleanup by NewServer.
func (s *Server) close() {
	s.nodesMu.Lock()
	s.closed = true
	nodes := slices.Clone(s.nodes)
	s.nodesMu.Unlock()

	s.track.wait(5 * time.Second)
	s.sync.close()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(n.shutdown)
	}
	wg.Wait()
	s.track.wait(5 * time.Second)

	for _, p := range s.Panics() {
		s.t.Errorf("testhost: the plugin API panicked (the call returned an error to the plugin): %s", p)
	}
	if !s.allowFailures.Load() {
		for _, l := range s.PluginFailures() {
			s.t.Errorf("testhost: a plugin process reported: %s", l)
		}
	}
	if s.t.Failed() || verbose() {
		for _, l := range s.Logs() {
			s.t.Log(l)
		}
	}
	for _, n := range nodes {
		_ = n.logger.Shutdown()
	}
	unregisterGlobalSink(s.logs)
}

// Logs returns every log line collected so far, from every node: the
// plugin's API Log* calls with their key/value pairs, what the plugin
// process wrote to stdout and stderr, and the host's own messages. Each
// line starts with "[nodeN] ".
func (s *Server) Logs() []string {
	flushGlobal()
	for _, n := range s.Nodes() {
		_ = n.logger.Flush()
	}
	return s.logs.snapshot("", true)
}

// PluginFailures returns the log lines in which a plugin process reported
// a data race (a -race build), a panic or a fatal runtime error. Unless
// AllowPluginFailures was called, each one fails the test at cleanup.
func (s *Server) PluginFailures() []string {
	var out []string
	for _, l := range s.Logs() {
		if strings.Contains(l, "] WARNING: DATA RACE") || strings.Contains(l, "] panic: ") || strings.Contains(l, "] fatal error: ") {
			out = append(out, l)
		}
	}
	return out
}

// AllowPluginFailures stops PluginFailures from failing the test, for tests
// that crash the plugin on purpose.
func (s *Server) AllowPluginFailures() { s.allowFailures.Store(true) }

// WaitHooks waits until every hook the host dispatched asynchronously
// (MessageHasBeenPosted and friends, cluster events) has returned, or
// until timeout. It does not know about work the plugin does in its own
// goroutines. It reports whether the host went idle.
func (s *Server) WaitHooks(timeout time.Duration) bool { return s.track.wait(timeout) }

// UnimplementedCalls lists, in call order, the plugin API methods the plugin
// called that the test host does not implement.
func (s *Server) UnimplementedCalls() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.st.unimplemented)
}

// Panics lists the panics the plugin API recovered from (each one fails
// the test at cleanup).
func (s *Server) Panics() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.st.panics)
}

func (s *Server) recordPanic(msg string) {
	s.mu.Lock()
	s.st.panics = append(s.st.panics, msg)
	s.mu.Unlock()
}

// KVStore is the plugin key-value store shared by all nodes. Its Get and
// List read the replica, as the plugin API's do; GetPrimary and
// ListPrimary read the primary.
func (s *Server) KVStore() *memkv.Store { return s.kv }

// KV is the KV store of the server's plugin (see PluginID), as the test
// sees it: its reads go to the primary, whatever the replica lag.
func (s *Server) KV() *memkv.PluginKV { return s.kv.Primary(s.PluginID()) }

// Config returns a copy of the (unsanitized) configuration.
func (s *Server) Config() *model.Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.config.Clone()
}

// UpdateConfig changes the configuration and fires OnConfigurationChange
// on every node, like a System Console save; it returns the hooks' errors.
func (s *Server) UpdateConfig(f func(*model.Config)) error {
	s.mu.Lock()
	cfg := s.st.config.Clone()
	f(cfg)
	s.st.config = cfg
	s.mu.Unlock()
	return s.fireConfigurationChange(nil, false)
}

// SetPluginSettings replaces the settings of the server's plugin (see
// PluginID) and fires OnConfigurationChange on every node with an active
// plugin, synchronously, returning the hooks' errors joined.
func (s *Server) SetPluginSettings(settings map[string]any) error {
	id := s.PluginID()
	if id == "" {
		return fmt.Errorf("testhost: SetPluginSettings: no plugin ID known yet (use WithBundle or WithPluginID)")
	}
	return s.SetPluginSettingsFor(id, settings)
}

// SetPluginSettingsFor is SetPluginSettings for a given plugin ID.
func (s *Server) SetPluginSettingsFor(pluginID string, settings map[string]any) error {
	s.mu.Lock()
	cfg := s.st.config.Clone()
	if cfg.PluginSettings.Plugins == nil {
		cfg.PluginSettings.Plugins = map[string]map[string]any{}
	}
	cfg.PluginSettings.Plugins[pluginID] = maps.Clone(settings)
	s.st.config = cfg
	s.mu.Unlock()
	return s.fireConfigurationChange(nil, false)
}

// PluginSettings returns a copy of the stored settings of a plugin.
func (s *Server) PluginSettings(pluginID string) map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.st.config.PluginSettings.Plugins[pluginID])
}

func (s *Server) siteURL() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return siteURLOf(s.st.config)
}

func siteURLOf(cfg *model.Config) string {
	if cfg.ServiceSettings.SiteURL == nil {
		return ""
	}
	return strings.TrimRight(*cfg.ServiceSettings.SiteURL, "/")
}

// --- setup helpers --------------------------------------------------------

// DefaultTeam returns the team NewServer created.
func (s *Server) DefaultTeam() *model.Team {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return copyTeam(s.st.teams[s.st.defaultTeam])
}

// CreateUser creates an active user (a system admin if isAdmin) with
// email <username>@example.com, a member of the default team and of its
// town-square and off-topic channels. It fails the test on error.
func (s *Server) CreateUser(username string, isAdmin bool) *model.User {
	s.t.Helper()
	roles := model.SystemUserRoleId
	if isAdmin {
		roles += " " + model.SystemAdminRoleId
	}
	u, appErr := s.createUser(&model.User{
		Username: username,
		Email:    username + "@example.com",
		Password: "Pa55word!" + model.NewId(),
		Roles:    roles,
	}, false)
	if appErr != nil {
		s.t.Fatalf("testhost: CreateUser(%q): %v", username, appErr)
	}
	if err := s.joinTeamQuietly(s.st.defaultTeam, u.Id); err != nil {
		s.t.Fatalf("testhost: CreateUser(%q): %v", username, err)
	}
	return u
}

// CreateUserWith creates the given user like the plugin API's CreateUser
// (validated by the server's own model code; RemoteId allowed), without
// joining any team. It fails the test on error.
func (s *Server) CreateUserWith(u *model.User) *model.User {
	s.t.Helper()
	ru, appErr := s.createUser(u, false)
	if appErr != nil {
		s.t.Fatalf("testhost: CreateUserWith: %v", appErr)
	}
	return ru
}

// CreateTeam creates an open team with its default channels.
func (s *Server) CreateTeam(name string) *model.Team {
	s.t.Helper()
	team, appErr := s.createTeam(&model.Team{Name: name, DisplayName: name, Type: model.TeamOpen})
	if appErr != nil {
		s.t.Fatalf("testhost: CreateTeam(%q): %v", name, appErr)
	}
	return team
}

// UpdateTeamAllowedDomains sets a team's AllowedDomains ("Users with a
// specific email domain" in the team's settings).
func (s *Server) UpdateTeamAllowedDomains(teamID, domains string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	team := s.st.teams[teamID]
	if team == nil {
		s.t.Fatalf("testhost: UpdateTeamAllowedDomains: no team %s", teamID)
	}
	team.AllowedDomains = domains
}

// AddToTeam makes the user a member of the team and of its town-square and
// off-topic channels, without system messages or hooks.
func (s *Server) AddToTeam(userID, teamID string) {
	s.t.Helper()
	if err := s.joinTeamQuietly(teamID, userID); err != nil {
		s.t.Fatalf("testhost: AddToTeam: %v", err)
	}
}

// CreateChannel creates an open channel with the given name (also its
// display name) in a team.
func (s *Server) CreateChannel(teamID, name string) *model.Channel {
	s.t.Helper()
	return s.CreateChannelWith(&model.Channel{TeamId: teamID, Name: name, DisplayName: name, Type: model.ChannelTypeOpen})
}

// CreateChannelWith creates the given channel (any type, validated by the
// server's model code). It fails the test on error.
func (s *Server) CreateChannelWith(ch *model.Channel) *model.Channel {
	s.t.Helper()
	rch, appErr := s.createChannel(ch)
	if appErr != nil {
		s.t.Fatalf("testhost: CreateChannel(%q): %v", ch.Name, appErr)
	}
	return rch
}

// AddToChannel makes the user a channel member (and a team member if
// needed), without system messages or hooks.
func (s *Server) AddToChannel(userID, channelID string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.st.channels[channelID]
	if ch == nil {
		s.t.Fatalf("testhost: AddToChannel: no channel %s", channelID)
	}
	if s.st.users[userID] == nil {
		s.t.Fatalf("testhost: AddToChannel: no user %s", userID)
	}
	if ch.TeamId != "" && s.st.teamMembers[ch.TeamId][userID] == nil {
		s.addTeamMemberLocked(ch.TeamId, userID)
	}
	s.addChannelMemberLocked(ch, userID)
}

// SetUserRoles sets a user's system roles (e.g. "system_user system_admin").
func (s *Server) SetUserRoles(userID, roles string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.st.users[userID]; u != nil {
		u.Roles = roles
		u.UpdateAt = s.now()
	}
}

// UploadFile stores a file as uploaded by a user (or "nouser", as the plugin
// API does) into a channel, not yet attached to a post. It fails the test
// on error.
func (s *Server) UploadFile(creatorID, channelID, name string, data []byte) *model.FileInfo {
	s.t.Helper()
	fi, appErr := s.uploadFile(creatorID, channelID, name, data)
	if appErr != nil {
		s.t.Fatalf("testhost: UploadFile: %v", appErr)
	}
	return fi
}

// --- accessors --------------------------------------------------------------

// User returns a copy of a user, or nil.
func (s *Server) User(id string) *model.User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.userCopyLocked(id)
}

// UserByUsername returns a copy of a user, or nil.
func (s *Server) UserByUsername(username string) *model.User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.userCopyLocked(s.st.usernames[strings.ToLower(username)])
}

// Users returns copies of every user (bots included), by username.
func (s *Server) Users() []*model.User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*model.User, 0, len(s.st.users))
	for id := range s.st.users {
		out = append(out, s.userCopyLocked(id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

// Bots returns copies of every bot, by username.
func (s *Server) Bots() []*model.Bot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*model.Bot, 0, len(s.st.bots))
	for _, b := range s.st.bots {
		out = append(out, b.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

// Channel returns a copy of a channel, or nil.
func (s *Server) Channel(id string) *model.Channel {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ch := s.st.channels[id]; ch != nil {
		return ch.DeepCopy()
	}
	return nil
}

// ChannelByName returns a copy of a team's channel, or nil.
func (s *Server) ChannelByName(teamID, name string) *model.Channel {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ch := s.channelByNameLocked(teamID, name); ch != nil {
		return ch.DeepCopy()
	}
	return nil
}

// ChannelMembers returns the IDs of a channel's members, sorted.
func (s *Server) ChannelMembers(channelID string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.st.channelMembers[channelID]))
}

// TeamMembers returns the IDs of a team's members.
func (s *Server) TeamMembers(teamID string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ids []string
	for id, m := range s.st.teamMembers[teamID] {
		if isTeamMember(m) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Post returns a copy of a post (deleted ones included), or nil.
func (s *Server) Post(id string) *model.Post {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.st.posts[id]; p != nil {
		return copyPost(p)
	}
	return nil
}

// ChannelPosts returns copies of a channel's live posts (not deleted, no
// edit history), oldest first — those of users, system messages and the
// plugin's own alike.
func (s *Server) ChannelPosts(channelID string) []*model.Post {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*model.Post
	for _, p := range s.sortedPostsLocked(channelID) {
		if p.DeleteAt == 0 {
			out = append(out, copyPost(p))
		}
	}
	return out
}

// PostsStoredAfter returns copies of the posts first stored after the
// first n (any channel; deleted posts and edit history rows included), in
// the order they were stored, and the count to pass next time: a watcher
// that reads only what is new, where ChannelPosts sorts them all.
func (s *Server) PostsStoredAfter(n int) ([]*model.Post, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*model.Post
	for _, id := range s.st.stored[min(n, len(s.st.stored)):] {
		out = append(out, copyPost(s.st.posts[id]))
	}
	return out, len(s.st.stored)
}

// Reactions returns copies of a post's current reactions, oldest first.
func (s *Server) Reactions(postID string) []*model.Reaction {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.liveReactionsLocked(postID)
}

// FileInfo returns a copy of a file's info (deleted ones included), or nil.
func (s *Server) FileInfo(id string) *model.FileInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if fi := s.st.files[id]; fi != nil {
		return copyFileInfo(fi)
	}
	return nil
}

// FileData returns a copy of a file's content, or nil.
func (s *Server) FileData(id string) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.st.fileData[id])
}

// PostFiles returns copies of the infos of the files attached to a post.
func (s *Server) PostFiles(postID string) []*model.FileInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*model.FileInfo
	if p := s.st.posts[postID]; p != nil {
		for _, id := range p.FileIds {
			if fi := s.st.files[id]; fi != nil {
				out = append(out, copyFileInfo(fi))
			}
		}
	}
	return out
}

// ProfileImage returns the profile image set for a user, if any.
func (s *Server) ProfileImage(userID string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.st.images[userID]
	return slices.Clone(b), ok
}

// EphemeralPosts returns the ephemeral posts sent so far.
func (s *Server) EphemeralPosts() []EphemeralPost {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]EphemeralPost, len(s.st.ephemeral))
	for i, e := range s.st.ephemeral {
		e.Post = copyPost(e.Post)
		out[i] = e
	}
	return out
}

// EphemeralPostsFor returns the ephemeral posts sent to one user.
func (s *Server) EphemeralPostsFor(userID string) []EphemeralPost {
	var out []EphemeralPost
	for _, e := range s.EphemeralPosts() {
		if e.UserID == userID {
			out = append(out, e)
		}
	}
	return out
}

// WebSocketEvents returns the events published with PublishWebSocketEvent.
func (s *Server) WebSocketEvents() []WebSocketEvent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.st.wsEvents)
}

// Dialogs returns the interactive dialogs opened with OpenInteractiveDialog.
func (s *Server) Dialogs() []model.OpenDialogRequest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.st.dialogs)
}

// RemoteClusters returns copies of the shared-channel remotes registered
// with RegisterPluginForSharedChannels (deleted ones included).
func (s *Server) RemoteClusters() []*model.RemoteCluster {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*model.RemoteCluster, 0, len(s.st.remotes))
	for _, rc := range s.st.remotes {
		c := *rc
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreateAt < out[j].CreateAt })
	return out
}

// SharedChannel returns a copy of a channel's share record, or nil.
func (s *Server) SharedChannel(channelID string) *model.SharedChannel {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if sc := s.st.sharedChannels[channelID]; sc != nil {
		c := *sc
		return &c
	}
	return nil
}

// SharedChannelRemotes returns copies of the remotes invited to a channel.
func (s *Server) SharedChannelRemotes(channelID string) []*model.SharedChannelRemote {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*model.SharedChannelRemote
	for _, scr := range s.st.sharedChannelRemotes {
		if scr.ChannelId == channelID {
			c := *scr
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreateAt < out[j].CreateAt })
	return out
}

// WaitFor polls cond every 10ms until it returns true, failing the test
// with msg after timeout.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testhost: timed out after %v waiting for: %s", timeout, fmt.Sprintf(msg, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// --- tracker ---------------------------------------------------------------

// tracker counts asynchronous deliveries in flight.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n == 0
}

func newTracker() *tracker {
	t := &tracker{idle: make(chan struct{})}
	close(t.idle)
	return t
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.idle)
	}
	t.mu.Unlock()
}

func (t *tracker) wait(timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		t.mu.Lock()
		idle := t.idle
		t.mu.Unlock()
		select {
		case <-idle:
			// A delivery may have started another one just before finishing.
			t.mu.Lock()
			n := t.n
			t.mu.Unlock()
			if n == 0 {
				return true
			}
		case <-deadline:
			return false
		}
	}
}
