package slack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

func TestRedeliveredEventsAreHandledOnce(t *testing.T) {
	h := newHarness(t, slacktest.Options{AckTimeout: 300 * time.Millisecond})
	s := h.srv

	// Slack's at-least-once delivery: an acknowledged event sent again.
	s.Post(h.alice.ID, h.ch.ID, "once")
	h.rec.wait(t, 1)
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	first := s.Deliveries()[len(s.Deliveries())-1]
	if !s.Redeliver(first.EventID) {
		t.Fatal("nothing to redeliver")
	}
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	// An envelope not acknowledged in time comes again while the first
	// copy is still being handled.
	release := make(chan struct{})
	var once sync.Once
	h.b.testHookAfterReceive = func() { once.Do(func() { <-release }) }
	s.Post(h.alice.ID, h.ch.ID, "slow")
	if err := s.WaitFor(ctxT(t), "a redelivery", func() bool {
		ds := s.Deliveries()
		return len(ds[len(ds)-1].Envelopes) >= 2
	}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// A marker behind them proves the copies were handled (and dropped).
	s.Post(h.alice.ID, h.ch.ID, "marker")
	h.rec.wait(t, 3)
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	evs := h.rec.all()
	if len(evs) != 3 || evs[0].Text != "once" || evs[1].Text != "slow" || evs[2].Text != "marker" {
		t.Fatalf("events: %s", describe(evs))
	}
}

// TestRefreshAndDropKeepEveryMessageOnceInOrder posts while Slack asks for
// a new socket and while the socket drops: every message arrives once, in
// the order it was posted. Slack's one socket a minute would make it slow:
// the server allows one every 100 ms instead, and the bridge paces itself
// to that (TestSocketOpensKeepToTier1 keeps the real limit).
func TestRefreshAndDropKeepEveryMessageOnceInOrder(t *testing.T) {
	const every = 100 * time.Millisecond
	h := newTunedHarness(t, slacktest.Options{AckTimeout: 500 * time.Millisecond}, func(b *Bridge) {
		b.openPace = newPacer(every, 1)
	})
	s := h.srv
	s.SetRateLimit("apps.connections.open", int(time.Minute/every), 1)
	var want []string
	post := func(from, to int) {
		for i := from; i < to; i++ {
			text := fmt.Sprintf("m%02d", i)
			s.Post(h.alice.ID, h.ch.ID, text)
			want = append(want, text)
		}
	}
	post(0, 10)
	s.RequestRefresh()
	post(10, 20)
	// The drop comes once the refresh is over: the new socket said hello
	// while the old one was still open. (Dropping a socket still opening
	// would test a drop during a refresh, not a refresh then a drop.)
	eventually(t, "the refreshed socket's hello while the old socket is open", func() bool { return h.b.overlap.Load() >= 2 })
	post(20, 30)
	s.DropConnections()
	post(30, 40)
	h.rec.wait(t, 40)
	post(40, 45)
	h.rec.wait(t, 45)
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range h.rec.all() {
		got = append(got, ev.Text)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	waitState(t, h.b, bridge.StateConnected)
	hl := h.b.Health()
	if !strings.Contains(hl.Detail, "reconnections: 1, refreshes: 1") {
		t.Errorf("health detail = %q", hl.Detail)
	}
	if n := s.RateLimited("apps.connections.open"); n != 0 {
		t.Errorf("apps.connections.open was answered 429 %d times", n)
	}
}

func TestRefusedTokensStopTheBridgeWithAClearError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(s *slacktest.Server, cfg *Config)
		want  string
	}{
		{"bot token", func(s *slacktest.Server, cfg *Config) { cfg.BotToken = "xoxb-1-2-wrong" }, "bot token (xoxb-)"},
		{"app token", func(s *slacktest.Server, cfg *Config) { cfg.AppToken = "xapp-1-A1-2-wrong" }, "app-level token (xapp-)"},
		{"deactivated bot", func(s *slacktest.Server, _ *Config) { s.DeactivateToken(s.BotToken()) }, "account_inactive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := slacktest.Start(t, slacktest.Options{})
			h := &harness{srv: srv, st: store.New(memkv.New(nil).Plugin("bridge"))}
			cfg := Config{BotToken: srv.BotToken(), AppToken: srv.AppToken(), APIURL: srv.APIURL()}
			tc.spoil(srv, &cfg)
			h.startWith(t, cfg)
			hl := waitState(t, h.b, bridge.StateError)
			if !strings.Contains(hl.LastError, tc.want) || !strings.Contains(hl.LastError, "replace it") {
				t.Errorf("last error = %q", hl.LastError)
			}
			select {
			case <-h.b.runDone:
			case <-time.After(failsafe):
				t.Fatal("the bridge keeps trying with a refused token")
			}
			if n := srv.CallCount("auth.test") + srv.CallCount("apps.connections.open"); n > 2 {
				t.Errorf("%d attempts with a refused token", n)
			}
			if _, err := h.b.Deliver(ctxT(t), &bridge.Delivery{Event: bridge.Event{Kind: bridge.KindMessage, Text: "x"}, Room: "C1"}); err == nil || bridge.IsPermanent(err) {
				t.Errorf("a delivery while the token is refused should wait: %v", err)
			}
			h.assertNoSecrets(t, hl.LastError, hl.Detail)
		})
	}
}

