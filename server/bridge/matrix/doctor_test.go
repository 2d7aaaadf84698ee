package matrix

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/dendritetest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor/doctortest"
)

// Issue 13: the Matrix doctor against Dendrite, with the plugin's
// application-service endpoint served by a bridge as the plugin serves it:
// healthy passes; a wrong as_token fails the registration check naming
// it; a linked room the bot is not in fails its room check.
func TestDoctorAgainstDendrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The plugin's endpoint needs no homeserver: it only answers.
	cfg := testConfig("http://127.0.0.1:1")
	cfg.ServerName = "localhost"
	plugin, err := New(cfg, newMemStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var serving atomic.Pointer[Bridge]
	serving.Store(plugin)
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serving.Load().ServeHTTP(w, r) }))
	defer endpoint.Close()
	reg := Registration(cfg, "")
	as := &dendritetest.AppService{ID: reg.ID, URL: endpoint.URL, ASToken: cfg.ASToken, HSToken: cfg.HSToken, SenderLocalpart: cfg.BotLocalpart}
	for _, ns := range reg.Namespaces.UserIDs {
		as.Users = append(as.Users, dendritetest.Namespace{Regex: ns.Regex, Exclusive: ns.Exclusive})
	}
	d := dendritetest.Start(t, dendritetest.Options{ServerName: "localhost", AppService: as})
	cfg.HomeserverURL = d.URL
	userID, token := d.RegisterUser(t, "carol", "carol-password")
	carol, err := mautrix.NewClient(d.URL, id.UserID(userID), token)
	if err != nil {
		t.Fatal(err)
	}
	linked, err := carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	running, err := New(cfg, newMemStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := running.CheckRoom(ctx, "#dev:localhost"); err != nil {
		t.Fatal(err)
	}

	env := connector.DoctorEnv{Rooms: []string{"#dev:localhost", string(linked.RoomID)}, PluginURL: endpoint.URL}
	healthy := runDoctor(ctx, cfg, env)
	if !healthy.Passed {
		t.Fatalf("the healthy setup failed:\n%s", healthy.Text())
	}
	for _, name := range []string{"Settings", "Homeserver", "Registration", "Appservice ping", "Room #dev:localhost", "Room " + string(linked.RoomID)} {
		doctortest.Check(t, healthy, name)
	}
	if c := doctortest.Check(t, healthy, "Registration"); !strings.Contains(c.Detail, "@mattermostbridge:localhost") {
		t.Errorf("the registration check does not name the bot: %q", c.Detail)
	}
	t.Logf("healthy:\n%s", healthy.Text())

	doctortest.WantFailed(t, runDoctor(ctx, cfg, connector.DoctorEnv{Rooms: []string{string(other.RoomID)}}), "Room "+string(other.RoomID),
		[]string{"not in the room"}, []string{"Invite @mattermostbridge:localhost"})

	wrong := cfg
	wrong.ASToken = "not-the-as-token-0123"
	r := runDoctor(ctx, wrong, env)
	doctortest.WantFailed(t, r, "Registration", []string{"as_token", "M_UNKNOWN_TOKEN"}, []string{"MatrixASToken", "registration"})
	if strings.Contains(r.Text(), wrong.ASToken) || strings.Contains(r.Text(), cfg.HSToken) {
		t.Error("the report quotes a token")
	}

	// The plugin runs with another hs_token than the settings checked.
	stale := testConfig("http://127.0.0.1:1")
	stale.HSToken = "an-older-hs-token-0123"
	stalePlugin, err := New(stale, newMemStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	serving.Store(stalePlugin)
	doctortest.WantFailed(t, runDoctor(ctx, cfg, env), "Appservice ping", []string{"refused MatrixHSToken"}, []string{"Save the Matrix settings"})
	serving.Store(plugin)

	unreachable := cfg
	unreachable.HomeserverURL = "http://127.0.0.1:1"
	doctortest.WantFailed(t, runDoctor(ctx, unreachable, env), "Homeserver", []string{"127.0.0.1:1"}, []string{"MatrixHomeserverURL"})
}
