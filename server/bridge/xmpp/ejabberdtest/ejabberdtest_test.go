package ejabberdtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/upload"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/ejabberdtest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Two occupants talk in a room; the room and its archive outlive a clean
// restart and a kill.
func TestRoomMessageSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := ejabberdtest.Start(t, ejabberdtest.Options{})
	t.Logf("%s started in %v", s.Program(), s.StartupTime())
	if !strings.HasPrefix(s.Program(), "ejabberd 24.") {
		t.Errorf("Program() = %q", s.Program())
	}
	s.CreateUser(t, "alice", "alice-password")
	s.CreateUser(t, "bob", "bob-password")
	s.CreateUser(t, "bob", "bob-password-2") // resets the password
	alice := s.Client(t, "alice", "alice-password")
	bob := s.Client(t, "bob", "bob-password-2")
	ctx := timeout(t, 60*time.Second)

	room := s.RoomJID(t, "lobby")
	if err := alice.JoinRoom(ctx, room, "Alice"); err != nil {
		t.Fatal(err)
	}
	if err := bob.JoinRoom(ctx, room, "Bob"); err != nil {
		t.Fatal(err)
	}
	id, err := alice.Say(ctx, room, "hello from alice")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bob.WaitMessage(ctx, func(m xmpptest.Message) bool {
		return m.Type == stanza.GroupChatMessage && m.OriginID == id
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "hello from alice" || got.From.String() != room.String()+"/Alice" {
		t.Errorf("bob got %+v", got)
	}
	if got.StanzaID == "" || got.OccupantID == "" {
		t.Errorf("room added no stanza-id or occupant-id: %s", got.Raw)
	}
	features, err := bob.Features(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"urn:xmpp:mam:2", "urn:xmpp:occupant-id:0", "urn:xmpp:sid:0", "muc_persistent", "muc_public"} {
		if !slices.Contains(features, f) {
			t.Errorf("room features lack %s: %v", f, features)
		}
	}

	s.Restart(t)
	t.Logf("restarted in %v", s.StartupTime())
	select {
	case <-bob.Done():
	case <-ctx.Done():
		t.Fatal("bob's session outlived the restart")
	}
	bob = s.Client(t, "bob", "bob-password-2")
	archived, _, err := bob.FetchHistory(ctx, room, history.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(archived) != 1 || archived[0].Body != "hello from alice" || archived[0].ArchiveID != got.StanzaID {
		t.Fatalf("archive after restart: %+v", archived)
	}

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if exists, err := s.Client(t, "bob", "bob-password-2").RoomExists(ctx, room); err != nil || !exists {
		t.Fatalf("room after kill and restart: exists %v, %v", exists, err)
	}
}

// What the bridge relies on from ejabberd's configuration: TLS on every
// port, SASL with channel binding named by XEP-0440, components, upload,
// and the real registration limit.
func TestServerFeatures(t *testing.T) {
	t.Parallel()
	s := ejabberdtest.Start(t, ejabberdtest.Options{UploadSizeLimit: 1 << 20})
	s.CreateUser(t, "alice", "alice-password")
	ctx := timeout(t, 60*time.Second)

	t.Run("TLS and SASL", func(t *testing.T) {
		for _, o := range []xmpptest.DialOptions{
			{},
			{DirectTLS: true},
			{Mechanisms: []sasl.Mechanism{sasl.ScramSha1}},
			{Mechanisms: []sasl.Mechanism{sasl.ScramSha1Plus}},
			{Mechanisms: []sasl.Mechanism{sasl.ScramSha1Plus}, TLSConfig: tls12(s.TLSConfig())},
		} {
			c, err := s.Dial(ctx, "alice", "alice-password", o)
			if err != nil {
				t.Fatalf("%+v: %v", o, err)
			}
			c.Close()
		}
		if _, err := s.Dial(ctx, "alice", "wrong", xmpptest.DialOptions{}); err == nil {
			t.Error("logged in with a wrong password")
		}
	})

	t.Run("Component", func(t *testing.T) {
		addr := jid.MustParse(s.ComponentDomain)
		for _, secret := range []string{"wrong", s.ComponentSecret} {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", s.ComponentAddr())
			if err != nil {
				t.Fatal(err)
			}
			session, err := component.NewSession(ctx, addr, []byte(secret), conn)
			if (err == nil) != (secret == s.ComponentSecret) {
				t.Errorf("secret %q: %v", secret, err)
			}
			if err == nil {
				session.Close()
			}
			conn.Close()
		}
		conn, err := tls.Dial("tcp", s.ComponentTLSAddr(), &tls.Config{ServerName: s.ComponentDomain, RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		session, err := component.NewSession(ctx, addr, []byte(s.ComponentSecret), conn)
		if err != nil {
			t.Fatalf("component over direct TLS: %v", err)
		}
		session.Close()
		conn.Close()
	})

	t.Run("Upload", func(t *testing.T) {
		c := s.Client(t, "alice", "alice-password")
		svc, err := httpfile.Discover(ctx, c.Session(), s.JID(t, ""))
		if err != nil {
			t.Fatal(err)
		}
		if svc.JID.String() != s.UploadDomain || svc.MaxSize != 1<<20 {
			t.Fatalf("upload service %+v", svc)
		}
		fetcher := &httpfile.Fetcher{AllowPrivate: true}
		url, err := svc.Upload(ctx, c.Session(), "hello.txt", "text/plain", 5, bytes.NewReader([]byte("hello")), fetcher.Client())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(url, s.HTTPURL+"/upload/") {
			t.Errorf("file at %s", url)
		}
		f, err := fetcher.Fetch(ctx, url, 100)
		if err != nil || string(f.Data) != "hello" {
			t.Fatalf("fetch %s: %q, %v", url, f.Data, err)
		}
		if _, err := upload.GetSlot(ctx, upload.File{Name: "big", Size: 2 << 20}, s.UploadJID(t), c.Session()); err == nil {
			t.Error("a slot for a file over max_size")
		}
	})
}

// ejabberd's registration_timeout: one in-band registration per address
// in 600 s by default; the next is refused with resource-constraint.
func TestRegistrationTimeoutIsOn(t *testing.T) {
	t.Parallel()
	s := ejabberdtest.Start(t, ejabberdtest.Options{})
	ctx := timeout(t, 60*time.Second)
	if err := register(ctx, s, "first", "first-password"); err != nil {
		t.Fatalf("first registration: %v", err)
	}
	if _, err := s.Dial(ctx, "first", "first-password", xmpptest.DialOptions{}); err != nil {
		t.Fatalf("the registered account cannot log in: %v", err)
	}
	err := register(ctx, s, "second", "second-password")
	var se stanza.Error
	if !asStanzaError(err, &se) || se.Condition != stanza.ResourceConstraint {
		t.Fatalf("second registration from the same address: %v, want resource-constraint", err)
	}

	off := ejabberdtest.Start(t, ejabberdtest.Options{NoRegistration: true})
	if err := register(ctx, off, "first", "first-password"); err == nil {
		t.Fatal("registered with registration off")
	}
}

// HTTP API calls come only from loopback and need no credentials there:
// what CreateUser relies on.
func TestAPIAnswersLoopback(t *testing.T) {
	t.Parallel()
	s := ejabberdtest.Start(t, ejabberdtest.Options{})
	ctx := timeout(t, 30*time.Second)
	out, err := s.API(ctx, "registered_users", map[string]any{"host": s.Domain})
	if err != nil || strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("registered_users: %s, %v", out, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTPURL+"/api/no_such_command", strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("an unknown command succeeded")
	}
}

func tls12(c *tls.Config) *tls.Config {
	c.MaxVersion = tls.VersionTLS12
	return c
}

func register(ctx context.Context, s *ejabberdtest.Server, localpart, password string) error {
	return s.Register(ctx, localpart, password)
}

func asStanzaError(err error, se *stanza.Error) bool { return errors.As(err, se) }
