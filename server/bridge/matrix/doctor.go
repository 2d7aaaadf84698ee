package matrix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
)

// Doctor checks the Matrix settings for an admin (connector.Descriptor's
// Doctor).
func Doctor(ctx context.Context, c connector.Config, env connector.DoctorEnv) doctor.Report {
	cc, _ := c.(configured)
	return runDoctor(ctx, cc.cfg, env)
}

// runDoctor checks the homeserver and the registration from the settings,
// with read-only calls as the bridge's bot.
func runDoctor(ctx context.Context, cfg Config, env connector.DoctorEnv) doctor.Report {
	d := &matrixDoctor{cfg: cfg, env: env}
	steps := []doctor.Step{
		{Name: "Settings", Run: d.checkSettings},
		{Name: "Homeserver", Needs: []string{"Settings"}, Run: d.checkVersions},
		{Name: "Registration", Needs: []string{"Homeserver"}, Run: d.checkRegistration},
		{Name: "Appservice ping", Needs: []string{"Registration"}, Run: d.checkPing},
	}
	for _, room := range env.Rooms {
		steps = append(steps, doctor.Step{Name: "Room " + room, Needs: []string{"Registration"}, Run: func(ctx context.Context) doctor.Result {
			return d.checkRoom(ctx, room)
		}})
	}
	return doctor.Run(ctx, "matrix", env.Limits, steps)
}

type matrixDoctor struct {
	cfg Config
	env connector.DoctorEnv
	// b is a bridge that is never started: its client is the bot's, as
	// the bridge makes it.
	b *Bridge
}

const registrationFix = "Install the registration file from /matrixbridge registration (or the System Console's download) on the homeserver and restart it, so its as_token is MatrixASToken."

func (d *matrixDoctor) checkSettings(context.Context) doctor.Result {
	b, err := New(d.cfg, nil, nil)
	if err != nil {
		// Validate names settings, never their values.
		return doctor.Fail("The Matrix settings are incomplete: "+strings.ReplaceAll(err.Error(), "\n", "; ")+".", "Complete the Matrix settings in the System Console (generate both tokens) and save them.")
	}
	d.b = b
	return doctor.Pass("Homeserver %s, server name %s, bot %s, puppets @%s…:%s.", d.cfg.HomeserverURL, d.cfg.ServerName, b.bot, d.cfg.UserPrefix, d.cfg.ServerName)
}

func (d *matrixDoctor) checkVersions(ctx context.Context) doctor.Result {
	v, err := d.b.as.BotClient().Versions(ctx)
	if err != nil {
		return doctor.Fail(fmt.Sprintf("%s/_matrix/client/versions did not answer: %v.", strings.TrimRight(d.cfg.HomeserverURL, "/"), err),
			"Set MatrixHomeserverURL to the homeserver's client-server API URL, reachable from the Mattermost server.")
	}
	var names []string
	for _, s := range v.Versions {
		names = append(names, s.String())
	}
	if len(names) > 4 {
		names = append(names[:2:2], "…", names[len(names)-1])
	}
	return doctor.Pass("The homeserver speaks Matrix %s.", strings.Join(names, ", "))
}

func (d *matrixDoctor) checkRegistration(ctx context.Context) doctor.Result {
	who, err := d.b.as.BotIntent().Whoami(ctx)
	if err != nil {
		if errors.Is(err, mautrix.MUnknownToken) {
			return doctor.Fail(fmt.Sprintf("The homeserver does not know the as_token (%v): the registration it has is not the one of these settings.", errCode(err)), registrationFix)
		}
		return doctor.Fail(fmt.Sprintf("whoami with the as_token failed: %v.", describe(err)), registrationFix)
	}
	if who.UserID != d.b.bot {
		return doctor.Fail(fmt.Sprintf("The as_token belongs to %s, not %s: the registration's sender_localpart or the server name differ from the settings.", who.UserID, d.b.bot),
			"Set MatrixBotLocalpart and MatrixServerName to the registration's, or install the registration again.")
	}
	// A puppet's ID, to see the homeserver gives the user namespace to
	// this application service.
	puppet := id.NewUserID(d.cfg.UserPrefix+"doctor", d.cfg.ServerName)
	if _, err := d.b.as.Intent(puppet).Whoami(ctx); err != nil && !errors.Is(err, mautrix.MNotFound) {
		if errors.Is(err, mautrix.MForbidden) || errors.Is(err, mautrix.MExclusive) || errors.Is(err, mautrix.MUnknownToken) {
			return doctor.Fail(fmt.Sprintf("The homeserver does not let the application service act as %s (%v): the registration's user namespace is not @%s.*:%s.", puppet, errCode(err), d.cfg.UserPrefix, d.cfg.ServerName),
				"Install the registration file from /matrixbridge registration again (its namespaces follow MatrixUserPrefix) and restart the homeserver.")
		}
	}
	return doctor.Pass("The homeserver knows the as_token as %s and gives it the users @%s…:%s.", who.UserID, d.cfg.UserPrefix, d.cfg.ServerName)
}

// errCode is the Matrix error code of err, or its text.
func errCode(err error) string {
	var h mautrix.HTTPError
	if errors.As(err, &h) && h.RespError != nil && h.RespError.ErrCode != "" {
		return h.RespError.ErrCode + ": " + h.RespError.Err
	}
	return err.Error()
}

