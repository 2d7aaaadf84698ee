package xmpp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// In client mode each Mattermost user speaks through an XMPP account of
// their own, registered with XEP-0077 in-band registration and logged in on
// demand; the connection is kept while it is used and closed when idle.

const (
	nsRegister = "jabber:iq:register"
	// ghostIdle is how long an unused ghost connection stays open.
	ghostIdle = 10 * time.Minute
	// registrationRetry is how long the bridge waits before trying
	// registration again after the server refused it: ejabberd's default
	// registration_timeout (one account per address per 600 s) is over by
	// then. Meanwhile people without an account speak through the bridge
	// account; those with one keep it.
	registrationRetry = 10 * time.Minute
)

// ErrRegistrationRefused means the server did not let the bridge create an
// account (XEP-0077), for whatever reason: registration off (not-allowed),
// too many registrations from one address (resource-constraint, ejabberd's
// registration_timeout), a policy (policy-violation), every name taken
// (conflict). Messages then go out from the bridge account with the
// sender's name in front, never waiting for an account.
var ErrRegistrationRefused = errors.New("the XMPP server refused in-band registration (XEP-0077)")

// errGhostLogin means a ghost's account exists but cannot log in; the
// message goes out from the bridge account instead.
var errGhostLogin = errors.New("a ghost account cannot log in")

// GhostStore keeps ghost accounts.
type GhostStore interface {
	GetGhost(network bridge.Network, userID string) (*store.Ghost, error)
	SaveGhost(g store.Ghost) error
}

// Sealer encrypts ghost passwords for the store.
type Sealer interface {
	Seal([]byte) ([]byte, error)
	Open([]byte) ([]byte, error)
}

type clientGhost struct {
	mu      sync.Mutex // held while logging in
	session *xmpp.Session
	jid     jid.JID
	rooms   map[string]string // room -> nick
	dropped chan struct{}
	// busy counts deliveries using the ghost and lastUsed is when the last
	// one ended; both are guarded by the pool's mutex, so a ghost is never
	// closed (and dropped from the pool) under a delivery.
	busy     int
	lastUsed time.Time
}

type ghostPool struct {
	mu     sync.Mutex
	ghosts map[string]*clientGhost // Mattermost user ID -> ghost
	// refusedAt is when the server last refused a registration, refusal
	// why, refusals how often; fallbacks counts the messages that went out
	// from the bridge account because their sender had no ghost.
	refusedAt time.Time
	refusal   string
	refusals  int
	fallbacks int
}

func (b *Bridge) ghostsEnabled() bool {
	return b.cfg.Mode == ModeClient && b.cfg.Secrets != nil && b.cfg.Ghosts != nil
}

// clientGhostFor returns the logged-in ghost of a Mattermost user, creating
// the account the first time. The ghost stays open until release is called.
func (b *Bridge) clientGhostFor(ctx context.Context, sender bridge.Sender) (g *clientGhost, release func(), err error) {
	p := &b.ghostPool
	p.mu.Lock()
	g, ok := p.ghosts[sender.ID]
	if !ok {
		g = &clientGhost{rooms: map[string]string{}}
		p.ghosts[sender.ID] = g
	}
	// Marked in use in the same critical section that found it: from here
	// on closeIdleGhosts leaves it alone.
	g.busy++
	p.mu.Unlock()
	release = func() {
		p.mu.Lock()
		g.busy--
		g.lastUsed = time.Now()
		p.mu.Unlock()
	}
	if b.testHookGhostLookedUp != nil {
		b.testHookGhostLookedUp()
	}
	if err = b.logInGhost(ctx, g, sender); err != nil {
		release()
		return nil, nil, err
	}
	return g, release, nil
}

// logInGhost connects g unless it is connected already.
func (b *Bridge) logInGhost(ctx context.Context, g *clientGhost, sender bridge.Sender) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.session != nil {
		select {
		case <-g.dropped:
			g.session, g.rooms = nil, map[string]string{}
		default:
			return nil
		}
	}
	account, password, stored, err := b.ghostCredentials(ctx, sender, false)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := b.cfg.dialClient(dctx, account, password)
	cancel()
	if stored && errors.Is(err, ErrAuth) {
		// The server no longer takes the stored password: the account was
		// deleted, or lost (ejabberd loses registrations made just before
		// it is killed). Register again; a name still taken gets a random
		// one.
		b.log.Warn("A ghost account no longer accepts its password; registering it again", "user_id", sender.ID, "jid", account.String())
		if account, password, _, err = b.ghostCredentials(ctx, sender, true); err != nil {
			return err
		}
		dctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		s, err = b.cfg.dialClient(dctx, account, password)
		cancel()
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s: %w", errGhostLogin, account, err)
	}
	g.session, g.jid, g.dropped = s, s.LocalAddr(), make(chan struct{})
	b.forgetGhostJoins(sender.ID) // a new connection is in no room yet
	dropped := g.dropped
	go func() {
		_ = s.Serve(xmpp.HandlerFunc(b.handleGhostStanza))
		b.ghostSessionEnded(sender.ID, g)
		close(dropped)
	}()
	return nil
}

