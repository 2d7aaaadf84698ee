package xmpp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

// Store is the part of the KV store the XMPP bridge uses.
type Store interface {
	ListLinks() ([]store.Link, error)
	GetCursor(linkID, name string) (string, bool, error)
	SetCursor(linkID, name, value string) error
	SetAlias(namespace, key, value string) error
	Alias(namespace, key string) (string, bool, error)
}

// Bridge implements bridge.Bridge for XMPP multi-user chat.
type Bridge struct {
	cfg   Config
	store Store
	log   bridge.Logger

	mu      sync.Mutex
	sink    bridge.Sink
	session *xmpp.Session
	rooms   map[string]*room // bare room JID -> state
	health  *bridge.HealthKeeper
	cancel  context.CancelFunc
	done    chan struct{}
	// connected is closed while a session is up and replaced when it drops,
	// so deliveries can wait for a reconnect instead of failing at once.
	connected chan struct{}
	// dropped is closed when the current session ends.
	dropped chan struct{}
	// reflections wait for the room to echo a message we sent, which tells
	// us the ID the room gave it.
	reflections map[string]chan string // origin ID -> stanza ID
	// started is when this bridge started, and tried the deliveries it
	// began and did not finish: see firstAttempt.
	started time.Time
	tried   map[string]bool
	// pendingGhost tracks ghost joins in flight, by room/nick.
	pendingGhost map[string]*room
	// archiveQueries are the MAM queries in flight, by query ID; results
	// answering none of them are ignored and counted in ignoredResults.
	archiveQueries map[string]openQuery
	ignoredResults int
	// ghostNamesTaken counts ghost registrations whose name someone else
	// already had (client mode).
	ghostNamesTaken int
	// ghostsIn lists, by room, the ghost addresses this session put in
	// each room (component mode) and the nick each asked for;
	// leftoversAsked, the earlier sessions' ghosts asked to leave, by room
	// and address. occupancyMu orders the joins and leaves of ghost
	// addresses on the stream. See occupancy.go.
	ghostsIn       map[string]map[string]string
	leftoversAsked map[string]bool
	occupancyMu    sync.Mutex
	// joining holds the bot's room joins in flight, by room (see join).
	joining map[string]*joinCall
	// botAddr is the bot's address in component mode, as a string.
	botAddr string

	inbound chan []byte // raw stanzas, handled in order off the read loop
	// ghostPool holds client-mode ghost connections.
	ghostPool ghostPool
	// uploadSvc is the server's XEP-0363 service, when it has one; files
	// is the HTTP side of uploads and downloads.
	uploadSvc *httpfile.Service
	// uploadAddrs are the host:port pairs the service takes and serves
	// files at: the only private addresses files are fetched from.
	uploadAddrs []string
	files       *httpfile.Fetcher
	// uploadKnown is closed once this session's discoverUpload is done.
	uploadKnown chan struct{}
	// uploadRefusal is the last refusal of an upload slot, for status.
	uploadRefusal string
	runCtx        context.Context
	// positions saves the rooms' archive positions (see
	// bridge.Positions); nil before a start.
	positions atomic.Pointer[bridge.Positions]

	// downloads holds a token per file being fetched (maxDownloads);
	// fileDir is where they go, removed on Stop.
	downloads chan struct{}
	fileDir   string

	// testAllowPrivateFiles lets tests fetch files from their own
	// loopback HTTP servers.
	testAllowPrivateFiles bool

	// inlineLanes runs room messages on the inbound loop, for in-process
	// tests that feed stanzas and check at once.
	inlineLanes bool

	// testHookGhostLookedUp runs between a delivery finding its ghost
	// and using it, so tests can close idle ghosts right there.
	testHookGhostLookedUp func()

	// testHookBeforeSend runs right before a stanza goes out, so tests
	// can end the bridge's store there, as a crash would; an error it
	// returns stops the send.
	testHookBeforeSend func() error
}

var (
	_ bridge.Bridge      = (*Bridge)(nil)
	_ bridge.RoomChecker = (*Bridge)(nil)
	_ bridge.RoomWatcher = (*Bridge)(nil)
)

// New returns an XMPP bridge; it connects on Start.
func New(cfg Config, st Store, log bridge.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Nick == "" {
		cfg.Nick = "Mattermost"
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = time.Minute
	}
	cfg.logins = &logins{}
	if log == nil {
		log = bridge.NopLogger{}
	}
	b := &Bridge{
		cfg: cfg, store: st, log: log,
		rooms:          map[string]*room{},
		health:         bridge.NewHealthKeeper(bridge.Health{State: bridge.StateDisabled}),
		connected:      make(chan struct{}),
		reflections:    map[string]chan string{},
		tried:          map[string]bool{},
		pendingGhost:   map[string]*room{},
		ghostPool:      ghostPool{ghosts: map[string]*clientGhost{}},
		archiveQueries: map[string]openQuery{},
		downloads:      make(chan struct{}, maxDownloads),
		ghostsIn:       map[string]map[string]string{},
		joining:        map[string]*joinCall{},
		leftoversAsked: map[string]bool{},
	}
	if cfg.Mode == ModeComponent {
		b.botAddr = b.botJID().String()
	}
	return b, nil
}

