package main

// What every benchmark of a message path shares (xmpp_bench_test.go,
// matrix_bench_test.go, slack_bench_test.go): the loads, the driver that
// sends b.N messages and collects their arrivals, and the report.
//
// Loads, each on b.N messages:
//
//	serial  one message in flight: send, wait until it arrives, send the next.
//	        p50/p99 are the unloaded end-to-end latency.
//	paced   one message every benchPace (50 a second), whatever arrived:
//	        the latency of a busy room that the path keeps up with.
//	burst   all b.N messages sent back to back, then every arrival awaited.
//	        msgs/s is the sustained (flood) throughput; p50/p99 are
//	        dominated by queueing.
//
// Metrics: msgs/s (messages received / first send to last receipt),
// p50-ms, p99-ms and max-ms (each message's send -> receipt), lost
// (messages that never arrived within benchStall of the last progress),
// dup (arrivals of a message already received), reordered (first arrivals
// of a message after one sent later).
//
// With BENCH_OUT set, each run also writes its figures and every
// message's latency to BENCH_OUT/<benchmark>-<n>.json, which
// build/bench/report turns into the results table and latency curves.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

const (
	// benchStall ends a run's wait when no message arrived for this long;
	// what is missing then is reported as lost.
	benchStall = 20 * time.Second
	// benchPoll is how often the Mattermost channel is polled for new posts.
	benchPoll = time.Millisecond
	// benchSetupWait bounds each setup step (joins, links, warm-ups).
	benchSetupWait = 30 * time.Second
	// benchPace is the paced load's interval between sends.
	benchPace = 20 * time.Millisecond
)

// benchLoad is how a run sends: at most window messages in flight (0: no
// limit), and with pace, one message every pace.
type benchLoad struct {
	name   string
	window int
	pace   time.Duration
}

// benchLoads are the sub-benchmarks of every benchmark.
var benchLoads = []benchLoad{
	{name: "serial", window: 1},
	{name: "paced", pace: benchPace},
	{name: "burst"},
}

type benchArrival struct {
	i  int
	at time.Time
}

// benchArrivals makes a watch's channel, with room for a double of every
// message.
func benchArrivals(n int) chan benchArrival { return make(chan benchArrival, 2*n+16) }

// benchArrived hands a watch's arrival on, unless the watch has ended.
func benchArrived(ctx context.Context, out chan<- benchArrival, a benchArrival) {
	select {
	case out <- a:
	case <-ctx.Done():
	}
}

// benchRun is what a run measured: each message's send and first receipt
// (zero: lost), and the arrivals that were not a message's first.
type benchRun struct {
	sent, got []time.Time
	dup       int
	reordered int
}

// benchIndex parses "<tag> <i>" at the end of text (client-mode bodies have
// a "<Name> " prefix) into i < n.
func benchIndex(text, tag string, n int) (int, bool) {
	k := strings.Index(text, tag+" ")
	if k < 0 {
		return 0, false
	}
	i, err := strconv.Atoi(text[k+len(tag)+1:])
	if err != nil || i < 0 || i >= n {
		return 0, false
	}
	return i, true
}

// benchDrive sends messages 0..n-1 with send as load says, and collects
// arrivals until all n arrived or none came for benchStall. A watch
// reports every receipt of a message, so that doubles are counted.
func benchDrive(b *testing.B, n int, load benchLoad, send func(i int) error, arrived <-chan benchArrival) benchRun {
	b.Helper()
	r := benchRun{sent: make([]time.Time, n), got: make([]time.Time, n)}
	stall := time.NewTimer(benchStall)
	defer stall.Stop()
	var tick <-chan time.Time
	if load.pace > 0 {
		t := time.NewTicker(load.pace)
		defer t.Stop()
		tick = t.C
	}
	next, received, highest := 0, 0, -1
	sendNext := func() {
		r.sent[next] = time.Now()
		if err := send(next); err != nil {
			b.Fatalf("sending message %d: %v", next, err)
		}
		next++
	}
	if load.pace > 0 {
		sendNext() // the ticks send the others
	}
	for received < n {
		for load.pace == 0 && next < n && (load.window == 0 || next-received < load.window) {
			sendNext()
		}
		select {
		case <-tick:
			if next < n {
				sendNext()
				stall.Reset(benchStall)
			}
		case a := <-arrived:
			if !r.got[a.i].IsZero() {
				r.dup++
				continue
			}
			r.got[a.i] = a.at
			if a.i < highest {
				r.reordered++
			}
			highest = max(highest, a.i)
			received++
			stall.Reset(benchStall)
		case <-stall.C:
			b.Logf("LOST: %d of %d messages did not arrive (none for %v)", n-received, n, benchStall)
			return r
		}
	}
	// Doubles that come right behind the last first arrival still count.
	for {
		select {
		case a := <-arrived:
			if !r.got[a.i].IsZero() {
				r.dup++
			}
		case <-time.After(50 * time.Millisecond):
			return r
		}
	}
}

func benchPercentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

// benchFloors names each path's floor, the server alone: the floor of
// path/.../load is floor/load.
var benchFloors = []struct{ path, floor string }{
	{"BenchmarkXMPPToMattermost/", "BenchmarkProsodyRoomToOccupant/"},
	{"BenchmarkMattermostToXMPP/", "BenchmarkProsodyRoomToOccupant/"},
	{"BenchmarkMatrixToMattermost/", "BenchmarkDendriteSendToSync/"},
	{"BenchmarkMattermostToMatrix/", "BenchmarkDendriteSendToSync/"},
	{"BenchmarkSlackToMattermost/", "BenchmarkSlackAlone/inbound/"},
	{"BenchmarkMattermostToSlack/", "BenchmarkSlackAlone/outbound/"},
	{"BenchmarkXMPPToMatrix/", "BenchmarkDendriteSendToSync/"},
	{"BenchmarkMatrixToXMPP/", "BenchmarkDendriteSendToSync/"},
	{"BenchmarkMatterbridgeXMPPToMatrix/", "BenchmarkDendriteSendToSync/"},
	{"BenchmarkMatterbridgeMatrixToXMPP/", "BenchmarkDendriteSendToSync/"},
}

func benchFloor(name string) string {
	for _, f := range benchFloors {
		if strings.HasPrefix(name, f.path) {
			return f.floor + name[strings.LastIndex(name, "/")+1:]
		}
	}
	return ""
}

// benchBundle is the plugin the bridge benchmarks run, built once per
// set of tags, without the race detector: in a process of its own behind
// the real RPC boundary, as a server runs it, so that its CPU time is the
// plugin's alone (see pluginCPU).
func benchBundle(b *testing.B, tags ...string) *testhost.Bundle {
	b.Helper()
	if os.Getenv("BRIDGE_CPUPROFILE") != "" || os.Getenv("BRIDGE_TRACE") != "" {
		tags = append(tags, "benchprofile") // see cpuprofile_benchprofile.go
	}
	noRace := false
	return testhost.Build(b, testhost.BuildOptions{ModuleDir: testhost.RepoRoot(b), Tags: tags, Race: &noRace})
}

// pluginCPU is the CPU time (user and system, every thread) the plugin
// processes of n have used so far.
func pluginCPU(b *testing.B, n *testhost.Node) time.Duration {
	b.Helper()
	pids := n.PluginProcesses()
	if len(pids) == 0 {
		b.Fatal("the plugin runs in no process of its own: activate it from a bundle (benchBundle)")
	}
	var total time.Duration
	for _, pid := range pids {
		total += processCPU(b, pid)
	}
	return total
}

// processCPU is the CPU time (user and system, every thread) process pid
// has used so far, from /proc/<pid>/stat.
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which may hold spaces, end with
	// ")"; utime and stime are the stat's 14th and 15th fields.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	var total time.Duration
	for _, f := range fields[11:13] {
		ticks, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ticks) * time.Second / clockTicks
	}
	return total
}

// clockTicks is Linux's USER_HZ, the unit of /proc's CPU times.
const clockTicks = 100

// pluginUse is what the plugin processes of a node have used so far: CPU
// time, and plugin API calls by method, each a round trip over the RPC
// boundary.
type pluginUse struct {
	cpu   time.Duration
	calls map[string]int64
}

func pluginUsed(b *testing.B, n *testhost.Node) pluginUse {
	b.Helper()
	return pluginUse{cpu: pluginCPU(b, n), calls: n.APICalls()}
}

// perMessage is the extra metrics of a bridge run: the plugin's CPU time
// in ms and its API calls since before, per message sent.
func (before pluginUse) perMessage(b *testing.B, n *testhost.Node) map[string]float64 {
	b.Helper()
	return before.upTo(b, pluginUsed(b, n))
}

