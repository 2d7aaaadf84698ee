package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"maunium.net/go/mautrix/appservice"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/bridgetest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// The plugin's glue for the Matrix bridge: membership hooks, the
// application-service routes and the registration download. The Matrix
// bridge itself is tested against Dendrite; here a test network stands in.

// memberChange waits for a member change on n matching pred.
func (h *harness) memberChange(n *bridgetest.Network, what string, pred func(bridgetest.MemberChange) bool) bridgetest.MemberChange {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, wait)
	defer cancel()
	c, err := n.WaitForMember(ctx, pred)
	if err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
	return c
}

func TestMemberChangesReachLinkedRooms(t *testing.T) {
	h := newHarness(t)
	team := h.s.DefaultTeam()
	dave := h.s.CreateUserWith(&model.User{
		Username: "dave", Email: "dave@example.com", Password: "Pa55word!" + model.NewId(),
		FirstName: "Dave", LastName: "Doe",
	})
	h.s.AddToTeam(dave.Id, team.Id)

	// A remote person's Mattermost copy joins the channel when they first
	// speak; it must not get a presence of its own.
	_, err := h.net.Say(h.ctx, "lobby", carol, "hello from the network", "")
	h.must(err)
	in := h.channelPost("carol's message", func(p *model.Post) bool { return p.Message == "hello from the network" })
	carolCopy := in.UserId

	_, appErr := h.n.AddChannelMember(h.ch.Id, dave.Id, "")
	h.must(appErrOrNil(appErr))
	joined := h.memberChange(h.net, "dave's join", func(c bridgetest.MemberChange) bool { return c.Member.ID == dave.Id && c.Joined })
	if joined.Room != "lobby" || joined.Member.Network != bridge.NetworkMattermost || joined.Member.Username != "dave" ||
		joined.Member.DisplayName != "Dave Doe" || joined.Member.Avatar == nil {
		t.Fatalf("join = %+v", joined)
	}

	h.must(appErrOrNil(h.n.LeaveChannel(h.ch.Id, dave.Id)))
	h.memberChange(h.net, "dave's leave", func(c bridgetest.MemberChange) bool { return c.Member.ID == dave.Id && !c.Joined && c.Room == "lobby" })

	// Other channels are not linked, and bots and remote users of any kind
	// are not people of this server.
	other := h.s.CreateChannel(team.Id, "unlinked")
	_, appErr = h.n.AddChannelMember(other.Id, dave.Id, "")
	h.must(appErrOrNil(appErr))
	remote := h.s.CreateUserWith(&model.User{
		Username: "eve:elsewhere", Email: "eve@elsewhere.example.com", Password: "Pa55word!" + model.NewId(),
		RemoteId: model.NewPointer(model.NewId()),
	})
	h.s.AddToTeam(remote.Id, team.Id)
	_, appErr = h.n.AddChannelMember(h.ch.Id, remote.Id, "")
	h.must(appErrOrNil(appErr))
	bot, appErr := h.n.API("com.example.other").CreateBot(&model.Bot{Username: "helper", DisplayName: "Helper"})
	h.must(appErrOrNil(appErr))
	h.s.AddToTeam(bot.UserId, team.Id)
	_, appErr = h.n.AddChannelMember(h.ch.Id, bot.UserId, "")
	h.must(appErrOrNil(appErr))
	// A last change that must show, so that the ones before it had their
	// chance to (wrongly) show too.
	_, appErr = h.n.AddChannelMember(h.ch.Id, dave.Id, "")
	h.must(appErrOrNil(appErr))
	testhost.WaitFor(t, wait, func() bool { return len(h.net.MemberChanges()) >= 3 }, "dave's second join")
	h.s.WaitHooks(wait)
	time.Sleep(300 * time.Millisecond) // let a stray change surface before counting

	var got []string
	for _, c := range h.net.MemberChanges() {
		if c.Member.ID == carolCopy || c.Member.ID == remote.Id || c.Member.ID == bot.UserId {
			t.Errorf("a member change for a user who is not a person of this server: %+v", c)
		}
		got = append(got, c.Member.Username+" "+c.Room+" "+map[bool]string{true: "joined", false: "left"}[c.Joined])
	}
	if want := "dave lobby joined|dave lobby left|dave lobby joined"; strings.Join(got, "|") != want {
		t.Fatalf("member changes %q, want %q", got, want)
	}
	if c := h.net2.MemberChanges(); len(c) != 0 {
		t.Fatalf("a network the channel is not linked with saw %+v", c)
	}
}

