package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// catchUpWait bounds the waits for a catch-up: twenty messages through the
// history, the bus and Mattermost on a loaded machine. A failsafe only.
const catchUpWait = 90 * time.Second

// reconnectWait bounds the wait for the socket after an outage. Within one
// plugin process the bridge opens sockets at apps.connections.open's Tier
// 1 rate, once a minute, and the attempts that failed during the outage
// spent that allowance: the socket may come back a minute after the last
// of them, plus the backoff's jitter.
const reconnectWait = 2 * time.Minute

// startSlackForOutages starts a Slack test server for tests that take the
// plugin or the sockets away. Each activation opens a socket, and so does
// each attempt while the sockets are out of reach; apps.connections.open
// is Tier 1 (1+ a minute, "a small amount of burst behavior is
// tolerated"). The tests' restarts come within a minute, as an admin's
// might, and each new plugin process starts with a fresh allowance of
// its own: the burst allowed here covers them, so the tests wait for a
// catch-up, not for Slack's quota to refill.
func startSlackForOutages(t *testing.T) *slacktest.Server {
	slack := slacktest.Start(t, slacktest.Options{})
	slack.SetRateLimit("apps.connections.open", 1, 20)
	return slack
}

// slackPostsIn lists the live posts of ch whose message starts with
// prefix, oldest first.
func slackPostsIn(s *testhost.Server, ch *model.Channel, prefix string) []*model.Post {
	var out []*model.Post
	for _, p := range s.ChannelPosts(ch.Id) {
		if strings.HasPrefix(p.Message, prefix) {
			out = append(out, p)
		}
	}
	return out
}

func messagesOf(posts []*model.Post) []string {
	out := make([]string, 0, len(posts))
	for _, p := range posts {
		out = append(out, p.Message)
	}
	return out
}

// Issue 11 check 5, through the plugin: Slack people talk while the plugin
// is away (deactivated, or the node restarting while Slack's sockets are
// out of reach): a reply in a thread bridged before, twenty messages, two
// edits and a delete of messages bridged before. Once it is back, every
// message is in the channel once, in order, the reply in its Mattermost
// thread, the last edit and the delete applied; a second restart brings no
// doubles.
func TestSlackDowntimeIsCaughtUpOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		// away takes the plugin away, runs talk, and brings it back.
		away func(t *testing.T, h *slackHarness, talk func())
	}{
		{name: "deactivated", away: func(t *testing.T, h *slackHarness, talk func()) {
			h.n.Deactivate()
			h.noSockets()
			talk()
			h.activate()
		}},
		{name: "restarted", away: func(t *testing.T, h *slackHarness, talk func()) {
			// The sockets stay out of reach across the restart, so what
			// is said meanwhile falls between the two plugin instances.
			h.srv.SocketsDown()
			h.noSockets()
			if err := h.n.Restart(); err != nil {
				t.Fatal(err)
			}
			talk()
			h.srv.SocketsUp()
		}},
	} {
		// Slack sends the events it could not deliver again when a socket
		// opens, which the history's copies must not double; after an
		// outage longer than its retries it has given up on them, and
		// only the history tells what happened.
		for _, lost := range []bool{false, true} {
			name := tc.name
			if lost {
				name += " past Slack's retries"
			}
			t.Run(name, func(t *testing.T) {
				testSlackDowntime(t, lost, func(t *testing.T, h *slackHarness, talk func()) {
					tc.away(t, h, func() {
						talk()
						if lost && h.srv.GiveUpUnacked() == 0 {
							t.Fatal("no event was left to give up on")
						}
					})
				})
			})
		}
	}
}