// checkPing asks the homeserver to call the plugin (Matrix 1.7's
// appservice ping): both ways at once, with both tokens. A homeserver
// without it (Dendrite) cannot be asked; then the plugin's endpoint is
// called directly with the hs_token, which at least shows the URL the
// registration gives the homeserver answers.
func (d *matrixDoctor) checkPing(ctx context.Context) doctor.Result {
	start := time.Now()
	res, err := d.b.as.BotClient().AppservicePing(ctx, RegistrationID, "mmb-doctor-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err == nil {
		return doctor.Pass("The homeserver reached the plugin's application-service endpoint with the hs_token (%d ms there, %d ms in all).", res.DurationMS, time.Since(start).Milliseconds())
	}
	var h mautrix.HTTPError
	errors.As(err, &h)
	switch {
	case errors.Is(err, mautrix.MUnrecognized), isStatus(err, http.StatusNotFound, http.StatusMethodNotAllowed):
		return d.pingPlugin(ctx)
	case errors.Is(err, mautrix.MURLNotSet):
		return doctor.Fail("The homeserver's registration has no url: it never sends the plugin anything.", registrationFix)
	case errors.Is(err, mautrix.MBadStatus):
		status := ""
		if h.RespError != nil {
			status = fmt.Sprint(h.RespError.ExtraData["status"])
		}
		switch status {
		case "403":
			return doctor.Fail("The plugin refused the homeserver's hs_token (403): the registration's hs_token is not MatrixHSToken.",
				"Install the registration file from /matrixbridge registration again and restart the homeserver.")
		case "503":
			return doctor.Fail("The homeserver reached the plugin, but the Matrix bridge is not running there (503).", "Enable Matrix in the System Console and check /matrixbridge status.")
		}
		return doctor.Fail(fmt.Sprintf("The plugin answered the homeserver with HTTP %s.", status), "Check the Site URL: the registration's url must lead to this plugin.")
	}
	return doctor.Fail(fmt.Sprintf("The homeserver could not reach the plugin: %v.", errCode(err)),
		"Set the Site URL to an address the homeserver reaches, install the registration again (its url follows the Site URL) and restart the homeserver.")
}

// pingPlugin calls the plugin's ping endpoint as the homeserver would.
func (d *matrixDoctor) pingPlugin(ctx context.Context) doctor.Result {
	const unsupported = "The homeserver does not offer the appservice ping (Matrix 1.7)"
	if d.env.PluginURL == "" {
		return doctor.Pass("%s and the plugin's URL is not known here, so the way from the homeserver to the plugin could not be checked.", unsupported)
	}
	url := strings.TrimRight(d.env.PluginURL, "/") + "/_matrix/app/v1/ping"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte("{}")))
	if err != nil {
		return doctor.Fail(err.Error()+".", "Check the Site URL in the System Console.")
	}
	req.Header.Set("Authorization", "Bearer "+d.cfg.HSToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return doctor.Fail(fmt.Sprintf("%s, and the plugin's endpoint %s did not answer: %v.", unsupported, url, err), "Set the Site URL to an address the Mattermost server and the homeserver reach.")
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return doctor.Pass("%s; the plugin's endpoint %s, which the registration gives the homeserver, answers the hs_token.", unsupported, url)
	case http.StatusForbidden:
		return doctor.Fail(fmt.Sprintf("%s, and the running bridge refused MatrixHSToken (403): it runs with other settings.", unsupported), "Save the Matrix settings again, then install the registration file again and restart the homeserver.")
	case http.StatusServiceUnavailable:
		return doctor.Fail(fmt.Sprintf("%s, and the Matrix bridge is not running in the plugin (503).", unsupported), "Enable Matrix in the System Console and check /matrixbridge status.")
	}
	return doctor.Fail(fmt.Sprintf("%s, and the plugin's endpoint %s answered HTTP %d.", unsupported, url, resp.StatusCode), "Check the Site URL: it must lead to this Mattermost server.")
}

func (d *matrixDoctor) checkRoom(ctx context.Context, room string) doctor.Result {
	client := d.b.as.BotClient()
	roomID := id.RoomID(room)
	if strings.HasPrefix(room, "#") {
		res, err := client.ResolveAlias(ctx, id.RoomAlias(room))
		if err != nil {
			if errors.Is(err, mautrix.MNotFound) {
				return doctor.Fail("No room has the alias "+room+".", "Unlink it with /matrixbridge unmap in its channel and link the room's current alias or ID.")
			}
			return doctor.Fail(fmt.Sprintf("Could not resolve %s: %v.", room, errCode(err)), "Check that the homeserver can look up the alias (over federation for another server's).")
		}
		roomID = res.RoomID
	}
	joined, err := client.JoinedRooms(ctx)
	if err != nil {
		return doctor.Fail(fmt.Sprintf("Could not list the bot's rooms: %v.", errCode(err)), registrationFix)
	}
	if !slices.Contains(joined.JoinedRooms, roomID) {
		return doctor.Fail(fmt.Sprintf("The bot %s is not in the room %s: it neither sees nor relays its messages.", d.b.bot, roomID),
			fmt.Sprintf("Invite %s to the room (the bridge joins linked rooms when it starts), or link the room again with /matrixbridge map.", d.b.bot))
	}
	return doctor.Pass("The bot %s is in %s.", d.b.bot, roomID)
}
