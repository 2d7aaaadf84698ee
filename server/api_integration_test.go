package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Issue 13 checks 2 and 3, on one running host: the REST API refuses
// anonymous and non-admin requests, never answers with a configured
// secret, shows the state and counters of real bridges (XMPP on Prosody,
// Slack on its test server, Matrix failing to reach its homeserver) as
// messages flow, lists and unlinks links; the metrics move with them.
func TestAdminAPIAndMetrics(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "partners", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)
	h := newXMPPHarness(t, "client")

	// The Matrix homeserver is a closed port, and its URL carries the AS
	// token: the connection error quotes the URL, so the token reaches the
	// network's last error unless the API removes it.
	const asToken, hsToken = "as-Secret-0123456789abcdef", "hs-Secret-0123456789abcdef"
	settings := xmppSettings(h.xmpp, "client")
	maps.Copy(settings, slackSettings(slack))
	settings["MatrixEnabled"] = true
	settings["MatrixHomeserverURL"] = "http://" + closedPort(t) + "/" + asToken
	settings["MatrixServerName"] = "example.org"
	settings["MatrixASToken"] = asToken
	settings["MatrixHSToken"] = hsToken
	if err := h.s.SetPluginSettings(settings); err != nil {
		t.Fatal(err)
	}
	secrets := []string{bridgePassword, asToken, hsToken, slack.BotToken(), slack.AppToken()}
	waitConnected(t, h.n, h.admin, h.ch, "slackbridge", "Slack")
	partners := channelOf(h.s, "partners", h.admin, h.alice)
	// Said before the link: it has no counterpart in Slack.
	unbridged := postAs(t, h.n, h.alice, partners, "said before the link", "")
	runCommand(t, h.n, h.admin, partners, "/slackbridge map "+sch.ID, "Linked this channel")

	api := &apiClient{t: t, n: h.n, secrets: secrets}
	// On no team: reads no channel.
	outsider := h.s.CreateUserWith(&model.User{Username: "outsider", Email: "outsider@example.com", Password: "Passw0rd!x"})

	t.Run("refuses anonymous and non-admin requests", func(t *testing.T) {
		api.t, h.t = t, t
		for _, route := range [][2]string{
			{http.MethodGet, "/api/v1/status"},
			{http.MethodGet, "/api/v1/links"},
			{http.MethodDelete, "/api/v1/links/" + h.ch.Id},
			{http.MethodDelete, "/api/v1/links/" + h.ch.Id + "/xmpp"},
			{http.MethodPost, "/api/v1/networks/xmpp/test"},
		} {
			api.expectError(route[0], route[1], "", http.StatusUnauthorized)
			api.expectError(route[0], route[1], h.alice.Id, http.StatusForbidden)
		}
		channelRoute := "/api/v1/channels/" + h.ch.Id + "/links"
		api.expectError(http.MethodGet, channelRoute, "", http.StatusUnauthorized)
		api.expectError(http.MethodGet, channelRoute, outsider.Id, http.StatusForbidden)
		// Nothing was unlinked by the refused requests.
		if rooms := api.channelRooms(h.alice.Id, h.ch.Id); len(rooms) != 1 {
			t.Fatalf("after refused requests the channel has rooms %+v", rooms)
		}
		api.expectError(http.MethodGet, "/api/v1/nowhere", h.admin.Id, http.StatusNotFound)
		api.expectError(http.MethodPost, "/api/v1/status", h.admin.Id, http.StatusMethodNotAllowed)
	})

	t.Run("status and metrics move as messages flow", func(t *testing.T) {
		api.t, h.t = t, t
		before := api.status(h.admin.Id)
		metricsBefore := scrapeMetrics(t, h.n, secrets)
		if _, err := h.occupant.Say(h.ctx, h.room, "status check from xmpp"); err != nil {
			t.Fatal(err)
		}
		h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "status check from xmpp" })
		h.post(h.alice, "status check from mattermost", "")
		h.roomMessage("alice's message", func(m xmpptest.Message) bool { return m.Body == "status check from mattermost" })
		// A reaction to a post Slack never got is dropped on its way there.
		if _, appErr := h.n.AddReaction(&model.Reaction{UserId: h.alice.Id, PostId: unbridged.Id, EmojiName: "smile"}); appErr != nil {
			t.Fatal(appErr)
		}

		var after statusReport
		testhost.WaitFor(t, wait, func() bool {
			after = api.status(h.admin.Id)
			x := after.network(bridge.NetworkXMPP)
			return x.Relayed[bridge.ToMattermost] > before.network(bridge.NetworkXMPP).Relayed[bridge.ToMattermost] &&
				x.Relayed[bridge.FromMattermost] > before.network(bridge.NetworkXMPP).Relayed[bridge.FromMattermost] &&
				after.network(bridge.NetworkSlack).Dropped[bridge.FromMattermost][bridge.ReasonUnknownTarget] == 1
		}, "the XMPP counters to count the messages both ways, and Slack's the reaction dropped")
		x := after.network(bridge.NetworkXMPP)
		if !x.Enabled || x.State != bridge.StateConnected || x.Since.IsZero() || x.LastEvent.IsZero() || x.Title != "XMPP" {
			t.Errorf("xmpp status %+v", x)
		}
		if s := after.network(bridge.NetworkSlack); !s.Enabled || s.State != bridge.StateConnected {
			t.Errorf("slack status %+v", s)
		}
		m := after.network(bridge.NetworkMatrix)
		if !m.Enabled || m.State != bridge.StateError || !strings.Contains(m.LastError, "127.0.0.1") || !strings.Contains(m.LastError, "[redacted]") {
			t.Errorf("matrix status %+v: want its connection error, the token in its URL redacted", m)
		}
		if mm := after.network(bridge.NetworkMattermost); mm.State != bridge.StateConnected || mm.Relayed[bridge.ToMattermost] == 0 {
			t.Errorf("mattermost status %+v", mm)
		}
		if after.Links != 2 || after.Node == "" {
			t.Errorf("links %d node %q", after.Links, after.Node)
		}

		metricsAfter := scrapeMetrics(t, h.n, secrets)
		for _, series := range []string{"events_relayed_total", "events_dropped_total", "delivery_latency_seconds_bucket",
			"queue_depth", "queue_oldest_age_seconds", "reconnect_attempts_total", "connection_state", "kv_round_trips_total", "holder"} {
			if !strings.Contains(metricsAfter, "\nmattermost_plugin_bridge_"+series) {
				t.Errorf("the metrics have no mattermost_plugin_bridge_%s series", series)
			}
		}
		for _, series := range []string{
			`mattermost_plugin_bridge_events_relayed_total{direction="to_mattermost",network="xmpp"}`,
			`mattermost_plugin_bridge_events_relayed_total{direction="from_mattermost",network="xmpp"}`,
			`mattermost_plugin_bridge_delivery_latency_seconds_count{destination="mattermost",source="xmpp"}`,
			`mattermost_plugin_bridge_delivery_latency_seconds_count{destination="xmpp",source="mattermost"}`,
		} {
			if b, a := sampleValue(metricsBefore, series), sampleValue(metricsAfter, series); a <= b {
				t.Errorf("%s went from %v to %v", series, b, a)
			}
		}
		for _, line := range []string{
			`mattermost_plugin_bridge_connection_state{network="xmpp",state="connected"} 1`,
			`mattermost_plugin_bridge_connection_state{network="matrix",state="error"} 1`,
			`mattermost_plugin_bridge_holder 1`,
			`mattermost_plugin_bridge_events_dropped_total{direction="from_mattermost",network="slack",reason="unknown_target"} 1`,
		} {
			if !strings.Contains(metricsAfter, "\n"+line+"\n") {
				t.Errorf("the metrics have no line %q", line)
			}
		}
		if sampleValue(metricsAfter, `mattermost_plugin_bridge_kv_round_trips_total{operation="get"}`) == 0 {
			t.Error("no KV reads counted")
		}
	})

	t.Run("links lists and unlinks", func(t *testing.T) {
		api.t, h.t = t, t
		var links struct {
			Links []linkInfo `json:"links"`
		}
		api.expectOK(http.MethodGet, "/api/v1/links", h.admin.Id, &links)
		var xl, sl *linkInfo
		for i, l := range links.Links {
			switch l.ChannelID {
			case h.ch.Id:
				xl = &links.Links[i]
			case partners.Id:
				sl = &links.Links[i]
			}
		}
		if xl == nil || sl == nil || len(links.Links) != 2 {
			t.Fatalf("links %+v", links.Links)
		}
		if xl.ChannelName != h.ch.Name || xl.TeamName != h.s.DefaultTeam().Name || xl.Since.IsZero() || xl.Health != healthOK ||
			len(xl.Rooms) != 1 || xl.Rooms[0].Network != bridge.NetworkXMPP || xl.Rooms[0].Room != h.room.String() ||
			xl.Rooms[0].State != bridge.StateConnected || xl.Rooms[0].LastIn.IsZero() || xl.Rooms[0].LastOut.IsZero() || xl.LastIn.IsZero() {
			t.Errorf("the XMPP link %+v", xl)
		}
		if len(sl.Rooms) != 1 || sl.Rooms[0].Name != "#partners" || sl.Rooms[0].Network != bridge.NetworkSlack {
			t.Errorf("the Slack link %+v", sl)
		}
		if rooms := api.channelRooms(h.alice.Id, h.ch.Id); len(rooms) != 1 || rooms[0].Room != h.room.String() || rooms[0].State != bridge.StateConnected {
			t.Errorf("alice sees rooms %+v", rooms)
		}

		var unlinked map[string][]string
		api.expectOK(http.MethodDelete, "/api/v1/links/"+h.ch.Id+"/xmpp", h.admin.Id, &unlinked)
		if got := unlinked["unlinked"]; len(got) != 1 || got[0] != "xmpp" {
			t.Fatalf("unlinked %v", unlinked)
		}
		api.expectError(http.MethodDelete, "/api/v1/links/"+h.ch.Id+"/xmpp", h.admin.Id, http.StatusNotFound)
		// The API reads links from a read replica, as the store does.
		testhost.WaitFor(t, wait, func() bool { return len(api.channelRooms(h.alice.Id, h.ch.Id)) == 0 }, "the channel to have no room")
		// The room no longer relays, either way.
		if _, err := h.occupant.Say(h.ctx, h.room, "said after the unlink"); err != nil {
			t.Fatal(err)
		}
		h.post(h.alice, "posted after the unlink", "")
		time.Sleep(3 * time.Second)
		for _, p := range h.s.ChannelPosts(h.ch.Id) {
			if p.Message == "said after the unlink" {
				t.Fatal("the unlinked room's message reached the channel")
			}
		}
		for _, m := range h.occupant.Messages() {
			if strings.Contains(m.Body, "posted after the unlink") {
				t.Fatal("the channel's post reached the unlinked room")
			}
		}

		api.expectOK(http.MethodDelete, "/api/v1/links/"+partners.Id, h.admin.Id, &unlinked)
		if got := unlinked["unlinked"]; len(got) != 1 || got[0] != "slack" {
			t.Fatalf("unlinked %v", unlinked)
		}
		testhost.WaitFor(t, wait, func() bool {
			api.expectOK(http.MethodGet, "/api/v1/links", h.admin.Id, &links)
			return len(links.Links) == 0
		}, "no link to be left")
		api.expectError(http.MethodDelete, "/api/v1/links/"+partners.Id, h.admin.Id, http.StatusNotFound)
		api.expectError(http.MethodDelete, "/api/v1/links/not-an-id", h.admin.Id, http.StatusBadRequest)
	})
}

