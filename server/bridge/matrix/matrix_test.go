package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// memStore is the part of the store the bridge uses, in memory.
type memStore struct {
	mu      sync.Mutex
	seen    map[string]bool
	aliases map[string]string
	rooms   map[string]string // room -> channel
	pending map[string]json.RawMessage
	fail    error
}

func newMemStore() *memStore {
	return &memStore{seen: map[string]bool{}, aliases: map[string]string{}, rooms: map[string]string{}, pending: map[string]json.RawMessage{}}
}

func (m *memStore) SavePending(ns, key string, value json.RawMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending[ns+"|"+key] = slices.Clone(value)
	return nil
}

func (m *memStore) DeletePending(ns, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pending, ns+"|"+key)
	return nil
}

func (m *memStore) ListPending(ns string) ([]store.Pending, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Pending
	for k, v := range m.pending {
		if key, ok := strings.CutPrefix(k, ns+"|"); ok {
			out = append(out, store.Pending{ID: key, Value: v})
		}
	}
	return out, nil
}

func (m *memStore) ListLinks() ([]store.Link, error) { return nil, nil }
func (m *memStore) ChannelForRoom(_ bridge.Network, room string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.rooms[room]; ok {
		return c, nil
	}
	return "", store.ErrNotFound
}
func (m *memStore) GetRemoteUser(bridge.Network, string) (*store.RemoteUser, error) {
	return nil, store.ErrNotFound
}
func (m *memStore) Seen(ns, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[ns+"|"+key], m.fail
}
func (m *memStore) MarkSeen(ns, key string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	first := !m.seen[ns+"|"+key]
	m.seen[ns+"|"+key] = true
	return first, nil
}
func (m *memStore) SetAlias(ns, k, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.aliases[ns+"|"+k] = v
	return nil
}
func (m *memStore) Alias(ns, k string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.aliases[ns+"|"+k]
	return v, ok, nil
}

func testConfig(hs string) Config {
	return Config{
		HomeserverURL: hs, ServerName: "example.org",
		ASToken: "as-token-0123456789", HSToken: "hs-token-0123456789",
		UserPrefix: "mm_", BotLocalpart: "mattermostbridge",
	}
}

type recordingSink struct {
	mu     sync.Mutex
	events []bridge.Event
	err    error
}

func (s *recordingSink) Receive(_ context.Context, ev bridge.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.events = append(s.events, ev)
	return nil
}

// newTestBridge returns a started bridge whose homeserver is hs.
func newTestBridge(t *testing.T, hs http.Handler) (*Bridge, *memStore, *recordingSink) {
	t.Helper()
	srv := httptest.NewServer(hs)
	t.Cleanup(srv.Close)
	st := newMemStore()
	b, err := New(testConfig(srv.URL), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	if err := b.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return b, st, sink
}

// aliceSays is a message from Mattermost user alice to !room.
func aliceSays(text string, at time.Time) *bridge.Delivery {
	return &bridge.Delivery{
		Event: bridge.Event{Kind: bridge.KindMessage, Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: "c", ID: "p1"},
			Sender: bridge.Sender{Network: bridge.NetworkMattermost, ID: "u1", Username: "alice"}, Text: text, Time: at},
		Room: "!room:example.org",
	}
}

func put(b *Bridge, path, token, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPut, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r)
	return w
}

const textEvent = `{"events":[{"type":"m.room.message","room_id":"!room:example.org","event_id":"$e1","sender":"@carol:example.org","origin_server_ts":1700000000000,"content":{"msgtype":"m.text","body":"hi"}}]}`

