package testhost

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/internal/testplugin/hostcheck"
)

func TestMain(m *testing.M) { Main(m) }

const wait = 10 * time.Second

// hostcheckBundle builds the test plugin once per test binary.
func hostcheckBundle(t *testing.T) *Bundle {
	t.Helper()
	return Build(t, BuildOptions{
		ModuleDir: RepoRoot(t),
		Package:   "./server/testhost/internal/testplugin",
		Manifest:  hostcheck.Manifest(),
	})
}

type fixture struct {
	s    *Server
	team *model.Team
	user *model.User
	ch   *model.Channel
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	s := NewServer(t, opts...)
	f := &fixture{s: s, team: s.DefaultTeam()}
	f.user = s.CreateUser("alice", false)
	f.ch = s.CreateChannel(f.team.Id, "bridged")
	s.AddToChannel(f.user.Id, f.ch.Id)
	return f
}

func (f *fixture) cmd(t *testing.T, n *Node, command string) string {
	t.Helper()
	resp, appErr := n.ExecuteCommand(f.user.Id, f.ch.Id, f.team.Id, command)
	if appErr != nil {
		t.Fatalf("%s on %s: %v", command, n.ID(), appErr)
	}
	return resp.Text
}

func kvValue(s *Server, key string) string {
	v, _ := s.KV().KVGet(key)
	return string(v)
}

func waitKV(t *testing.T, s *Server, key, want string) {
	t.Helper()
	WaitFor(t, wait, func() bool { return kvValue(s, key) == want }, "KV %q = %q (have %q)", key, want, kvValue(s, key))
}

func TestSubprocessActivationAndCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)))
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	if !n.IsActive() {
		t.Fatal("plugin not active after Activate")
	}
	if err := n.HealthCheck(); err != nil {
		t.Fatalf("health check: %v", err)
	}
	if got := n.Commands(f.team.Id); len(got) != 1 || got[0].Trigger != "hostcheck" {
		t.Fatalf("registered commands = %+v", got)
	}

	got := f.cmd(t, n, "/hostcheck echo hi there")
	want := "echo: hi there (user=" + f.user.Id + " channel=" + f.ch.Id + " team=" + f.team.Id + " root= site=" + DefaultSiteURL + ")"
	if got != want {
		t.Fatalf("response %q, want %q", got, want)
	}
	eph := f.s.EphemeralPostsFor(f.user.Id)
	if len(eph) != 1 || eph[0].Post.Message != want || eph[0].Post.ChannelId != f.ch.Id {
		t.Fatalf("ephemeral posts = %+v", eph)
	}

	// Both the API's Log* and the process's stderr reach the logs.
	WaitFor(t, wait, func() bool {
		logs := strings.Join(f.s.Logs(), "\n")
		return strings.Contains(logs, "hostcheck activated") && strings.Contains(logs, "hostcheck stderr: activating")
	}, "activation log lines")
	if _, appErr := n.ExecuteCommand(f.user.Id, f.ch.Id, f.team.Id, "/nosuchcommand"); appErr == nil || appErr.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown command: %v", appErr)
	}
	if _, appErr := n.ExecuteCommand(f.user.Id, f.ch.Id, f.team.Id, "/hostcheck nil"); appErr == nil || appErr.Id != "api.command.execute_command.not_found.app_error" {
		t.Fatalf("nil response: %v", appErr)
	}
}