// upTo is perMessage from before to now; the calls by method are logged
// (go test -v shows them).
func (before pluginUse) upTo(b *testing.B, now pluginUse) map[string]float64 {
	extra := map[string]float64{"cpu-ms/msg": msPerMessage(b, now.cpu-before.cpu)}
	if now.calls == nil {
		return extra // not the plugin (matterbridge)
	}
	total, by := callsPerMessage(before.calls, now.calls, b.N)
	b.Logf("plugin API calls per message: %s", by)
	extra["api/msg"] = total
	return extra
}

// callsPerMessage is the plugin API calls made from before to after (two
// readings of Node.APICalls) per message of n, in all and by method.
func callsPerMessage(before, after map[string]int64, n int) (float64, string) {
	var total int64
	var by []string
	for _, m := range slices.Sorted(maps.Keys(after)) {
		if d := after[m] - before[m]; d > 0 {
			total += d
			by = append(by, fmt.Sprintf("%s %.2f", m, float64(d)/float64(n)))
		}
	}
	return float64(total) / float64(n), strings.Join(by, ", ")
}

// msPerMessage is d in ms per message of the run.
func msPerMessage(b *testing.B, d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond) / float64(b.N)
}

// requestCounter is a reverse proxy that counts the requests it passes on.
type requestCounter struct {
	url string
	n   atomic.Int64
}

// countRequests starts a requestCounter in front of target until the
// benchmark ends.
func countRequests(b *testing.B, target string) *requestCounter {
	b.Helper()
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	c := &requestCounter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	b.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// perMessage is the extra metric of a bridge run: the requests counted
// since before, per message sent.
func (c *requestCounter) perMessage(b *testing.B, before int64) float64 {
	return float64(c.n.Load()-before) / float64(b.N)
}

// benchResult is one run as BENCH_OUT keeps it.
type benchResult struct {
	Name string `json:"name"`
	// Floor is the benchmark of the same load on the server alone.
	Floor     string    `json:"floor,omitempty"`
	N         int       `json:"n"`
	Received  int       `json:"received"`
	Lost      int       `json:"lost"`
	Dup       int       `json:"dup"`
	Reordered int       `json:"reordered"`
	Rate      float64   `json:"msgs_per_s"`
	P50       float64   `json:"p50_ms"`
	P99       float64   `json:"p99_ms"`
	Max       float64   `json:"max_ms"`
	Latencies []float64 `json:"latencies_ms"`
	// Extra holds the benchmark's own metrics (poll-ms, redelivered...).
	Extra map[string]float64 `json:"extra,omitempty"`
}

// benchReport reports msgs/s, p50-ms, p99-ms, max-ms, lost, dup and
// reordered for one run, with extra metrics of the benchmark's own, and
// keeps them in BENCH_OUT when it is set.
func benchReport(b *testing.B, r benchRun, extra map[string]float64) {
	b.Helper()
	var lat []time.Duration
	var last time.Time
	for i := range r.sent {
		if r.got[i].IsZero() {
			continue
		}
		lat = append(lat, r.got[i].Sub(r.sent[i]))
		if r.got[i].After(last) {
			last = r.got[i]
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res := benchResult{Name: b.Name(), Floor: benchFloor(b.Name()), N: len(r.sent), Received: len(lat), Lost: len(r.sent) - len(lat), Dup: r.dup, Reordered: r.reordered, Extra: extra}
	for _, d := range lat {
		res.Latencies = append(res.Latencies, ms(d))
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		if span := last.Sub(r.sent[0]); span > 0 {
			res.Rate = float64(len(lat)) / span.Seconds()
		}
		res.Max = ms(lat[len(lat)-1])
	}
	res.P50, res.P99 = ms(benchPercentile(lat, 50)), ms(benchPercentile(lat, 99))
	b.ReportMetric(res.Rate, "msgs/s")
	b.ReportMetric(res.P50, "p50-ms")
	b.ReportMetric(res.P99, "p99-ms")
	b.ReportMetric(res.Max, "max-ms")
	b.ReportMetric(float64(res.Lost), "lost")
	b.ReportMetric(float64(res.Dup), "dup")
	b.ReportMetric(float64(res.Reordered), "reordered")
	for k, v := range extra {
		b.ReportMetric(v, k)
	}
	if dir := os.Getenv("BENCH_OUT"); dir != "" && res.N > 1 {
		writeBenchResult(b, dir, res)
	}
}

func writeBenchResult(b *testing.B, dir string, res benchResult) {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.CreateTemp(dir, strings.ReplaceAll(res.Name, "/", "_")+"-*.json")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := json.NewEncoder(f).Encode(res); err != nil {
		b.Fatal(err)
	}
	b.Logf("results in %s", filepath.Base(f.Name()))
}
