package matrix

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"
)

// maxTransaction bounds a transaction body; homeservers batch at most a few
// hundred events.
const maxTransaction = 16 << 20

// ServeHTTP answers the application-service API the homeserver calls. The
// plugin routes every path under /_matrix/ here.
func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !b.authorized(r) {
		// Wrong and missing tokens are treated alike: nothing is revealed
		// about which one it was.
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "bad or missing hs_token")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/_matrix/app/v1")
	switch {
	case strings.HasPrefix(path, "/transactions/") && r.Method == http.MethodPut:
		b.serveTransaction(w, r, strings.TrimPrefix(path, "/transactions/"))
	case strings.HasPrefix(path, "/users/") && r.Method == http.MethodGet:
		b.serveUserQuery(w, strings.TrimPrefix(path, "/users/"))
	case strings.HasPrefix(path, "/rooms/") && r.Method == http.MethodGet:
		// The bridge owns no room aliases.
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no such room alias")
	case path == "/ping" && r.Method == http.MethodPost:
		writeJSON(w, http.StatusOK, struct{}{})
	default:
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "unknown application-service endpoint")
	}
}

// authorized compares the homeserver's bearer token in constant time. The
// older ?access_token= form never arrives: Mattermost removes it from
// plugin requests.
func (b *Bridge) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(b.cfg.HSToken)) == 1
}

func (b *Bridge) serveTransaction(w http.ResponseWriter, r *http.Request, txnID string) {
	if txnID == "" || strings.Contains(txnID, "/") || len(txnID) > 255 {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "bad transaction ID")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTransaction+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "could not read the transaction")
		return
	}
	if len(body) > maxTransaction {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "transaction too large")
		return
	}
	var txn appservice.Transaction
	if err := json.Unmarshal(body, &txn); err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "the transaction is not valid JSON: "+err.Error())
		return
	}
	status, err := b.handleTransaction(r.Context(), txnID, &txn)
	if err != nil {
		code := "M_UNKNOWN"
		if status == http.StatusBadRequest {
			code = "M_BAD_JSON"
		}
		writeError(w, status, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// serveUserQuery says whether a puppet exists. Puppets are made when a
// Mattermost user first needs one, so one not made yet is reported missing.
func (b *Bridge) serveUserQuery(w http.ResponseWriter, userID string) {
	if _, ok := b.puppetUsername(id.UserID(userID)); ok {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no such user")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"errcode": code, "error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errBadEvent marks an event the bridge cannot make sense of; it is skipped
// instead of failing the whole transaction, which would stall the
// homeserver's queue forever.
var errBadEvent = errors.New("malformed event")