func TestHooksFireForUsersAndForThePluginItself(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)))
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}

	post, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "hello"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	waitKV(t, f.s, "posted:"+post.Id, "hello")

	if _, appErr := n.PatchPost(f.user.Id, post.Id, "hello again"); appErr != nil {
		t.Fatal(appErr)
	}
	waitKV(t, f.s, "updated:"+post.Id, "hello -> hello again")

	if _, appErr := n.React(f.user.Id, post.Id, "smile"); appErr != nil {
		t.Fatal(appErr)
	}
	waitKV(t, f.s, "reacted:"+post.Id+":smile", f.user.Id)
	if rs := f.s.Reactions(post.Id); len(rs) != 1 || rs[0].EmojiName != "smile" {
		t.Fatalf("reactions = %+v", rs)
	}
	if appErr := n.RemoveReaction(&model.Reaction{UserId: f.user.Id, PostId: post.Id, EmojiName: "smile"}); appErr != nil {
		t.Fatal(appErr)
	}
	waitKV(t, f.s, "unreacted:"+post.Id+":smile", f.user.Id)

	if appErr := n.DeletePost(f.user.Id, post.Id); appErr != nil {
		t.Fatal(appErr)
	}
	waitKV(t, f.s, "deleted:"+post.Id, "hello again")

	// MessageWillBePosted runs synchronously and can reject or rewrite.
	if _, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "please reject-me"}); appErr == nil || !strings.Contains(appErr.Id, "rejected by hostcheck") {
		t.Fatalf("rejection: %v", appErr)
	}
	rewritten, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "rewrite-me"})
	if appErr != nil || rewritten.Message != "rewritten" {
		t.Fatalf("rewrite: %v %v", rewritten, appErr)
	}

	// A post the plugin makes fires MessageHasBeenPosted on the plugin too.
	ownID := f.cmd(t, n, "/hostcheck post from the bot")
	waitKV(t, f.s, "posted-own:"+ownID, "from the bot")
	own := f.s.Post(ownID)
	if own == nil || own.GetProp(model.PostPropsFromPlugin) != "true" || own.GetProp(model.PostPropsFromBot) != "true" {
		t.Fatalf("plugin post = %+v", own)
	}
	var msgs []string
	for _, p := range f.s.ChannelPosts(f.ch.Id) {
		msgs = append(msgs, p.Message)
	}
	if !slices.Equal(msgs, []string{"rewritten", "from the bot"}) {
		t.Fatalf("channel posts = %q", msgs)
	}
}

func TestUnimplementedMethodReturnsAnError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)))
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	got := f.cmd(t, n, "/hostcheck unimplemented")
	if !strings.Contains(got, "not implemented by the test host: GetGroup") {
		t.Fatalf("response %q", got)
	}
	if calls := f.s.UnimplementedCalls(); !slices.Contains(calls, "GetGroup") {
		t.Fatalf("unimplemented calls = %v", calls)
	}
	// The host and the plugin are still alive.
	if f.cmd(t, n, "/hostcheck whoami") == "" {
		t.Fatal("no instance ID")
	}
}

func TestTwoNodesShareStateAndClusterEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)), WithNodes(2))
	n0, n1 := f.s.Node(0), f.s.Node(1)
	for _, n := range []*Node{n0, n1} {
		if err := n.Activate(); err != nil {
			t.Fatal(err)
		}
	}
	if bot0, bot1 := f.cmd(t, n0, "/hostcheck bot"), f.cmd(t, n1, "/hostcheck bot"); bot0 == "" || bot0 != bot1 {
		t.Fatalf("EnsureBotUser gave %q and %q", bot0, bot1)
	}
	f.cmd(t, n0, "/hostcheck kvset shared-key shared value")
	if got := f.cmd(t, n1, "/hostcheck kvget shared-key"); got != "shared value" {
		t.Fatalf("node1 read %q", got)
	}

	id0, id1 := f.cmd(t, n0, "/hostcheck whoami"), f.cmd(t, n1, "/hostcheck whoami")
	if id0 == id1 {
		t.Fatal("both nodes run the same instance")
	}
	if got := f.cmd(t, n0, "/hostcheck cluster ping"); got != "sent" {
		t.Fatalf("publish: %q", got)
	}
	waitKV(t, f.s, "cluster:"+id1, "ping")
	f.s.WaitHooks(wait)
	if v := kvValue(f.s, "cluster:"+id0); v != "" {
		t.Fatalf("the sender received its own cluster event: %q", v)
	}

	// A post on node0 fires hooks on node0 only.
	post, appErr := n0.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "once"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	waitKV(t, f.s, "posted:"+post.Id, "once")
}