func TestConfigValidateNamesEveryBadSettingWithoutValues(t *testing.T) {
	c := Config{HomeserverURL: "ftp://secret-host", ASToken: "short-secret", HSToken: "short-secret", UserPrefix: "MM", BotLocalpart: "mm_bot"}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"MatrixHomeserverURL", "MatrixServerName", "MatrixASToken", "MatrixHSToken", "MatrixUserPrefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), "secret-host") {
		t.Fatalf("error echoes a value: %v", err)
	}
	if err := testConfig("https://matrix.example.org").Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRegistrationYAMLAnchorsNamespaces(t *testing.T) {
	y, err := RegistrationYAML(testConfig("https://hs"), "https://mm.example.org/plugins/com.mattermost.bridge")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"url: https://mm.example.org/plugins/com.mattermost.bridge", "as_token: as-token-0123456789",
		"hs_token: hs-token-0123456789", "sender_localpart: mattermostbridge", `regex: ^@mm_.*:example\.org$`,
		`regex: ^@mattermostbridge:example\.org$`, "exclusive: true", "rate_limited: false",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("registration lacks %q:\n%s", want, y)
		}
	}
}

func TestHSTokenIsRequired(t *testing.T) {
	b, _, sink := newTestBridge(t, http.NotFoundHandler())
	b.store.(*memStore).rooms["!room:example.org"] = "channel"
	for name, token := range map[string]string{"missing": "", "wrong": "hs-token-wrong"} {
		w := put(b, "/_matrix/app/v1/transactions/t1", token, textEvent)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "M_FORBIDDEN") {
			t.Errorf("%s token: %d %s", name, w.Code, w.Body)
		}
	}
	// Mattermost strips the older query-parameter form; it is not a way in.
	r := httptest.NewRequest(http.MethodGet, "/_matrix/app/v1/users/@x:example.org?access_token="+b.cfg.HSToken, http.NoBody)
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("access_token query parameter: %d", w.Code)
	}
	if len(sink.events) != 0 {
		t.Fatalf("unauthenticated transactions were handled: %+v", sink.events)
	}
	if seen, _ := b.store.Seen(nsTxn, "t1"); seen {
		t.Fatal("an unauthenticated transaction was recorded")
	}
}

func TestTransactionsAreIdempotentAndRetriedOnFailure(t *testing.T) {
	b, st, sink := newTestBridge(t, http.NotFoundHandler())
	st.rooms["!room:example.org"] = "channel"
	b.profiles["!room:example.org|@carol:example.org"] = profile{Name: "Carol"}

	// A failing core makes the homeserver send the transaction again.
	sink.err = bridge.ErrQueueFull
	if w := put(b, "/_matrix/app/v1/transactions/t1", b.cfg.HSToken, textEvent); w.Code != http.StatusInternalServerError {
		t.Fatalf("failed handling answered %d", w.Code)
	}
	sink.err = nil
	for range 2 {
		if w := put(b, "/_matrix/app/v1/transactions/t1", b.cfg.HSToken, textEvent); w.Code != http.StatusOK {
			t.Fatalf("transaction answered %d %s", w.Code, w.Body)
		}
	}
	if len(sink.events) != 1 {
		t.Fatalf("%d events from one transaction sent twice", len(sink.events))
	}
	ev := sink.events[0]
	if ev.Kind != bridge.KindMessage || ev.Text != "hi" || ev.Origin.ID != "$e1" || ev.Sender.DisplayName != "Carol" || ev.Sender.ID != "@carol:example.org" {
		t.Fatalf("event = %+v", ev)
	}
}

