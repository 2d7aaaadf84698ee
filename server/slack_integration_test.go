package main

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"maunium.net/go/mautrix/event"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// slackSettings points the plugin's Slack bridge at a Slack test server.
func slackSettings(srv *slacktest.Server) map[string]any {
	return map[string]any{
		"SlackEnabled": true, "SlackBotToken": srv.BotToken(), "SlackAppToken": srv.AppToken(), "SlackAPIURL": srv.APIURL(),
	}
}

// Issue 11 check 7: one Mattermost channel linked with a Slack channel, a
// Matrix room and an XMPP room relays among all four, through the real
// plugin: what each network says reaches the three others once, under its
// author's name.
func TestSlackMatrixAndXMPPThroughOneChannel(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)

	h, eve, xroom := newMatrixAndXMPPHarnessOn(t, dendrite, testservers.Prosody, "component", slackSettings(slack))
	waitConnected(t, h.n, h.admin, h.ch, "slackbridge", "Slack")
	h.command("/slackbridge map "+sch.ID, "Linked this channel")
	// Status says which workspace and bot the tokens belong to, never the
	// tokens.
	status := h.command("/slackbridge status", "Slack bridge: connected")
	if !strings.Contains(status, slack.Team().Name) || strings.Contains(status, slack.BotToken()) || strings.Contains(status, slack.AppToken()) {
		t.Errorf("/slackbridge status = %q", status)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 60*time.Second)
	defer cancel()
	inSlack := func(what, text string) slacktest.Message {
		t.Helper()
		m, err := slack.WaitMessage(ctx, sch.ID, func(m slacktest.Message) bool { return strings.Contains(m.Text, text) })
		if err != nil {
			t.Fatalf("%s in Slack: %v", what, err)
		}
		return m
	}

	// Slack -> Mattermost, Matrix and XMPP.
	slack.Post(sam.ID, sch.ID, "hello from *slack*")
	h.remotePost("sam's message", func(p *model.Post) bool { return p.Message == "hello from **slack**" })
	h.dave.waitEvent(h.room, "sam's message", func(e *event.Event) bool {
		c, ok := e.Content.Parsed.(*event.MessageEventContent)
		return ok && c.Body == "hello from **slack**" || ok && strings.Contains(c.FormattedBody, "<strong>slack</strong>")
	})
	if _, err := eve.WaitMessage(ctx, func(m xmpptest.Message) bool { return strings.Contains(m.Body, "hello from *slack*") }); err != nil {
		t.Fatalf("sam's message in XMPP: %v", err)
	}

	// XMPP, Matrix and Mattermost -> Slack, each under its author's name.
	if _, err := eve.Say(ctx, xroom, "hello from xmpp"); err != nil {
		t.Fatal(err)
	}
	if m := inSlack("eve's message", "hello from xmpp"); !namedAfter(m, "eve") {
		t.Errorf("eve's message is in Slack under %q", m.Username)
	}
	h.carol.say(h.room, "hello from matrix")
	if m := inSlack("carol's message", "hello from matrix"); !namedAfter(m, "carol") {
		t.Errorf("carol's message is in Slack under %q", m.Username)
	}
	h.post(h.alice, "hello from mattermost", "")
	if m := inSlack("alice's message", "hello from mattermost"); !namedAfter(m, "alice") {
		t.Errorf("alice's message is in Slack under %q", m.Username)
	}

	// Nothing is doubled: each message is once in Slack, and Slack's own
	// message did not come back to it.
	h.s.WaitHooks(5 * time.Second)
	time.Sleep(time.Second)
	for _, text := range []string{"hello from xmpp", "hello from matrix", "hello from mattermost", "hello from"} {
		n := 0
		for _, m := range slack.Messages(sch.ID) {
			if strings.Contains(m.Text, text) {
				n++
			}
		}
		want := 1
		if text == "hello from" {
			want = 4 // sam's own and the three relayed
		}
		if n != want {
			t.Errorf("%q is in the Slack channel %d times, want %d", text, n, want)
		}
	}
}

