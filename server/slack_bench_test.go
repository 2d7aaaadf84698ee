package main

// Benchmarks of the Slack message path, side by side with the Slack test
// server's own figures measured in the same run:
//
//	BenchmarkSlackAlone/inbound    a person's post -> test server -> Socket Mode event at slack-go's socketmode client
//	BenchmarkSlackAlone/outbound   chat.postMessage (slack-go's Web API client) -> the message visible in the channel
//	BenchmarkSlackToMattermost     a person's post -> Socket Mode -> bridge -> post in the linked channel
//	BenchmarkMattermostToSlack     node.CreatePost -> hook (real RPC) -> bridge -> chat.postMessage -> visible in the channel
//	BenchmarkMattermostToSlackLimited  the same, burst only, under Slack's rate limits
//
// SlackAlone/inbound is the floor of SlackToMattermost, SlackAlone/outbound
// that of MattermostToSlack. Loads and metrics are bench_test.go's, and
// the Mattermost-side receipt by polling (poll-ms) that of the XMPP
// benchmarks (xmpp_bench_test.go). The Slack -> Mattermost runs also
// report redelivered: events the test server sent again because their
// envelope was not acknowledged within its 3 s (the bridge acknowledges an
// envelope only once the event was handled); the Mattermost -> Slack runs
// report rate-limited, the chat.postMessage calls answered with 429.
//
// Rate limits: the test server enforces Slack's documented limits
// (chat.postMessage one a second per channel, after a burst of three), so
// a benchmark of the bridge's own cost would measure Slack's limit. Every
// benchmark but the last runs its test server with
// slacktest.Options{NoRateLimits: true}, and the bridge then does not pace
// itself either (slack.UnpacedDescriptor). BenchmarkMattermostToSlackLimited
// keeps them on to show what the bridge does under them: its msgs/s is
// Slack's limit, and lost and reordered must be 0; rate-limited counts the
// 429 answers the bridge got (and waited out, as Retry-After says). It runs a second per
// message, so give it a small -benchtime (20x); make bench leaves it out.
//
// Like every benchmark of the package, it runs without the tests' replica
// lag (see TestMain): with it a serial message waits for the replica twice,
// once in the bridge (which reads a new post back before relaying it) and
// once in the benchmark's poll of the channel, and the figures are the lag,
// not the bridge.
//
// Setup is outside the timer: one test server per benchmark invocation
// (with one person, sam), for the bridge the test host with the plugin
// connected to it by Socket Mode, and for every run a fresh Slack channel
// (sam and the app's bot in it), for the bridge linked with a fresh
// Mattermost channel, and a warm-up message in the measured direction
// (which, for the bridge, creates sam's Mattermost user or its first
// ghost names).
//
// Receipt on the Slack side is when a wait of the test server first saw
// the message in the channel (woken by the server's own change
// notification, no polling); on the socket, when slack-go's client handed
// the event over (it is acknowledged right after). A person's post (Post)
// and a chat.postMessage answer only once the message is stored, as in
// Slack, so a burst's sender is never ahead of the server (and the
// outbound floor's msgs/s is one client's chat.postMessage round trip,
// while its latency ends when the message is stored, before the answer is
// back); in MattermostToSlack the posts are created at once and queue in
// the bridge, which sends to a channel one message at a time: its burst
// p50/p99 are queueing, and their ratios to the floor say little.
//
// Run with make bench (build/bench/run.sh), or:
//
//	go test -run '^$' -bench 'SlackAlone|SlackToMattermost|MattermostToSlack$' -benchtime 200x -count 3 ./server/
//	go test -run '^$' -bench 'MattermostToSlackLimited' -benchtime 20x -count 1 ./server/

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// slackBench is a Slack test server with one person (sam) and, for the
// bridge benchmarks, the test host with the plugin connected to it.
type slackBench struct {
	ctx   context.Context
	slack *slacktest.Server
	sam   slacktest.User
	runs  int

	s     *testhost.Server
	n     *testhost.Node
	api   *testhost.API
	team  *model.Team
	admin *model.User
	alice *model.User
	bob   *model.User
}

