package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Issue 13: /xmppbridge doctor and POST /api/v1/networks/xmpp/test run
// the XMPP doctor with the saved settings and the linked room, beside the
// running bridge; the endpoint answers only system admins, never with a
// secret.
func TestDoctorCommandAndEndpoint(t *testing.T) {
	h := newXMPPHarness(t, "client")
	// The doctor lists the links from a read replica, like /xmppbridge
	// list: wait until it has the new one.
	testhost.WaitFor(t, 30*time.Second, func() bool {
		resp, appErr := h.n.ExecuteCommand(h.admin.Id, h.ch.Id, h.ch.TeamId, "/xmppbridge list")
		return appErr == nil && strings.Contains(resp.Text, h.room.String())
	}, "the link on the replica")
	text := h.command("/xmppbridge doctor", "all 11 checks passed")
	for _, want := range []string{"Authentication", "Join " + h.room.String(), "Archive (MAM) of " + h.room.String()} {
		if !strings.Contains(text, want) {
			t.Errorf("the report does not name %q:\n%s", want, text)
		}
	}
	runCommand(t, h.n, h.alice, h.ch, "/xmppbridge doctor", "Only system admins")

	post := func(userID, path string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, path, http.NoBody)
		res := h.n.ServeHTTP(userID, req)
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	res, body := post(h.admin.Id, "/api/v1/networks/xmpp/test")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("the admin's test: %d %s", res.StatusCode, body)
	}
	var r doctor.Report
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.Network != "xmpp" || !r.Passed || len(r.Checks) != 11 {
		t.Fatalf("report: %s", body)
	}
	if strings.Contains(body, bridgePassword) {
		t.Fatal("the report holds the password")
	}
	for path, want := range map[string]int{
		"/api/v1/networks/xmpp/test":    http.StatusUnauthorized,
		"/api/v1/networks/nowhere/test": http.StatusNotFound,
		"/api/v1/networks/slack/test":   http.StatusConflict, // not enabled
	} {
		user := h.admin.Id
		if want == http.StatusUnauthorized {
			user = ""
		}
		if res, body := post(user, path); res.StatusCode != want || !strings.Contains(body, `"error":`) {
			t.Errorf("%s: %d %s, want %d with an error", path, res.StatusCode, body, want)
		}
	}
	if res, body := post(h.alice.Id, "/api/v1/networks/xmpp/test"); res.StatusCode != http.StatusForbidden || !strings.Contains(body, `"error":`) {
		t.Errorf("a regular user's test: %d %s", res.StatusCode, body)
	}
	// The running bridge still relays after the doctor's visit.
	h.exchangeFirstMessages()
}