// namedAfter reports whether a Slack message shows the name of its author.
func namedAfter(m slacktest.Message, name string) bool {
	return strings.Contains(strings.ToLower(m.Username), name)
}

// slackHarness is the plugin with only Slack enabled, on srv, and the
// channel under test; nothing else (no homeserver, no XMPP server) runs.
type slackHarness struct {
	channelHarness
	srv *slacktest.Server
	ctx context.Context
}

// newSlackHarness starts the plugin with the Slack bridge pointed at srv
// (plus extra settings) and waits until it is connected.
func newSlackHarness(t *testing.T, srv *slacktest.Server, extra map[string]any) *slackHarness {
	t.Helper()
	h := &slackHarness{channelHarness: channelHarness{t: t}, srv: srv}
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithTimeout(context.Background(), 5*time.Minute) // a failsafe
	t.Cleanup(cancel)
	settings := slackSettings(srv)
	maps.Copy(settings, extra)
	h.s = testhost.NewServer(t, testhost.WithPluginID(manifest.Id), testhost.WithPluginSettings(settings))
	h.n = h.s.Node(0)
	if err := h.n.ActivateInProcess(testhost.RepoManifest(t), func() any { return &Plugin{} }); err != nil {
		t.Fatal(err)
	}
	h.admin, h.alice, h.bob = createPeople(h.s)
	h.ch = channelOf(h.s, "slack-dev", h.admin, h.alice, h.bob)
	waitConnected(t, h.n, h.admin, h.ch, "slackbridge", "Slack")
	return h
}

// statusSays waits until /slackbridge status in the channel matches pred.
func (h *slackHarness) statusSays(what string, pred func(string) bool) string {
	h.t.Helper()
	var text string
	testhost.WaitFor(h.t, wait, func() bool {
		resp, appErr := h.n.ExecuteCommand(h.admin.Id, h.ch.Id, h.ch.TeamId, "/slackbridge status")
		if appErr != nil {
			return false
		}
		text = resp.Text
		return pred(text)
	}, "/slackbridge status to say %s", what)
	return text
}

// Issue 11 check 8 (archive), through the plugin: archiving the linked
// Slack channel shows in /slackbridge status and list; what Mattermost
// says meanwhile is not sent to Slack (status counts it as not relayed);
// unarchiving resumes the link.
func TestSlackArchivedChannelShowsInStatus(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)
	h := newSlackHarness(t, slack, nil)
	h.command("/slackbridge map "+sch.ID, "Linked this channel")
	h.statusSays("the channel's name", func(s string) bool { return strings.Contains(s, sch.ID+" — #bridged") })

	slack.Archive(sam.ID, sch.ID)
	h.statusSays("archived", func(s string) bool { return strings.Contains(s, "#bridged, archived in Slack") })
	h.command("/slackbridge list", "archived in Slack")
	h.post(h.alice, "said while archived", "")
	h.statusSays("the post was not relayed", func(s string) bool { return strings.Contains(s, "1 events while the room was archived") })

	slack.Unarchive(sam.ID, sch.ID)
	h.statusSays("no longer archived", func(s string) bool { return !strings.Contains(s, "archived in Slack") })
	h.post(h.alice, "said after the unarchive", "")
	ctx, cancel := context.WithTimeout(h.ctx, wait)
	defer cancel()
	if _, err := slack.WaitMessage(ctx, sch.ID, func(m slacktest.Message) bool { return m.Text == "said after the unarchive" }); err != nil {
		t.Fatalf("after the unarchive: %v", err)
	}
	for _, m := range slack.Messages(sch.ID) {
		if strings.Contains(m.Text, "while archived") {
			t.Errorf("what was said while archived reached Slack: %q", m.Text)
		}
	}
}