func testSlackDowntime(t *testing.T, lost bool, away func(*testing.T, *slackHarness, func())) {
	slack := startSlackForOutages(t)
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	kim := slack.AddUser(slacktest.User{Name: "kim", RealName: "Kim Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID, kim.ID}})
	slack.InviteBot(sam.ID, sch.ID)
	h := newSlackHarness(t, slack, nil)
	h.command("/slackbridge map "+sch.ID, "Linked this channel")

	root := slack.Post(sam.ID, sch.ID, "before: thread root")
	toEdit := slack.Post(kim.ID, sch.ID, "before: to be edited")
	toDelete := slack.Post(sam.ID, sch.ID, "before: to be deleted")
	rootPost := waitPost(t, h.s, h.ch, "the thread root", func(p *model.Post) bool { return p.Message == "before: thread root" })
	editPost := waitPost(t, h.s, h.ch, "the message to edit", func(p *model.Post) bool { return p.Message == "before: to be edited" })
	deletePost := waitPost(t, h.s, h.ch, "the message to delete", func(p *model.Post) bool { return p.Message == "before: to be deleted" })

	var want []string
	talk := func() {
		for i := range 20 {
			text := fmt.Sprintf("missed %02d", i)
			switch {
			case i == 7:
				slack.Reply(kim.ID, sch.ID, root, text)
			case i%2 == 0:
				slack.Post(sam.ID, sch.ID, text)
			default:
				slack.Post(kim.ID, sch.ID, text)
			}
			want = append(want, text)
			switch i {
			case 10:
				slack.Edit(kim.ID, sch.ID, toEdit, "before: edited once")
			case 12:
				slack.Edit(kim.ID, sch.ID, toEdit, "before: edited while away")
			case 15:
				slack.Delete(sam.ID, sch.ID, toDelete)
			}
		}
	}
	away(t, h, talk)
	waitConnectedWithin(t, reconnectWait, h.n, h.admin, h.ch, "slackbridge", "Slack")

	// A live message after the catch-up: the channel's messages are handed
	// on in order, so once it is in, so is all that came before it, and
	// any copy of it.
	slack.Post(sam.ID, sch.ID, "missed? no, live")
	want = append(want, "missed? no, live")
	check := func(when string) {
		t.Helper()
		testhost.WaitFor(t, catchUpWait, func() bool {
			return slices.Contains(messagesOf(slackPostsIn(h.s, h.ch, "missed")), want[len(want)-1])
		}, "%s: %q in the channel", when, want[len(want)-1])
		posts := slackPostsIn(h.s, h.ch, "missed")
		if got := messagesOf(posts); !slices.Equal(got, want) {
			t.Fatalf("%s: the channel has\n%q\nwant once each, in order:\n%q", when, got, want)
		}
		for _, p := range posts {
			wantRoot := ""
			if p.Message == "missed 07" {
				wantRoot = rootPost.Id
			}
			if p.RootId != wantRoot {
				t.Errorf("%s: %q is in thread %q, want %q", when, p.Message, p.RootId, wantRoot)
			}
		}
	}
	check("after the catch-up")
	testhost.WaitFor(t, catchUpWait, func() bool {
		return h.s.Post(editPost.Id).Message == "before: edited while away"
	}, "the edit made while the plugin was away")
	wantBefore := []string{"before: thread root", "before: edited while away"}
	if lost {
		// A delete leaves nothing in the history to read: once Slack gave
		// up on its event, nothing tells of it.
		wantBefore = append(wantBefore, "before: to be deleted")
	} else {
		testhost.WaitFor(t, catchUpWait, func() bool {
			p := h.s.Post(deletePost.Id)
			return p == nil || p.DeleteAt > 0
		}, "the delete made while the plugin was away")
	}
	checkBefore := func(when string) {
		t.Helper()
		if got := messagesOf(slackPostsIn(h.s, h.ch, "before")); !slices.Equal(got, wantBefore) {
			t.Errorf("%s: the messages from before the downtime are\n%q\nwant\n%q", when, got, wantBefore)
		}
	}
	checkBefore("after the catch-up")

	// Another restart reads the history from the saved position: nothing
	// is handed on twice.
	if err := h.n.Restart(); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, h.n, h.admin, h.ch, "slackbridge", "Slack")
	slack.Post(kim.ID, sch.ID, "missed? no, live again")
	want = append(want, "missed? no, live again")
	check("after a second restart")
	checkBefore("after a second restart")

	// Nothing went back to Slack: the channel has the people's messages
	// only.
	for _, m := range slack.Messages(sch.ID) {
		if m.User != sam.ID && m.User != kim.ID {
			t.Errorf("a message came back to Slack: %+v", m)
		}
	}
}

// noSockets waits until Slack counts no socket open: what it sends from
// then on waits for the next socket and comes on it first, not again
// after an acknowledgement timed out on a socket that was closing.
func (h *slackHarness) noSockets() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, wait)
	defer cancel()
	if err := h.srv.WaitConnections(ctx, 0); err != nil {
		h.t.Fatal(err)
	}
}

// activate brings the plugin back on the harness's node.
func (h *slackHarness) activate() {
	h.t.Helper()
	if err := h.n.ActivateInProcess(testhost.RepoManifest(h.t), h.newPlugin); err != nil {
		h.t.Fatal(err)
	}
}

// A Mattermost post made while Slack's sockets are out of reach (the
// plugin running) goes through the Web API, which still answers: it
// reaches Slack once, and the catch-up after the socket is back does not
// bring it back to Mattermost as a Slack message.
func TestSlackPostWhileSocketIsDownReachesSlackOnce(t *testing.T) {
	slack := startSlackForOutages(t)
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)
	h := newSlackHarness(t, slack, nil)
	h.command("/slackbridge map "+sch.ID, "Linked this channel")
	slack.Post(sam.ID, sch.ID, "before the outage")
	waitPost(t, h.s, h.ch, "sam's message", func(p *model.Post) bool { return p.Message == "before the outage" })

	slack.SocketsDown()
	h.noSockets()
	h.statusSays("the socket is down", func(s string) bool { return !strings.Contains(s, "Slack bridge: connected") })
	const text = "said while the socket was down"
	h.post(h.alice, text, "")
	ctx, cancel := context.WithTimeout(h.ctx, catchUpWait)
	defer cancel()
	if _, err := slack.WaitMessage(ctx, sch.ID, func(m slacktest.Message) bool { return m.Text == text }); err != nil {
		t.Fatalf("alice's message in Slack: %v", err)
	}
	if n := slack.OpenConnections(); n != 0 {
		t.Fatalf("%d sockets open during the outage", n)
	}

	slack.SocketsUp()
	waitConnectedWithin(t, reconnectWait, h.n, h.admin, h.ch, "slackbridge", "Slack")
	// Sam's message after the socket is back comes behind the catch-up's:
	// once it is in Mattermost, anything the catch-up handed on is too.
	slack.Post(sam.ID, sch.ID, "after the outage")
	waitPost(t, h.s, h.ch, "sam's message after the outage", func(p *model.Post) bool { return p.Message == "after the outage" })
	h.s.WaitHooks(wait)

	inSlack := 0
	for _, m := range slack.Messages(sch.ID) {
		if m.Text == text {
			inSlack++
		}
	}
	if inSlack != 1 {
		t.Errorf("alice's message is in Slack %d times, want once", inSlack)
	}
	if got := messagesOf(slackPostsIn(h.s, h.ch, text)); len(got) != 1 {
		t.Errorf("alice's message is in Mattermost %d times, want once (hers)", len(got))
	}
	if got := remotePosts(h.s, h.ch); !slices.Equal(got, []string{"before the outage", "after the outage"}) {
		t.Errorf("the channel's Slack messages are %q", got)
	}
}
