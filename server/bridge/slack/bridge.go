package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Store is the part of the KV store the Slack bridge uses.
type Store interface {
	ListLinks() ([]store.Link, error)
	ChannelForRoom(network bridge.Network, room string) (string, error)
	GetCursor(linkID, name string) (string, bool, error)
	SetCursor(linkID, name, value string) error
	Seen(namespace, id string) (bool, error)
	MarkSeen(namespace, id string, ttl time.Duration) (bool, error)
	SetAlias(namespace, key, value string) error
	Alias(namespace, key string) (string, bool, error)
	SavePending(namespace, id string, value json.RawMessage) error
	DeletePending(namespace, id string) error
	ListPending(namespace string) ([]store.Pending, error)
}

// Config is what the bridge is built from.
type Config struct {
	BotToken string // xoxb-, for the Web API
	AppToken string // xapp-, for Socket Mode
	// APIURL is the Web API's base ("https://slack.com/api/" when empty);
	// tests point it at their Slack test server.
	APIURL string
	// MaxFileSize bounds the files fetched from and posted to Slack.
	MaxFileSize int64
	// AvatarURL, when set, gives a public picture URL for a Mattermost
	// author, shown as the Slack message's icon (Slack fetches icon_url
	// itself, so it must be reachable without a session).
	AvatarURL func(bridge.Sender) string
	// PortalTeam, when set, turns automatic portals on: a channel the bot
	// is invited to that is not linked gets a Mattermost channel in this
	// team (by name), through Portals.
	PortalTeam string
	Portals    bridge.Portals
	// Unpaced turns off the bridge's own pacing (see pace.go), for a
	// Slack-compatible server without Slack's rate limits, such as the
	// test server in a benchmark; a 429 is still honoured.
	Unpaced bool
}

// Validate checks the tokens' shapes; it never quotes them.
func (c Config) Validate() error {
	var errs []error
	if !strings.HasPrefix(c.BotToken, "xoxb-") {
		errs = append(errs, errors.New(`the Slack bot token must start with "xoxb-"`))
	}
	if !strings.HasPrefix(c.AppToken, "xapp-") {
		errs = append(errs, errors.New(`the Slack app-level token must start with "xapp-"`))
	}
	return errors.Join(errs...)
}

// RequiredScopes are the bot token scopes the bridge uses: reading and
// writing messages in public and private channels, reactions, files,
// people's names and pictures, and posting under Mattermost authors' names.
var RequiredScopes = []string{
	"channels:history", "channels:read", "groups:history", "groups:read",
	"chat:write", "chat:write.customize",
	"reactions:read", "reactions:write",
	"files:read", "files:write",
	"users:read",
}

// identity is who the bot is in its workspace, from auth.test.
type identity struct {
	teamID, team string
	userID, user string
	botID, appID string
	scopes       []string
}

// Bridge implements bridge.Bridge for Slack: Socket Mode for events, the
// Web API for everything it does.
type Bridge struct {
	cfg     Config
	store   Store
	log     bridge.Logger
	api     *slack.Client // bot token
	app     *slack.Client // app-level token
	http    *http.Client
	secrets []string

	health *bridge.HealthKeeper

	mu     sync.Mutex
	sink   bridge.Sink
	cancel context.CancelFunc
	done   chan struct{}
	// runDone is closed when the connection loop ends: at Stop, or for
	// good after a token was refused.
	runDone chan struct{}
	me      identity
	ready   chan struct{} // closed once auth.test answered
	queue   chan item
	marks   map[string]*channelMarks // Slack channel -> cursor state
	// positions saves the cursors (see bridge.Positions); nil before a
	// start.
	positions atomic.Pointer[bridge.Positions]
	users     map[string]userEntry
	chNames   map[string]nameEntry
	// archived are the linked channels archived in Slack (see archive.go).
	archived map[string]bool
	// portalNote says why the last automatic portal failed, for status.
	portalNote string
	// reconnectAt is when the bridge may open its next socket, while it
	// waits for that (zero otherwise); reconnectWhy says why it waits.
	reconnectAt  time.Time
	reconnectWhy string
	// openPace keeps apps.connections.open within Tier 1, postPace
	// chat.postMessage within its per-channel rate (see pace.go).
	openPace *pacer
	postPace *channelPacers
	// unsure are the posts whose last attempt ended without knowing
	// whether Slack carried it out (see unsure.go).
	unsure map[string]unsurePost
	// portalRetry are the invitations whose portal is not open yet.
	portalRetry map[string]*portalPending
	// recent remembers what was handed on lately, so a redelivery skips
	// the store.
	recent *recentSet

	reconnects atomic.Int64 // sockets reopened after a drop or failure
	refreshes  atomic.Int64 // sockets replaced at Slack's request
	malformed  atomic.Int64 // envelopes and events that could not be read
	fatal      atomic.Bool  // a token was refused: no more attempts
	// overlap is the most sockets Slack counted open at a hello: 2 once a
	// refresh opened the new socket before closing the old.
	overlap atomic.Int64
	// catchUps counts the catch-ups finished (at the start and after each
	// dropped socket).
	catchUps atomic.Int64

	// testHookAfterReceive runs after an event was handed on and before
	// its envelope is acknowledged.
	testHookAfterReceive func()
}

