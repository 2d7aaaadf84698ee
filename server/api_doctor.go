package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// errNetworkDisabled refuses the doctor of a network that is not enabled
// (409 on the REST API).
var errNetworkDisabled = errors.New("is not enabled: enable it in the System Console first")

// networkDoctor runs n's doctor with the saved settings and the rooms
// linked on n. The report holds no secret: networks write none, and any
// configured secret is removed all the same.
func (p *Plugin) networkDoctor(ctx context.Context, n connector.Descriptor) (doctor.Report, error) {
	if n.Doctor == nil {
		return doctor.Report{}, fmt.Errorf("the %s bridge has no doctor: %w", n.Command.Title, bridge.ErrNotImplemented)
	}
	cfg := p.getConfiguration().networks[n.Network()]
	if cfg == nil || !cfg.Enabled() {
		return doctor.Report{}, fmt.Errorf("%s %w", n.Command.Title, errNetworkDisabled)
	}
	env := connector.DoctorEnv{}
	env.PluginURL, _ = p.pluginURL() // unknown without a Site URL; the checks say so
	if rt := p.active(); rt != nil {
		links, err := rt.store.ListLinks()
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return doctor.Report{}, fmt.Errorf("list the linked rooms: %w", err)
		}
		for _, l := range links {
			for _, r := range l.Remotes {
				if r.Network == n.Network() {
					env.Rooms = append(env.Rooms, r.Room)
				}
			}
		}
		env.Connected = p.health(rt, n.Network()).State == bridge.StateConnected
	}
	r := n.Doctor(ctx, cfg, env)
	for i := range r.Checks {
		r.Checks[i].Detail = p.redact(r.Checks[i].Detail)
		r.Checks[i].Fix = p.redact(r.Checks[i].Fix)
	}
	return r, nil
}

// doctorSubcommand is /<network>bridge doctor.
func (p *Plugin) doctorSubcommand(n connector.Descriptor) command.Subcommand {
	return command.Subcommand{
		Name: "doctor",
		Help: fmt.Sprintf("Check the %s settings: the connection, the login, the server's features and each linked room", n.Command.Title),
		Run: func(ctx context.Context, call command.Call) (string, error) {
			if len(call.Fields) != 0 {
				return "", fmt.Errorf("usage: `/%s doctor`", call.Spec.Trigger)
			}
			r, err := p.networkDoctor(ctx, n)
			if err != nil {
				return "", err
			}
			return r.Text(), nil
		},
	}
}

// serveDoctor answers POST /api/v1/networks/{network}/test with the
// network's doctor report (apiRoutes checks the method and the admin).
func (p *Plugin) serveDoctor(w http.ResponseWriter, r *http.Request, network string) {
	var n *connector.Descriptor
	for _, d := range p.allNetworks() {
		if string(d.Network()) == network {
			n = &d
		}
	}
	if n == nil {
		p.writeError(w, http.StatusNotFound, "no such network")
		return
	}
	report, err := p.networkDoctor(r.Context(), *n)
	switch {
	case errors.Is(err, errNetworkDisabled):
		p.writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, bridge.ErrNotImplemented):
		p.writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		p.logger().Error("The doctor could not run", "network", network, "error", err.Error())
		p.writeError(w, http.StatusInternalServerError, "the doctor could not run; see the server log")
	default:
		writeJSON(w, http.StatusOK, report)
	}
}
