package slack

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor/doctortest"
)

// Issue 13: the Slack doctor against the project's Slack test server: a
// healthy app passes; a missing scope, a bad token, a channel the bot is
// not in each fail the check that names the cause and the fix. It opens
// no Socket Mode connection (Slack would share the app's events with it).
func TestDoctorAgainstTheSlackTestServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := slacktest.Start(t, slacktest.Options{})
	in := s.AddChannel(slacktest.Channel{Name: "general", Members: []string{s.BotUserID()}})
	out := s.AddChannel(slacktest.Channel{Name: "random"})
	cfg := Config{BotToken: s.BotToken(), AppToken: s.AppToken(), APIURL: s.APIURL()}

	healthy := runDoctor(ctx, cfg, connector.DoctorEnv{Rooms: []string{in.ID}})
	if !healthy.Passed {
		t.Fatalf("the healthy app failed:\n%s", healthy.Text())
	}
	for _, name := range []string{"Settings", "auth.test", "Scopes", "Socket Mode", "Channel " + in.ID} {
		doctortest.Check(t, healthy, name)
	}
	if c := doctortest.Check(t, healthy, "auth.test"); !strings.Contains(c.Detail, s.BotUserID()) {
		t.Errorf("auth.test does not name the bot: %q", c.Detail)
	}
	t.Logf("healthy:\n%s", healthy.Text())

	doctortest.WantFailed(t, runDoctor(ctx, cfg, connector.DoctorEnv{Rooms: []string{out.ID}}), "Channel "+out.ID,
		[]string{"not a member", "#random"}, []string{"/invite @"})

	s.SetBotScopes(slices.DeleteFunc(slices.Clone(slacktest.DefaultBotScopes), func(sc string) bool { return sc == "reactions:write" })...)
	doctortest.WantFailed(t, runDoctor(ctx, cfg, connector.DoctorEnv{}), "Scopes", []string{"reactions:write"}, []string{"reinstall"})
	s.SetBotScopes(slacktest.DefaultBotScopes...)

	badBot := cfg
	badBot.BotToken = "xoxb-not-a-real-token"
	r := runDoctor(ctx, badBot, connector.DoctorEnv{})
	doctortest.WantFailed(t, r, "auth.test", []string{"invalid_auth"}, []string{"SlackBotToken"})
	if strings.Contains(r.Text(), badBot.BotToken) {
		t.Error("the report quotes the token")
	}
	badApp := cfg
	badApp.AppToken = "xapp-not-a-real-token"
	doctortest.WantFailed(t, runDoctor(ctx, badApp, connector.DoctorEnv{}), "Socket Mode", []string{"apps.connections.open"}, []string{"SlackAppToken"})

	if n := s.OpenConnections(); n != 0 {
		t.Errorf("the doctor left %d Socket Mode connections open", n)
	}
}
