package main

// Benchmarks of the Matrix message path, side by side with Dendrite's own
// figure measured in the same run:
//
//	BenchmarkDendriteSendToSync   carol sends m.room.message -> Dendrite -> dave's /sync long-poll
//	BenchmarkMatrixToMattermost   carol -> Dendrite -> application-service push -> bridge -> post in the linked channel
//	BenchmarkMattermostToMatrix   node.CreatePost -> hook (real RPC) -> bridge -> puppet sends -> Dendrite -> dave's /sync
//
// Loads and metrics are bench_test.go's, and the Mattermost-side receipt
// by polling that of the XMPP benchmarks (xmpp_bench_test.go).
//
// Setup is outside the timer: one harness (Dendrite with the plugin
// registered as its application service, and the test host) per benchmark
// invocation, then for every run a fresh room, created by carol with dave
// in it, for the bridge a fresh channel linked with it, and a warm-up
// message in the measured direction (which, for the bridge, registers and
// joins the puppets or creates carol's Mattermost user). Dendrite's cost
// per event grows with a room's history, hence the fresh rooms.
//
// carol and dave are accounts of their own here, not the harness's
// (whose clients sync in the background): nothing syncs as carol, and dave
// is followed by exactly one /sync long-poll, the benchmark's. A message
// arrives at dave when the /sync answer carrying it has been decoded. The
// filter of that /sync holds only the room's m.room.message events, with a
// timeline limit above b.N, so a burst is never cut short ("limited").
//
// A send answers only once Dendrite has stored the event (tens of ms on
// SQLite, most of every latency here), so a burst from carol's one client
// goes as fast as Dendrite stores events and queues little; posts, on the
// other hand, are created at once, so MattermostToMatrix burst queues in
// the bridge, which sends to a room one event at a time: its p50/p99 are
// queueing. Dendrite on SQLite handles some tens of events a second: keep
// b.N around a hundred. The harness's context ends after four minutes,
// cancelling its own clients' /sync (see watchRoom for what that can do to
// Dendrite), so one benchmark invocation (both loads) must end well within
// that.
//
// Run with make bench (build/bench/run.sh), or:
//
//	go test -run '^$' -bench 'DendriteSendToSync|MatrixToMattermost|MattermostToMatrix' -benchtime 100x -count 3 ./server/

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

const (
	// matrixSyncTimeout is the long-poll timeout of dave's /sync, in ms:
	// short, since a watch ends only when its /sync in flight answered.
	matrixSyncTimeout = 1000
	// matrixSyncLimit is the timeline limit of dave's /sync: more than a
	// run sends, so no answer is cut short.
	matrixSyncLimit = 10000
)

// matrixBench is the Matrix harness plus carol and dave as plain clients
// (no background sync), for the runs' fresh rooms.
type matrixBench struct {
	h *matrixHarness
	// requests counts the plugin's requests to the homeserver.
	requests *requestCounter
	ctx      context.Context
	api      *testhost.API
	team     *model.Team
	carol    *mautrix.Client
	dave     *mautrix.Client
	runs     int
}

func newMatrixBench(b *testing.B) *matrixBench {
	b.Helper()
	return newMatrixBenchWith(b, nil)
}

// newMatrixBenchWith adds settings (another network's) to the plugin's.
func newMatrixBenchWith(b *testing.B, extra map[string]any) *matrixBench {
	b.Helper()
	m := &matrixBench{}
	m.h = newMatrixHarnessOf(b, dendrite, extra, benchBundle(b), func(hs string) string {
		m.requests = countRequests(b, hs)
		return m.requests.url
	})
	var cancel context.CancelFunc
	m.ctx, cancel = context.WithCancel(context.Background())
	b.Cleanup(cancel)
	m.api = m.h.n.API(manifest.Id)
	m.team = m.h.s.DefaultTeam()
	m.carol = m.account(b, "bench.carol", "Carol Bench")
	m.dave = m.account(b, "bench.dave", "Dave Bench")
	return m
}

func (m *matrixBench) account(b *testing.B, localpart, displayName string) *mautrix.Client {
	b.Helper()
	userID, token := m.h.hs.RegisterUser(b, localpart, localpart+"-password")
	cli, err := mautrix.NewClient(m.h.hs.BaseURL(), id.UserID(userID), token)
	if err != nil {
		b.Fatal(err)
	}
	if err := cli.SetDisplayName(m.ctx, displayName); err != nil {
		b.Fatal(err)
	}
	return cli
}

