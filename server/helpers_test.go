package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Helpers shared by the integration tests of every network.

// runCommand runs a slash command as user in ch and checks that the answer
// says want.
func runCommand(t testing.TB, n *testhost.Node, user *model.User, ch *model.Channel, cmd, want string) string {
	t.Helper()
	resp, appErr := n.ExecuteCommand(user.Id, ch.Id, ch.TeamId, cmd)
	if appErr != nil {
		t.Fatalf("%s: %v", cmd, appErr)
	}
	if !strings.Contains(resp.Text, want) {
		t.Fatalf("%s answered %q, want it to say %q", cmd, resp.Text, want)
	}
	return resp.Text
}

// postAs posts text in ch as user, firing the plugin's hooks.
func postAs(t testing.TB, n *testhost.Node, user *model.User, ch *model.Channel, text, rootID string, fileIDs ...string) *model.Post {
	t.Helper()
	p, appErr := n.CreatePost(&model.Post{UserId: user.Id, ChannelId: ch.Id, Message: text, RootId: rootID, FileIds: fileIDs})
	if appErr != nil {
		t.Fatalf("post %q: %v", text, appErr)
	}
	return p
}

// waitPost waits for a post in ch that matches pred.
func waitPost(t testing.TB, s *testhost.Server, ch *model.Channel, what string, pred func(*model.Post) bool) *model.Post {
	t.Helper()
	var found *model.Post
	testhost.WaitFor(t, wait, func() bool {
		for _, p := range s.ChannelPosts(ch.Id) {
			if pred(p) {
				found = p
				return true
			}
		}
		return false
	}, "a post: %s", what)
	return found
}

// remotePosts are the messages in ch posted by remote users, oldest first
// (not the system messages about them).
func remotePosts(s *testhost.Server, ch *model.Channel) []string {
	var out []string
	for _, p := range s.ChannelPosts(ch.Id) {
		if u := s.User(p.UserId); !p.IsSystemMessage() && u != nil && u.RemoteId != nil && *u.RemoteId != "" {
			out = append(out, p.Message)
		}
	}
	return out
}

// expectExactlyOnceInOrder waits until got() is want, and fails unless it
// stays so a moment longer (a late duplicate must not follow).
func expectExactlyOnceInOrder(t testing.TB, what string, got func() []string, want []string) {
	t.Helper()
	var last []string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		last = got()
		if strings.Join(last, "|") == strings.Join(want, "|") {
			time.Sleep(time.Second)
			if last = got(); strings.Join(last, "|") == strings.Join(want, "|") {
				return
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s:\n got  %q\n want %q", what, last, want)
}

// createPeople makes a system admin and two people with full names, all in
// the default team.
func createPeople(s *testhost.Server) (admin, alice, bob *model.User) {
	admin = s.CreateUser("admin", true)
	alice = s.CreateUserWith(&model.User{Username: "alice", Email: "alice@example.com", FirstName: "Alice", LastName: "Liddell", Password: "Passw0rd!x"})
	bob = s.CreateUserWith(&model.User{Username: "bob", Email: "bob@example.com", FirstName: "Bob", LastName: "Builder", Password: "Passw0rd!x"})
	team := s.DefaultTeam()
	for _, u := range []*model.User{admin, alice, bob} {
		s.AddToTeam(u.Id, team.Id)
	}
	return admin, alice, bob
}

// channelOf makes a channel in the default team with members.
func channelOf(s *testhost.Server, name string, members ...*model.User) *model.Channel {
	ch := s.CreateChannel(s.DefaultTeam().Id, name)
	for _, u := range members {
		s.AddToChannel(u.Id, ch.Id)
	}
	return ch
}

// waitConnected waits until /<trigger> status says the network's bridge is
// connected.
func waitConnected(t testing.TB, n *testhost.Node, admin *model.User, ch *model.Channel, trigger, title string) {
	t.Helper()
	waitConnectedWithin(t, 30*time.Second, n, admin, ch, trigger, title)
}

// waitConnectedWithin is waitConnected for a bridge that may take longer
// than a first connection, such as one reconnecting at a paced rate.
func waitConnectedWithin(t testing.TB, d time.Duration, n *testhost.Node, admin *model.User, ch *model.Channel, trigger, title string) {
	t.Helper()
	testhost.WaitFor(t, d, func() bool {
		resp, _ := n.ExecuteCommand(admin.Id, ch.Id, ch.TeamId, "/"+trigger+" status")
		return resp != nil && strings.Contains(resp.Text, title+" bridge: connected")
	}, "the %s bridge to connect", title)
}

// channelHarness is what every network's integration harness has: the test
// host with the plugin, three people and the channel under test.
type channelHarness struct {
	t     testing.TB
	s     *testhost.Server
	n     *testhost.Node
	admin *model.User
	alice *model.User
	bob   *model.User
	ch    *model.Channel
}

func (h *channelHarness) command(cmd, want string) string {
	h.t.Helper()
	return runCommand(h.t, h.n, h.admin, h.ch, cmd, want)
}

func (h *channelHarness) post(user *model.User, text, rootID string) *model.Post {
	h.t.Helper()
	return postAs(h.t, h.n, user, h.ch, text, rootID)
}

// envInt is the positive integer in the environment variable name, or def
// when it is not set.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