func TestInProcessActivateRestartDeactivate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithPluginID(hostcheck.ID))
	n := f.s.Node(0)
	newPlugin := func() any { return hostcheck.New() }
	if err := n.ActivateInProcess(hostcheck.Manifest(), newPlugin); err != nil {
		t.Fatal(err)
	}
	first := f.cmd(t, n, "/hostcheck whoami")
	if err := n.ActivateInProcess(hostcheck.Manifest(), newPlugin); err == nil {
		t.Fatal("activating twice succeeded")
	}

	post, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "in process"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	waitKV(t, f.s, "posted:"+post.Id, "in process")

	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	second := f.cmd(t, n, "/hostcheck whoami")
	if second == first || second == "" {
		t.Fatalf("restart kept instance %q", first)
	}
	waitKV(t, f.s, "deactivated:"+first, "1")

	n.Deactivate()
	if n.IsActive() {
		t.Fatal("still active")
	}
	waitKV(t, f.s, "deactivated:"+second, "1")
	if _, appErr := n.ExecuteCommand(f.user.Id, f.ch.Id, f.team.Id, "/hostcheck whoami"); appErr == nil {
		t.Fatal("the command still runs after deactivation")
	}
	if err := n.ActivateInProcess(hostcheck.Manifest(), newPlugin); err != nil {
		t.Fatalf("re-activation: %v", err)
	}
	if third := f.cmd(t, n, "/hostcheck whoami"); third == second {
		t.Fatal("re-activation kept the old instance")
	}
}

func TestSubprocessDeactivateAndActivateAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)))
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	first := f.cmd(t, n, "/hostcheck whoami")
	n.Deactivate()
	waitKV(t, f.s, "deactivated:"+first, "1")
	if len(n.Commands(f.team.Id)) != 0 {
		t.Fatal("commands survive deactivation")
	}
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	if second := f.cmd(t, n, "/hostcheck whoami"); second == first {
		t.Fatal("same instance after re-activation")
	}
}

func TestConfigurationChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)), WithNodes(2))
	for _, n := range f.s.Nodes() {
		if err := n.Activate(); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.cmd(t, f.s.Node(1), "/hostcheck config"); got != "hello" {
		t.Fatalf("default greeting %q", got)
	}
	if err := f.s.SetPluginSettings(map[string]any{"Greeting": "hi", "Secret": "s3cr3t"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.s.Nodes() {
		if got := f.cmd(t, n, "/hostcheck config"); got != "hi" {
			t.Fatalf("%s greeting %q", n.ID(), got)
		}
	}
	if err := f.s.SetPluginSettings(map[string]any{"Greeting": "fail"}); err == nil || !strings.Contains(err.Error(), "refusing greeting") {
		t.Fatalf("OnConfigurationChange error: %v", err)
	}

	// Secrets are sanitized by GetPluginConfig and kept by SavePluginConfig.
	api := f.s.Node(0).API("")
	if err := f.s.SetPluginSettings(map[string]any{"Greeting": "hi", "Secret": "s3cr3t"}); err != nil {
		t.Fatal(err)
	}
	pc := api.GetPluginConfig()
	if pc["Secret"] != model.FakeSetting || pc["Greeting"] != "hi" {
		t.Fatalf("sanitized plugin config = %v", pc)
	}
	pc["Greeting"] = "saved"
	if appErr := api.SavePluginConfig(pc); appErr != nil {
		t.Fatal(appErr)
	}
	if got := f.s.PluginSettings(hostcheck.ID); got["Secret"] != "s3cr3t" || got["Greeting"] != "saved" {
		t.Fatalf("stored settings = %v", got)
	}
	if got := f.cmd(t, f.s.Node(0), "/hostcheck config"); got != "saved" {
		t.Fatalf("greeting after SavePluginConfig %q", got)
	}
	WaitFor(t, wait, func() bool { return f.cmd(t, f.s.Node(1), "/hostcheck config") == "saved" }, "node1 sees the saved config")
}

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)))
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/plugins/"+hostcheck.ID+"/hello?x=1", http.NoBody)
	req.Header.Set("Mattermost-User-ID", "forged")
	body := func(r *http.Response) string {
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	resp := n.ServeHTTP(f.user.Id, req)
	if got := body(resp); resp.StatusCode != http.StatusOK || got != "user="+f.user.Id+" path=/hello" || resp.Header.Get("X-Hostcheck") != "1" {
		t.Fatalf("authenticated: %d %q %v", resp.StatusCode, got, resp.Header)
	}
	resp = n.ServeHTTP("", req)
	if got := body(resp); got != "user= path=/hello" {
		t.Fatalf("anonymous: %q", got)
	}
	resp = n.ServeHTTP("", httptest.NewRequest(http.MethodPost, "/teapot", strings.NewReader("body")))
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// The metrics listener hands /plugins/<id>/metrics to ServeMetrics with the
// prefix trimmed and an empty context, as the server does.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)))
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/plugins/" + hostcheck.ID + "/metrics":      `metrics path="" user="forged" session=""`,
		"/plugins/" + hostcheck.ID + "/metrics/more": `metrics path="/more" user="forged" session=""`,
	} {
		req := httptest.NewRequest(http.MethodGet, path, http.NoBody)
		req.Header.Set("Mattermost-User-ID", "forged")
		resp := n.ServeMetrics(req)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(b) != want {
			t.Fatalf("%s: %d %q, want %q", path, resp.StatusCode, b, want)
		}
	}
	if resp := n.ServeMetrics(httptest.NewRequest(http.MethodGet, "/plugins/elsewhere/metrics", http.NoBody)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another plugin's metrics: %d", resp.StatusCode)
	}
}

func TestLogsCollectKeyValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)))
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	f.cmd(t, n, "/hostcheck log value-to-find")
	WaitFor(t, wait, func() bool {
		for _, l := range f.s.Logs() {
			if strings.HasPrefix(l, "[node0] ") && strings.Contains(l, "hostcheck log") && strings.Contains(l, "value-to-find") {
				return true
			}
		}
		return false
	}, "the log line with its key/value pair")
	if len(n.Logs()) == 0 {
		t.Fatal("no node logs")
	}
}

func TestFailedActivationIsReported(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)),
		WithPluginSettings(map[string]any{"Greeting": "fail-activation"}))
	n := f.s.Node(0)
	if err := n.Activate(); err == nil || !strings.Contains(err.Error(), "activation refused by configuration") {
		t.Fatalf("subprocess activation: %v", err)
	}
	if n.IsActive() {
		t.Fatal("active after a failed activation")
	}
	newPlugin := func() any { return hostcheck.New() }
	if err := n.ActivateInProcess(hostcheck.Manifest(), newPlugin); err == nil || !strings.Contains(err.Error(), "did not activate") {
		t.Fatalf("in-process activation: %v", err)
	}
	if n.IsActive() {
		t.Fatal("active after a failed in-process activation")
	}
	if err := f.s.SetPluginSettings(map[string]any{"Greeting": "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := n.ActivateInProcess(hostcheck.Manifest(), newPlugin); err != nil {
		t.Fatalf("in-process activation after fixing the config: %v", err)
	}
	if got := f.cmd(t, n, "/hostcheck config"); got != "ok" {
		t.Fatalf("greeting %q", got)
	}
}

