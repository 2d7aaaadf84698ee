package xmpp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
)

// Issue 9 item 3: a file link whose server trickles (here: holds the body
// until the test lets it go) holds up its own room only. Another room's
// message arrives meanwhile, the stream's keepalives go on though hundreds
// of messages queue behind the file, and once the file is in, its room's
// messages follow it in order.
func TestSlowFileHoldsUpItsRoomOnly(t *testing.T) {
	p := prosodytest.Start(t, prosodytest.Options{})
	p.CreateUser(t, "carol", "carol-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	slowRoom, otherRoom := p.RoomJID(t, "slow"), p.RoomJID(t, "other")
	carol := p.Client(t, "carol", "carol-pw")
	for _, r := range []jid.JID{slowRoom, otherRoom} {
		if err := carol.JoinRoom(ctx, r, "Carol"); err != nil {
			t.Fatal(err)
		}
	}

	release, requested := make(chan struct{}), make(chan struct{}, 1)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("the first half, "))
		w.(http.Flusher).Flush()
		select {
		case requested <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("and the rest"))
	}))
	defer files.Close()
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	defer let()

	log := &countingLog{}
	rec := &eventRecorder{}
	got := &filesRead{next: rec, files: map[string]string{}}
	b := startComponent(ctx, t, p, newMemStore(), got, log, func(c *Config) {
		// Pings time out after half the interval: long enough for a
		// loaded machine, short enough to see several below.
		c.Keepalive, c.MaxFileSize = 2*time.Second, 1<<20
	})
	b.mu.Lock()
	b.testAllowPrivateFiles = true
	b.mu.Unlock()
	for _, r := range []jid.JID{slowRoom, otherRoom} {
		if err := b.RoomLinked(ctx, r.String()); err != nil {
			t.Fatal(err)
		}
	}
	texts := func(room jid.JID) []string {
		var out []string
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, ev := range rec.events {
			if ev.Origin.Room == room.String() && ev.Kind == bridge.KindMessage {
				out = append(out, ev.Text)
			}
		}
		return out
	}
	// Wait until the bridge relays both rooms.
	for _, r := range []jid.JID{slowRoom, otherRoom} {
		if _, err := carol.Say(ctx, r, "ready"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the bridge to relay "+r.String(), func() bool { return slices.Contains(texts(r), "ready") })
	}

	url := files.URL + "/notes.txt"
	if err := carol.SendRaw(ctx, fmt.Sprintf(`<message to=%q type="groupchat" id="f1"><body>here: %s</body><x xmlns="jabber:x:oob"><url>%s</url></x></message>`, slowRoom, url, url)); err != nil {
		t.Fatal(err)
	}
	<-requested
	var after []string
	for i := range 300 { // more than the stream's inbound buffer holds
		after = append(after, fmt.Sprintf("after %03d", i))
		if _, err := carol.Say(ctx, slowRoom, after[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := carol.Say(ctx, otherRoom, "meanwhile"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other room's message while the file is still coming", func() bool { return slices.Contains(texts(otherRoom), "meanwhile") })
	if got := texts(slowRoom); len(got) != 1 {
		t.Fatalf("the slow room relayed %q past its file", got[1:])
	}
	time.Sleep(5 * time.Second) // two keepalives
	if n := log.count("XMPP session ended"); n != 0 {
		t.Fatalf("the session ended %d times while the file was coming", n)
	}

	let()
	want := append([]string{"ready", "here:"}, after...)
	waitFor(t, "the slow room's messages", func() bool { return len(texts(slowRoom)) >= len(want) })
	if got := texts(slowRoom); !slices.Equal(got, want) {
		t.Fatalf("the slow room relayed %d messages, want the file's then the rest in order: %q", len(got), got[:min(5, len(got))])
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.files) != 1 || got.files["notes.txt"] != "the first half, and the rest" {
		t.Fatalf("files read by the destination: %q", got.files)
	}
}

// filesRead reads the files of the events it receives, as a destination
// would before they settle, then hands them on.
type filesRead struct {
	next  bridge.Sink
	mu    sync.Mutex
	files map[string]string
}

func (f *filesRead) Receive(ctx context.Context, ev bridge.Event) error {
	for _, a := range ev.Attachments {
		data, err := bridge.ReadAttachment(ctx, a, 0)
		f.mu.Lock()
		f.files[a.Name] = string(data)
		if err != nil {
			f.files[a.Name] = err.Error()
		}
		f.mu.Unlock()
	}
	return f.next.Receive(ctx, ev)
}

// waitFor polls cond until it holds, failing the test after a long guard
// (a failsafe, never an expected duration).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