func (b *Bridge) Network() bridge.Network { return bridge.NetworkXMPP }

func (b *Bridge) Capabilities() bridge.Capabilities {
	return bridge.Capabilities{
		Edits: true, Deletes: true, Reactions: true, Threads: true, Files: true,
		// Servers commonly refuse stanzas over about 256 KiB; leave room for
		// the envelope.
		MaxTextLength: 60000,
		MaxFileSize:   b.cfg.MaxFileSize,
	}
}

// Health adds to the connection state what an admin should know: how the
// stream is protected, and what the bridge refused from outside.
func (b *Bridge) Health() bridge.Health {
	h := b.health.Health()
	notes := b.cfg.detail()
	b.mu.Lock()
	ignored, taken, uploadRefusal := b.ignoredResults, b.ghostNamesTaken, b.uploadRefusal
	b.mu.Unlock()
	if uploadRefusal != "" {
		notes = append(notes, uploadRefusal)
	}
	if ignored > 0 {
		notes = append(notes, fmt.Sprintf("%d archive results ignored (not answers to the bridge's own queries)", ignored))
	}
	if taken > 0 {
		notes = append(notes, fmt.Sprintf("%d ghost account names were already registered by someone else; random names were used instead (see the log)", taken))
	}
	if n := b.registrationNote(); n != "" {
		notes = append(notes, n)
	}
	if n := b.addressNote(); n != "" {
		notes = append(notes, n)
	}
	h.Detail = strings.Join(notes, "; ")
	return h
}

// Start connects in the background and keeps reconnecting until Stop.
func (b *Bridge) Start(ctx context.Context, sink bridge.Sink) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		return errors.New("xmpp: already started")
	}
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.runCtx = ctx
	b.started = time.Now()
	b.sink = sink
	b.done = make(chan struct{})
	b.inbound = make(chan []byte, 256)
	if dir, err := os.MkdirTemp("", "xmpp-bridge-files-"); err == nil {
		b.fileDir = dir
	} else {
		b.log.Warn("Could not make a folder for fetched files; using the system's", "error", err.Error())
	}
	b.health.Set(bridge.StateConnecting, nil)
	b.positions.Store(bridge.StartPositions(ctx))
	go b.run(ctx)
	go b.handleInbound(ctx)
	go func() {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				b.closeIdleGhosts(ghostIdle)
			}
		}
	}()
	return nil
}

func (b *Bridge) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done, s := b.cancel, b.done, b.session
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	if s != nil {
		// In component mode the server keeps the bot and the ghosts in
		// their rooms after the stream ends; they leave first.
		b.leaveAllRooms(ctx, s)
	}
	cancel()
	if s != nil {
		_ = s.Conn().Close()
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.positions.Load().Close()
	b.closeAllGhosts()
	if b.fileDir != "" {
		// Deliveries still queued fetch their files again if they need them.
		_ = os.RemoveAll(b.fileDir)
	}
	b.health.Set(bridge.StateDisabled, nil)
	return nil
}

// backoff is exponential with full jitter, so many plugins restarting at
// once do not reconnect in lockstep.
func backoff(attempt int) time.Duration {
	const initial, maxWait = time.Second, 2 * time.Minute
	d := initial << min(attempt, 7)
	if d > maxWait {
		d = maxWait
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter, not security
}

func (b *Bridge) run(ctx context.Context) {
	defer close(b.done)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := b.connectOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.log.Warn("XMPP connection failed", "error", err.Error(), "attempt", attempt+1)
			b.health.Set(bridge.StateError, err)
		} else {
			attempt = 0 // a session that was up resets the backoff
			b.health.Set(bridge.StateDisconnected, nil)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff(attempt)):
		}
		b.health.Reconnecting()
	}
}

// connectOnce runs one session from dial to drop. A nil error means the
// session was up and then ended.
func (b *Bridge) connectOnce(ctx context.Context) error {
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := b.cfg.dialSession(dialCtx)
	cancel()
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(xmpp.HandlerFunc(b.handleStanza)) }()

	b.mu.Lock()
	b.session = s
	dropped := make(chan struct{})
	b.dropped = dropped
	b.health.Connected()
	for _, r := range b.rooms {
		r.reset()
	}
	b.resetOccupancyLocked()
	close(b.connected)
	b.mu.Unlock()
	b.log.Info("XMPP connected", "jid", s.LocalAddr().String())

	b.mu.Lock()
	known := make(chan struct{})
	b.uploadKnown = known
	b.mu.Unlock()
	go b.discoverUpload(ctx, s, known)
	go b.joinLinkedRooms(ctx, s)

	ticker := time.NewTicker(b.cfg.Keepalive)
	defer ticker.Stop()
	var end error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case end = <-served:
			break loop
		case <-ticker.C:
			pctx, pcancel := context.WithTimeout(ctx, pingTimeout(b.cfg.Keepalive))
			perr := b.keepalive(pctx, s)
			pcancel()
			if perr != nil {
				end = fmt.Errorf("keepalive ping failed: %w", perr)
				break loop
			}
		}
	}
	b.mu.Lock()
	b.session = nil
	b.connected = make(chan struct{})
	close(dropped)
	b.mu.Unlock()
	_ = s.Conn().Close()
	if end != nil && ctx.Err() == nil {
		b.log.Warn("XMPP session ended", "error", end.Error())
	}
	return nil
}