func TestConcurrentTrafficOnTwoNodes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)), WithNodes(2))
	for _, n := range f.s.Nodes() {
		if err := n.Activate(); err != nil {
			t.Fatal(err)
		}
	}
	const perNode = 20
	var wg sync.WaitGroup
	ids := make(chan string, 4*perNode)
	for _, n := range f.s.Nodes() {
		wg.Go(func() {
			for i := range perNode {
				p, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: fmt.Sprintf("%s-%d", n.ID(), i)})
				if appErr != nil {
					t.Error(appErr)
					return
				}
				ids <- p.Id
			}
		})
		wg.Go(func() {
			for i := range perNode {
				resp, appErr := n.ExecuteCommand(f.user.Id, f.ch.Id, f.team.Id, fmt.Sprintf("/hostcheck post bot-%s-%d", n.ID(), i))
				if appErr != nil {
					t.Error(appErr)
					return
				}
				ids <- "own:" + resp.Text
			}
		})
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		key := "posted:" + id
		if own, ok := strings.CutPrefix(id, "own:"); ok {
			key = "posted-own:" + own
		}
		WaitFor(t, wait, func() bool { return kvValue(f.s, key) != "" }, "hook for %s", id)
	}
	if got := len(f.s.ChannelPosts(f.ch.Id)); got != 4*perNode {
		t.Fatalf("%d posts, want %d", got, 4*perNode)
	}
}

func TestPluginCrashAndRaceAreReported(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)))
	f.s.AllowPluginFailures()
	n := f.s.Node(0)
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	f.cmd(t, n, "/hostcheck race")
	if raceEnabled {
		WaitFor(t, wait, func() bool { return len(f.s.PluginFailures()) > 0 }, "the plugin's data race report")
	}
	_, _ = n.ExecuteCommand(f.user.Id, f.ch.Id, f.team.Id, "/hostcheck crash")
	WaitFor(t, wait, func() bool { return n.HealthCheck() != nil }, "the crash to be noticed")
	if _, appErr := n.ExecuteCommand(f.user.Id, f.ch.Id, f.team.Id, "/hostcheck whoami"); appErr == nil || appErr.Id != "model.plugin_command_crash.error.app_error" {
		t.Fatalf("command after the crash: %v", appErr)
	}
	WaitFor(t, wait, func() bool {
		return slices.ContainsFunc(f.s.PluginFailures(), func(l string) bool { return strings.Contains(l, "panic: hostcheck: crash requested") })
	}, "the panic in the logs")
	// The node can start the plugin again.
	n.Deactivate()
	if err := n.Activate(); err != nil {
		t.Fatal(err)
	}
	if f.cmd(t, n, "/hostcheck whoami") == "" {
		t.Fatal("no instance after restarting a crashed plugin")
	}
}

// Kill ends one node's plugin process the way a node dies: OnDeactivate
// never runs there, the process is gone, and the other node's plugin is
// untouched.
func TestKillEndsOneNodesPluginProcess(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)), WithNodes(2))
	n0, n1 := f.s.Node(0), f.s.Node(1)
	for _, n := range []*Node{n0, n1} {
		if err := n.Activate(); err != nil {
			t.Fatal(err)
		}
	}
	dead := f.cmd(t, n0, "/hostcheck whoami")
	alive := f.cmd(t, n1, "/hostcheck whoami")
	if err := n0.Kill(); err != nil {
		t.Fatal(err)
	}
	if n0.IsActive() {
		t.Error("the killed node still reports the plugin active")
	}
	if pids := n0.pluginProcesses(); len(pids) != 0 {
		t.Errorf("plugin processes of the killed node still run: %v", pids)
	}
	if kvValue(f.s, "deactivated:"+dead) != "" {
		t.Error("OnDeactivate ran on the killed node")
	}
	if got := f.cmd(t, n1, "/hostcheck whoami"); got != alive {
		t.Errorf("the other node's plugin changed: %q, was %q", got, alive)
	}
	if err := n1.Kill(); err != nil {
		t.Fatal(err)
	}
	// The node can start the plugin again.
	if err := n0.Activate(); err != nil {
		t.Fatal(err)
	}
	if got := f.cmd(t, n0, "/hostcheck whoami"); got == "" || got == dead {
		t.Fatalf("after the restart whoami = %q", got)
	}
}