// A quick join and leave end with the person out of the room, whatever
// order the hooks run in.
func TestMemberChangesEndLikeMattermost(t *testing.T) {
	h := newHarness(t)
	team := h.s.DefaultTeam()
	frank := h.s.CreateUser("frank", false)
	h.s.AddToTeam(frank.Id, team.Id)
	for range 5 {
		_, appErr := h.n.AddChannelMember(h.ch.Id, frank.Id, "")
		h.must(appErrOrNil(appErr))
		h.must(appErrOrNil(h.n.LeaveChannel(h.ch.Id, frank.Id)))
	}
	h.s.WaitHooks(wait)
	testhost.WaitFor(t, wait, func() bool {
		c := h.net.MemberChanges()
		return len(c) > 0 && !c[len(c)-1].Joined
	}, "frank to end up out of the room")
	time.Sleep(300 * time.Millisecond)
	c := h.net.MemberChanges()
	if last := c[len(c)-1]; last.Joined || last.Member.ID != frank.Id {
		t.Fatalf("last member change = %+v", last)
	}
}

// matrixStandIn is a Matrix bridge for tests: a test network that answers
// HTTP like the real one does.
type matrixStandIn struct {
	*netAlias
	mu   sync.Mutex
	seen []*http.Request
}

// netAlias keeps the embedded field from being called Network, which would
// hide the Network method.
type netAlias = bridgetest.Network