// ghostSessionEnded forgets the rooms of a ghost whose connection ended
// while it was still the user's ghost, so its nicks are free for others. A
// ghost closed for idleness was forgotten when it was closed; a newer
// ghost of the same user must keep its rooms.
func (b *Bridge) ghostSessionEnded(userID string, g *clientGhost) {
	p := &b.ghostPool
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ghosts[userID] == g {
		b.forgetGhostJoins(userID)
	}
}

// ghostCredentials reads a user's ghost account from the store (stored
// true), or registers a new one; with renew it registers a new one anyway.
func (b *Bridge) ghostCredentials(ctx context.Context, sender bridge.Sender, renew bool) (_ jid.JID, _ string, stored bool, _ error) {
	rec, err := b.cfg.Ghosts.GetGhost(bridge.NetworkXMPP, sender.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return jid.JID{}, "", false, err
	}
	if rec != nil && !renew {
		account, perr := jid.Parse(rec.RemoteID)
		password, oerr := b.cfg.Secrets.Open(rec.Secret)
		if perr == nil && oerr == nil {
			return account, string(password), true, nil
		}
		b.log.Warn("A ghost's stored password cannot be read; registering a new account", "user_id", sender.ID)
	}
	account, password, err := b.registerGhost(ctx, sender)
	return account, password, false, err
}

// registerGhost registers a new ghost account for sender and stores it.
func (b *Bridge) registerGhost(ctx context.Context, sender bridge.Sender) (jid.JID, string, error) {
	if err := b.registrationPaused(); err != nil {
		return jid.JID{}, "", err
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return jid.JID{}, "", err
	}
	var err error
	password := base64.RawURLEncoding.EncodeToString(buf)
	// The keyed name first; if someone holds it anyway, random ones, which
	// nobody can know in advance either. The record keeps whichever it is.
	local := ghostLocalpart(b.cfg.GhostNameKey, sender)
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			local = ghostFallbackLocalpart(sender)
		}
		account, jerr := jid.New(local, b.cfg.JID.Domainpart(), "")
		if jerr != nil {
			return jid.JID{}, "", bridge.Permanentf("no valid ghost JID for %q: %v", sender.Username, jerr)
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = b.cfg.register(rctx, account, password)
		cancel()
		if errors.Is(err, errAccountExists) {
			b.mu.Lock()
			b.ghostNamesTaken++
			b.mu.Unlock()
			b.log.Warn("A ghost account name was already registered on the XMPP server; using a random one", "user_id", sender.ID, "jid", account.String())
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return jid.JID{}, "", ctx.Err()
			}
			return jid.JID{}, "", b.registrationRefused(err)
		}
		sealed, serr := b.cfg.Secrets.Seal([]byte(password))
		if serr != nil {
			return jid.JID{}, "", serr
		}
		if werr := b.cfg.Ghosts.SaveGhost(store.Ghost{Network: bridge.NetworkXMPP, UserID: sender.ID, RemoteID: account.String(), Secret: sealed}); werr != nil {
			return jid.JID{}, "", werr
		}
		b.log.Info("Registered an XMPP account for a Mattermost user", "user_id", sender.ID, "jid", account.String())
		return account, password, nil
	}
	return jid.JID{}, "", b.registrationRefused(fmt.Errorf("%w: every account name tried for %q was taken (conflict)", ErrRegistrationRefused, sender.Username))
}

// registrationPaused is ErrRegistrationRefused while the last refusal is
// recent (registrationRetry): no registration is tried meanwhile.
func (b *Bridge) registrationPaused() error {
	p := &b.ghostPool
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refusal != "" && time.Since(p.refusedAt) < registrationRetry {
		return fmt.Errorf("%w (%s); trying again after %s", ErrRegistrationRefused, p.refusal, p.refusedAt.Add(registrationRetry).UTC().Format("15:04:05 UTC"))
	}
	return nil
}

