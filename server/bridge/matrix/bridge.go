// Package matrix bridges Matrix rooms as an application service: the
// homeserver pushes room events to the plugin's HTTP endpoint, and the
// plugin acts in rooms as its bot and as one puppet per person it relays.
package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Store is the part of the KV store the Matrix bridge uses.
type Store interface {
	ListLinks() ([]store.Link, error)
	ChannelForRoom(network bridge.Network, room string) (string, error)
	GetRemoteUser(network bridge.Network, remoteID string) (*store.RemoteUser, error)
	Seen(namespace, id string) (bool, error)
	MarkSeen(namespace, id string, ttl time.Duration) (bool, error)
	SetAlias(namespace, key, value string) error
	Alias(namespace, key string) (string, bool, error)
	SavePending(namespace, id string, value json.RawMessage) error
	DeletePending(namespace, id string) error
	ListPending(namespace string) ([]store.Pending, error)
}

// Alias namespaces; values expire with the message maps.
const (
	nsTxn       = "matrix-txn"      // transactions already handled (see transactionMark)
	nsReaction  = "matrix-reaction" // reaction event -> target|key (inbound)
	nsOwnReact  = "matrix-myreact"  // room|target|puppet|key -> reaction event (outbound)
	nsExtraPart = "matrix-parts"    // first event of a delivery -> the file events after it
	nsPuppet    = "matrix-puppet"   // puppet user ID -> Mattermost username
	nsRedaction = "matrix-redacted" // redaction events already handed on
	nsSync      = "matrix-sync"     // bot user ID -> its /sync position
	nsProfile   = "matrix-profile"  // puppet user ID -> name and picture last set
	txnMemory   = 30 * 24 * time.Hour
)

// Bridge implements bridge.Bridge for Matrix.
type Bridge struct {
	cfg   Config
	store Store
	log   bridge.Logger
	as    *appservice.AppService
	bot   id.UserID

	mu       sync.Mutex
	sink     bridge.Sink
	health   bridge.HealthKeeper
	cancel   context.CancelFunc
	done     chan struct{}
	profiles map[string]profile // room|user -> what their member event says
	synced   map[id.UserID]puppetProfile
	// unsure holds the transaction IDs of sends that failed: the event
	// may exist all the same. started is when this bridge was made.
	unsure  map[string]bool
	started time.Time
	// live holds the pending records whose events this bridge follows;
	// redacting the redactions on their way (see handRedaction).
	live      map[string]bool
	redacting map[id.EventID]bool
	// pushed is closed once the homeserver is known to push redactions
	// (see followRedactions).
	pushed     chan struct{}
	pushedOnce sync.Once
	probeRoom  id.RoomID // the bot's self-check room, once known; under mu

	// txnMu makes transactions run one at a time, so events are handed on
	// in the order the homeserver sent them. It guards the catch-up state:
	// caughtUp once the records of earlier runs were handed on again,
	// backlog those still to do.
	txnMu    sync.Mutex
	caughtUp bool
	backlog  []*replaying
}

// profile is a Matrix person's name and picture in a room.
type profile struct {
	Name   string
	Avatar id.ContentURIString
}

// puppetProfile is what the bridge last gave a puppet: a name, and the
// picture by the hash its sender's network gave it.
type puppetProfile struct {
	Name       string
	AvatarHash string
}

var (
	_ bridge.Bridge        = (*Bridge)(nil)
	_ bridge.RoomChecker   = (*Bridge)(nil)
	_ bridge.RoomWatcher   = (*Bridge)(nil)
	_ bridge.RoomCreator   = (*Bridge)(nil)
	_ bridge.MemberWatcher = (*Bridge)(nil)
	_ http.Handler         = (*Bridge)(nil)
)

// New returns a Matrix bridge; Start checks the homeserver.
func New(cfg Config, st Store, log bridge.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = bridge.NopLogger{}
	}
	as, err := appservice.CreateFull(appservice.CreateOpts{
		Registration:     Registration(cfg, ""),
		HomeserverDomain: cfg.ServerName,
		HomeserverURL:    strings.TrimRight(cfg.HomeserverURL, "/"),
	})
	if err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	// Failures go back to the bus, which retries in order with its own
	// backoff and honours rate-limit advice; retrying inside the client too
	// would hold the queue for minutes.
	as.DefaultHTTPRetries = 0
	as.HTTPClient.Timeout = time.Minute
	// mautrix makes the bot's client and intent on first use without a
	// lock: make them now, before any goroutine can race to.
	as.BotIntent()
	return &Bridge{
		cfg: cfg, store: st, log: log, as: as, bot: as.BotMXID(),
		profiles: map[string]profile{},
		synced:   map[id.UserID]puppetProfile{},
		unsure:   map[string]bool{},
		started:  time.Now(),
		live:     map[string]bool{}, redacting: map[id.EventID]bool{},
		pushed: make(chan struct{}),
	}, nil
}