func newSlackBench(b *testing.B, opts slacktest.Options) *slackBench {
	b.Helper()
	h := &slackBench{}
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithCancel(context.Background())
	b.Cleanup(cancel)
	h.slack = slacktest.Start(b, opts)
	h.sam = h.slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	return h
}

// newSlackBridgeBench adds the test host with the plugin, connected to the
// test server.
func newSlackBridgeBench(b *testing.B, opts slacktest.Options) *slackBench {
	b.Helper()
	h := newSlackBench(b, opts)
	// Without the server's rate limits the bridge does not pace itself
	// either (a plugin built with the slackunpaced tag), so the figures
	// are the bridge's, not Slack's one message a second per channel.
	var tags []string
	if opts.NoRateLimits {
		tags = []string{"slackunpaced"}
	}
	h.s = testhost.NewServer(b, testhost.WithBundle(benchBundle(b, tags...)), testhost.WithPluginSettings(slackSettings(h.slack)))
	h.n = h.s.Node(0)
	if err := h.n.Activate(); err != nil {
		b.Fatal(err)
	}
	h.api = h.n.API(manifest.Id)
	h.team = h.s.DefaultTeam()
	h.admin, h.alice, h.bob = createPeople(h.s)
	waitConnected(b, h.n, h.admin, h.s.ChannelByName(h.team.Id, "town-square"), "slackbridge", "Slack")
	return h
}

// channel makes a fresh Slack channel with sam and the app's bot in it,
// and returns it with a tag unique to the run.
func (h *slackBench) channel() (slacktest.Channel, string) {
	h.runs++
	tag := fmt.Sprintf("sl%d", h.runs)
	ch := h.slack.AddChannel(slacktest.Channel{Name: tag, Members: []string{h.sam.ID}})
	h.slack.InviteBot(h.sam.ID, ch.ID)
	return ch, tag
}

// link makes a fresh Slack channel and a fresh Mattermost channel (admin,
// alice and bob in it) and links them.
func (h *slackBench) link(b *testing.B) (sch slacktest.Channel, ch *model.Channel, tag string) {
	b.Helper()
	sch, tag = h.channel()
	ch = channelOf(h.s, tag, h.admin, h.alice, h.bob)
	runCommand(b, h.n, h.admin, ch, "/slackbridge map "+sch.ID, "Linked this channel")
	return sch, ch, tag
}

// awaitArrivals waits until k messages arrived.
func awaitArrivals(b *testing.B, arrived <-chan benchArrival, k int, what string) {
	b.Helper()
	timeout := time.After(benchSetupWait)
	for range k {
		select {
		case <-arrived:
		case <-timeout:
			b.Fatalf("%s did not arrive", what)
		}
	}
}

// watchSlack reports the messages "<tag> <i>" in a Slack channel, in the
// channel's order, at the time a wait of the test server first saw them. The
// test server wakes its waits on every change, so this does not poll.
func watchSlack(ctx context.Context, srv *slacktest.Server, channel, tag string, n int) <-chan benchArrival {
	out := benchArrivals(n)
	go func() {
		scanned := 0
		_ = srv.WaitFor(ctx, "benchmark messages", func() bool {
			msgs := srv.Messages(channel)
			now := time.Now()
			for _, m := range msgs[min(scanned, len(msgs)):] {
				if i, ok := benchIndex(m.Text, tag, n); ok {
					benchArrived(ctx, out, benchArrival{i, now})
				}
			}
			scanned = len(msgs)
			return false
		})
	}()
	return out
}

// --- the test server alone ---------------------------------------------------------

// socketFloor is slack-go's socketmode client on the test server, the
// independent Socket Mode client the inbound floor is measured with: it
// acknowledges every envelope as soon as the client hands it over, and
// passes the message events to the current watch.
type socketFloor struct {
	mu    sync.Mutex
	watch func(text string, at time.Time)
}

