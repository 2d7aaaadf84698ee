package main

import (
	"strings"
	"testing"

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
