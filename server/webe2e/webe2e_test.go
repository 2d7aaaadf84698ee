// Package webe2e tests the plugin's web app end to end in a real headless
// browser: Debian's chromium, driven by playwright-core from the webapp's
// npm packages (webapp/e2e/admin_view.mjs), loads a page that serves the
// bundle's webapp/dist/main.js the way the Mattermost web app does, against
// the plugin's real REST API on the test host with a real XMPP bridge
// (Prosody). It has a package of its own: it needs the bundle that make dist
// builds, a browser and node, and takes a minute.
package webe2e

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

func TestMain(m *testing.M) { testhost.Main(m) }

// doctorAvailable says whether POST /api/v1/networks/{network}/test runs
// the doctor: the browser must then show the report with each of its
// checks. Set to false for a build without the doctor, where the browser
// must show the clear error the API answers instead.
const doctorAvailable = true

//go:embed harness.html harness.js
var page embed.FS

const (
	bridgePassword = "bridge-Secret-pw-1"
	sessionCookie  = "MMAUTHTOKEN"
)

func TestWebAppInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the browser test needs Debian's chromium: run make test-deps (build/testdeps/50-browser.sh)")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("the browser test needs node")
	}
	root := testhost.RepoRoot(t)
	webapp := filepath.Join(root, "webapp")
	if _, err := os.Stat(filepath.Join(webapp, "node_modules", "playwright-core")); err != nil {
		t.Fatal("the browser test needs the webapp's npm packages (playwright-core): run make webapp")
	}
	if os.Getenv(testhost.BundleEnv) == "" {
		t.Fatalf("the browser test loads the web app of the bundle: build it with make dist and set %s to dist/<id>-<version>.tar.gz (make test does)", testhost.BundleEnv)
	}
	bundle := testhost.PluginDir(t)
	mainJS := filepath.Join(bundle.Path(), "webapp", "dist", "main.js")
	if _, err := os.Stat(mainJS); err != nil {
		t.Fatalf("the plugin bundle has no web app (%v): build it with make dist and set %s to dist/<id>-<version>.tar.gz (make test does)", err, testhost.BundleEnv)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// A real XMPP server with the bridge's account and a room where carol talks.
	xmpp := testservers.Prosody.Start(t, testservers.Options{})
	ends := xmpp.Reach()
	xmpp.CreateUser(t, "bridge", bridgePassword)
	xmpp.CreateUser(t, "carol", "carol-pw")
	room := ends.RoomJID(t, "lobby")
	carol := ends.Client(t, "carol", "carol-pw")
	if err := carol.JoinRoom(ctx, room, "Carol"); err != nil {
		t.Fatal(err)
	}

	s := testhost.NewServer(t, testhost.WithBundle(bundle), testhost.WithPluginSettings(map[string]any{
		"XMPPEnabled": true, "XMPPMode": "client", "XMPPTLSMode": "starttls",
		"XMPPServerAddress": ends.C2SAddr(), "XMPPJID": "bridge@" + ends.Domain, "XMPPPassword": bridgePassword,
		"XMPPCACertificate": ends.CACertPEM,
	}))
	n := s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	team := s.DefaultTeam()
	admin := s.CreateUser("admin", true)
	s.AddToTeam(admin.Id, team.Id)
	linked := s.CreateChannelWith(&model.Channel{TeamId: team.Id, Name: "xmpp-lobby", DisplayName: "XMPP Lobby", Type: model.ChannelTypeOpen})
	unlinked := s.CreateChannelWith(&model.Channel{TeamId: team.Id, Name: "quiet", DisplayName: "Quiet", Type: model.ChannelTypeOpen})
	for _, ch := range []*model.Channel{linked, unlinked} {
		s.AddToChannel(admin.Id, ch.Id)
	}
	command := func(cmd, want string) {
		t.Helper()
		resp, appErr := n.ExecuteCommand(admin.Id, linked.Id, team.Id, cmd)
		if appErr != nil || !strings.Contains(resp.Text, want) {
			t.Fatalf("%s answered %+v %v, want it to say %q", cmd, resp, appErr, want)
		}
	}
	testhost.WaitFor(t, 30*time.Second, func() bool {
		resp, _ := n.ExecuteCommand(admin.Id, linked.Id, team.Id, "/xmppbridge status")
		return resp != nil && strings.Contains(resp.Text, "XMPP bridge: connected")
	}, "the XMPP bridge to connect")
	command("/xmppbridge map "+room.String(), "Linked this channel")

	// A message from XMPP, so the channel has a relayed post and counters move.
	const hello = "hello from the XMPP room"
	if _, err := carol.Say(ctx, room, hello); err != nil {
		t.Fatal(err)
	}
	var relayed *model.Post
	testhost.WaitFor(t, 20*time.Second, func() bool {
		for _, p := range s.ChannelPosts(linked.Id) {
			if p.Message == hello {
				relayed = p
				return true
			}
		}
		return false
	}, "carol's message in the channel")
	author := s.User(relayed.UserId)

	web := serve(t, n, admin, webapp, mainJS, map[string]any{
		"pluginId":        s.PluginID(),
		"linkedChannel":   map[string]string{"id": linked.Id},
		"unlinkedChannel": map[string]string{"id": unlinked.Id},
		"posts": []map[string]any{{
			"id": relayed.Id, "user_id": relayed.UserId, "message": relayed.Message,
			"props": relayed.GetProps(), "author": author.Username,
		}},
	})

	want := map[string]any{
		"linkedChannel":     linked.DisplayName,
		"unlinkedChannelID": unlinked.Id,
		"room":              room.String(),
		"team":              team.Name,
		"post":              map[string]string{"author": author.Username, "message": hello},
		"doctor":            expectedDoctor(t, n, admin, s.PluginID()),
	}
	if !doctorAvailable {
		// The answer other than 2xx the page gets on purpose, which
		// chromium reports on the console.
		want["mayFail"] = []string{"/plugins/" + s.PluginID() + "/api/v1/networks/xmpp/test"}
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "test-output", "webe2e")
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(webapp, "e2e", "admin_view.mjs"))
	cmd.Dir = webapp
	cmd.Env = append(os.Environ(),
		"E2E_URL="+web.URL+"/", "E2E_CHROMIUM="+chromium, "E2E_OUT="+out, "E2E_EXPECT="+string(wantJSON))
	output, err := cmd.CombinedOutput()
	t.Logf("browser:\n%s", output)
	if err != nil {
		t.Fatalf("the browser test failed (%v); screenshots in %s", err, out)
	}

	// The Unlink button really unlinked the channel.
	resp := n.ServeHTTP(admin.Id, httptest.NewRequest(http.MethodGet, "/plugins/"+s.PluginID()+"/api/v1/channels/"+linked.Id+"/links", http.NoBody))
	defer resp.Body.Close()
	var after struct {
		Rooms []struct{ Room string } `json:"rooms"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&after); err != nil || resp.StatusCode != http.StatusOK || len(after.Rooms) != 0 {
		t.Fatalf("after Unlink in the browser the channel's links answer %d %+v (%v), want no rooms", resp.StatusCode, after, err)
	}
}

// expectedDoctor is what the browser must show after Test connection: the
// names of the report's checks, or the API's error while there is no doctor.
func expectedDoctor(t *testing.T, n *testhost.Node, admin *model.User, pluginID string) map[string]any {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/plugins/"+pluginID+"/api/v1/networks/xmpp/test", http.NoBody)
	resp := n.ServeHTTP(admin.Id, req)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if doctorAvailable {
		var report struct {
			Checks []struct{ Name string } `json:"checks"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &report) != nil || len(report.Checks) == 0 {
			t.Fatalf("POST .../networks/xmpp/test answered %d %s, want a report with checks", resp.StatusCode, body)
		}
		var names []string
		for _, c := range report.Checks {
			names = append(names, c.Name)
		}
		return map[string]any{"checks": names}
	}
	if resp.StatusCode < 400 {
		t.Fatalf("POST .../networks/xmpp/test answered %d %s: the doctor is there, set doctorAvailable", resp.StatusCode, body)
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &apiErr) == nil && apiErr.Error != "" {
		msg = apiErr.Error
	}
	if msg == "" {
		t.Fatalf("POST .../networks/xmpp/test answered %d with no message", resp.StatusCode)
	}
	return map[string]any{"error": msg}
}

