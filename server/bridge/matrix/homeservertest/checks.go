package homeservertest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/internal/servertest"
)

// appService is a stand-in application service recording the transactions
// the homeserver pushes.
type appService struct {
	t       testing.TB
	hsToken string

	mu     sync.Mutex
	txns   []transaction
	notify chan struct{}
}

type transaction struct {
	ID     string
	Events []event
}

type event struct {
	Type     string          `json:"type"`
	RoomID   string          `json:"room_id"`
	Sender   string          `json:"sender"`
	EventID  string          `json:"event_id"`
	StateKey *string         `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

func newAppService(t testing.TB, hsToken string) (*appService, *httptest.Server) {
	as := &appService{t: t, hsToken: hsToken, notify: make(chan struct{}, 1)}
	srv := httptest.NewServer(as)
	t.Cleanup(srv.Close)
	return as, srv
}

func (as *appService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/_matrix/app/v1/transactions/"
	if r.Method != http.MethodPut || !strings.HasPrefix(r.URL.Path, prefix) {
		// The homeserver may also query users and aliases; the checks
		// need none.
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errcode":"M_NOT_FOUND"}`)
		return
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+as.hsToken {
		as.t.Errorf("transaction with Authorization %q, want the hs_token", got)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	var body struct {
		Events []event `json:"events"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		as.t.Errorf("transaction body: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	as.mu.Lock()
	as.txns = append(as.txns, transaction{ID: strings.TrimPrefix(r.URL.Path, prefix), Events: body.Events})
	as.mu.Unlock()
	select {
	case as.notify <- struct{}{}:
	default:
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}")
}

// waitEvent waits until a pushed event satisfies match and returns it with
// its transaction ID.
func (as *appService) waitEvent(timeout time.Duration, match func(event) bool) (event, string, bool) {
	deadline := time.After(timeout)
	for {
		as.mu.Lock()
		for _, txn := range as.txns {
			for _, ev := range txn.Events {
				if match(ev) {
					as.mu.Unlock()
					return ev, txn.ID, true
				}
			}
		}
		as.mu.Unlock()
		select {
		case <-as.notify:
		case <-deadline:
			return event{}, "", false
		}
	}
}

func messageMatch(roomID, body string) func(event) bool {
	return func(ev event) bool {
		if ev.Type != "m.room.message" || ev.RoomID != roomID {
			return false
		}
		var c struct {
			Body string `json:"body"`
		}
		return json.Unmarshal(ev.Content, &c) == nil && c.Body == body
	}
}

func createRoom(t *testing.T, s *Client, token string, body map[string]any) string {
	t.Helper()
	var resp struct {
		RoomID string `json:"room_id"`
	}
	s.Do(t, http.MethodPost, "/_matrix/client/v3/createRoom", token, body, &resp)
	if resp.RoomID == "" {
		t.Fatal("createRoom: no room_id")
	}
	return resp.RoomID
}

func sendText(t *testing.T, s *Client, token, roomID, txnID, text string) string {
	t.Helper()
	var resp struct {
		EventID string `json:"event_id"`
	}
	s.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+txnID, token,
		map[string]any{"msgtype": "m.text", "body": text}, &resp)
	if resp.EventID == "" {
		t.Fatal("send: no event_id")
	}
	return resp.EventID
}

func whoami(t *testing.T, s *Client, token string) string {
	t.Helper()
	var resp struct {
		UserID string `json:"user_id"`
	}
	s.Do(t, http.MethodGet, "/_matrix/client/v3/account/whoami", token, nil, &resp)
	return resp.UserID
}

// Start starts a test homeserver, failing the test if it cannot.
type Start func(t testing.TB, opts Options) Server

// RunChecks checks what the bridge's tests rely on in a test homeserver:
// shared-secret registration, an application service's namespaces and
// transactions, restarts. dendritetest and synapsetest run it.
func RunChecks(t *testing.T, start Start) {
	t.Run("AppServiceUserNamespace", func(t *testing.T) { t.Parallel(); checkAppServiceUserNamespace(t, start) })
	t.Run("AppServiceRoomsNamespace", func(t *testing.T) { t.Parallel(); checkAppServiceRoomsNamespace(t, start) })
	t.Run("RegisterUserWithoutAppService", func(t *testing.T) { t.Parallel(); checkRegisterUserWithoutAppService(t, start) })
}

// checkAppServiceUserNamespace is the bridge's case: the application
// service registers a user in its exclusive namespace, that user joins a
// room, and every event of the room is then pushed to the application
// service.
func checkAppServiceUserNamespace(t *testing.T, start Start) {
	hsToken := "hs-" + servertest.RandomString()
	asToken := "as-" + servertest.RandomString()
	as, asSrv := newAppService(t, hsToken)
	srv := start(t, Options{AppService: &AppService{
		URL:             asSrv.URL,
		ASToken:         asToken,
		HSToken:         hsToken,
		SenderLocalpart: "mm_bridge",
		Users:           []Namespace{{Regex: `^@mm_.*:localhost$`, Exclusive: true}},
		Aliases:         []Namespace{{Regex: `^#mm_.*:localhost$`, Exclusive: true}},
	}})
	s := srv.API()
	if s.URL == "" || srv.BaseURL() != s.URL {
		t.Fatalf("URL %q, BaseURL %q", s.URL, srv.BaseURL())
	}

	aliceID, alice := srv.RegisterUser(t, "alice", "alice-password")
	if aliceID != "@alice:localhost" {
		t.Fatalf("RegisterUser: user ID %q", aliceID)
	}
	if got := whoami(t, s, alice); got != aliceID {
		t.Fatalf("whoami: %q, want %q", got, aliceID)
	}

	// A user in the exclusive namespace cannot be registered by others.
	status, body, err := s.Request(http.MethodPost, "/_matrix/client/v3/register", "", map[string]any{
		"username": "mm_mallory", "password": "p", "auth": map[string]any{"type": "m.login.dummy"},
	})
	if err != nil || status/100 == 2 {
		t.Fatalf("registering a user in the exclusive namespace: status %d, %v: %s", status, err, body)
	}

	// The application service registers its puppet.
	var reg struct {
		UserID string `json:"user_id"`
	}
	s.Do(t, http.MethodPost, "/_matrix/client/v3/register", asToken,
		map[string]any{"type": "m.login.application_service", "username": "mm_bob"}, &reg)
	if reg.UserID != "@mm_bob:localhost" {
		t.Fatalf("application-service registration: user ID %q", reg.UserID)
	}
	// The sender_localpart user exists and the as_token is its token.
	if got := whoami(t, s, asToken); got != "@mm_bridge:localhost" {
		t.Fatalf("whoami with the as_token: %q", got)
	}

	roomID := createRoom(t, s, alice, map[string]any{"name": "bridged", "invite": []string{reg.UserID}})
	// The puppet joins, the application service masquerading with ?user_id=.
	s.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(roomID)+"?user_id="+url.QueryEscape(reg.UserID),
		asToken, map[string]any{}, nil)

	eventID := sendText(t, s, alice, roomID, "t1", "hello bridge")
	ev, txnID, ok := as.waitEvent(30*time.Second, messageMatch(roomID, "hello bridge"))
	if !ok {
		t.Fatalf("the application service received no transaction with the message %s", eventID)
	}
	if ev.EventID != eventID || ev.Sender != aliceID || txnID == "" {
		t.Fatalf("pushed event %+v in transaction %q, want %s from %s", ev, txnID, eventID, aliceID)
	}
	// The invite and the join of the puppet were pushed too.
	if _, _, ok := as.waitEvent(5*time.Second, func(ev event) bool {
		return ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == reg.UserID && strings.Contains(string(ev.Content), `"join"`)
	}); !ok {
		t.Error("the puppet's join was not pushed")
	}

	// The puppet speaks through the application service.
	puppetEvent := ""
	{
		var resp struct {
			EventID string `json:"event_id"`
		}
		s.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/t2?user_id="+url.QueryEscape(reg.UserID),
			asToken, map[string]any{"msgtype": "m.text", "body": "from mattermost"}, &resp)
		puppetEvent = resp.EventID
	}
	ev, _, ok = as.waitEvent(30*time.Second, messageMatch(roomID, "from mattermost"))
	if !ok || ev.EventID != puppetEvent || ev.Sender != reg.UserID {
		t.Fatalf("puppet message: pushed %+v (ok %v), want %s from %s", ev, ok, puppetEvent, reg.UserID)
	}
}