// registrationRefused records a failed registration, whatever the server
// or the network said, and returns it as ErrRegistrationRefused: the
// message goes out from the bridge account now, and registration waits
// registrationRetry.
func (b *Bridge) registrationRefused(err error) error {
	why := err.Error()
	var se stanza.Error
	if errors.As(err, &se) {
		why = string(se.Condition)
		text := se.Text[""]
		for _, t := range se.Text {
			if text == "" {
				text = t
			}
		}
		if text != "" {
			why += ": " + text
		}
	}
	p := &b.ghostPool
	p.mu.Lock()
	p.refusedAt, p.refusal = time.Now(), why
	p.refusals++
	p.mu.Unlock()
	b.log.Warn("The XMPP server refused to register a ghost account; messages of people without one go out from the bridge account", "reason", why, "retry_in", registrationRetry.String())
	if errors.Is(err, ErrRegistrationRefused) {
		return err
	}
	return fmt.Errorf("%w (%s): %w", ErrRegistrationRefused, why, err)
}

// registrationNote is the status line about ghost registration, "" when
// the server never refused one.
func (b *Bridge) registrationNote() string {
	p := &b.ghostPool
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refusals == 0 {
		return ""
	}
	note := fmt.Sprintf("the XMPP server refused to register an account (%s), %d time(s), last at %s; people without an account speak through the bridge account (%d message(s) so far)",
		p.refusal, p.refusals, p.refusedAt.UTC().Format("15:04:05 UTC"), p.fallbacks)
	if next := p.refusedAt.Add(registrationRetry); time.Now().Before(next) {
		note += "; the next registration is tried after " + next.UTC().Format("15:04:05 UTC")
	}
	if strings.HasPrefix(p.refusal, string(stanza.ResourceConstraint)) {
		note += " (a limit of registrations per address, such as ejabberd's registration_timeout)"
	}
	return note
}

var notLocalpart = regexp.MustCompile(`[^a-z0-9._-]+`)

// ghostNamePart is the readable part of a ghost account's name: the
// Mattermost username, reduced to what every server accepts.
func ghostNamePart(s bridge.Sender) string {
	name := strings.Trim(notLocalpart.ReplaceAllString(strings.ToLower(s.Username), "-"), "-.")
	if len(name) > 32 {
		name = strings.TrimRight(name[:32], "-.")
	}
	if name == "" {
		name = "user"
	}
	return name
}

var tagEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ghostLocalpart names a ghost account "mm-<username>-<tag>", the tag an
// HMAC of the Mattermost user ID under the installation's key: the prefix
// keeps ghosts apart from people's accounts, and the tag makes the name
// impossible to derive (and so to register first) without the key. It is
// stable, so a lost ghost record finds the same name again.
func ghostLocalpart(key []byte, s bridge.Sender) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("xmpp-ghost-localpart|" + s.ID))
	return "mm-" + ghostNamePart(s) + "-" + strings.ToLower(tagEncoding.EncodeToString(mac.Sum(nil)[:10]))
}

// ghostFallbackLocalpart is a random name, for when the keyed one is taken.
func ghostFallbackLocalpart(s bridge.Sender) string {
	var tag [10]byte
	_, _ = rand.Read(tag[:]) // crypto/rand.Read does not fail (Go 1.24+)
	return "mm-" + ghostNamePart(s) + "-" + strings.ToLower(tagEncoding.EncodeToString(tag[:]))
}

var errAccountExists = errors.New("account already exists")

// registerFeature stands for the server's in-band registration stream
// feature. Negotiating it does nothing: it only lets the stream become ready
// unauthenticated, so the registration IQ can be sent.
var registerFeature = xmpp.StreamFeature{
	Name:       xml.Name{Space: "http://jabber.org/features/iq-register", Local: "register"},
	Necessary:  xmpp.Secure,
	Prohibited: xmpp.Authn,
	Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
		return false, nil, d.Skip()
	},
	Negotiate: func(context.Context, *xmpp.Session, any) (xmpp.SessionState, io.ReadWriter, error) {
		return xmpp.Ready, nil, nil
	},
}