func TestMalformedInputIsRejectedCleanly(t *testing.T) {
	b, st, sink := newTestBridge(t, http.NotFoundHandler())
	st.rooms["!room:example.org"] = "channel"
	if w := put(b, "/_matrix/app/v1/transactions/t1", b.cfg.HSToken, `{"events":[`); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "M_NOT_JSON") {
		t.Fatalf("broken JSON: %d %s", w.Code, w.Body)
	}
	// Events the bridge cannot use are skipped; the transaction still
	// counts, so the homeserver does not resend it forever.
	bad := `{"events":[{"type":"m.room.message","room_id":"!room:example.org","sender":"@carol:example.org","content":{"body":"no id"}},` +
		`{"type":"m.reaction","room_id":"!room:example.org","event_id":"$r","sender":"@carol:example.org","content":{"m.relates_to":{"rel_type":"m.annotation"}}},` +
		`{"type":"m.room.message","room_id":"!room:example.org","event_id":"$f","sender":"@carol:example.org","content":{"msgtype":"m.image","body":"x.png","url":"not-mxc"}},` +
		`{"type":"m.room.redaction","room_id":"!room:example.org","event_id":"$d","sender":"@carol:example.org","content":{}}]}`
	b.profiles["!room:example.org|@carol:example.org"] = profile{Name: "Carol"}
	if w := put(b, "/_matrix/app/v1/transactions/t2", b.cfg.HSToken, bad); w.Code != http.StatusOK {
		t.Fatalf("bad events: %d %s", w.Code, w.Body)
	}
	if len(sink.events) != 0 {
		t.Fatalf("malformed events were handed on: %+v", sink.events)
	}
	for _, path := range []string{"/_matrix/app/v1/transactions/", "/_matrix/app/v1/nothing"} {
		if w := put(b, path, b.cfg.HSToken, `{}`); w.Code/100 != 4 {
			t.Errorf("%s answered %d", path, w.Code)
		}
	}
}

func TestEchoesOfPuppetsAndBotAreDropped(t *testing.T) {
	b, st, sink := newTestBridge(t, http.NotFoundHandler())
	st.rooms["!room:example.org"] = "channel"
	body := strings.NewReplacer("@carol:example.org", "@mm_alice:example.org").Replace(textEvent)
	put(b, "/_matrix/app/v1/transactions/a", b.cfg.HSToken, body)
	body = strings.NewReplacer("@carol:example.org", "@mattermostbridge:example.org", "$e1", "$e2").Replace(textEvent)
	put(b, "/_matrix/app/v1/transactions/b", b.cfg.HSToken, body)
	if len(sink.events) != 0 {
		t.Fatalf("the bridge's own events came back: %+v", sink.events)
	}
}

func TestRateLimitsWaitTheAdvisedDelay(t *testing.T) {
	err := classify(mautrix.HTTPError{RespError: &mautrix.RespError{
		ErrCode: "M_LIMIT_EXCEEDED", StatusCode: 429, ExtraData: map[string]any{"retry_after_ms": float64(1500)},
	}})
	if d, ok := bridge.RetryDelay(err); !ok || d != 1500*time.Millisecond {
		t.Fatalf("rate limit: delay %v, %v", d, ok)
	}
	if bridge.IsPermanent(err) {
		t.Fatal("a rate limit is permanent")
	}
	if err := classify(mautrix.HTTPError{RespError: &mautrix.RespError{ErrCode: "M_FORBIDDEN", StatusCode: 403}}); !bridge.IsPermanent(err) {
		t.Fatalf("M_FORBIDDEN: %v", err)
	}
	if err := classify(errors.New("connection refused")); bridge.IsPermanent(err) {
		t.Fatal("a network error is permanent")
	}
	// Dendrite says this while it starts or stops (its account lookup
	// fails): every puppet is in the registration's namespace, so it is
	// not the refusal it looks like, and a later attempt goes through.
	if err := classify(mautrix.HTTPError{RespError: &mautrix.RespError{ErrCode: "M_FORBIDDEN", Err: "appservice has not registered this user", StatusCode: 403}}); bridge.IsPermanent(err) {
		t.Fatalf("a puppet the homeserver momentarily does not know: %v", err)
	}
}

