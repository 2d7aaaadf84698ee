package main

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// isSystemAdmin reports whether the request comes with the session of a
// system admin. The server sets Mattermost-User-ID only for a valid session
// (and strips any a client sends).
func (p *Plugin) isSystemAdmin(r *http.Request) bool {
	userID := r.Header.Get("Mattermost-User-ID")
	return userID != "" && p.API.HasPermissionTo(userID, model.PermissionManageSystem)
}

// statusReport is what the status endpoint returns to system admins.
type statusReport struct {
	Networks map[bridge.Network]bridge.Health `json:"networks"`
	Bus      bridge.BusStats                  `json:"bus"`
	Links    int                              `json:"links"`
}

func (p *Plugin) serveStatus(w http.ResponseWriter, r *http.Request) {
	if !p.isSystemAdmin(r) {
		http.Error(w, "only system admins can read the bridge status", http.StatusForbidden)
		return
	}
	rt := p.active()
	if rt == nil {
		http.Error(w, "the bridge is not running", http.StatusServiceUnavailable)
		return
	}
	report := statusReport{Networks: map[bridge.Network]bridge.Health{}, Bus: rt.manager.Stats()}
	report.Networks[bridge.NetworkMattermost] = p.health(rt, bridge.NetworkMattermost)
	for _, n := range p.allNetworks() {
		report.Networks[n.Command.Network] = p.health(rt, n.Command.Network)
	}
	links, err := rt.store.ListLinks()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		http.Error(w, "could not list links", http.StatusInternalServerError)
		return
	}
	report.Links = len(links)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(report)
}