func runSocketFloor(b *testing.B, h *slackBench) *socketFloor {
	b.Helper()
	api := slack.New(h.slack.BotToken(), slack.OptionAPIURL(h.slack.APIURL()), slack.OptionAppLevelToken(h.slack.AppToken()))
	sm := socketmode.New(api)
	f := &socketFloor{}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sm.RunContext(ctx)
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sm.Events:
				if ev.Type != socketmode.EventTypeEventsAPI || ev.Request == nil {
					continue
				}
				now := time.Now()
				_ = sm.Ack(*ev.Request)
				api, ok := ev.Data.(slackevents.EventsAPIEvent)
				if !ok {
					continue
				}
				if m, ok := api.InnerEvent.Data.(*slackevents.MessageEvent); ok {
					f.mu.Lock()
					if f.watch != nil {
						f.watch(m.Text, now)
					}
					f.mu.Unlock()
				}
			}
		}
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	wctx, wcancel := context.WithTimeout(h.ctx, benchSetupWait)
	defer wcancel()
	if err := h.slack.WaitConnections(wctx, 1); err != nil {
		b.Fatal(err)
	}
	return f
}

// watchFor reports the message events "<tag> <i>" from now on, replacing
// the previous watch.
func (f *socketFloor) watchFor(tag string, n int) <-chan benchArrival {
	out := benchArrivals(n)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watch = func(text string, at time.Time) {
		if i, ok := benchIndex(text, tag, n); ok {
			out <- benchArrival{i, at}
		}
	}
	return out
}

// BenchmarkSlackAlone is the floor, the test server's own round trips,
// with the same server options as the bridge benchmarks (no rate limits):
//
//	inbound   sam posts (Post, as a person's Slack client would); the
//	          message event reaches slack-go's socketmode client.
//	outbound  chat.postMessage with a custom username, as the bridge sends
//	          it, from slack-go's Web API client; the message is visible in
//	          the channel. The socketmode client stays connected and
//	          acknowledges the echo events, as the bridge does.
func BenchmarkSlackAlone(b *testing.B) {
	h := newSlackBench(b, slacktest.Options{NoRateLimits: true})
	floor := runSocketFloor(b, h)
	web := slack.New(h.slack.BotToken(), slack.OptionAPIURL(h.slack.APIURL()))
	b.Run("inbound", func(b *testing.B) {
		for _, load := range benchLoads {
			b.Run(load.name, func(b *testing.B) {
				sch, tag := h.channel()
				// Warm-up: one message through the channel before timing.
				warm := floor.watchFor(tag+"warm", 1)
				h.slack.Post(h.sam.ID, sch.ID, tag+"warm 0")
				awaitArrivals(b, warm, 1, "the warm-up message")

				arrived := floor.watchFor(tag, b.N)
				b.ResetTimer()
				run := benchDrive(b, b.N, load, func(i int) error {
					h.slack.Post(h.sam.ID, sch.ID, tag+" "+strconv.Itoa(i))
					return nil
				}, arrived)
				b.StopTimer()
				benchReport(b, run, nil)
			})
		}
	})
	b.Run("outbound", func(b *testing.B) {
		for _, load := range benchLoads {
			b.Run(load.name, func(b *testing.B) {
				sch, tag := h.channel()
				say := func(text string) error {
					_, _, err := web.PostMessageContext(h.ctx, sch.ID, slack.MsgOptionText(text, false), slack.MsgOptionUsername("Alice Liddell"))
					return err
				}
				wctx, wcancel := context.WithCancel(h.ctx)
				defer wcancel()
				warm := watchSlack(wctx, h.slack, sch.ID, tag+"warm", 1)
				if err := say(tag + "warm 0"); err != nil {
					b.Fatal(err)
				}
				awaitArrivals(b, warm, 1, "the warm-up message")

				arrived := watchSlack(wctx, h.slack, sch.ID, tag, b.N)
				b.ResetTimer()
				run := benchDrive(b, b.N, load, func(i int) error {
					return say(tag + " " + strconv.Itoa(i))
				}, arrived)
				b.StopTimer()
				benchReport(b, run, nil)
			})
		}
	})
}

// --- the bridge --------------------------------------------------------------

// redeliveredSince counts the events queued after the first `from` that
// the test server had to send more than once.
func redeliveredSince(srv *slacktest.Server, from int) int {
	n := 0
	ds := srv.Deliveries()
	for _, d := range ds[min(from, len(ds)):] {
		if len(d.Envelopes) > 1 {
			n++
		}
	}
	return n
}

