// Package slacktest is a Slack test server for the Slack bridge's tests:
// Slack itself cannot run here, so this package speaks the part of Slack's
// wire protocol the bridge uses, as Slack's API documentation describes it:
// the Web API methods (form or JSON bodies, ok/error answers, token types,
// scopes, per-method rate limits answered with HTTP 429 and Retry-After),
// file uploads and downloads, and Socket Mode (apps.connections.open, a
// websocket that sends hello, events_api envelopes acknowledged by
// envelope_id and redelivered when not, disconnect requests).
//
// The test acts as Slack's people through methods named after what they do
// (Post, Reply, Edit, React, ShareFile, InviteBot, Archive...), which change
// the workspace and send the events Slack would send, and reads back what
// the bridge did through inspection methods (Messages, Thread, Calls) and
// waits (WaitMessages, WaitFor...) that return as soon as the condition
// holds or the context ends.
//
// It is a test helper: one app, one workspace, everything in memory. Not
// modelled: direct messages and group DMs, Enterprise Grid, interactivity
// and slash commands over the socket, chat.postMessage's workspace-wide
// limit, message_replied events, thread tombstones for deleted parents,
// unfurls, emoji name validation, file thumbnails and asynchronous file
// processing, token rotation, and the connection's scheduled refresh
// (the test asks for one with RequestRefresh).
package slacktest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultBotScopes are the bot token scopes granted unless Options says
// otherwise: what the bridge needs (read and write messages in public and
// private channels, reactions, files, users and bots, customised names).
var DefaultBotScopes = []string{
	"channels:history", "channels:read", "groups:history", "groups:read",
	"chat:write", "chat:write.customize",
	"reactions:read", "reactions:write",
	"files:read", "files:write",
	"users:read",
}

// Options configure a test server. The zero value is a sensible default.
type Options struct {
	// TeamName and TeamDomain name the workspace ("Slack Test", "slacktest").
	TeamName, TeamDomain string
	// BotName is the app's bot user's name ("bridge").
	BotName string
	// BotScopes are the scopes granted to the bot token; nil means
	// DefaultBotScopes. An empty non-nil slice grants none.
	BotScopes []string
	// AppScopes are the app-level token's scopes; nil means
	// connections:write, which apps.connections.open needs.
	AppScopes []string
	// AckTimeout is how long an events_api envelope waits for its
	// acknowledgement before it is sent again; Slack asks for an ack within
	// 3 seconds, the default.
	AckTimeout time.Duration
	// MaxRetries is how many times an unacknowledged event is sent again
	// before Slack gives up on it (3, like the Events API's retries).
	MaxRetries int
	// PingInterval is how often the server pings each socket (10s).
	// slack-go's socketmode client reconnects when it has not been pinged
	// for 30s, so this must stay below that.
	PingInterval time.Duration
	// DisconnectGrace is how long a socket told to disconnect stays open
	// before the server closes it (10s): Slack keeps the old connection
	// for a while so the app can open the new one first.
	DisconnectGrace time.Duration
	// NoRateLimits turns off the documented per-method limits; forced 429s
	// (ForceRateLimit) still apply.
	NoRateLimits bool
}

func (o Options) withDefaults() Options {
	if o.TeamName == "" {
		o.TeamName = "Slack Test"
	}
	if o.TeamDomain == "" {
		o.TeamDomain = "slacktest"
	}
	if o.BotName == "" {
		o.BotName = "bridge"
	}
	if o.BotScopes == nil {
		o.BotScopes = DefaultBotScopes
	}
	if o.AppScopes == nil {
		o.AppScopes = []string{"connections:write"}
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 3 * time.Second
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 3
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.DisconnectGrace <= 0 {
		o.DisconnectGrace = 10 * time.Second
	}
	return o
}

// tokenKind is what a token may call: bot tokens call the Web API,
// app-level tokens open Socket Mode connections.
type tokenKind int

const (
	botToken tokenKind = iota
	appToken
)

type tokenState struct {
	kind   tokenKind
	scopes []string
	// failure, if set, is what every call with the token answers:
	// token_revoked or account_inactive.
	failure string
}

// Server is a running Slack test server.
type Server struct {
	// URL is "http://127.0.0.1:<port>"; the Web API is at URL+"/api/".
	URL string

	opts    Options
	httpSrv *httptest.Server
	upgrade websocket.Upgrader

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change, for waits
	ws      *workspace
	tokens  map[string]*tokenState
	botTok  string
	appTok  string
	appID   string
	botID   string
	botUser string

	limits  *limiter
	calls   []Call
	forced  map[string]*forcedLimit
	failing map[string][]string
	losing  map[string][]Loss

	socket  *socketState
	uploads map[string]string // upload URL ticket -> file ID
	closed  bool
	t       testing.TB
}

// Start starts a test server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := newServer(opts)
	s.t = t
	t.Cleanup(s.Close)
	return s
}