var (
	_ bridge.Bridge      = (*Bridge)(nil)
	_ bridge.RoomChecker = (*Bridge)(nil)
	_ bridge.RoomWatcher = (*Bridge)(nil)

	_ bridge.RoomDescriber = (*Bridge)(nil)
)

// New returns a Slack bridge; it connects on Start.
func New(cfg Config, st Store, log bridge.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = bridge.NopLogger{}
	}
	hc := &http.Client{Timeout: 2 * time.Minute}
	opts := []slack.Option{slack.OptionHTTPClient(hc)}
	if cfg.APIURL != "" {
		u := cfg.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		cfg.APIURL = u
		opts = append(opts, slack.OptionAPIURL(u))
	}
	b := &Bridge{
		cfg: cfg, store: st, log: log, http: hc,
		api:         slack.New(cfg.BotToken, opts...),
		app:         slack.New("", append(slices.Clone(opts), slack.OptionAppLevelToken(cfg.AppToken))...),
		secrets:     []string{cfg.BotToken, cfg.AppToken},
		health:      bridge.NewHealthKeeper(bridge.Health{State: bridge.StateDisabled}),
		ready:       make(chan struct{}),
		marks:       map[string]*channelMarks{},
		users:       map[string]userEntry{},
		chNames:     map[string]nameEntry{},
		archived:    map[string]bool{},
		recent:      newRecentSet(4096),
		unsure:      map[string]unsurePost{},
		openPace:    newPacer(openEvery, openBurst),
		postPace:    newChannelPacers(postEvery, postBurst),
		portalRetry: map[string]*portalPending{},
	}
	if cfg.Unpaced {
		b.openPace, b.postPace = newPacer(0, 1), newChannelPacers(0, 1)
	}
	return b, nil
}

func (b *Bridge) Network() bridge.Network { return bridge.NetworkSlack }

func (b *Bridge) Capabilities() bridge.Capabilities {
	return bridge.Capabilities{
		Edits: true, Deletes: true, Reactions: true, Threads: true, Files: true,
		// chat.postMessage refuses text over 40,000 characters; bytes are
		// counted here, which keeps any text under that.
		MaxTextLength: 40000,
		MaxFileSize:   b.cfg.MaxFileSize,
	}
}

// Health adds what an admin needs to act on: the workspace and bot the
// token belongs to, scopes the app lacks, and how the socket has fared.
func (b *Bridge) Health() bridge.Health {
	h := b.health.Health()
	b.mu.Lock()
	me := b.me
	b.mu.Unlock()
	var notes []string
	if me.teamID != "" {
		notes = append(notes, fmt.Sprintf("workspace %s (%s), bot @%s (%s)", me.team, me.teamID, me.user, me.userID))
		if len(me.scopes) > 0 {
			notes = append(notes, "scopes: "+strings.Join(me.scopes, ","))
		}
		if missing := missingScopes(me.scopes); len(missing) > 0 {
			notes = append(notes, "missing scopes: "+strings.Join(missing, ", ")+" (add them to the Slack app and reinstall it)")
		}
	}
	b.mu.Lock()
	portalNote := b.portalNote
	b.mu.Unlock()
	if portalNote != "" {
		notes = append(notes, portalNote)
	}
	if note := b.archivedNote(); note != "" {
		notes = append(notes, note)
	}
	if note := b.reconnectNote(); note != "" {
		notes = append(notes, note)
	}
	notes = append(notes, fmt.Sprintf("reconnections: %d, refreshes: %d", b.reconnects.Load(), b.refreshes.Load()))
	if n := b.malformed.Load(); n > 0 {
		notes = append(notes, fmt.Sprintf("%d malformed events ignored", n))
	}
	h.Detail = strings.Join(notes, "; ")
	h.LastError = b.redact(h.LastError)
	return h
}

func missingScopes(granted []string) []string {
	var out []string
	for _, s := range RequiredScopes {
		if !slices.Contains(granted, s) {
			out = append(out, s)
		}
	}
	return out
}