func TestPuppetIDs(t *testing.T) {
	b, err := New(testConfig("https://hs"), newMemStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mm := b.puppetID(bridge.Sender{Network: bridge.NetworkMattermost, ID: "u1", Username: "Alice.Smith"})
	if mm != id.UserID("@mm_alice.smith:example.org") || !b.ownsUser(mm) {
		t.Fatalf("Mattermost puppet %s", mm)
	}
	x1 := b.puppetID(bridge.Sender{Network: bridge.NetworkXMPP, ID: "jid:a@x", Username: "Bob Ross"})
	x2 := b.puppetID(bridge.Sender{Network: bridge.NetworkXMPP, ID: "jid:b@x", Username: "Bob Ross"})
	if x1 == x2 || !strings.HasPrefix(string(x1), "@mm_xmpp=bob_ross_") {
		t.Fatalf("XMPP puppets %s and %s", x1, x2)
	}
	if b.ownsUser("@carol:example.org") || b.ownsUser("@mm_alice:elsewhere.org") {
		t.Fatal("owns foreign users")
	}
}

// Puppets of Mattermost users and of other networks' people live in
// namespaces no Mattermost username can cross: a user named like another
// network's puppet gets a puppet of their own (issue 8, item 5).
func TestPuppetNamespacesAreDisjoint(t *testing.T) {
	b, err := New(testConfig("https://hs"), newMemStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := regexp.MustCompile(Registration(b.cfg, "").Namespaces.UserIDs[0].Regex)
	ghosts := []bridge.Sender{
		{Network: bridge.NetworkXMPP, ID: "jid:eve@xmpp.example", Username: "eve"},
		{Network: bridge.NetworkXMPP, ID: "occupant:x1", Username: "Bob Ross"},
		{Network: bridge.NetworkXMPP, ID: "jid:odd@xmpp.example", Username: "a=b/c+d:e"},
		{Network: bridge.Network("slack"), ID: "U0123", Username: "frank"},
		{Network: bridge.NetworkMatrix, ID: "@carol:elsewhere.org", Username: "carol"},
	}
	for _, g := range ghosts {
		ghost := b.puppetID(g)
		if !b.ownsUser(ghost) || !reg.MatchString(string(ghost)) {
			t.Errorf("%s is outside the registered namespace", ghost)
		}
		local, _, _ := ghost.Parse()
		rest := strings.TrimPrefix(local, b.cfg.UserPrefix)
		// What the scheme before issue 8 gave this person, and what
		// this one gives with its separator made a username character.
		sum := sha256.Sum256([]byte(g.ID))
		old := string(g.Network) + "_" + strings.Trim(regexp.MustCompile(`[^a-z0-9._=/+-]+`).ReplaceAllString(strings.ToLower(g.Username), "_"), "_") + "_" + hex.EncodeToString(sum[:3])
		for _, name := range []string{rest, old, strings.NewReplacer("=", "_", "/", "_", "+", "_").Replace(rest)} {
			mm := b.puppetID(bridge.Sender{Network: bridge.NetworkMattermost, ID: "u-" + name, Username: name})
			if mm == ghost {
				t.Errorf("Mattermost user %q gets the puppet of %s person %q: %s", name, g.Network, g.Username, ghost)
			}
			if !b.ownsUser(mm) || !reg.MatchString(string(mm)) {
				t.Errorf("%s is outside the registered namespace", mm)
			}
		}
		if model.IsValidUsername(rest) {
			t.Errorf("a Mattermost user may be called %q, the name of %s's puppet", rest, g.Username)
		}
	}
	// No Mattermost name, valid or remote (name:remote), reaches the
	// ghosts' part of the namespace.
	for _, name := range []string{"alice", "xmpp_eve_a1b2c3", "x=y", "bob:partner", "a/b+c", strings.Repeat("z", 64)} {
		mm := b.puppetID(bridge.Sender{Network: bridge.NetworkMattermost, ID: "u", Username: name})
		local, _, _ := mm.Parse()
		if strings.ContainsAny(strings.TrimPrefix(local, b.cfg.UserPrefix), "=") {
			t.Errorf("Mattermost user %q gets %s, in the ghosts' namespace", name, mm)
		}
	}
	// Existing Mattermost puppets keep their IDs.
	if mm := b.puppetID(bridge.Sender{Network: bridge.NetworkMattermost, ID: "u1", Username: "alice"}); mm != "@mm_alice:example.org" {
		t.Errorf("alice's puppet moved to %s", mm)
	}
	// A long remote name still gives a valid user ID.
	long := b.puppetID(bridge.Sender{Network: bridge.NetworkXMPP, ID: "jid:l@x", Username: strings.Repeat("long name ", 60)})
	if len(long) > 255 {
		t.Errorf("a %d-byte user ID", len(long))
	}
}

// inviteEvent invites the bot to room on behalf of sender.
func inviteEvent(room, sender, eventID string) string {
	return `{"type":"m.room.member","room_id":"` + room + `","event_id":"` + eventID + `","sender":"` + sender +
		`","state_key":"@mattermostbridge:example.org","origin_server_ts":1,"content":{"membership":"invite"}}`
}

// homeserverRecorder answers every client-server request with {} and keeps
// the paths asked for.
type homeserverRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (h *homeserverRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.paths = append(h.paths, r.Method+" "+r.URL.Path)
	h.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, "/whoami") {
		_, _ = w.Write([]byte(`{"user_id":"@mattermostbridge:example.org"}`))
		return
	}
	_, _ = w.Write([]byte(`{"room_id":"!x:example.org"}`))
}

// asked reports whether a request for a path ending in suffix came for room.
func (h *homeserverRecorder) asked(room, suffix string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.paths {
		if strings.Contains(p, "/rooms/"+room+"/") && strings.HasSuffix(p, suffix) {
			return true
		}
	}
	return false
}

// The bot accepts invitations from people on its own homeserver only; one
// from another server is rejected (issue 8, item 6).
func TestBotAcceptsInvitationsOnlyFromItsHomeserver(t *testing.T) {
	hs := &homeserverRecorder{}
	b, _, _ := newTestBridge(t, hs)
	txn := `{"events":[` + inviteEvent("!evil:evil.example", "@mallory:evil.example", "$i1") + `,` +
		inviteEvent("!spoof:example.org", "@mallory:evil.example", "$i2") + `,` +
		inviteEvent("!local:example.org", "@carol:example.org", "$i3") + `]}`
	if w := put(b, "/_matrix/app/v1/transactions/inv1", b.cfg.HSToken, txn); w.Code != http.StatusOK {
		t.Fatalf("invitations: %d %s", w.Code, w.Body)
	}
	for _, room := range []string{"!evil:evil.example", "!spoof:example.org"} {
		if hs.asked(room, "/join") {
			t.Errorf("the bot joined %s on the invitation of @mallory:evil.example", room)
		}
		if !hs.asked(room, "/leave") {
			t.Errorf("the invitation to %s from @mallory:evil.example was not rejected", room)
		}
	}
	if !hs.asked("!local:example.org", "/join") {
		t.Error("the bot did not accept the invitation of a local user")
	}

	// MatrixInviteServers lets the admin add servers; an invitation to a
	// linked room is never answered by leaving it.
	b.cfg.InviteServers = []string{"friends.example", "matrix.example.net:8448"}
	b.store.(*memStore).rooms["!linked:evil.example"] = "channel"
	txn = `{"events":[` + inviteEvent("!friend:friends.example", "@fred:Friends.Example", "$i4") + `,` +
		inviteEvent("!port:example.net", "@pat:matrix.example.net:8448", "$i5") + `,` +
		inviteEvent("!noport:example.net", "@pat:matrix.example.net", "$i6") + `,` +
		inviteEvent("!linked:evil.example", "@mallory:evil.example", "$i7") + `]}`
	if w := put(b, "/_matrix/app/v1/transactions/inv2", b.cfg.HSToken, txn); w.Code != http.StatusOK {
		t.Fatalf("invitations: %d %s", w.Code, w.Body)
	}
	for _, room := range []string{"!friend:friends.example", "!port:example.net"} {
		if !hs.asked(room, "/join") {
			t.Errorf("the bot did not accept the invitation to %s from an allowed server", room)
		}
	}
	if hs.asked("!noport:example.net", "/join") {
		t.Error("matrix.example.net:8448 allowed matrix.example.net too")
	}
	if hs.asked("!linked:evil.example", "/leave") || hs.asked("!linked:evil.example", "/join") {
		t.Error("an invitation to a linked room made the bot move")
	}
}

func TestServerNames(t *testing.T) {
	for _, good := range []string{"example.com", "localhost", "matrix.example.org:8448", "1.2.3.4", "1.2.3.4:80", "[::1]", "[2001:db8::1]:8448", "EXAMPLE.com"} {
		if !ValidServerName(good) {
			t.Errorf("%q refused", good)
		}
	}
	for _, bad := range []string{"", "example.com:", "example.com:0", "example.com:65536", "example.com:x", "exa mple.com", "a/b", "@example.com", "[::1", "[1.2.3.4]", "[fe80::1%eth0]", "*.example.com", "exämple.com", strings.Repeat("a", 256)} {
		if ValidServerName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	got, err := ParseServerList(" friends.example, ,matrix.example.net:8448 ,")
	if err != nil || !slices.Equal(got, []string{"friends.example", "matrix.example.net:8448"}) {
		t.Fatalf("list: %q, %v", got, err)
	}
	if _, err := ParseServerList("ok.example, not a server"); err == nil || !strings.Contains(err.Error(), `"not a server"`) {
		t.Fatalf("bad list: %v", err)
	}
	c := testConfig("https://hs")
	c.InviteServers = []string{"ok.example", "bad server"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "MatrixInviteServers") {
		t.Fatalf("a bad invite server passed validation: %v", err)
	}
}

func TestRenderMentionsBecomePills(t *testing.T) {
	b, err := New(testConfig("https://hs"), newMemStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := b.render("hi @bob and @bobby, **bold**", []bridge.Mention{{Text: "@bob", Person: bridge.Sender{Network: bridge.NetworkMattermost, Username: "bob", DisplayName: "Bob B"}}})
	if !strings.Contains(c.FormattedBody, `<a href="https://matrix.to/#/@mm_bob:example.org">Bob B</a> and @bobby`) || !strings.Contains(c.FormattedBody, "<strong>bold</strong>") {
		t.Fatalf("formatted %q", c.FormattedBody)
	}
	if c.Mentions == nil || len(c.Mentions.UserIDs) != 1 {
		t.Fatalf("mentions %+v", c.Mentions)
	}
}

// A homeserver that rate-limits a send makes Deliver ask the bus to wait
// the advised time; nothing is dropped.
func TestDeliverHonoursRateLimits(t *testing.T) {
	var sends atomic.Int32
	hs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/send/"):
			if sends.Add(1) == 1 {
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":750}`))
				return
			}
			_, _ = w.Write([]byte(`{"event_id":"$sent"}`))
		case strings.Contains(r.URL.Path, "/profile/"):
			_, _ = w.Write([]byte(`{}`))
		case strings.Contains(r.URL.Path, "/join"):
			_, _ = w.Write([]byte(`{"room_id":"!room:example.org"}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	})
	b, _, _ := newTestBridge(t, hs)
	d := aliceSays("hi", time.Time{})
	_, err := b.Deliver(context.Background(), d)
	if delay, ok := bridge.RetryDelay(err); !ok || delay != 750*time.Millisecond || bridge.IsPermanent(err) {
		t.Fatalf("rate-limited delivery: %v (delay %v, %v)", err, delay, ok)
	}
	eventID, err := b.Deliver(context.Background(), d)
	if err != nil || eventID != "$sent" {
		t.Fatalf("retry: %q, %v", eventID, err)
	}
}

// A send the homeserver stored but answered with an error is found in the
// room on the retry instead of being sent again.
func TestRetryFindsAnEventStoredDespiteAnError(t *testing.T) {
	var mu sync.Mutex
	var stored []string // bodies of the events the homeserver keeps
	hs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.Contains(r.URL.Path, "/send/"):
			body, _ := io.ReadAll(r.Body)
			stored = append(stored, string(body))
			if len(stored) == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"database is locked"}`))
				return
			}
			_, _ = w.Write([]byte(`{"event_id":"$second"}`))
		case strings.HasSuffix(r.URL.Path, "/messages"):
			var chunk []string
			for i, body := range stored {
				chunk = append(chunk, fmt.Sprintf(`{"type":"m.room.message","event_id":"$ev%d","sender":"@mm_alice:example.org","room_id":"!room:example.org","content":%s}`, i, body))
			}
			_, _ = w.Write([]byte(`{"chunk":[` + strings.Join(chunk, ",") + `]}`))
		case strings.Contains(r.URL.Path, "/join"):
			_, _ = w.Write([]byte(`{"room_id":"!room:example.org"}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	})
	b, _, _ := newTestBridge(t, hs)
	d := aliceSays("hi", time.Now())
	if _, err := b.Deliver(context.Background(), d); err == nil {
		t.Fatal("the failed send succeeded")
	}
	eventID, err := b.Deliver(context.Background(), d)
	if err != nil || eventID != "$ev0" {
		t.Fatalf("retry: %q, %v", eventID, err)
	}
	mu.Lock()
	sends := len(stored)
	mu.Unlock()
	if sends != 1 {
		t.Fatalf("the retry sent again: %d sends", sends)
	}
	// A delivery that never failed is sent without a search.
	d2 := *d
	d2.Origin.ID, d2.Text = "p2", "second"
	if eventID, err := b.Deliver(context.Background(), &d2); err != nil || eventID != "$second" {
		t.Fatalf("second message: %q, %v", eventID, err)
	}
}

// A homeserver that cannot call the plugin back says so in status.
func TestStatusSaysWhenTheHomeserverCannotReachThePlugin(t *testing.T) {
	hs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/whoami"):
			_, _ = w.Write([]byte(`{"user_id":"@mattermostbridge:example.org"}`))
		case strings.HasSuffix(r.URL.Path, "/appservice/"+RegistrationID+"/ping"):
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"errcode":"M_CONNECTION_FAILED","error":"connection refused"}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	})
	b, _, _ := newTestBridge(t, hs)
	deadline := time.Now().Add(10 * time.Second)
	for b.Health().State != bridge.StateConnected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if h := b.Health(); h.State != bridge.StateConnected || !strings.Contains(h.Detail, "cannot reach the plugin") {
		t.Fatalf("health %+v", h)
	}
}

// The homeserver pushes back every event the bridge's own puppets and bot
// send: one transaction per bridged message. Such a transaction carries
// nothing to hand on, so it is acknowledged without a store round trip
// (it needs none to be sent again), even while the store fails; one with
// someone else's event still goes through the store.
func TestTransactionsOfTheBridgesOwnEventsNeedNoStore(t *testing.T) {
	b, st, sink := newTestBridge(t, http.NotFoundHandler())
	st.rooms["!room:example.org"] = "channel"
	st.fail = errors.New("the KV store is down")
	own := `{"events":[` +
		`{"type":"m.room.message","room_id":"!room:example.org","event_id":"$p1","sender":"@mm_alice:example.org","origin_server_ts":1700000000000,"content":{"msgtype":"m.text","body":"hi"}},` +
		`{"type":"m.reaction","room_id":"!room:example.org","event_id":"$p2","sender":"@mattermostbridge:example.org","origin_server_ts":1700000000001,"content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$p1","key":"👍"}}}]}`
	if w := put(b, "/_matrix/app/v1/transactions/own1", b.cfg.HSToken, own); w.Code != http.StatusOK {
		t.Fatalf("a transaction of the bridge's own events answered %d %s", w.Code, w.Body)
	}
	if w := put(b, "/_matrix/app/v1/transactions/t1", b.cfg.HSToken, textEvent); w.Code == http.StatusOK {
		t.Fatal("a transaction with carol's message was acknowledged while the store that remembers it fails")
	}
	st.fail = nil
	if w := put(b, "/_matrix/app/v1/transactions/t1", b.cfg.HSToken, textEvent); w.Code != http.StatusOK {
		t.Fatalf("transaction answered %d %s", w.Code, w.Body)
	}
	if len(sink.events) != 1 || len(st.seen) != 1 {
		t.Fatalf("%d events handed on and %d transactions remembered; want carol's only", len(sink.events), len(st.seen))
	}
}