func (m *matrixStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.seen = append(m.seen, r.Clone(context.Background()))
	m.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"handled":"`+r.URL.Path+`"}`)
}

func (m *matrixStandIn) requests() []*http.Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*http.Request(nil), m.seen...)
}

// withMatrix runs the plugin again with standIn as its Matrix bridge.
func (h *harness) withMatrix(standIn bridge.Bridge) {
	h.t.Helper()
	h.n.Deactivate()
	base := h.newPlugin
	h.newPlugin = func() any {
		p := base().(*Plugin)
		for i, n := range p.networks {
			if n.Command.Network == bridge.NetworkMatrix {
				p.networks[i].Configure = func(map[string]any, connector.Shared) (connector.Config, error) { return alwaysOn{}, nil }
				p.networks[i].Build = func(connector.Env, connector.Config) (bridge.Bridge, error) { return standIn, nil }
			}
		}
		return p
	}
	h.activate()
}

func TestMatrixPathsGoToTheMatrixBridge(t *testing.T) {
	h := newHarness(t)

	// Without a Matrix bridge the homeserver is told to try again later.
	for _, path := range []string{"/_matrix/app/v1/transactions/1", "/plugins/" + manifest.Id + "/_matrix/app/v1/ping"} {
		req, _ := http.NewRequest(http.MethodPut, path, strings.NewReader(`{"events":[]}`))
		req.Header.Set("Authorization", "Bearer some-hs-token")
		res := h.n.ServeHTTP("", req)
		var body map[string]string
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("%s: body: %v", path, err)
		}
		if res.StatusCode != http.StatusServiceUnavailable || body["errcode"] != "M_UNKNOWN" || body["error"] != "the Matrix bridge is not running" ||
			res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s without a Matrix bridge: %d %v %v", path, res.StatusCode, res.Header, body)
		}
	}

	standIn := &matrixStandIn{netAlias: bridgetest.New(bridge.NetworkMatrix)}
	h.withMatrix(standIn)
	req, _ := http.NewRequest(http.MethodPut, "/plugins/"+manifest.Id+"/_matrix/app/v1/transactions/42", strings.NewReader(`{"events":[]}`))
	req.Header.Set("Authorization", "Bearer some-hs-token")
	res := h.n.ServeHTTP("", req)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(body) != `{"handled":"/_matrix/app/v1/transactions/42"}` {
		t.Fatalf("transaction: %d %s", res.StatusCode, body)
	}
	seen := standIn.requests()
	if len(seen) != 1 || seen[0].Method != http.MethodPut || seen[0].Header.Get("Authorization") != "Bearer some-hs-token" {
		t.Fatalf("the bridge saw %+v", seen)
	}
	// Only /_matrix/ goes there; the plugin's own API stays the plugin's.
	for path, want := range map[string]int{"/_matrixfoo": http.StatusNotFound, "/api/v1/status": http.StatusUnauthorized, "/elsewhere": http.StatusNotFound} {
		req, _ = http.NewRequest(http.MethodGet, path, http.NoBody)
		if res = h.n.ServeHTTP("", req); res.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, res.StatusCode, want)
		}
	}
	if n := len(standIn.requests()); n != 1 {
		t.Fatalf("the Matrix bridge got %d requests, want 1", n)
	}
}

const (
	testASToken = "as-token-0123456789abcdef-secret"
	testHSToken = "hs-token-0123456789abcdef-secret"
)

var matrixSettings = map[string]any{
	"MatrixHomeserverURL": "https://matrix.example.com",
	"MatrixServerName":    "example.com",
	"MatrixASToken":       testASToken,
	"MatrixHSToken":       testHSToken,
}

func getRegistration(h *harness, user *model.User, method string) *http.Response {
	h.t.Helper()
	req, _ := http.NewRequest(method, "/plugins/"+manifest.Id+"/api/v1/matrix/registration", http.NoBody)
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	id := ""
	if user != nil {
		id = user.Id
	}
	return h.n.ServeHTTP(id, req)
}

func TestMatrixRegistrationDownload(t *testing.T) {
	h := newHarnessWith(t, matrixSettings)

	for _, u := range []*model.User{nil, h.alice} {
		if res := getRegistration(h, u, http.MethodGet); res.StatusCode != http.StatusForbidden {
			t.Fatalf("registration for a non-admin: %d", res.StatusCode)
		}
	}
	if res := getRegistration(h, h.admin, http.MethodPost); res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", res.StatusCode)
	}

	res := getRegistration(h, h.admin, http.MethodGet)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("registration: %d %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="mattermost-bridge-registration.yaml"` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	// Read it the way homeservers' tooling does.
	path := filepath.Join(t.TempDir(), "registration.yaml")
	h.must(os.WriteFile(path, body, 0o600))
	reg, err := appservice.LoadRegistration(path)
	h.must(err)
	puppets := false
	for _, ns := range reg.Namespaces.UserIDs {
		puppets = puppets || (ns.Regex == `^@mm_.*:example\.com$` && ns.Exclusive)
	}
	if reg.URL != testhost.DefaultSiteURL+"/plugins/"+manifest.Id || reg.AppToken != testASToken || reg.ServerToken != testHSToken ||
		reg.SenderLocalpart != "mattermostbridge" || !puppets {
		t.Fatalf("registration = %+v\n%s", reg, body)
	}

	// A Site URL with a trailing slash gives the same URL.
	h.must(h.s.UpdateConfig(func(c *model.Config) { c.ServiceSettings.SiteURL = model.NewPointer("https://chat.example.com/") }))
	body, _ = io.ReadAll(getRegistration(h, h.admin, http.MethodGet).Body)
	if !strings.Contains(string(body), "url: https://chat.example.com/plugins/"+manifest.Id+"\n") {
		t.Fatalf("registration with a trailing slash:\n%s", body)
	}

	// Without a Site URL the homeserver could not reach the plugin.
	h.must(h.s.UpdateConfig(func(c *model.Config) { c.ServiceSettings.SiteURL = model.NewPointer("") }))
	res = getRegistration(h, h.admin, http.MethodGet)
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != http.StatusConflict || !strings.Contains(string(body), "Site URL") {
		t.Fatalf("registration without a Site URL: %d %s", res.StatusCode, body)
	}

	h.s.WaitHooks(wait)
	for _, line := range h.s.Logs() {
		if strings.Contains(line, testASToken) || strings.Contains(line, testHSToken) {
			t.Fatalf("a log line holds a token: %s", line)
		}
	}
}

func TestMatrixRegistrationNeedsTheSettings(t *testing.T) {
	h := newHarness(t)
	res := getRegistration(h, h.admin, http.MethodGet)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusConflict || !strings.Contains(string(body), "MatrixASToken") || !strings.Contains(string(body), "MatrixServerName") {
		t.Fatalf("registration without settings: %d %s", res.StatusCode, body)
	}
	// Names settings, never values.
	h.must(h.s.SetPluginSettings(map[string]any{"MatrixServerName": "example.com", "MatrixASToken": testASToken, "MatrixHSToken": testASToken}))
	body, _ = io.ReadAll(getRegistration(h, h.admin, http.MethodGet).Body)
	if !strings.Contains(string(body), "must differ") || strings.Contains(string(body), testASToken) {
		t.Fatalf("registration with equal tokens: %s", body)
	}
}
