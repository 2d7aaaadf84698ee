package slack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

// failsafe bounds every wait: a wait returns as soon as its condition
// holds, and this is only how long a broken bridge gets before the test
// says so. The machine is shared; it is generous on purpose.
const failsafe = 60 * time.Second

// recorder is the core as the bridge sees it: it keeps what it is handed
// and settles it at once, as if every destination had it.
type recorder struct {
	mu     sync.Mutex
	events []bridge.Event
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{})} }

func (r *recorder) Receive(_ context.Context, ev bridge.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
	if ev.Settled != nil {
		ev.Settled()
	}
	return nil
}

func (r *recorder) all() []bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Event(nil), r.events...)
}

// wait returns the events once there are at least n.
func (r *recorder) wait(t *testing.T, n int) []bridge.Event {
	t.Helper()
	deadline := time.NewTimer(failsafe)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		evs, wake := append([]bridge.Event(nil), r.events...), r.wake
		r.mu.Unlock()
		if len(evs) >= n {
			return evs
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("waited for %d events, have %d: %s", n, len(evs), describe(evs))
		}
	}
}

func describe(evs []bridge.Event) string {
	var parts []string
	for _, ev := range evs {
		parts = append(parts, fmt.Sprintf("%s %s %q", ev.Kind, ev.Origin.ID, ev.Text))
	}
	return strings.Join(parts, "; ")
}

// testLogger sends the bridge's log to the test's, and fails the test if
// a line carries a token.
type testLogger struct {
	t       testing.TB
	secrets []string
}

func (l testLogger) log(level, msg string, kv ...any) {
	line := fmt.Sprint(append([]any{level, " ", msg, " "}, kv...)...)
	for _, s := range l.secrets {
		if strings.Contains(line, s) {
			l.t.Errorf("a log line carries a token: %s", level+" "+msg)
		}
	}
	l.t.Log(line)
}

func (l testLogger) Debug(msg string, kv ...any) { l.log("DEBUG", msg, kv...) }
func (l testLogger) Info(msg string, kv ...any)  { l.log("INFO", msg, kv...) }
func (l testLogger) Warn(msg string, kv ...any)  { l.log("WARN", msg, kv...) }
func (l testLogger) Error(msg string, kv ...any) { l.log("ERROR", msg, kv...) }

type harness struct {
	// tune, when set, adjusts each bridge before it starts (test knobs).
	tune   func(*Bridge)
	srv    *slacktest.Server
	st     *store.Store
	b      *Bridge
	rec    *recorder
	alice  slacktest.User
	ch     slacktest.Channel
	linkID string
}

// newHarness starts a Slack test server with alice and the bot in
// #general, linked to a Mattermost channel, and a bridge on it, connected.
func newHarness(t *testing.T, opts slacktest.Options) *harness {
	t.Helper()
	return newTunedHarness(t, opts, nil)
}

// newTunedHarness is newHarness with tune applied to every bridge it
// starts.
func newTunedHarness(t *testing.T, opts slacktest.Options, tune func(*Bridge)) *harness {
	t.Helper()
	srv := slacktest.Start(t, opts)
	h := &harness{srv: srv, st: store.New(memkv.New(nil).Plugin("bridge")), linkID: model.NewId(), tune: tune}
	h.alice = srv.AddUser(slacktest.User{Name: "alice", RealName: "Alice Liddell", Image192: srv.URL + "/avatars/alice.png"})
	h.ch = srv.AddChannel(slacktest.Channel{Name: "general", Members: []string{h.alice.ID, srv.BotUserID()}})
	h.link(t, h.linkID, h.ch.ID)
	h.start(t)
	return h
}

func (h *harness) link(t *testing.T, linkID, channel string) {
	t.Helper()
	if _, err := h.st.AddRemote(linkID, model.NewId(), store.RemoteRoom{Network: bridge.NetworkSlack, Room: channel, LinkedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// start builds and starts a bridge on the harness's server and store and
// waits until it is connected.
func (h *harness) start(t *testing.T) {
	t.Helper()
	h.startWith(t, Config{BotToken: h.srv.BotToken(), AppToken: h.srv.AppToken(), APIURL: h.srv.APIURL(), MaxFileSize: 1 << 20})
	waitState(t, h.b, bridge.StateConnected)
}

func (h *harness) startWith(t *testing.T, cfg Config) {
	t.Helper()
	b, err := New(cfg, h.st, testLogger{t: t, secrets: []string{h.srv.BotToken(), h.srv.AppToken()}})
	if err != nil {
		t.Fatal(err)
	}
	if h.tune != nil {
		h.tune(b)
	}
	h.b, h.rec = b, newRecorder()
	if err := b.Start(context.Background(), h.rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stop(t, b) })
}

func (h *harness) stop(t *testing.T, b *Bridge) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	if err := b.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// eventually polls cond until it holds, failing after the failsafe.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failsafe)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t *testing.T, b *Bridge, want bridge.State) bridge.Health {
	t.Helper()
	var h bridge.Health
	eventually(t, "state "+string(want), func() bool {
		h = b.Health()
		return h.State == want
	})
	return h
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	t.Cleanup(cancel)
	return ctx
}

// deliver is a Mattermost person's event for the Slack channel.
func (h *harness) delivery(kind bridge.Kind, text string) *bridge.Delivery {
	return &bridge.Delivery{
		Event: bridge.Event{
			Kind:   kind,
			Origin: bridge.Ref{Network: bridge.NetworkMattermost, Room: h.linkID, ID: model.NewId()},
			Sender: bridge.Sender{Network: bridge.NetworkMattermost, ID: "mm-bob", Username: "bob", DisplayName: "Bob Builder"},
			Text:   text,
			Time:   time.Now(),
		},
		Room: h.ch.ID,
	}
}

// assertNoSecrets fails when a token shows in what an admin can read.
func (h *harness) assertNoSecrets(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, h.srv.BotToken()) || strings.Contains(s, h.srv.AppToken()) {
			t.Errorf("a token shows in %q", s)
		}
	}
}
