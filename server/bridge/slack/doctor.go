package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
)

// Doctor checks the Slack settings for an admin (connector.Descriptor's
// Doctor).
func Doctor(ctx context.Context, c connector.Config, env connector.DoctorEnv) doctor.Report {
	cc, _ := c.(configured)
	return runDoctor(ctx, Config{BotToken: cc.SlackBotToken, AppToken: cc.SlackAppToken, APIURL: cc.SlackAPIURL}, env)
}

// runDoctor checks the tokens and the linked channels with read-only Web
// API calls. Socket Mode is checked with apps.connections.open alone: a
// connection opened would take a share of the app's events from the
// running bridge.
func runDoctor(ctx context.Context, cfg Config, env connector.DoctorEnv) doctor.Report {
	d := &slackDoctor{cfg: cfg}
	steps := []doctor.Step{
		{Name: "Settings", Run: d.checkSettings},
		{Name: "auth.test", Needs: []string{"Settings"}, Run: d.checkAuth},
		{Name: "Scopes", Needs: []string{"auth.test"}, Run: d.checkScopes},
		{Name: "Socket Mode", Needs: []string{"Settings"}, Run: d.checkSocketMode},
	}
	for _, ch := range env.Rooms {
		steps = append(steps, doctor.Step{Name: "Channel " + ch, Needs: []string{"auth.test"}, Run: func(ctx context.Context) doctor.Result {
			return d.checkChannel(ctx, ch)
		}})
	}
	return doctor.Run(ctx, "slack", env.Limits, steps)
}

type slackDoctor struct {
	cfg Config
	// b is a bridge that is never started: its Web API clients and its
	// way of explaining Slack's errors.
	b  *Bridge
	me identity
}

const tokenFix = "Set SlackBotToken to the app's Bot User OAuth Token (xoxb-…, on its OAuth & Permissions page); reinstall the app if the token was revoked."

func (d *slackDoctor) checkSettings(context.Context) doctor.Result {
	b, err := New(d.cfg, nil, nil)
	if err != nil {
		return doctor.Fail("The Slack settings are incomplete: "+strings.ReplaceAll(err.Error(), "\n", "; ")+".", "Set both Slack tokens in the System Console and save them.")
	}
	d.b = b
	where := "slack.com"
	if d.cfg.APIURL != "" {
		where = b.cfg.APIURL
	}
	return doctor.Pass("A bot token and an app-level token are set; the Web API is %s.", where)
}

func (d *slackDoctor) checkAuth(ctx context.Context) doctor.Result {
	res, err := d.b.api.AuthTestContext(ctx)
	if err != nil {
		err = d.b.wrap("auth.test", err)
		if isTokenError(err) {
			return doctor.Fail(err.Error()+".", tokenFix)
		}
		return doctor.Fail(err.Error()+".", "Check SlackAPIURL (empty for Slack itself) and that the Mattermost server reaches Slack over HTTPS.")
	}
	d.me = identity{teamID: res.TeamID, team: res.Team, userID: res.UserID, user: res.User, botID: res.BotID}
	for _, s := range strings.Split(res.Header.Get("X-OAuth-Scopes"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			d.me.scopes = append(d.me.scopes, s)
		}
	}
	if res.BotID == "" {
		return doctor.Fail(fmt.Sprintf("The token belongs to the user %s (%s), not to a bot.", res.User, res.UserID), tokenFix)
	}
	return doctor.Pass("The bot token is @%s (%s, bot %s) in %s (%s).", res.User, res.UserID, res.BotID, res.Team, res.TeamID)
}

func (d *slackDoctor) checkScopes(context.Context) doctor.Result {
	if missing := missingScopes(d.me.scopes); len(missing) > 0 {
		return doctor.Fail(fmt.Sprintf("The bot token lacks the scopes %s (it has %s).", strings.Join(missing, ", "), strings.Join(d.me.scopes, ", ")),
			"Add "+strings.Join(missing, ", ")+" to the app's bot token scopes (OAuth & Permissions) and reinstall the app to the workspace.")
	}
	return doctor.Pass("The bot token has every scope the bridge uses (%s).", strings.Join(RequiredScopes, ", "))
}

func (d *slackDoctor) checkSocketMode(ctx context.Context) doctor.Result {
	// slack-go's StartSocketModeContext is apps.connections.open: it
	// returns the URL without connecting to it.
	_, url, err := d.b.app.StartSocketModeContext(ctx)
	if err != nil {
		err = d.b.wrap("apps.connections.open", err)
		return doctor.Fail(err.Error()+".", "Set SlackAppToken to an app-level token (xapp-…) with the connections:write scope, and turn Socket Mode on in the app's settings.")
	}
	if url == "" {
		return doctor.Fail("apps.connections.open gave no connection URL.", "Turn Socket Mode on in the app's settings.")
	}
	return doctor.Pass("apps.connections.open answers with the app-level token: Socket Mode is on.")
}

func (d *slackDoctor) checkChannel(ctx context.Context, id string) doctor.Result {
	ch, err := d.b.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if err != nil {
		err = d.b.wrap("conversations.info", err)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Code == "channel_not_found" {
			return doctor.Fail(err.Error()+".", fmt.Sprintf("Invite @%s into the channel if it is private, or unlink it with /slackbridge unmap in its Mattermost channel.", d.me.user))
		}
		return doctor.Fail(err.Error()+".", "Check the bot token's scopes (channels:read, groups:read).")
	}
	switch {
	case ch.IsArchived:
		return doctor.Fail(fmt.Sprintf("#%s is archived in Slack.", ch.Name), "Unarchive it in Slack, or unlink it with /slackbridge unmap in its Mattermost channel.")
	case !ch.IsMember:
		return doctor.Fail(fmt.Sprintf("The bot is not a member of #%s: it neither sees nor posts its messages.", ch.Name),
			fmt.Sprintf("Invite the bot there: /invite @%s in #%s.", d.me.user, ch.Name))
	}
	return doctor.Pass("The bot is a member of #%s.", ch.Name)
}