func (b *Bridge) Network() bridge.Network { return bridge.NetworkMatrix }

func (b *Bridge) Capabilities() bridge.Capabilities {
	return bridge.Capabilities{
		Edits: true, Deletes: true, Reactions: true, Threads: true, Files: true,
		// Events are limited to 64 KiB as a whole; the HTML copy doubles the text.
		MaxTextLength: 24000,
		MaxFileSize:   b.cfg.MaxFileSize,
	}
}

func (b *Bridge) Health() bridge.Health { return b.health.Health() }

// Start checks the homeserver in the background until it answers, then
// makes sure the bot is in every linked room.
func (b *Bridge) Start(_ context.Context, sink bridge.Sink) error {
	// Every start catches up on the records left so far.
	b.txnMu.Lock()
	b.caughtUp, b.backlog = false, nil
	b.txnMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		return errors.New("matrix: already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.sink, b.cancel, b.done = sink, cancel, make(chan struct{})
	b.health.Set(bridge.StateConnecting, nil)
	go b.run(ctx)
	return nil
}

// currentSink is where events go; nil while the bridge is stopped.
func (b *Bridge) currentSink() bridge.Sink {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sink
}

// Stop ends the background work; transactions arriving afterwards are
// refused so the homeserver keeps them for the next start.
func (b *Bridge) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.sink = nil
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
	// Wait for a transaction in flight.
	b.txnMu.Lock()
	defer b.txnMu.Unlock()
	b.health.Set(bridge.StateDisconnected, nil)
	return nil
}

func (b *Bridge) run(ctx context.Context) {
	defer close(b.done)
	delay := time.Second
	for {
		err := b.connect(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		b.health.Set(bridge.StateError, err)
		b.log.Warn("Matrix homeserver check failed", "error", err.Error(), "retry_in", delay.String())
		if !sleep(ctx, delay/2+rand.N(delay/2+1)) {
			return
		}
		b.health.Reconnecting()
		delay = min(delay*2, 2*time.Minute)
	}
	b.health.Connected()
	go b.catchUp(ctx)
	go b.followRedactions(ctx)
	// Keep health honest: a homeserver that goes away shows up in status.
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := b.as.BotIntent().Whoami(cctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				b.health.Set(bridge.StateError, describe(err))
			} else if err == nil {
				b.health.Connected()
			}
		}
	}
}

// connect checks that the homeserver knows the application service and
// puts the bot back in every linked room.
func (b *Bridge) connect(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	who, err := b.as.BotIntent().Whoami(cctx)
	if err != nil {
		return describe(err)
	}
	if who.UserID != b.bot {
		return fmt.Errorf("the homeserver says the as_token belongs to %s, not %s: check MatrixBotLocalpart and MatrixServerName", who.UserID, b.bot)
	}
	b.health.SetDetail(b.pingDetail(cctx))
	links, err := b.store.ListLinks()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		for _, r := range l.Remotes {
			if r.Network != bridge.NetworkMatrix {
				continue
			}
			if _, jerr := b.as.BotIntent().JoinRoom(cctx, r.Room, nil); jerr != nil {
				b.log.Warn("Matrix bot could not rejoin a linked room", "room", r.Room, "error", describe(jerr).Error())
			}
		}
	}
	return nil
}

// pingDetail asks the homeserver to call the plugin back (Matrix 1.7
// appservice ping), so a registration URL it cannot reach shows in status
// instead of as silence.
func (b *Bridge) pingDetail(ctx context.Context) string {
	_, err := b.as.BotClient().AppservicePing(ctx, RegistrationID, "mmb-ping-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	switch {
	case err == nil:
		return "the homeserver reaches the plugin"
	case errors.Is(err, mautrix.MUnrecognized), isStatus(err, http.StatusNotFound, http.StatusMethodNotAllowed):
		return "" // Homeservers before Matrix 1.7 cannot tell.
	}
	return "the homeserver cannot reach the plugin at the registration file's url (check the Site URL and reinstall the registration): " + err.Error()
}