func TestMalformedEnvelopesAreIgnored(t *testing.T) {
	h := newHarness(t, slacktest.Options{})
	s := h.srv
	s.SendRaw("not json at all")
	s.SendRaw(`{"type":"events_api","payload":{}}`)
	s.SendRaw(`{"type":"events_api","envelope_id":"e1","payload":"garbage"}`)
	s.SendRaw(`{"type":"events_api","envelope_id":"e2","payload":{"type":"event_callback","team_id":"` + s.Team().ID + `","event_id":"Ev1","event":{"type":"message","channel":"` + h.ch.ID + `","user":"U1","text":"x","ts":"not-a-ts"}}}`)
	s.SendRaw(`{"type":"events_api","envelope_id":"e3","payload":{"type":"event_callback","team_id":"` + s.Team().ID + `","event_id":"Ev2","event":{"type":"reaction_added","item":{"type":"message"}}}}`)
	s.Post(h.alice.ID, h.ch.ID, "still here")
	evs := h.rec.wait(t, 1)
	if len(evs) != 1 || evs[0].Text != "still here" {
		t.Fatalf("events: %s", describe(evs))
	}
	eventually(t, "the malformed events counted", func() bool {
		return strings.Contains(h.b.Health().Detail, "5 malformed events ignored")
	})
	if st := h.b.Health().State; st != bridge.StateConnected {
		t.Errorf("state = %s", st)
	}
	// Acknowledged, or Slack would send them again and again.
	if err := s.WaitFor(ctxT(t), "the malformed envelopes acknowledged", func() bool {
		acked := map[string]bool{}
		for _, a := range s.Acks() {
			acked[a.EnvelopeID] = true
		}
		return acked["e1"] && acked["e2"] && acked["e3"]
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCatchUpAfterDowntime: the bridge is off while Slack people post; the
// next one reads what it missed from the history, once and in order.
func TestCatchUpAfterDowntime(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	s := h.srv
	parent := s.Post(h.alice.ID, h.ch.ID, "before")
	h.rec.wait(t, 1)
	eventually(t, "the cursor saved", func() bool {
		v, ok, _ := h.st.GetCursor(h.linkID, cursorKey(h.ch.ID))
		return ok && v == parent
	})
	h.stop(t, h.b)

	var want []string
	for i := range 20 {
		text := fmt.Sprintf("missed %02d", i)
		if i == 7 {
			s.Reply(h.alice.ID, h.ch.ID, parent, text)
		} else {
			s.Post(h.alice.ID, h.ch.ID, text)
		}
		want = append(want, text)
	}
	// The test server also sends the events it queued while no socket was
	// open (Slack would have given up on them): the history is read
	// first, and those copies are recognised and dropped.
	h.start(t)
	h.rec.wait(t, 20)
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.Post(h.alice.ID, h.ch.ID, "live")
	want = append(want, "live")
	h.rec.wait(t, 21)
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range h.rec.all() {
		got = append(got, ev.Text)
		if ev.Text == "missed 07" && ev.Parent != parent {
			t.Errorf("the reply lost its thread: %+v", ev)
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if n := s.CallCount("conversations.history"); n == 0 {
		t.Error("the history was not read")
	}
}

// TestSocketOpensKeepToTier1 runs the test server with Slack's real limit
// on apps.connections.open (Tier 1: one a minute) through a refresh and a
// drop: the bridge waits its turn instead of earning a 429, says in its
// health until when it waits, and no message is lost or doubled. It waits
// out two minutes of Slack's limit, so it runs beside the other tests.
func TestSocketOpensKeepToTier1(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slacktest.Options{})
	s := h.srv
	// Two minutes of Slack's own limit come on top of the usual failsafe.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+failsafe)
	defer cancel()
	var want []string
	n := 0
	post := func(k int) {
		for range k {
			text := fmt.Sprintf("m%02d", n)
			n++
			s.Post(h.alice.ID, h.ch.ID, text)
			want = append(want, text)
		}
	}
	post(5)
	s.RequestRefresh()
	eventually(t, "the bridge to say it waits to reconnect", func() bool {
		return strings.Contains(h.b.Health().Detail, "waiting to reconnect until")
	})
	post(5)
	if err := s.WaitFor(ctx, "the refreshed socket", func() bool { return s.ConnectionsOpened() >= 2 }); err != nil {
		t.Fatal(err)
	}
	waitState(t, h.b, bridge.StateConnected)
	post(5)
	s.DropConnections()
	post(5)
	if err := s.WaitFor(ctx, "the socket after the drop", func() bool { return s.ConnectionsOpened() >= 3 }); err != nil {
		t.Fatal(err)
	}
	post(5)
	if err := s.WaitFor(ctx, "every message handed on", func() bool { return len(h.rec.all()) >= len(want) }); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range h.rec.all() {
		got = append(got, ev.Text)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if n := s.RateLimited("apps.connections.open"); n != 0 {
		t.Errorf("apps.connections.open was answered 429 %d times", n)
	}
	waitState(t, h.b, bridge.StateConnected)
	if d := h.b.Health().Detail; strings.Contains(d, "waiting to reconnect") {
		t.Errorf("connected, and the health still says it waits: %q", d)
	}
}

// TestCatchUpReadsLongThreadsWhole: while the bridge is off, two threads
// get more replies than one page of conversations.replies holds (the
// bridge asks for 200 a page): one started before the bridge stopped, one
// during. The catch-up follows the cursors to the end and hands every
// reply on once, in order.
func TestCatchUpReadsLongThreadsWhole(t *testing.T) {
	h := newHarness(t, slacktest.Options{NoRateLimits: true})
	s := h.srv
	old := s.Post(h.alice.ID, h.ch.ID, "old thread")
	h.rec.wait(t, 1)
	eventually(t, "the cursor saved", func() bool {
		v, ok, _ := h.st.GetCursor(h.linkID, cursorKey(h.ch.ID))
		return ok && v == old
	})
	h.stop(t, h.b)

	const replies = 230
	want := []string{}
	fresh := s.Post(h.alice.ID, h.ch.ID, "new thread")
	want = append(want, "new thread")
	for i := range replies {
		for _, th := range []struct{ ts, name string }{{old, "old"}, {fresh, "new"}} {
			text := fmt.Sprintf("%s reply %03d", th.name, i)
			s.Reply(h.alice.ID, h.ch.ID, th.ts, text)
			want = append(want, text)
		}
	}
	s.Post(h.alice.ID, h.ch.ID, "after the threads")
	want = append(want, "after the threads")

	h.start(t)
	h.rec.wait(t, len(want))
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// A marker behind everything proves no late copy is still coming.
	s.Post(h.alice.ID, h.ch.ID, "marker")
	want = append(want, "marker")
	h.rec.wait(t, len(want))
	if err := s.WaitAcked(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range h.rec.all() {
		got = append(got, ev.Text)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%d events, want %d\ngot  %q\nwant %q", len(got), len(want), got, want)
	}
	pages := 0
	for _, c := range s.Calls() {
		if c.Method == "conversations.replies" && c.Params["cursor"] != "" {
			pages++
		}
	}
	if pages < 2 {
		t.Errorf("%d follow-up pages of conversations.replies read; the test meant each thread to need one", pages)
	}
}