// room makes a fresh public room with carol (its creator) and dave in it,
// and returns it with a tag unique to the run.
func (m *matrixBench) room(b *testing.B) (room id.RoomID, tag string) {
	b.Helper()
	m.runs++
	tag = fmt.Sprintf("mx%d", m.runs)
	ctx, cancel := context.WithTimeout(m.ctx, benchSetupWait)
	defer cancel()
	resp, err := m.carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: tag, Preset: "public_chat"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.dave.JoinRoomByID(ctx, resp.RoomID); err != nil {
		b.Fatal(err)
	}
	return resp.RoomID, tag
}

// link makes a fresh room and a fresh channel (admin, alice and bob in it)
// and links them.
func (m *matrixBench) link(b *testing.B) (room id.RoomID, ch *model.Channel, tag string) {
	b.Helper()
	room, tag = m.room(b)
	ch = m.h.s.CreateChannel(m.team.Id, tag)
	for _, u := range []*model.User{m.h.admin, m.h.alice, m.h.bob} {
		m.h.s.AddToChannel(u.Id, ch.Id)
	}
	runCommand(b, m.h.n, m.h.admin, ch, "/matrixbridge map "+string(room), "Linked this channel")
	return room, ch, tag
}

// say sends text into room as carol; it returns once Dendrite stored it.
func (m *matrixBench) say(ctx context.Context, room id.RoomID, text string) error {
	_, err := m.carol.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
	return err
}

// roomWatch is dave's /sync of one room.
type roomWatch struct {
	arrived <-chan benchArrival
	// gaps counts /sync answers whose timeline was cut short: events in
	// them never reached the watch.
	gaps atomic.Int64
	stop atomic.Bool
	done chan struct{}
}