// serve starts the page's web server: the page, React and ReactDOM from the
// webapp's node_modules (the version the web app provides), the bundle's
// main.js, and the plugin's HTTP under /plugins/<id>/, where a request with
// the page's session cookie and X-Requested-With: XMLHttpRequest is the
// admin's, as Mattermost accepts a session cookie from script only with that
// header; any other is anonymous.
func serve(t *testing.T, n *testhost.Node, admin *model.User, webapp, mainJS string, config map[string]any) *httptest.Server {
	t.Helper()
	session := model.NewId()
	configJSON, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"/static/react.js":     filepath.Join(webapp, "node_modules", "react", "umd", "react.development.js"),
		"/static/react-dom.js": filepath.Join(webapp, "node_modules", "react-dom", "umd", "react-dom.development.js"),
		"/static/main.js":      mainJS,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: session, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.ServeFileFS(w, r, page, "harness.html")
	})
	mux.HandleFunc("GET /static/harness.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, page, "harness.js")
	})
	mux.HandleFunc("GET /harness/config.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprintf(w, "window.harnessConfig = %s;\n", configJSON)
	})
	for p, file := range files {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, file) })
	}
	mux.HandleFunc("/plugins/", func(w http.ResponseWriter, r *http.Request) {
		user := ""
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value == session && r.Header.Get("X-Requested-With") == "XMLHttpRequest" {
			user = admin.Id
		}
		resp := n.ServeHTTP(user, r)
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
