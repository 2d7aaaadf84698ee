package main

// Benchmarks of the XMPP message path, side by side with Prosody's own
// figure measured in the same run:
//
//	BenchmarkProsodyRoomToOccupant  one XMPP client -> Prosody room -> another occupant
//	BenchmarkXMPPToMattermost       carol -> Prosody room -> bridge -> post in the linked channel
//	BenchmarkXMPPToMattermostRooms  the same, burst, spread over benchRooms linked rooms
//	BenchmarkMattermostToXMPP       node.CreatePost -> hook (real RPC) -> bridge -> Prosody room -> carol
//
// Loads and metrics: see bench_test.go. Setup (Prosody, the test host, a
// fresh room and channel linked for each run, a warm-up message each way)
// is outside the timer.
//
// Receipt on the XMPP side is when the occupant's client recorded the
// stanza (woken by its notification channel, no polling). Receipt on the
// Mattermost side is when a poll of the test host's posts first saw the
// post: the host has no notification for new posts, so the channel is
// polled every benchPoll, which adds up to one poll interval (plus the
// poll's own cost) to every Mattermost-side latency: half a period on
// average. BenchmarkXMPPToMattermost reports the actual mean period as
// poll-ms. A poll costs more as the channel grows (the test host scans and
// sorts the channel's posts), so keep b.N in the hundreds.
//
// Above the plugin's QueueSize (1000 by default), MattermostToXMPP burst
// overflows the bridge's per-room delivery queue and reports lost messages:
// that is the bridge's behaviour, not the benchmark's.
//
// Run with make bench (build/bench/run.sh), or:
//
//	go test -run '^$' -bench 'Prosody|XMPPTo|ToXMPP' -benchtime 500x -count 3 ./server/

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// watchOccupant reports the groupchat messages "<tag> <i>" c receives live
// from room, at the time c recorded them.
func watchOccupant(ctx context.Context, c *prosodytest.Client, room jid.JID, tag string, n int) <-chan benchArrival {
	out := benchArrivals(n)
	go func() {
		_, _ = c.WaitMessage(ctx, func(m prosodytest.Message) bool {
			now := time.Now()
			if m.Type != "groupchat" || m.Forwarded != nil || m.Delayed || !m.From.Bare().Equal(room) {
				return false
			}
			if i, ok := benchIndex(m.Body, tag, n); ok {
				benchArrived(ctx, out, benchArrival{i, now})
			}
			return false
		})
	}()
	return out
}

// channelPoll counts the polls of watchChannel, to report their actual
// period (the granularity of Mattermost-side receipt times).
type channelPoll struct {
	start time.Time
	polls atomic.Int64
}

// period is the mean time between polls so far.
func (p *channelPoll) period() time.Duration {
	n := p.polls.Load()
	if n == 0 {
		return 0
	}
	return time.Since(p.start) / time.Duration(n)
}