// registrationStream opens a stream to account's server that stops after
// TLS at the in-band registration feature, unauthenticated: servers take
// the registration IQ there. It fails with ErrRegistrationRefused when the
// server does not offer registration.
func (c Config) registrationStream(ctx context.Context, account jid.JID) (*xmpp.Session, error) {
	conn, err := c.dialTCP(ctx, account)
	if err != nil {
		return nil, err
	}
	var features []xmpp.StreamFeature
	var state xmpp.SessionState
	if c.TLSMode == TLSStartTLS {
		tc, terr := c.tlsConfig(account.Domainpart())
		if terr != nil {
			conn.Close()
			return nil, terr
		}
		features = append(features, xmpp.StartTLS(tc))
	} else {
		state = xmpp.Secure
	}
	features = append(features, registerFeature)
	s, err := xmpp.NewSession(ctx, account.Domain(), account, conn, state, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	}))
	if err != nil {
		conn.Close()
		if strings.Contains(err.Error(), "out of order") {
			// What the server offers after TLS has no registration in it.
			return nil, fmt.Errorf("%w: the server does not offer it", ErrRegistrationRefused)
		}
		return nil, explainNegotiation(account.Domainpart(), err)
	}
	return s, nil
}

// register creates account with XEP-0077 on a stream that is secured but
// not authenticated.
func (c Config) register(ctx context.Context, account jid.JID, password string) error {
	s, err := c.registrationStream(ctx, account)
	if err != nil {
		return err
	}
	defer s.Close()
	go func() { _ = s.Serve(nil) }()
	field := func(name, value string) xml.TokenReader {
		return xmlstream.Wrap(xmlstream.Token(xml.CharData(value)), xml.StartElement{Name: xml.Name{Local: name}})
	}
	query := xmlstream.Wrap(xmlstream.MultiReader(field("username", account.Localpart()), field("password", password)),
		xml.StartElement{Name: xml.Name{Space: nsRegister, Local: "query"}})
	err = s.UnmarshalIQElement(ctx, query, stanza.IQ{Type: stanza.SetIQ, To: account.Domain()}, nil)
	var se stanza.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se) && se.Condition == stanza.Conflict:
		return errAccountExists
	case errors.As(err, &se):
		// not-allowed, resource-constraint, policy-violation and the rest:
		// refused, for now or for good.
		return fmt.Errorf("%w: %w", ErrRegistrationRefused, se)
	}
	return fmt.Errorf("registering %s: %w", account, err)
}

// handleGhostStanza serves a ghost's connection. Ghosts see every room
// message too; only the answers to their own joins and sends matter, the
// bridge account relays the rest.
func (b *Bridge) handleGhostStanza(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	switch start.Name.Local {
	case "iq":
		return b.answerIQ(t, start)
	case "presence":
		return b.handleStanza(t, start)
	case "message":
		raw, err := readStanza(t, start)
		if err != nil {
			return nil
		}
		b.handleGhostMessage(raw)
	}
	return nil
}

// handleGhostMessage takes from a ghost's stream the room's answers to
// what the ghost sent.
func (b *Bridge) handleGhostMessage(raw []byte) {
	m, err := parseMessage(raw)
	if err != nil {
		return
	}
	if m.Type == "error" {
		b.failReflection(m)
	} else if m.Type == "groupchat" && b.inRoom(m.From) {
		b.resolveReflection(m)
	}
}

// closeIdleGhosts ends ghost connections no delivery has used for idle,
// and forgets their rooms: the nicks they had are no longer the bridge's.
// Lock order: the pool, then a ghost (free when not busy), then the bridge.
func (b *Bridge) closeIdleGhosts(idle time.Duration) {
	p := &b.ghostPool
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, g := range p.ghosts {
		if g.busy > 0 || time.Since(g.lastUsed) < idle {
			continue
		}
		g.mu.Lock()
		if g.session != nil {
			_ = g.session.Close()
			_ = g.session.Conn().Close()
			g.session = nil
		}
		g.mu.Unlock()
		delete(p.ghosts, id)
		b.forgetGhostJoins(id)
	}
}

// closeAllGhosts ends every ghost connection (on stop).
func (b *Bridge) closeAllGhosts() {
	p := &b.ghostPool
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, g := range p.ghosts {
		g.mu.Lock()
		if g.session != nil {
			_ = g.session.Close()
			_ = g.session.Conn().Close()
		}
		g.mu.Unlock()
		delete(p.ghosts, id)
	}
}

// forgetGhostJoins marks a user's ghost as out of every room.
func (b *Bridge) forgetGhostJoins(userID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.rooms {
		if nick, ok := r.ghosts[userID]; ok {
			delete(r.ghosts, userID)
			delete(r.ourNicks, nick)
			delete(r.ghostUsers, nick)
		}
	}
}
