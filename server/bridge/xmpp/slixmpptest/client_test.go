package slixmpptest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/slixmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
)

// The driver sends what slixmpp 1.8 sends and reads what it receives, on
// each server: checked against the project's own Go client, so a failure
// in the bridge's tests is not the driver's.
func TestDriverBothWays(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			srv := kind.Start(t, testservers.Options{})
			e := srv.Reach()
			srv.CreateUser(t, "carol", "carol-pw")
			srv.CreateUser(t, "dave", "dave-pw")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			room := e.RoomJID(t, "dev")
			dave := e.Client(t, "dave", "dave-pw")
			if err := dave.JoinRoom(ctx, room, "Dave"); err != nil {
				t.Fatal(err)
			}
			carol := slixmpptest.Connect(t, e, "carol", "carol-pw")
			if !strings.HasPrefix(carol.Version, "1.") {
				t.Fatalf("slixmpp version %q", carol.Version)
			}
			t.Logf("slixmpp %s", carol.Version)
			if err := carol.JoinRoom(ctx, room, "Carol"); err != nil {
				t.Fatal(err)
			}
			seen := func(what string, match func(xmpptest.Message) bool) xmpptest.Message {
				t.Helper()
				m, err := dave.WaitMessage(ctx, func(m xmpptest.Message) bool { return m.Type == "groupchat" && match(m) })
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				return m
			}

			id, err := carol.Say(ctx, room, "hello from slixmpp", "")
			if err != nil {
				t.Fatal(err)
			}
			hello := seen("the message", func(m xmpptest.Message) bool { return m.Body == "hello from slixmpp" })
			if hello.OriginID != id || hello.StanzaID == "" {
				t.Fatalf("origin-id %q (want %q), stanza-id %q", hello.OriginID, id, hello.StanzaID)
			}

			if _, err := carol.Correct(ctx, room, id, "hello, corrected"); err != nil {
				t.Fatal(err)
			}
			seen("the correction", func(m xmpptest.Message) bool {
				return strings.Contains(m.Raw, "urn:xmpp:message-correct:0") && strings.Contains(m.Raw, id) && m.Body == "hello, corrected"
			})
			if err := carol.React(ctx, room, hello.StanzaID, "👍"); err != nil {
				t.Fatal(err)
			}
			seen("the reaction", func(m xmpptest.Message) bool {
				return strings.Contains(m.Raw, "urn:xmpp:reactions:0") && strings.Contains(m.Raw, "👍")
			})
			if _, err := carol.Reply(ctx, room, slixmpptest.Reply{To: room.String() + "/Dave", ID: hello.StanzaID, Quote: "Dave: hi", Body: "an answer"}); err != nil {
				t.Fatal(err)
			}
			seen("the reply", func(m xmpptest.Message) bool {
				return strings.Contains(m.Raw, "urn:xmpp:reply:0") && strings.Contains(m.Raw, "urn:xmpp:feature-fallback:0") && m.Body == "> Dave: hi\nan answer"
			})
			if err := carol.Retract(ctx, room, id); err != nil {
				t.Fatal(err)
			}
			seen("the retraction", func(m xmpptest.Message) bool {
				return strings.Contains(m.Raw, "urn:xmpp:message-retract:0") && strings.Contains(m.Raw, "urn:xmpp:fasten:0") && strings.Contains(m.Raw, id)
			})
			if _, err := carol.SayInThread(ctx, room, "in a thread", "thread-1"); err != nil {
				t.Fatal(err)
			}
			seen("the threaded message", func(m xmpptest.Message) bool { return strings.Contains(m.Raw, "thread-1") })
			url, _, err := carol.Upload(ctx, room, e.UploadDomain, "notes.txt", "text/plain", []byte("file bytes"))
			if err != nil {
				t.Fatal(err)
			}
			seen("the file", func(m xmpptest.Message) bool { return m.Body == url && strings.Contains(m.Raw, "jabber:x:oob") })
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, []byte("file bytes")) {
				t.Fatalf("the upload holds %q", got)
			}

			// And what slixmpp reads.
			if _, err := dave.Say(ctx, room, "hi carol"); err != nil {
				t.Fatal(err)
			}
			m, err := carol.WaitMessage(ctx, func(m slixmpptest.Message) bool { return m.Body == "hi carol" })
			if err != nil {
				t.Fatal(err)
			}
			if m.Nick() != "Dave" || m.StanzaID == "" || m.OriginID == "" {
				t.Fatalf("slixmpp read %+v", m)
			}
		})
	}
}