// watchChannel polls the channel every benchPoll for posts "<tag> <i>" and
// reports each post once, in the order they were made, at the time a poll
// first saw it. It asks only for posts changed since the newest one seen,
// so a poll copies few posts.
func watchChannel(ctx context.Context, api *testhost.API, channelID, tag string, n int) (<-chan benchArrival, *channelPoll) {
	out := benchArrivals(n)
	poll := &channelPoll{start: time.Now()}
	go func() {
		seen := map[string]bool{}
		var since int64
		t := time.NewTicker(benchPoll)
		defer t.Stop()
		for {
			list, appErr := api.GetPostsSince(channelID, since)
			now := time.Now()
			poll.polls.Add(1)
			if appErr == nil {
				newest := since + 1
				var fresh []*model.Post
				for _, p := range list.Posts {
					newest = max(newest, p.UpdateAt)
					if !seen[p.Id] {
						seen[p.Id] = true
						fresh = append(fresh, p)
					}
				}
				// GetPostsSince does not order its answer.
				slices.SortFunc(fresh, func(a, b *model.Post) int { return cmp.Compare(a.CreateAt, b.CreateAt) })
				for _, p := range fresh {
					if i, ok := benchIndex(p.Message, tag, n); ok {
						benchArrived(ctx, out, benchArrival{i, now})
					}
				}
				since = newest - 1 // the newest again, and anything after it
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return out, poll
}

// --- Prosody alone -------------------------------------------------------------

// BenchmarkProsodyRoomToOccupant is the baseline: carol sends groupchat
// messages into a room, dave (another occupant, on his own client) receives
// them. Same Prosody configuration as the bridge benchmarks.
func BenchmarkProsodyRoomToOccupant(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	p := prosodytest.Start(b, prosodytest.Options{})
	p.CreateUser(b, "carol", "carol-pw")
	p.CreateUser(b, "dave", "dave-pw")
	carol := p.Client(b, "carol", "carol-pw")
	dave := p.Client(b, "dave", "dave-pw")
	runs := 0
	for _, load := range benchLoads {
		b.Run(load.name, func(b *testing.B) {
			runs++
			tag := fmt.Sprintf("prosody%d", runs)
			room := p.RoomJID(b, tag)
			jctx, jcancel := context.WithTimeout(ctx, benchSetupWait)
			defer jcancel()
			if err := carol.JoinRoom(jctx, room, "Carol"); err != nil {
				b.Fatal(err)
			}
			if err := dave.JoinRoom(jctx, room, "Dave"); err != nil {
				b.Fatal(err)
			}
			// Warm-up: one message through the room before timing.
			warm := watchOccupant(jctx, dave, room, tag+"warm", 1)
			if _, err := carol.Say(jctx, room, tag+"warm 0"); err != nil {
				b.Fatal(err)
			}
			select {
			case <-warm:
			case <-jctx.Done():
				b.Fatal("the warm-up message did not reach dave")
			}

			wctx, wcancel := context.WithCancel(ctx)
			defer wcancel()
			arrived := watchOccupant(wctx, dave, room, tag, b.N)
			b.ResetTimer()
			run := benchDrive(b, b.N, load, func(i int) error {
				_, err := carol.Say(ctx, room, tag+" "+strconv.Itoa(i))
				return err
			}, arrived)
			b.StopTimer()
			benchReport(b, run, nil)
		})
	}
}

// --- the bridge --------------------------------------------------------------

// benchBridge is Prosody plus the plugin in a test host (its bundle, in a
// process of its own), with carol on her own XMPP client and three
// Mattermost users. Each run links a fresh channel with a fresh room.
type benchBridge struct {
	ctx     context.Context
	prosody *prosodytest.Server
	s       *testhost.Server
	n       *testhost.Node
	api     *testhost.API
	team    *model.Team
	admin   *model.User
	alice   *model.User
	bob     *model.User
	carol   *prosodytest.Client
	runs    int
}

func newBenchBridge(b *testing.B, mode string) *benchBridge {
	b.Helper()
	h := &benchBridge{}
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithCancel(context.Background())
	b.Cleanup(cancel)
	h.prosody = prosodytest.Start(b, prosodytest.Options{})
	h.prosody.CreateUser(b, "bridge", bridgePassword)
	h.prosody.CreateUser(b, "carol", "carol-pw")
	h.carol = h.prosody.Client(b, "carol", "carol-pw")

	h.s = testhost.NewServer(b, testhost.WithBundle(benchBundle(b)), testhost.WithPluginSettings(xmppSettings(h.prosody, mode)))
	h.n = h.s.Node(0)
	if err := h.n.Activate(); err != nil {
		b.Fatal(err)
	}
	h.api = h.n.API(manifest.Id)
	h.team = h.s.DefaultTeam()
	h.admin, h.alice, h.bob = createPeople(h.s)
	testhost.WaitFor(b, benchSetupWait, func() bool {
		ch := h.s.ChannelByName(h.team.Id, "town-square")
		resp, _ := h.n.ExecuteCommand(h.admin.Id, ch.Id, h.team.Id, "/xmppbridge status")
		return resp != nil && strings.Contains(resp.Text, "XMPP bridge: connected")
	}, "the XMPP bridge to connect")
	return h
}

// link makes a fresh room (carol in it) and a fresh channel (admin, alice
// and bob in it), links them, and returns them with a tag unique to the run.
func (h *benchBridge) link(b *testing.B) (room jid.JID, ch *model.Channel, tag string) {
	b.Helper()
	h.runs++
	tag = fmt.Sprintf("bench%d", h.runs)
	room = h.prosody.RoomJID(b, tag)
	ctx, cancel := context.WithTimeout(h.ctx, benchSetupWait)
	defer cancel()
	if err := h.carol.JoinRoom(ctx, room, "Carol"); err != nil {
		b.Fatal(err)
	}
	ch = h.s.CreateChannel(h.team.Id, tag)
	for _, u := range []*model.User{h.admin, h.alice, h.bob} {
		h.s.AddToChannel(u.Id, ch.Id)
	}
	resp, appErr := h.n.ExecuteCommand(h.admin.Id, ch.Id, h.team.Id, "/xmppbridge map "+room.String())
	if appErr != nil || !strings.Contains(resp.Text, "Linked this channel") || strings.Contains(resp.Text, "could not join") {
		b.Fatalf("/xmppbridge map %s: %v %v", room, resp, appErr)
	}
	return room, ch, tag
}

// warmXMPPToMattermost sends one message from carol and waits for its post:
// the bridge has joined and caught up, and carol's remote user exists.
func (h *benchBridge) warmXMPPToMattermost(b *testing.B, room jid.JID, ch *model.Channel, tag string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, benchSetupWait)
	defer cancel()
	arrived, _ := watchChannel(ctx, h.api, ch.Id, tag+"warm", 1)
	if _, err := h.carol.Say(ctx, room, tag+"warm 0"); err != nil {
		b.Fatal(err)
	}
	select {
	case <-arrived:
	case <-ctx.Done():
		b.Fatal("carol's warm-up message did not become a post")
	}
}

// warmMattermostToXMPP posts once as alice and once as bob and waits until
// carol has both (in component mode their ghosts have joined the room).
func (h *benchBridge) warmMattermostToXMPP(b *testing.B, room jid.JID, ch *model.Channel, tag string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, benchSetupWait)
	defer cancel()
	arrived := watchOccupant(ctx, h.carol, room, tag+"warm", 2)
	for i, u := range []*model.User{h.alice, h.bob} {
		if _, appErr := h.n.CreatePost(&model.Post{UserId: u.Id, ChannelId: ch.Id, Message: tag + "warm " + strconv.Itoa(i)}); appErr != nil {
			b.Fatal(appErr)
		}
	}
	for range 2 {
		select {
		case <-arrived:
		case <-ctx.Done():
			b.Fatal("the warm-up posts did not reach the room")
		}
	}
}

// BenchmarkXMPPToMattermost: carol sends into the linked room; a message
// arrives when its post is in the channel (client mode).
func BenchmarkXMPPToMattermost(b *testing.B) {
	b.Run("client", func(b *testing.B) {
		h := newBenchBridge(b, "client")
		for _, load := range benchLoads {
			b.Run(load.name, func(b *testing.B) {
				room, ch, tag := h.link(b)
				h.warmXMPPToMattermost(b, room, ch, tag)
				wctx, wcancel := context.WithCancel(h.ctx)
				defer wcancel()
				arrived, poll := watchChannel(wctx, h.api, ch.Id, tag, b.N)
				use := pluginUsed(b, h.n)
				b.ResetTimer()
				run := benchDrive(b, b.N, load, func(i int) error {
					_, err := h.carol.Say(h.ctx, room, tag+" "+strconv.Itoa(i))
					return err
				}, arrived)
				b.StopTimer()
				extra := use.perMessage(b, h.n)
				extra["poll-ms"] = float64(poll.period()) / float64(time.Millisecond)
				benchReport(b, run, extra)
			})
		}
	})
}

// BenchmarkXMPPToMattermostRooms is the flood of XMPPToMattermost spread
// over benchRooms linked rooms (carol says message i in room i modulo
// benchRooms): one room's rate is bounded by the room, and a server bridges
// many. Burst only; reordered counts messages that overtook an earlier one
// of their own room (rooms are independent).
func BenchmarkXMPPToMattermostRooms(b *testing.B) {
	h := newBenchBridge(b, "client")
	b.Run("burst", func(b *testing.B) {
		rooms := make([]jid.JID, benchRooms)
		arrived := benchArrivals(b.N)
		wctx, wcancel := context.WithCancel(h.ctx)
		defer wcancel()
		tag := ""
		for r := range rooms {
			var ch *model.Channel
			var rtag string
			rooms[r], ch, rtag = h.link(b)
			h.warmXMPPToMattermost(b, rooms[r], ch, rtag)
			if tag == "" {
				tag = rtag + "x" // one tag for every room's messages
			}
			in, _ := watchChannel(wctx, h.api, ch.Id, tag, b.N)
			go func() {
				for {
					select {
					case a := <-in:
						benchArrived(wctx, arrived, a)
					case <-wctx.Done():
						return
					}
				}
			}()
		}
		use := pluginUsed(b, h.n)
		b.ResetTimer()
		run := benchDrive(b, b.N, benchLoad{name: "burst"}, func(i int) error {
			_, err := h.carol.Say(h.ctx, rooms[i%len(rooms)], tag+" "+strconv.Itoa(i))
			return err
		}, arrived)
		b.StopTimer()
		run.reordered = 0
		for r := range rooms {
			var last time.Time
			for i := r; i < b.N; i += len(rooms) {
				if got := run.got[i]; !got.IsZero() {
					if got.Before(last) {
						run.reordered++
					}
					last = got
				}
			}
		}
		benchReport(b, run, use.perMessage(b, h.n))
	})
}

// benchRooms is how many rooms BenchmarkXMPPToMattermostRooms spreads over.
const benchRooms = 4

// BenchmarkMattermostToXMPP: alice and bob take turns posting in the linked
// channel (CreatePost fires the plugin's hooks through the RPC boundary); a
// message arrives when carol's client receives it from the room. Client
// mode (the bridge account speaks with a "<Name> " prefix) and component
// mode (each user is a ghost occupant).
func BenchmarkMattermostToXMPP(b *testing.B) {
	for _, mode := range []string{"client", "component"} {
		b.Run(mode, func(b *testing.B) {
			h := newBenchBridge(b, mode)
			for _, load := range benchLoads {
				b.Run(load.name, func(b *testing.B) {
					room, ch, tag := h.link(b)
					h.warmMattermostToXMPP(b, room, ch, tag)
					wctx, wcancel := context.WithCancel(h.ctx)
					defer wcancel()
					arrived := watchOccupant(wctx, h.carol, room, tag, b.N)
					users := []*model.User{h.alice, h.bob}
					use := pluginUsed(b, h.n)
					b.ResetTimer()
					run := benchDrive(b, b.N, load, func(i int) error {
						_, appErr := h.n.CreatePost(&model.Post{UserId: users[i%2].Id, ChannelId: ch.Id, Message: tag + " " + strconv.Itoa(i)})
						if appErr != nil {
							return appErr
						}
						return nil
					}, arrived)
					b.StopTimer()
					benchReport(b, run, use.perMessage(b, h.n))
				})
			}
		})
	}
}
