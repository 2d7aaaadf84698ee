package slack

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
)

func doctorCheck(t *testing.T, r doctor.Report, name string) doctor.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in the report:\n%s", name, r.Text())
	return doctor.Check{}
}

func wantFailed(t *testing.T, r doctor.Report, name string, detail, fix []string) {
	t.Helper()
	c := doctorCheck(t, r, name)
	if c.Passed {
		t.Fatalf("%s passed:\n%s", name, r.Text())
	}
	for _, w := range detail {
		if !strings.Contains(c.Detail, w) {
			t.Errorf("%s: the detail %q does not say %q", name, c.Detail, w)
		}
	}
	for _, w := range fix {
		if !strings.Contains(c.Fix, w) {
			t.Errorf("%s: the fix %q does not say %q", name, c.Fix, w)
		}
	}
}

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
		doctorCheck(t, healthy, name)
	}
	if c := doctorCheck(t, healthy, "auth.test"); !strings.Contains(c.Detail, s.BotUserID()) {
		t.Errorf("auth.test does not name the bot: %q", c.Detail)
	}
	t.Logf("healthy:\n%s", healthy.Text())

	wantFailed(t, runDoctor(ctx, cfg, connector.DoctorEnv{Rooms: []string{out.ID}}), "Channel "+out.ID,
		[]string{"not a member", "#random"}, []string{"/invite @"})

	s.SetBotScopes(slices.DeleteFunc(slices.Clone(slacktest.DefaultBotScopes), func(sc string) bool { return sc == "reactions:write" })...)
	wantFailed(t, runDoctor(ctx, cfg, connector.DoctorEnv{}), "Scopes", []string{"reactions:write"}, []string{"reinstall"})
	s.SetBotScopes(slacktest.DefaultBotScopes...)

	badBot := cfg
	badBot.BotToken = "xoxb-not-a-real-token"
	r := runDoctor(ctx, badBot, connector.DoctorEnv{})
	wantFailed(t, r, "auth.test", []string{"invalid_auth"}, []string{"SlackBotToken"})
	if strings.Contains(r.Text(), badBot.BotToken) {
		t.Error("the report quotes the token")
	}
	badApp := cfg
	badApp.AppToken = "xapp-not-a-real-token"
	wantFailed(t, runDoctor(ctx, badApp, connector.DoctorEnv{}), "Socket Mode", []string{"apps.connections.open"}, []string{"SlackAppToken"})

	if n := s.OpenConnections(); n != 0 {
		t.Errorf("the doctor left %d Socket Mode connections open", n)
	}
}