// watchRoom follows room with a /sync long-poll of its own as cli and
// reports the m.room.message events "<tag> <i>", each event once, at the
// time the /sync answer carrying them was decoded. It returns once its
// initial sync is done: every event sent afterwards is reported. close
// ends it.
//
// Its requests are never cancelled, only no longer repeated: Dendrite on
// SQLite can keep a database locked when a request is cancelled in the
// middle of a query, and then fails every write ten seconds later.
func watchRoom(b *testing.B, cli *mautrix.Client, room id.RoomID, tag string, n int) *roomWatch {
	b.Helper()
	ctx := context.Background()
	timeline := &mautrix.FilterPart{Limit: matrixSyncLimit, Types: []event.Type{event.EventMessage}}
	none := &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}}
	filter, err := cli.CreateFilter(ctx, &mautrix.Filter{
		AccountData: none, Presence: none,
		Room: &mautrix.RoomFilter{
			Rooms: []id.RoomID{room}, Timeline: timeline,
			State: &mautrix.FilterPart{LazyLoadMembers: true}, Ephemeral: none, AccountData: none,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	first, err := cli.SyncRequest(ctx, 0, "", filter.FilterID, false, event.PresenceOffline)
	if err != nil {
		b.Fatal(err)
	}
	out := benchArrivals(n)
	w := &roomWatch{arrived: out, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		seen := map[id.EventID]bool{}
		since := first.NextBatch
		for !w.stop.Load() {
			resp, err := cli.SyncRequest(ctx, matrixSyncTimeout, since, filter.FilterID, false, event.PresenceOffline)
			now := time.Now()
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			since = resp.NextBatch
			joined := resp.Rooms.Join[room]
			if joined == nil {
				continue
			}
			if joined.Timeline.Limited {
				w.gaps.Add(1)
			}
			for _, evt := range joined.Timeline.Events {
				if evt.Type != event.EventMessage || seen[evt.ID] {
					continue
				}
				seen[evt.ID] = true
				body, _ := evt.Content.Raw["body"].(string)
				if i, ok := benchIndex(body, tag, n); ok {
					out <- benchArrival{i, now}
				}
			}
		}
	}()
	return w
}

// close ends the watch once its /sync in flight has answered (within
// matrixSyncTimeout).
func (w *roomWatch) close() {
	w.stop.Store(true)
	<-w.done
}

// await waits until k messages arrived at w.
func (w *roomWatch) await(b *testing.B, k int, what string) {
	b.Helper()
	timeout := time.After(benchSetupWait)
	for range k {
		select {
		case <-w.arrived:
		case <-timeout:
			b.Fatalf("%s did not reach dave", what)
		}
	}
}

// logGaps says when dave's /sync skipped events.
func (w *roomWatch) logGaps(b *testing.B) {
	b.Helper()
	if n := w.gaps.Load(); n > 0 {
		b.Logf("%d /sync answers were limited: their earlier events never reached dave", n)
	}
}

// --- Dendrite alone --------------------------------------------------------------

// BenchmarkDendriteSendToSync is the baseline: carol sends into a room and
// dave receives through /sync. Same Dendrite (with the plugin registered as
// its application service) as the bridge benchmarks; the rooms are not
// linked, so nothing is pushed to the plugin.
func BenchmarkDendriteSendToSync(b *testing.B) {
	m := newMatrixBench(b)
	for _, load := range benchLoads {
		b.Run(load.name, func(b *testing.B) {
			room, tag := m.room(b)
			// Warm-up: one message through the room before timing.
			warm := watchRoom(b, m.dave, room, tag+"warm", 1)
			defer warm.close()
			if err := m.say(m.ctx, room, tag+"warm 0"); err != nil {
				b.Fatal(err)
			}
			warm.await(b, 1, "the warm-up message")
			warm.close()

			w := watchRoom(b, m.dave, room, tag, b.N)
			defer w.close()
			b.ResetTimer()
			run := benchDrive(b, b.N, load, func(i int) error {
				return m.say(m.ctx, room, tag+" "+strconv.Itoa(i))
			}, w.arrived)
			b.StopTimer()
			benchReport(b, run, nil)
			w.logGaps(b)
		})
	}
}

// --- the bridge --------------------------------------------------------------

// BenchmarkMatrixToMattermost: carol sends into the linked room; a message
// arrives when its post is in the channel.
func BenchmarkMatrixToMattermost(b *testing.B) {
	m := newMatrixBench(b)
	for _, load := range benchLoads {
		b.Run(load.name, func(b *testing.B) {
			room, ch, tag := m.link(b)
			wctx, wcancel := context.WithCancel(m.ctx)
			defer wcancel()
			// Warm-up: the bot is in the room and carol has her
			// Mattermost user.
			warm, _ := watchChannel(wctx, m.api, ch.Id, tag+"warm", 1)
			if err := m.say(m.ctx, room, tag+"warm 0"); err != nil {
				b.Fatal(err)
			}
			select {
			case <-warm:
			case <-time.After(benchSetupWait):
				b.Fatal("carol's warm-up message did not become a post")
			}

			arrived, poll := watchChannel(wctx, m.api, ch.Id, tag, b.N)
			use, requests := pluginUsed(b, m.h.n), m.requests.n.Load()
			b.ResetTimer()
			run := benchDrive(b, b.N, load, func(i int) error {
				return m.say(m.ctx, room, tag+" "+strconv.Itoa(i))
			}, arrived)
			b.StopTimer()
			extra := use.perMessage(b, m.h.n)
			extra["hs-req/msg"] = m.requests.perMessage(b, requests)
			extra["poll-ms"] = float64(poll.period()) / float64(time.Millisecond)
			benchReport(b, run, extra)
		})
	}
}

// BenchmarkMattermostToMatrix: alice and bob take turns posting in the
// linked channel (CreatePost fires the plugin's hooks through the RPC
// boundary); a message arrives when dave's /sync brings their puppet's
// event.
func BenchmarkMattermostToMatrix(b *testing.B) {
	m := newMatrixBench(b)
	users := []*model.User{m.h.alice, m.h.bob}
	for _, load := range benchLoads {
		b.Run(load.name, func(b *testing.B) {
			room, ch, tag := m.link(b)
			// Warm-up: alice's and bob's puppets are registered, named
			// and in the room.
			warm := watchRoom(b, m.dave, room, tag+"warm", len(users))
			defer warm.close()
			for i, u := range users {
				postAs(b, m.h.n, u, ch, tag+"warm "+strconv.Itoa(i), "")
			}
			warm.await(b, len(users), "the warm-up posts")
			warm.close()

			w := watchRoom(b, m.dave, room, tag, b.N)
			defer w.close()
			use, requests := pluginUsed(b, m.h.n), m.requests.n.Load()
			b.ResetTimer()
			run := benchDrive(b, b.N, load, func(i int) error {
				if _, appErr := m.h.n.CreatePost(&model.Post{UserId: users[i%2].Id, ChannelId: ch.Id, Message: tag + " " + strconv.Itoa(i)}); appErr != nil {
					return appErr
				}
				return nil
			}, w.arrived)
			b.StopTimer()
			extra := use.perMessage(b, m.h.n)
			extra["hs-req/msg"] = m.requests.perMessage(b, requests)
			benchReport(b, run, extra)
			w.logGaps(b)
		})
	}
}
