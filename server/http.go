package main

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// registrationFilename is what the registration download is saved as.
const registrationFilename = "mattermost-bridge-registration.yaml"

// isSystemAdmin reports whether the request comes with the session of a
// system admin. The server sets Mattermost-User-ID only for a valid session
// (and strips any a client sends).
func (p *Plugin) isSystemAdmin(r *http.Request) bool {
	userID := r.Header.Get("Mattermost-User-ID")
	return userID != "" && p.API.HasPermissionTo(userID, model.PermissionManageSystem)
}

// serveMatrix hands the application-service API to the Matrix bridge. The
// homeserver has no Mattermost session: the bridge checks its hs_token.
func (p *Plugin) serveMatrix(w http.ResponseWriter, r *http.Request) {
	var h http.Handler
	if rt := p.active(); rt != nil {
		if b, ok := rt.manager.Bridge(bridge.NetworkMatrix); ok {
			h, _ = b.(http.Handler)
		}
	}
	if h == nil {
		// A Matrix-style error: homeservers keep a transaction and send it
		// again later when the answer is not 200.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"errcode": "M_UNKNOWN", "error": "the Matrix bridge is not running"})
		return
	}
	h.ServeHTTP(w, r)
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

// serveMatrixRegistration lets a system admin download the registration
// file to install on the homeserver (the System Console's button).
func (p *Plugin) serveMatrixRegistration(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	if !p.isSystemAdmin(r) {
		http.Error(w, "only system admins can download the Matrix registration", http.StatusForbidden)
		return
	}
	y, err := p.matrixRegistration()
	switch {
	case isSetupError(err):
		// 409: the request is fine, the settings are not ready for it.
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case err != nil:
		p.API.LogError("Could not render the Matrix registration", "error", err.Error())
		http.Error(w, "could not render the Matrix registration", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/yaml")
	h.Set("Content-Disposition", `attachment; filename="`+registrationFilename+`"`)
	// It holds both tokens: no cache may keep a copy.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(y))
	}
}