// checkAppServiceRoomsNamespace checks that a non-exclusive rooms namespace
// ".*" gets every room's events without any member in the namespace, and
// that data, tokens and pushing survive a restart.
func checkAppServiceRoomsNamespace(t *testing.T, start Start) {
	hsToken := "hs-" + servertest.RandomString()
	as, asSrv := newAppService(t, hsToken)
	srv := start(t, Options{
		ServerName: "matrix.test",
		AppService: &AppService{
			URL:     asSrv.URL,
			HSToken: hsToken,
			Users:   []Namespace{{Regex: `^@mm_.*:matrix\.test$`, Exclusive: true}},
			Rooms:   []Namespace{{Regex: `.*`}},
		},
	})
	s := srv.API()
	userID, token := srv.RegisterUser(t, "carol", "carol-password")
	if userID != "@carol:matrix.test" {
		t.Fatalf("RegisterUser: user ID %q", userID)
	}
	roomID := createRoom(t, s, token, map[string]any{"preset": "private_chat"})
	eventID := sendText(t, s, token, roomID, "t1", "before restart")
	if ev, _, ok := as.waitEvent(30*time.Second, messageMatch(roomID, "before restart")); !ok || ev.EventID != eventID {
		t.Fatalf("before restart: pushed %+v (ok %v), want %s", ev, ok, eventID)
	}

	srv.Restart(t)
	if got := whoami(t, s, token); got != userID {
		t.Fatalf("whoami after restart: %q, want %q", got, userID)
	}
	eventID = sendText(t, s, token, roomID, "t2", "after restart")
	if ev, _, ok := as.waitEvent(30*time.Second, messageMatch(roomID, "after restart")); !ok || ev.EventID != eventID {
		t.Fatalf("after restart: pushed %+v (ok %v), want %s", ev, ok, eventID)
	}
}

// checkRegisterUserWithoutAppService checks a server without application
// service and that Stop is idempotent.
func checkRegisterUserWithoutAppService(t *testing.T, start Start) {
	srv := start(t, Options{})
	userID, token := srv.RegisterUser(t, "dave", "dave-password")
	if got := whoami(t, srv.API(), token); got != userID {
		t.Fatalf("whoami: %q, want %q", got, userID)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if srv.Running() {
		t.Fatal("Running after Stop")
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