// Start connects in the background and keeps the socket up until Stop.
func (b *Bridge) Start(ctx context.Context, sink bridge.Sink) error {
	archived := b.loadArchived()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		return errors.New("slack: already started")
	}
	b.archived = archived
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.sink = sink
	b.done = make(chan struct{})
	// Socket readers wait for room here rather than drop: Slack holds
	// what is not acknowledged and sends it again.
	b.queue = make(chan item, 256)
	b.health.Set(bridge.StateConnecting, nil)
	var wg sync.WaitGroup
	wg.Add(2)
	runDone := make(chan struct{})
	b.runDone = runDone
	go func() { defer wg.Done(); defer close(runDone); b.run(ctx) }()
	go func() { defer wg.Done(); b.process(ctx) }()
	b.positions.Store(bridge.StartPositions(ctx))
	done := b.done
	go func() { wg.Wait(); close(done) }()
	return nil
}

// Stop closes the sockets and waits for the bridge's loops.
func (b *Bridge) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.positions.Load().Close()
	b.health.Set(bridge.StateDisabled, nil)
	return nil
}

// identify asks auth.test who the bot token belongs to and what it may
// do, and bots.info which app the bot is (its messages carry the app ID).
func (b *Bridge) identify(ctx context.Context) error {
	res, err := b.api.AuthTestContext(ctx)
	if err != nil {
		return b.wrap("auth.test", err)
	}
	me := identity{teamID: res.TeamID, team: res.Team, userID: res.UserID, user: res.User, botID: res.BotID}
	if raw := res.Header.Get("X-OAuth-Scopes"); raw != "" {
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				me.scopes = append(me.scopes, s)
			}
		}
	}
	if me.botID != "" {
		if bot, berr := b.api.GetBotInfoContext(ctx, slack.GetBotInfoParameters{Bot: me.botID}); berr == nil {
			me.appID = bot.AppID
		} else {
			// The bot ID and user still tell the bridge's own posts apart.
			b.log.Warn("Could not look up the Slack app's bot", "error", b.wrap("bots.info", berr).Error())
		}
	}
	if me.teamID == "" || me.userID == "" {
		return errors.New("slack: auth.test did not say which workspace and bot the token belongs to")
	}
	b.mu.Lock()
	b.me = me
	select {
	case <-b.ready:
	default:
		close(b.ready)
	}
	b.mu.Unlock()
	if missing := missingScopes(me.scopes); len(missing) > 0 {
		b.log.Warn("The Slack app lacks scopes the bridge needs", "missing", strings.Join(missing, ","))
	}
	return nil
}

func (b *Bridge) identity() identity {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.me
}

// redact removes the tokens from text that may quote a request.
func (b *Bridge) redact(s string) string {
	for _, sec := range b.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// remoteID is a Slack person's stable identity across the bridge: user
// IDs are unique within a workspace only.
func (b *Bridge) remoteID(user string) string { return b.identity().teamID + "/" + user }

// slackUser returns the Slack user ID of a remote ID of this workspace.
func (b *Bridge) slackUser(remoteID string) (string, bool) {
	team, user, ok := strings.Cut(remoteID, "/")
	if !ok || team != b.identity().teamID || user == "" {
		return "", false
	}
	return user, true
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// tsTime reads a Slack ts ("1733500000.000100") as a time.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	var s, f int64
	for _, c := range sec {
		if c < '0' || c > '9' {
			return time.Time{}
		}
		s = s*10 + int64(c-'0')
	}
	frac = (frac + "000000")[:6]
	for _, c := range frac {
		if c < '0' || c > '9' {
			return time.Time{}
		}
		f = f*10 + int64(c-'0')
	}
	return time.Unix(s, f*1000).UTC()
}

// validTS reports whether ts has Slack's shape: seconds, a dot, digits.
func validTS(ts string) bool {
	sec, frac, ok := strings.Cut(ts, ".")
	if !ok || sec == "" || frac == "" || len(sec) > 12 || len(frac) > 6 {
		return false
	}
	return !tsTime(ts).IsZero()
}

// tsLess orders two valid ts values.
func tsLess(a, b string) bool { return tsTime(a).Before(tsTime(b)) }

// store namespaces, for Seen marks and aliases.
const (
	nsEvent    = "slack-event" // event IDs handed on
	nsMessage  = "slack-msg"   // channel|ts of new messages handed on
	nsEdit     = "slack-edit"  // channel|ts -> ts of the last edit handed on
	nsReaction = "slack-react" // room|target|emoji -> Mattermost people reacting
	seenTTL    = 7 * 24 * time.Hour
	cursorName = "slack-history" // a link's cursor: the last ts handed on
)
