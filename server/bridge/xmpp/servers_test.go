package xmpp

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Issue 10: a component sends every stanza with a from under its domain:
// Prosody 13 and ejabberd close the stream at the first one without
// (ejabberd answers <improper-addressing/>, Prosody <invalid-from/>). On
// each server the bridge checks and links a room, speaks in it as a ghost
// (joins, a message with a file, an edit, a reaction, a retraction, a
// moderation it has no right to), reads what carol says, and keeps the
// stream through idle keepalives. The issue asks for three minutes of
// idle keepalives at the default of one a minute; a 200 ms Keepalive
// gives fifteen of them in three seconds.
func TestComponentSendsOnlyAddressedStanzasOnEachServer(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			srv, room, carol := serverWithCarol(ctx, t, kind, testservers.Options{})
			log := &countingLog{}
			st := newMemStore()
			rec := &eventRecorder{}
			b := startComponent(ctx, t, srv, st, rec, log, func(c *Config) { c.Keepalive = 200 * time.Millisecond })
			if _, err := b.currentSession(ctx); err != nil {
				t.Fatal(err)
			}
			ended := func(what string) {
				t.Helper()
				if n := log.count("XMPP session ended"); n != 0 {
					t.Fatalf("%s: the stream ended %d times; server log:\n%s", what, n, srv.LogTail(20))
				}
			}

			// /xmppbridge map: disco#info of the room, then the join.
			if got, err := b.CheckRoom(ctx, room.String()); err != nil || got != room.String() {
				t.Fatalf("CheckRoom: %q, %v", got, err)
			}
			st.mu.Lock()
			st.links = []store.Link{{ChannelID: "channel", Remotes: []store.RemoteRoom{{Network: bridge.NetworkXMPP, Room: room.String()}}}}
			st.mu.Unlock()
			if err := b.RoomLinked(ctx, room.String()); err != nil {
				t.Fatal(err)
			}
			ended("after linking the room")

			// One message each way.
			id, err := b.Deliver(ctx, &bridge.Delivery{Room: room.String(), Event: bridge.Event{
				Kind: bridge.KindMessage, Sender: alice, Text: "hello from mattermost", Time: time.Now(),
				Origin:      bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: "post-1"},
				Attachments: []bridge.Attachment{textFile("notes.txt", "file from mattermost")},
			}})
			if err != nil {
				t.Fatalf("deliver: %v", err)
			}
			m := waitRoom(ctx, t, carol, "alice's message", func(m xmpptest.Message) bool { return strings.HasPrefix(m.Body, "hello from mattermost") })
			if m.From.Resourcepart() != alice.DisplayName || !strings.Contains(m.Raw, "jabber:x:oob") {
				t.Fatalf("alice's message came from %s as %s", m.From, m.Raw)
			}
			if _, err := carol.Say(ctx, room, "hello from xmpp"); err != nil {
				t.Fatal(err)
			}
			expectOnceBefore(t, rec, "hello from xmpp")

			// Edit, reaction, retraction, and a moderation it may not do.
			for _, d := range []bridge.Event{
				{Kind: bridge.KindEdit, Text: "hello, edited"},
				{Kind: bridge.KindReactionAdd, Emoji: "👍"},
				{Kind: bridge.KindDelete},
			} {
				d.Sender, d.Time = alice, time.Now()
				d.Origin = bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: "post-1-" + string(d.Kind)}
				if _, err := b.Deliver(ctx, &bridge.Delivery{Room: room.String(), TargetID: id, Event: d}); err != nil {
					t.Fatalf("%s: %v", d.Kind, err)
				}
			}
			waitRoom(ctx, t, carol, "alice's retraction", func(m xmpptest.Message) bool { return strings.Contains(m.Raw, "urn:xmpp:message-retract:1") })
			carolMsg := waitRoom(ctx, t, carol, "carol's own message", func(m xmpptest.Message) bool { return m.Body == "hello from xmpp" })
			_, err = b.Deliver(ctx, &bridge.Delivery{Room: room.String(), TargetID: carolMsg.StanzaID, Moderate: true, Event: bridge.Event{
				Kind: bridge.KindDelete, Sender: alice, Time: time.Now(), Moderated: true,
				Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: "post-2"},
			}})
			if bridge.DropCode(err) != bridge.ReasonNoRights {
				t.Fatalf("moderation without rights: %v", err)
			}
			ended("after the deliveries")

			time.Sleep(3 * time.Second) // fifteen idle keepalives
			ended("after idle keepalives")
			if h := b.Health(); h.State != bridge.StateConnected || h.LastError != "" {
				t.Fatalf("health after the keepalives: %+v", h)
			}
		})
	}
}

func textFile(name, content string) bridge.Attachment {
	return bridge.Attachment{Name: name, MIMEType: "text/plain", Size: int64(len(content)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader([]byte(content))), nil
	}}
}

// waitRoom waits until c sees a live groupchat message matching.
func waitRoom(ctx context.Context, t *testing.T, c *xmpptest.Client, what string, match func(xmpptest.Message) bool) xmpptest.Message {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	m, err := c.WaitMessage(wctx, func(m xmpptest.Message) bool {
		return m.Type == "groupchat" && m.Forwarded == nil && match(m)
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return m
}

// A component the upload service refuses (Prosody 13 lets only its host's
// users upload unless the admin adds the component) still speaks: the
// message goes out naming the file it could not send, instead of waiting
// at the head of the room's queue, and status says what to change.
func TestRefusedUploadNamesTheFileOnEachServer(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			srv, room, carol := serverWithCarol(ctx, t, kind, testservers.Options{NoComponentUploads: true})
			b, _ := componentBridge(ctx, t, srv, room, newMemStore())
			_, err := b.Deliver(ctx, &bridge.Delivery{Room: room.String(), Event: bridge.Event{
				Kind: bridge.KindMessage, Sender: alice, Text: "see the notes", Time: time.Now(),
				Origin:      bridge.Ref{Network: bridge.NetworkMattermost, Room: "channel", ID: "post-1"},
				Attachments: []bridge.Attachment{textFile("notes.txt", "file from mattermost")},
			}})
			if err != nil {
				t.Fatalf("deliver: %v", err)
			}
			m := waitRoom(ctx, t, carol, "alice's message", func(m xmpptest.Message) bool { return strings.HasPrefix(m.Body, "see the notes") })
			if !strings.Contains(m.Body, "notes.txt") || strings.Contains(m.Raw, "jabber:x:oob") {
				t.Errorf("the room got %q", m.Raw)
			}
			if d := b.Health().Detail; !strings.Contains(d, "refused the bridge's files") {
				t.Errorf("status does not explain: %q", d)
			}
		})
	}
}
