package main

// BenchmarkScale is the plugin at size: many links and many remote users.
// Setup (not timed) links links pairs of channels (Slack test server and
// Mattermost) and has users Slack people post once each, spread over the
// links, so the plugin makes a Mattermost user for every one of them. Then
// each run sends b.N messages from those people at once (a burst), into
// one link (1link) or round the links (alllinks), and waits for every post:
//
//	msgs/s      posts made per second of the run
//	cpu-ms/msg  the plugin process's CPU time per message
//	api/msg     its plugin API calls per message
//	rss-mb      the plugin process's resident memory after the run
//	lost, dup   messages that never became a post, or became two
//
// The per-message figures of 1link and alllinks side by side say whether
// a message costs more when there are many links; rss-mb whether the
// plugin's memory grows with the links and the people. Defaults: 1,000
// links and 10,000 people (BENCH_SCALE_LINKS, BENCH_SCALE_USERS); setup
// takes about a minute on 2 cores.
//
//	go test -run '^$' -bench Scale -benchtime 2000x ./server/

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

func BenchmarkScale(b *testing.B) {
	links, users := envInt(b, "BENCH_SCALE_LINKS", 1000), envInt(b, "BENCH_SCALE_USERS", 10000)
	h := newSlackBridgeBench(b, slacktest.Options{NoRateLimits: true})
	// Remote users count against the team's size, as on a server.
	if err := h.s.UpdateConfig(func(c *model.Config) { c.TeamSettings.MaxUsersPerTeam = model.NewPointer(users + 100) }); err != nil {
		b.Fatal(err)
	}
	if users < links {
		b.Fatalf("%d people for %d links: every link needs one", users, links)
	}
	people := make([]slacktest.User, users)
	// The people of link l are those whose number is l modulo links; its
	// k-th message is from the k-th of them, round.
	personOf := func(l, k int) slacktest.User {
		return people[l+links*(k%((users-1-l)/links+1))]
	}
	for i := range people {
		people[i] = h.slack.AddUser(slacktest.User{Name: fmt.Sprintf("p%d", i), RealName: fmt.Sprintf("Person %d", i)})
	}
	type pair struct {
		slack string
		mm    *model.Channel
	}
	pairs := make([]pair, links)
	for l := range pairs {
		var members []string
		for i := l; i < users; i += links {
			members = append(members, people[i].ID)
		}
		sch := h.slack.AddChannel(slacktest.Channel{Name: fmt.Sprintf("scale%d", l), Members: append(members, h.sam.ID)})
		h.slack.InviteBot(h.sam.ID, sch.ID)
		ch := channelOf(h.s, fmt.Sprintf("scale%d", l), h.admin)
		runCommand(b, h.n, h.admin, ch, "/slackbridge map "+sch.ID, "Linked this channel")
		pairs[l] = pair{slack: sch.ID, mm: ch}
	}
	watched := 0
	await := func(tag string, n int) (got, dup int) {
		b.Helper()
		seen := map[string]int{}
		deadline := time.Now().Add(benchSetupWait + time.Duration(n)*10*time.Millisecond)
		for len(seen) < n && time.Now().Before(deadline) {
			var posts []*model.Post
			posts, watched = h.s.PostsStoredAfter(watched)
			for _, p := range posts {
				if strings.HasPrefix(p.Message, tag+" ") {
					seen[p.Message]++
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		for _, c := range seen {
			dup += c - 1
		}
		return len(seen), dup
	}
	// Every person's first message makes their Mattermost user.
	for i, p := range people {
		h.slack.Post(p.ID, pairs[i%links].slack, "hello "+strconv.Itoa(i))
	}
	if got, _ := await("hello", users); got != users {
		b.Fatalf("%d of %d people's first messages arrived", got, users)
	}

	run := 0
	for _, spread := range []struct {
		name  string
		links int
	}{{"1link", 1}, {"alllinks", links}} {
		b.Run(spread.name, func(b *testing.B) {
			run++
			tag := fmt.Sprintf("scale%dr", run)
			use := pluginUsed(b, h.n)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				l := i % spread.links
				h.slack.Post(personOf(l, i/spread.links).ID, pairs[l].slack, tag+" "+strconv.Itoa(i))
			}
			got, dup := await(tag, b.N)
			span := time.Since(start)
			b.StopTimer()
			extra := use.perMessage(b, h.n)
			for k, v := range extra {
				b.ReportMetric(v, k)
			}
			b.ReportMetric(float64(got)/span.Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N-got), "lost")
			b.ReportMetric(float64(dup), "dup")
			b.ReportMetric(pluginRSS(b, h.n), "rss-mb")
		})
	}
}

// pluginRSS is the resident memory of the node's plugin processes, in MB.
func pluginRSS(b *testing.B, n interface{ PluginProcesses() []int }) float64 {
	b.Helper()
	var kb int64
	for _, pid := range n.PluginProcesses() {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					b.Fatalf("VmRSS of %d: %q", pid, rest)
				}
				kb += v
			}
		}
	}
	return float64(kb) / 1024
}
