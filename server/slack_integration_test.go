package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"maunium.net/go/mautrix/event"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
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