// currentSession waits (up to ctx) for a connected session.
func (b *Bridge) currentSession(ctx context.Context) (*xmpp.Session, error) {
	for {
		b.mu.Lock()
		s, connected := b.session, b.connected
		b.mu.Unlock()
		if s != nil {
			return s, nil
		}
		select {
		case <-connected:
		case <-ctx.Done():
			return nil, fmt.Errorf("not connected to the XMPP server: %w", ctx.Err())
		}
	}
}

// handleStanza reads each incoming message or presence whole and queues it:
// the session holds its stream locks while a handler runs, so anything that
// sends must happen elsewhere.
func (b *Bridge) handleStanza(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local == "iq" {
		return b.answerIQ(t, start)
	}
	if start.Name.Local != "message" && start.Name.Local != "presence" {
		return nil
	}
	if !b.screen(start) {
		return nil // the session skips the rest of the stanza
	}
	raw, err := readStanza(t, start)
	if err != nil {
		b.log.Debug("Dropping an unreadable stanza", "error", err.Error())
		return nil
	}
	// A full queue holds the read loop back rather than dropping: the
	// server then buffers, and nothing is skipped past.
	b.mu.Lock()
	ctx := b.runCtx
	b.mu.Unlock()
	select {
	case b.inbound <- raw:
	case <-ctx.Done():
	}
	return nil
}

// readStanza re-encodes a whole stanza from its start element and tokens.
func readStanza(t xml.TokenReader, start *xml.StartElement) ([]byte, error) {
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if err := e.EncodeToken(*start); err != nil {
		return nil, err
	}
	if _, err := xmlstream.Copy(e, xmlstream.Inner(t)); err != nil {
		return nil, err
	}
	if err := e.EncodeToken(start.End()); err != nil {
		return nil, err
	}
	if err := e.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pingTimeout is how long a keepalive ping may wait for its answer: half
// the interval, but not under ten seconds, which a busy server may take.
// A stream the server closes ends the session at once anyway; the ping is
// for connections that die silently.
func pingTimeout(interval time.Duration) time.Duration {
	return max(interval/2, 10*time.Second)
}

// keepalive pings over the stream. A component pings its own domain from
// its own address: component streams carry only stanzas with both a from
// and a to (Prosody and ejabberd close the stream otherwise), and the server
// routing it back to us proves the stream alive.
func (b *Bridge) keepalive(ctx context.Context, s *xmpp.Session) error {
	if b.cfg.Mode != ModeComponent {
		return ping.Send(ctx, s, s.LocalAddr().Domain())
	}
	iq := b.iqTo(s, stanza.GetIQ, b.cfg.ComponentDomain.Domain())
	return s.UnmarshalIQElement(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: ping.NS, Local: "ping"}}), iq, nil)
}

// answerIQ answers pings and refuses everything else, as a client should.
func (b *Bridge) answerIQ(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	iq, err := stanza.NewIQ(*start)
	if err != nil || (iq.Type != stanza.GetIQ && iq.Type != stanza.SetIQ) {
		return nil
	}
	tok, err := t.Token()
	if err != nil {
		return nil
	}
	if se, ok := tok.(xml.StartElement); ok && se.Name.Space == ping.NS && se.Name.Local == "ping" {
		_, err = xmlstream.Copy(t, iq.Result(nil))
		return err
	}
	_, err = xmlstream.Copy(t, iq.Error(stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}))
	return err
}

// linkedRooms lists the XMPP rooms linked to channels.
func (b *Bridge) linkedRooms() ([]jid.JID, error) {
	links, err := b.store.ListLinks()
	if err != nil {
		return nil, err
	}
	var out []jid.JID
	for _, l := range links {
		for _, r := range l.Remotes {
			if r.Network != bridge.NetworkXMPP {
				continue
			}
			j, perr := jid.Parse(r.Room)
			if perr != nil {
				b.log.Warn("Skipping a linked room with an invalid JID", "room", r.Room)
				continue
			}
			out = append(out, j.Bare())
		}
	}
	return out, nil
}

func (b *Bridge) joinLinkedRooms(ctx context.Context, s *xmpp.Session) {
	rooms, err := b.linkedRooms()
	if err != nil {
		b.log.Error("Could not list linked XMPP rooms", "error", err.Error())
		return
	}
	for _, r := range rooms {
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := b.join(jctx, s, r); err != nil {
			b.log.Warn("Could not join an XMPP room", "room", r.String(), "error", err.Error())
			b.health.Set(bridge.StateConnected, err)
		}
		cancel()
	}
}