func newServer(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		opts:    opts,
		changed: make(chan struct{}),
		tokens:  map[string]*tokenState{},
		forced:  map[string]*forcedLimit{},
		failing: map[string][]string{},
		losing:  map[string][]Loss{},
		uploads: map[string]string{},
		limits:  newLimiter(),
	}
	w := newWorkspace(Team{Name: opts.TeamName, Domain: opts.TeamDomain})
	w.team.ID = w.newID('T')
	s.ws = w
	s.appID = w.newID('A')
	s.botID = w.newID('B')
	s.botUser = w.newID('U')
	w.users[s.botUser] = &User{ID: s.botUser, Name: opts.BotName, RealName: opts.BotName, IsBot: true, BotID: s.botID, Updated: time.Now().Unix()}
	w.bots[s.botID] = &Bot{ID: s.botID, Name: opts.BotName, AppID: s.appID, UserID: s.botUser}
	s.botTok = "xoxb-" + randomDigits() + "-" + randomDigits() + "-" + randomHex(12)
	s.appTok = "xapp-1-" + s.appID + "-" + randomDigits() + "-" + randomHex(32)
	s.tokens[s.botTok] = &tokenState{kind: botToken, scopes: slices.Clone(opts.BotScopes)}
	s.tokens[s.appTok] = &tokenState{kind: appToken, scopes: slices.Clone(opts.AppScopes)}
	s.socket = newSocketState()
	// slack-go dials with "Origin: https://api.slack.com", which the
	// websocket library's same-origin default would refuse.
	s.upgrade.CheckOrigin = func(*http.Request) bool { return true }

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/link/", s.serveSocket)
	mux.HandleFunc("/upload/v1/", s.serveUpload)
	mux.HandleFunc("/files-pri/", s.serveFile)
	mux.HandleFunc("/signin", s.serveSignin)
	s.httpSrv = httptest.NewServer(mux)
	s.URL = s.httpSrv.URL
	return s
}

// Close closes every socket and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := s.socket.all()
	s.socket.stopTimers()
	s.mu.Unlock()
	for _, c := range conns {
		c.drop()
	}
	s.httpSrv.Close()
}

// APIURL is what slack.OptionAPIURL takes: URL + "/api/".
func (s *Server) APIURL() string { return s.URL + "/api/" }

// BotToken is the bot token (xoxb-) for the Web API.
func (s *Server) BotToken() string { return s.botTok }

// AppToken is the app-level token (xapp-) for apps.connections.open.
func (s *Server) AppToken() string { return s.appTok }

// AppID, BotID and BotUserID identify the app, its bot and the bot's user.
func (s *Server) AppID() string { return s.appID }

// BotID is the app's bot ID (B...), which its messages carry as bot_id.
func (s *Server) BotID() string { return s.botID }

// BotUserID is the app's bot user (U...), its messages' user.
func (s *Server) BotUserID() string { return s.botUser }

// Team is the workspace's identity.
func (s *Server) Team() Team {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws.team
}

// SetBotScopes replaces the bot token's scopes, as reinstalling the app
// with other scopes would.
func (s *Server) SetBotScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[s.botTok].scopes = slices.Clone(scopes)
	s.notifyLocked()
}

// RevokeToken makes every later call with the token answer token_revoked.
func (s *Server) RevokeToken(token string) { s.failToken(token, "token_revoked") }

// DeactivateToken makes every later call with the token answer
// account_inactive, as Slack does for a deleted bot user or workspace.
func (s *Server) DeactivateToken(token string) { s.failToken(token, "account_inactive") }

func (s *Server) failToken(token, failure string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.tokens[token]; ok {
		st.failure = failure
	}
	s.notifyLocked()
}

// notifyLocked wakes every wait; callers hold s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func randomDigits() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	out := make([]byte, 12)
	for i := range b {
		out[i] = '0' + b[i]%10
	}
	return string(out)
}
