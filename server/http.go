package main

import (
	"encoding/json"
	"net/http"

	"github.com/mattermost/mattermost/server/public/model"
)

// The plugin's REST API, under /plugins/<id>/api/v1 (see the README's
// "REST API" section): JSON in and out, errors as {"error": "..."}, no
// configured secret in any answer. It runs on the node that holds the
// bridge; the other nodes forward requests there (forward.go).

// isSystemAdmin reports whether the request comes with the session of a
// system admin. The server sets Mattermost-User-ID only for a valid session
// (and strips any a client sends).
func (p *Plugin) isSystemAdmin(r *http.Request) bool {
	userID := r.Header.Get("Mattermost-User-ID")
	return userID != "" && p.API.HasPermissionTo(userID, model.PermissionManageSystem)
}

// apiRoutes are the REST API's routes. Methods are checked by the handlers,
// so that a wrong one gets a JSON error too.
func (p *Plugin) apiRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	admin := func(method string, serve func(rt *runtime, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !allowMethod(w, r, method) || !p.requireAdmin(w, r) {
				return
			}
			rt := p.active()
			if rt == nil {
				p.writeError(w, http.StatusServiceUnavailable, "the bridge is starting or stopping on this node; try again in a moment")
				return
			}
			serve(rt, w, r)
		}
	}
	mux.HandleFunc("/api/v1/status", admin(http.MethodGet, p.serveStatus))
	mux.HandleFunc("/api/v1/links", admin(http.MethodGet, p.serveLinks))
	mux.HandleFunc("/api/v1/links/{channel_id}", admin(http.MethodDelete, p.serveUnlink))
	mux.HandleFunc("/api/v1/links/{channel_id}/{network}", admin(http.MethodDelete, p.serveUnlink))
	mux.HandleFunc("/api/v1/networks/{network}/test", admin(http.MethodPost, func(_ *runtime, w http.ResponseWriter, r *http.Request) {
		p.serveDoctor(w, r, r.PathValue("network"))
	}))
	mux.HandleFunc("/api/v1/channels/{channel_id}/links", p.serveChannelLinks)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		p.writeError(w, http.StatusNotFound, "no such route")
	})
	return mux
}

// requireAdmin answers 401 to a request without a session and 403 to one
// of a user who is not a system admin.
func (p *Plugin) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	userID := r.Header.Get("Mattermost-User-ID")
	switch {
	case userID == "":
		p.writeError(w, http.StatusUnauthorized, "log in to Mattermost to use the bridge's API")
		return false
	case !p.API.HasPermissionTo(userID, model.PermissionManageSystem):
		p.writeError(w, http.StatusForbidden, "only system admins can use this part of the bridge's API")
		return false
	}
	return true
}

func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "use " + method + " here"})
	return false
}

type apiError struct {
	Error string `json:"error"`
}

// writeError answers with a JSON error; the message loses every configured
// secret, as it may quote an error from elsewhere.
func (p *Plugin) writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: p.redact(msg)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// redact removes the configured secrets from text meant for an answer.
func (p *Plugin) redact(s string) string { return redact(s, p.getConfiguration().secrets()) }