// apiClient calls the plugin's REST API through the test host and checks
// that no answer holds a secret.
type apiClient struct {
	t       *testing.T
	n       *testhost.Node
	secrets []string
}

func (c *apiClient) call(method, path, userID string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, path, http.NoBody)
	res := c.n.ServeHTTP(userID, req)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	expectNoSecret(c.t, method+" "+path, body, c.secrets)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s answered %d with Content-Type %q: %s", method, path, res.StatusCode, ct, body)
	}
	return res.StatusCode, body
}

func (c *apiClient) expectOK(method, path, userID string, v any) {
	c.t.Helper()
	status, body := c.call(method, path, userID)
	if status != http.StatusOK {
		c.t.Fatalf("%s %s: %d %s", method, path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.t.Fatalf("%s %s: %v in %s", method, path, err, body)
	}
}

func (c *apiClient) expectError(method, path, userID string, want int) {
	c.t.Helper()
	status, body := c.call(method, path, userID)
	var e struct {
		Error string `json:"error"`
	}
	if status != want || json.Unmarshal(body, &e) != nil || e.Error == "" {
		c.t.Errorf("%s %s as %q: %d %s, want %d with a JSON error", method, path, userID, status, body, want)
	}
}

func (c *apiClient) status(userID string) statusReport {
	c.t.Helper()
	var r statusReport
	c.expectOK(http.MethodGet, "/api/v1/status", userID, &r)
	return r
}

func (c *apiClient) channelRooms(userID, channelID string) []channelRoom {
	c.t.Helper()
	var r struct {
		ChannelID string        `json:"channel_id"`
		Rooms     []channelRoom `json:"rooms"`
	}
	c.expectOK(http.MethodGet, "/api/v1/channels/"+channelID+"/links", userID, &r)
	if r.ChannelID != channelID || r.Rooms == nil {
		c.t.Fatalf("channel links %+v", r)
	}
	return r.Rooms
}

func expectNoSecret(t *testing.T, what string, body []byte, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			t.Errorf("%s answered with a configured secret: %s", what, body)
		}
	}
}

// scrapeMetrics reads the plugin's metrics as the server's metrics
// listener serves them.
func scrapeMetrics(t *testing.T, n *testhost.Node, secrets []string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "/plugins/"+manifest.Id+"/metrics", http.NoBody)
	res := n.ServeMetrics(req)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d %s", res.StatusCode, body)
	}
	expectNoSecret(t, "metrics", body, secrets)
	return string(body)
}

// sampleValue is the value of the series (name and labels as exposed) in
// a scrape, 0 when it is absent.
func sampleValue(scrape, series string) float64 {
	for _, line := range strings.Split(scrape, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