// BenchmarkSlackToMattermost: sam posts in the linked Slack channel; a
// message arrives when its post is in the Mattermost channel.
func BenchmarkSlackToMattermost(b *testing.B) {
	h := newSlackBridgeBench(b, slacktest.Options{NoRateLimits: true})
	for _, load := range benchLoads {
		b.Run(load.name, func(b *testing.B) {
			sch, ch, tag := h.link(b)
			wctx, wcancel := context.WithCancel(h.ctx)
			defer wcancel()
			// Warm-up: sam has his Mattermost user.
			warm, _ := watchChannel(wctx, h.api, ch.Id, tag+"warm", 1)
			h.slack.Post(h.sam.ID, sch.ID, tag+"warm 0")
			awaitArrivals(b, warm, 1, "sam's warm-up message")

			deliveries, calls := len(h.slack.Deliveries()), len(h.slack.Calls())
			arrived, poll := watchChannel(wctx, h.api, ch.Id, tag, b.N)
			use := pluginUsed(b, h.n)
			b.ResetTimer()
			run := benchDrive(b, b.N, load, func(i int) error {
				h.slack.Post(h.sam.ID, sch.ID, tag+" "+strconv.Itoa(i))
				return nil
			}, arrived)
			b.StopTimer()
			extra := use.perMessage(b, h.n)
			extra["poll-ms"] = float64(poll.period()) / float64(time.Millisecond)
			extra["redelivered"] = float64(redeliveredSince(h.slack, deliveries))
			extra["slack-req/msg"] = float64(len(h.slack.Calls())-calls) / float64(b.N)
			benchReport(b, run, extra)
		})
	}
}

// mattermostToSlack runs one load of Mattermost -> Slack: alice and bob
// take turns posting in the linked channel (CreatePost fires the plugin's
// hooks through the RPC boundary); a message arrives when it is visible in
// the Slack channel.
func (h *slackBench) mattermostToSlack(b *testing.B, load benchLoad) {
	b.Helper()
	sch, ch, tag := h.link(b)
	wctx, wcancel := context.WithCancel(h.ctx)
	defer wcancel()
	users := []*model.User{h.alice, h.bob}
	// Warm-up: one post each, through the bridge's queue for the link.
	warm := watchSlack(wctx, h.slack, sch.ID, tag+"warm", len(users))
	for i, u := range users {
		postAs(b, h.n, u, ch, tag+"warm "+strconv.Itoa(i), "")
	}
	awaitArrivals(b, warm, len(users), "the warm-up posts")

	calls := len(h.slack.Calls())
	arrived := watchSlack(wctx, h.slack, sch.ID, tag, b.N)
	use := pluginUsed(b, h.n)
	b.ResetTimer()
	run := benchDrive(b, b.N, load, func(i int) error {
		if _, appErr := h.n.CreatePost(&model.Post{UserId: users[i%2].Id, ChannelId: ch.Id, Message: tag + " " + strconv.Itoa(i)}); appErr != nil {
			return appErr
		}
		return nil
	}, arrived)
	b.StopTimer()
	limited := 0
	for _, c := range h.slack.Calls()[calls:] {
		if c.Method == "chat.postMessage" && c.Status == 429 {
			limited++
		}
	}
	extra := use.perMessage(b, h.n)
	extra["rate-limited"] = float64(limited)
	extra["slack-req/msg"] = float64(len(h.slack.Calls())-calls) / float64(b.N)
	benchReport(b, run, extra)
}

// BenchmarkMattermostToSlack: Mattermost posts to the linked Slack channel,
// without rate limits (see the file's comment).
func BenchmarkMattermostToSlack(b *testing.B) {
	h := newSlackBridgeBench(b, slacktest.Options{NoRateLimits: true})
	for _, load := range benchLoads {
		b.Run(load.name, func(b *testing.B) {
			h.mattermostToSlack(b, load)
		})
	}
}

// BenchmarkMattermostToSlackLimited: the burst of BenchmarkMattermostToSlack
// under Slack's rate limits (chat.postMessage: a burst of three, then one a
// second per channel). Nothing may be lost or reordered; msgs/s is Slack's
// limit, not the bridge's.
func BenchmarkMattermostToSlackLimited(b *testing.B) {
	h := newSlackBridgeBench(b, slacktest.Options{})
	b.Run("burst", func(b *testing.B) {
		h.mattermostToSlack(b, benchLoad{name: "burst"})
	})
}