// describe turns client errors into something an admin can act on.
func describe(err error) error {
	switch {
	case errors.Is(err, mautrix.MUnknownToken):
		return fmt.Errorf("the homeserver does not accept the as_token (is the registration file installed and the homeserver restarted?): %w", err)
	case errors.Is(err, mautrix.MExclusive):
		return fmt.Errorf("the homeserver says the user is reserved by another application service: %w", err)
	}
	return err
}

// CheckRoom resolves an alias and makes the bot join, so a room that cannot
// be bridged is refused at map time.
func (b *Bridge) CheckRoom(ctx context.Context, room string) (string, error) {
	roomID := id.RoomID(room)
	if strings.HasPrefix(room, "#") {
		res, err := b.as.BotIntent().ResolveAlias(ctx, id.RoomAlias(room))
		if err != nil {
			if errors.Is(err, mautrix.MNotFound) {
				return "", fmt.Errorf("no Matrix room has the alias %s", room)
			}
			return "", fmt.Errorf("could not resolve %s: %w", room, describe(err))
		}
		roomID = res.RoomID
	}
	if _, err := b.as.BotIntent().JoinRoom(ctx, room, nil); err != nil {
		if errors.Is(err, mautrix.MForbidden) {
			return "", fmt.Errorf("the bridge bot %s may not join %s: invite it to the room first", b.bot, room)
		}
		if errors.Is(err, mautrix.MNotFound) {
			return "", fmt.Errorf("the homeserver does not know the room %s", room)
		}
		return "", fmt.Errorf("the bridge bot could not join %s: %w", room, describe(err))
	}
	return string(roomID), nil
}

// RoomLinked makes sure the bot is in the room.
func (b *Bridge) RoomLinked(ctx context.Context, room string) error {
	_, err := b.as.BotIntent().JoinRoom(ctx, room, nil)
	return describe(err)
}

// RoomUnlinked leaves the room: the bot has no business there any more.
// Puppets stay, so their past messages keep their names.
func (b *Bridge) RoomUnlinked(ctx context.Context, room string) error {
	_, err := b.as.BotIntent().LeaveRoom(ctx, id.RoomID(room))
	if errors.Is(err, mautrix.MNotFound) || errors.Is(err, mautrix.MForbidden) {
		return nil
	}
	return err
}

// CreateRoom makes a new room for a channel, with the bot as its admin.
// An invite-only room (private_chat: join rule invite, history shared with
// members) is for a channel that is not public; the bot invites the
// members' puppets as they join. Neither kind is published in the room
// directory or open to guests.
func (b *Bridge) CreateRoom(ctx context.Context, name, topic string, inviteOnly bool) (string, error) {
	preset := "public_chat"
	if inviteOnly {
		preset = "private_chat"
	}
	res, err := b.as.BotIntent().CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Name:       name,
		Topic:      topic,
		Preset:     preset,
		Visibility: "private",
		InitialState: []*event.Event{{
			Type:    event.StateGuestAccess,
			Content: event.Content{Parsed: &event.GuestAccessEventContent{GuestAccess: event.GuestAccessForbidden}},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("create a Matrix room: %w", describe(err))
	}
	return string(res.RoomID), nil
}

// MemberJoined puts the person's puppet in the room.
func (b *Bridge) MemberJoined(ctx context.Context, room string, member bridge.Sender) error {
	_, err := b.puppet(ctx, id.RoomID(room), member)
	return err
}

// MemberLeft takes the person's puppet out of the room.
func (b *Bridge) MemberLeft(ctx context.Context, room string, member bridge.Sender) error {
	intent := b.as.Intent(b.puppetID(member))
	if intent == nil {
		return bridge.Permanentf("no Matrix user for %q", member.Username)
	}
	_, err := intent.LeaveRoom(ctx, id.RoomID(room))
	if err != nil && !errors.Is(err, mautrix.MForbidden) && !errors.Is(err, mautrix.MNotFound) {
		return err
	}
	_ = b.as.StateStore.SetMembership(ctx, id.RoomID(room), intent.UserID, event.MembershipLeave)
	return nil
}

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
