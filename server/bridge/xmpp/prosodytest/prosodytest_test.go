package prosodytest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
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

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
)

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestRoomMessageSurvivesRestart: two occupants talk in a room, and after a
// restart the room and its archive are still there.
func TestRoomMessageSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := prosodytest.Start(t, prosodytest.Options{})
	t.Logf("prosody started in %v", s.StartupTime())
	s.CreateUser(t, "alice", "alice-password")
	s.CreateUser(t, "bob", "bob-password")
	alice := s.Client(t, "alice", "alice-password")
	bob := s.Client(t, "bob", "bob-password")
	ctx := timeout(t, 20*time.Second)

	room := s.RoomJID(t, "lobby")
	if s.RoomExists(t, room) {
		t.Fatal("room exists before anyone joined")
	}
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
	got, err := bob.WaitMessage(ctx, func(m prosodytest.Message) bool {
		return m.Type == stanza.GroupChatMessage && m.ID == id
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "hello from alice" || got.From.String() != room.String()+"/Alice" || got.OriginID != id {
		t.Errorf("bob got %+v", got)
	}
	if got.StanzaID == "" || got.OccupantID == "" {
		t.Errorf("room added no stanza-id or occupant-id: %s", got.Raw)
	}
	features, err := bob.Features(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"urn:xmpp:mam:2", "urn:xmpp:occupant-id:0", "urn:xmpp:sid:0", "muc_persistent", "muc_public", "muc_unsecured"} {
		if !slices.Contains(features, f) {
			t.Errorf("room features lack %s: %v", f, features)
		}
	}

	s.Restart(t)
	t.Logf("prosody restarted in %v", s.StartupTime())
	select {
	case <-bob.Done():
	case <-ctx.Done():
		t.Fatal("bob's session outlived the restart")
	}
	if !s.RoomExists(t, room) {
		t.Fatal("room gone after restart")
	}
	bob = s.Client(t, "bob", "bob-password")
	archived, _, err := bob.FetchHistory(ctx, room, history.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(archived) != 1 || archived[0].Body != "hello from alice" || archived[0].ArchiveID != got.StanzaID ||
		archived[0].OccupantID != got.OccupantID {
		t.Fatalf("archive after restart: %+v", archived)
	}

	// Killed, as by a crash: the data is written as it changes.
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if !s.RoomExists(t, room) {
		t.Fatal("room gone after kill and restart")
	}
}

// TestUntrustedCertificateRefused: a client trusting only the real CA
// refuses a server whose certificate another CA signed, on STARTTLS and on
// direct TLS.
func TestUntrustedCertificateRefused(t *testing.T) {
	t.Parallel()
	s := prosodytest.Start(t, prosodytest.Options{UntrustedCert: true})
	s.CreateUser(t, "alice", "alice-password")
	ctx := timeout(t, 20*time.Second)
	for _, direct := range []bool{false, true} {
		c, err := s.Dial(ctx, "alice", "alice-password", prosodytest.DialOptions{DirectTLS: direct})
		if err == nil {
			c.Close()
			t.Fatalf("direct TLS %v: logged in despite the untrusted certificate", direct)
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) && !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("direct TLS %v: want an unknown-authority error, got %v", direct, err)
		}
	}
	// The same server is otherwise fine.
	c, err := s.Dial(ctx, "alice", "alice-password", prosodytest.DialOptions{
		TLSConfig: &tls.Config{ServerName: s.Domain, InsecureSkipVerify: true}, //nolint:gosec // the point of the test
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestServerFeatures checks what Prosody does with the payloads the
// bridge relies on, on one server.
func TestServerFeatures(t *testing.T) {
	t.Parallel()
	s := prosodytest.Start(t, prosodytest.Options{UploadSizeLimit: 1 << 20})
	s.CreateUser(t, "alice", "alice-password")
	s.CreateUser(t, "bob", "bob-password")
	ctx := timeout(t, 25*time.Second)

	t.Run("DirectTLS", func(t *testing.T) {
		c, err := s.Dial(ctx, "alice", "alice-password", prosodytest.DialOptions{DirectTLS: true})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("SCRAM", func(t *testing.T) {
		c, err := s.Dial(ctx, "alice", "alice-password", prosodytest.DialOptions{Mechanisms: []sasl.Mechanism{sasl.ScramSha1}})
		if err != nil {
			t.Fatalf("SCRAM-SHA-1: %v", err)
		}
		c.Close()
		c, err = s.Dial(ctx, "alice", "alice-password", prosodytest.DialOptions{Mechanisms: []sasl.Mechanism{sasl.ScramSha256}})
		if err == nil {
			c.Close()
			t.Error("SCRAM-SHA-256 worked with password_hash SHA-1")
		}
		_, err = s.Dial(ctx, "alice", "wrong", prosodytest.DialOptions{})
		if err == nil {
			t.Error("logged in with a wrong password")
		}
	})

	t.Run("Disco", func(t *testing.T) {
		c := s.Client(t, "alice", "alice-password")
		for addr, want := range map[string][]string{
			s.Domain:              {"jabber:iq:register", "urn:xmpp:ping", "urn:xmpp:carbons:2"},
			c.JID.Bare().String(): {"urn:xmpp:mam:2"}, // the account's own archive
			s.MUCDomain:           {"http://jabber.org/protocol/muc", "urn:xmpp:mam:2", "urn:xmpp:occupant-id:0"},
			s.UploadDomain:        {"urn:xmpp:http:upload:0"},
		} {
			to, err := jid.Parse(addr)
			if err != nil {
				t.Fatal(err)
			}
			features, err := c.Features(ctx, to)
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			for _, f := range want {
				if !slices.Contains(features, f) {
					t.Errorf("%s lacks %s: %v", addr, f, features)
				}
			}
		}
	})
	t.Run("Component", func(t *testing.T) {
		addr, err := jid.New("", s.ComponentDomain, "")
		if err != nil {
			t.Fatal(err)
		}
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
	})

	room := s.RoomJID(t, "features")
	alice := s.Client(t, "alice", "alice-password")
	bob := s.Client(t, "bob", "bob-password")
	if err := alice.JoinRoom(ctx, room, "Alice"); err != nil {
		t.Fatal(err)
	}
	if err := bob.JoinRoom(ctx, room, "Bob"); err != nil {
		t.Fatal(err)
	}
	id, err := alice.Say(ctx, room, "original")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := bob.WaitMessage(ctx, func(m prosodytest.Message) bool { return m.ID == id })
	if err != nil {
		t.Fatal(err)
	}

	// Payloads pass through the room untouched; only messages with a body
	// (or a <store/> hint) get a stanza-id and go to the archive.
	stanzas := []struct {
		name, xml string
		archived  bool
	}{
		{"correction", `<message type='groupchat' to='%s' id='%s'><body>edited</body><replace xmlns='urn:xmpp:message-correct:0' id='` + id + `'/></message>`, true},
		{"reaction", `<message type='groupchat' to='%s' id='%s'><reactions xmlns='urn:xmpp:reactions:0' id='` + orig.StanzaID + `'><reaction>👍</reaction></reactions></message>`, false},
		{"reaction-store", `<message type='groupchat' to='%s' id='%s'><reactions xmlns='urn:xmpp:reactions:0' id='` + orig.StanzaID + `'><reaction>🎉</reaction></reactions><store xmlns='urn:xmpp:hints'/></message>`, true},
		{"retraction", `<message type='groupchat' to='%s' id='%s'><apply-to xmlns='urn:xmpp:fasten:0' id='` + orig.StanzaID + `'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to><retract xmlns='urn:xmpp:message-retract:1' id='` + orig.StanzaID + `'/><fallback xmlns='urn:xmpp:fallback:0'/><body>/me retracted a message</body></message>`, true},
		{"retraction-nobody", `<message type='groupchat' to='%s' id='%s'><retract xmlns='urn:xmpp:message-retract:1' id='` + orig.StanzaID + `'/></message>`, false},
		{"reply", `<message type='groupchat' to='%s' id='%s'><body>&gt; original
answer</body><reply xmlns='urn:xmpp:reply:0' to='` + room.String() + `/Alice' id='` + orig.StanzaID + `'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='11'/></fallback></message>`, true},
	}
	for _, st := range stanzas {
		sid := "x-" + st.name
		if err := alice.SendRaw(ctx, fmt.Sprintf(st.xml, room, sid)); err != nil {
			t.Fatal(err)
		}
		m, err := bob.WaitMessage(ctx, func(m prosodytest.Message) bool { return m.ID == sid })
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if (m.StanzaID != "") != st.archived {
			t.Errorf("%s: stanza-id %q, want archived %v: %s", st.name, m.StanzaID, st.archived, m.Raw)
		}
		if m.OccupantID == "" {
			t.Errorf("%s: no occupant-id: %s", st.name, m.Raw)
		}
		t.Logf("%s as bob got it: %s", st.name, m.Raw)
	}
	archived, _, err := bob.FetchHistory(ctx, room, history.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range archived {
		ids = append(ids, m.ID)
	}
	want := []string{id}
	for _, st := range stanzas {
		if st.archived {
			want = append(want, "x-"+st.name)
		}
	}
	if !slices.Equal(ids, want) {
		t.Errorf("archived ids %v, want %v", ids, want)
	}

	t.Run("Upload", func(t *testing.T) {
		content := []byte("hello, file")
		slot, err := upload.GetSlot(ctx, upload.File{Name: "hello.txt", Size: len(content), Type: "text/plain"}, s.UploadJID(t), alice.Session())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(slot.GetURL.String(), s.HTTPURL+"/file_share/") {
			t.Errorf("GET URL %s does not start with %s/file_share/", slot.GetURL, s.HTTPURL)
		}
		t.Logf("upload slot: PUT %s GET %s", slot.PutURL, slot.GetURL)
		req, err := slot.Put(ctx, bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(content))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT: %s", resp.Status)
		}
		getReq, err := http.NewRequestWithContext(ctx, http.MethodGet, slot.GetURL.String(), http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		resp, err = http.DefaultClient.Do(getReq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(body, content) {
			t.Fatalf("GET: %s %q %v", resp.Status, body, err)
		}
		_, err = upload.GetSlot(ctx, upload.File{Name: "big.bin", Size: 2 << 20, Type: "application/octet-stream"}, s.UploadJID(t), alice.Session())
		if err == nil {
			t.Error("got a slot for a file over the size limit")
		}
	})

	t.Run("OversizedStanza", func(t *testing.T) {
		// Prosody checks the limit after each read (4 KiB), so a stanza is
		// refused once it is over the limit by more than a read. It sends a
		// <policy-violation/> stream error with a <stanza-too-big
		// xmlns='urn:xmpp:errors'/> child that mellium v0.23.0 fails to
		// unmarshal ("did not consume entire <error> element"), or the
		// client sees the connection reset first.
		big := strings.Repeat("x", prosodytest.DefaultStanzaSizeLimit+64<<10)
		if err := bob.SendRaw(ctx, fmt.Sprintf(`<message type='groupchat' to='%s' id='big'><body>%s</body></message>`, room, big)); err != nil {
			t.Logf("send: %v", err)
		}
		select {
		case <-bob.Done():
			t.Logf("session ended: %v", bob.Err())
		case <-ctx.Done():
			t.Fatal("an oversized stanza was accepted")
		}
		for _, m := range alice.Messages() {
			if m.ID == "big" {
				t.Error("the oversized message reached the room")
			}
		}
	})
}

// TestOptions checks PasswordHash and AllowUnencrypted.
func TestOptions(t *testing.T) {
	t.Parallel()
	s := prosodytest.Start(t, prosodytest.Options{PasswordHash: "SHA-256", AllowUnencrypted: true})
	s.CreateUser(t, "alice", "alice-password")
	ctx := timeout(t, 10*time.Second)
	c, err := s.Dial(ctx, "alice", "alice-password", prosodytest.DialOptions{Mechanisms: []sasl.Mechanism{sasl.ScramSha256}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = s.Dial(ctx, "alice", "alice-password", prosodytest.DialOptions{Mechanisms: []sasl.Mechanism{sasl.ScramSha1}})
	if err == nil {
		c.Close()
		t.Error("SCRAM-SHA-1 worked with password_hash SHA-256")
	}
	c, err = s.Dial(ctx, "alice", "alice-password", prosodytest.DialOptions{Plain: true})
	if err != nil {
		t.Fatalf("plain stream: %v", err)
	}
	if _, ok := c.Session().Conn().(*tls.Conn); ok {
		t.Error("the plain stream is TLS")
	}
	c.Close()
}
