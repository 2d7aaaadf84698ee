package testhost

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/internal/testplugin/hostcheck"
)

// httpDo sends a request as an outside client would and returns the status
// and body; status 0 means the request failed.
func httpDo(t *testing.T, method, url, body string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestListenHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBundle(hostcheckBundle(t)), WithNodes(2))
	ph, err := f.s.ListenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	if ph.PluginURL() != ph.URL()+"/plugins/"+hostcheck.ID || !strings.HasPrefix(ph.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q, PluginURL %q", ph.URL(), ph.PluginURL())
	}
	expect := func(method, path, body string, header http.Header, wantCode int, wantBody string) {
		t.Helper()
		code, got, _ := httpDo(t, method, ph.URL()+path, body, header)
		if code != wantCode || (wantBody != "" && got != wantBody) {
			t.Fatalf("%s %s: %d %q, want %d %q", method, path, code, got, wantCode, wantBody)
		}
	}
	hello := "/plugins/" + hostcheck.ID + "/hello"
	expect(http.MethodGet, hello, "", nil, http.StatusNotFound, "")

	// Served by node1, the only node where the plugin is active.
	if err := f.s.Node(1).Activate(); err != nil {
		t.Fatal(err)
	}
	expect(http.MethodGet, hello, "", http.Header{"Mattermost-User-Id": {"forged"}}, http.StatusOK, "user= path=/hello")
	code, _, h := httpDo(t, http.MethodPost, ph.PluginURL()+"/teapot", "x", nil)
	if code != http.StatusTeapot || h.Get("X-Hostcheck") != "1" {
		t.Fatalf("teapot: %d %v", code, h)
	}
	// The plugin sees what the server passes on: the homeserver's bearer
	// token, but neither access_token, Referer nor the session cookie.
	expect(http.MethodPut, "/plugins/"+hostcheck.ID+"/echo?b=2&access_token=hs&a=1", "payload", http.Header{
		"Authorization": {"Bearer hs"},
		"Referer":       {"http://elsewhere/"},
		"Cookie":        {"MMAUTHTOKEN=secret; other=y"},
	}, http.StatusOK, "PUT query=a=1&b=2 auth=Bearer hs referer= cookie=other=y body=payload")
	for _, path := range []string{"/", "/api/v4/system/ping", "/plugins/other/hello", "/plugins/" + hostcheck.ID + "x/hello"} {
		expect(http.MethodGet, path, "", nil, http.StatusNotFound, "")
	}

	// Concurrent requests.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			code, body, _ := httpDo(t, http.MethodPost, fmt.Sprintf("%s/kv?key=c%d", ph.PluginURL(), i), fmt.Sprint(i), nil)
			if code != http.StatusOK {
				t.Errorf("concurrent request %d: %d %q", i, code, body)
			}
		})
	}
	wg.Wait()
	for i := range 20 {
		if got := kvValue(f.s, fmt.Sprintf("c%d", i)); got != fmt.Sprint(i) {
			t.Fatalf("c%d = %q", i, got)
		}
	}

	// A KV failure reaches the plugin through the RPC boundary.
	f.s.FailKV(1, "disk full")
	expect(http.MethodPost, "/plugins/"+hostcheck.ID+"/kv?key=k", "v", nil, http.StatusInternalServerError, "disk full\n")
	expect(http.MethodPost, "/plugins/"+hostcheck.ID+"/kv?key=k", "v", nil, http.StatusOK, "")

	// Deactivation, activation elsewhere, restart.
	f.s.Node(1).Deactivate()
	expect(http.MethodGet, hello, "", nil, http.StatusNotFound, "")
	if err := f.s.Node(0).Activate(); err != nil {
		t.Fatal(err)
	}
	expect(http.MethodGet, hello, "", nil, http.StatusOK, "user= path=/hello")
	if err := f.s.Node(0).Restart(); err != nil {
		t.Fatal(err)
	}
	expect(http.MethodGet, hello, "", nil, http.StatusOK, "user= path=/hello")

	ph.Close()
	ph.Close() // idempotent
	if code, _, _ := httpDo(t, http.MethodGet, ph.URL()+hello, "", nil); code != 0 {
		t.Fatalf("answered %d after Close", code)
	}
}

func TestListenHTTPIntercept(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithPluginID(hostcheck.ID))
	if err := f.s.Node(0).ActivateInProcess(hostcheck.Manifest(), func() any { return hostcheck.New() }); err != nil {
		t.Fatal(err)
	}
	ph, err := f.s.ListenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	post := func(key string) (int, string) {
		code, body, _ := httpDo(t, http.MethodPost, ph.PluginURL()+"/kv?key="+key, "v-"+key, nil)
		return code, body
	}

	// The plugin handles the request, the client gets a 502.
	ph.SetIntercept(func(w http.ResponseWriter, _ *http.Request, forward func() *http.Response) bool {
		if resp := forward(); resp.StatusCode != http.StatusOK {
			t.Errorf("forwarded: %d", resp.StatusCode)
		}
		http.Error(w, "lost", http.StatusBadGateway)
		return true
	})
	if code, _ := post("lost"); code != http.StatusBadGateway {
		t.Fatalf("lost response: %d", code)
	}
	if got := kvValue(f.s, "lost"); got != "v-lost" {
		t.Fatalf("the plugin did not get the request: %q", got)
	}

	// The request never reaches the plugin.
	ph.SetIntercept(func(w http.ResponseWriter, _ *http.Request, _ func() *http.Response) bool {
		_, _ = io.WriteString(w, "intercepted")
		return true
	})
	if code, body := post("never"); code != http.StatusOK || body != "intercepted" {
		t.Fatalf("answered by the interceptor: %d %q", code, body)
	}
	if got := kvValue(f.s, "never"); got != "" {
		t.Fatalf("the plugin got the request: %q", got)
	}

	// An observer reads the body and, twice, the response, and lets the
	// plugin's response through.
	var seen []string
	ph.SetIntercept(func(_ http.ResponseWriter, r *http.Request, forward func() *http.Response) bool {
		b, _ := io.ReadAll(r.Body)
		for range 2 {
			rb, _ := io.ReadAll(forward().Body)
			seen = append(seen, string(b)+" -> "+string(rb))
		}
		return false
	})
	if code, body := post("seen"); code != http.StatusOK || body != "user= path=/kv" {
		t.Fatalf("observed: %d %q", code, body)
	}
	if want := "v-seen -> user= path=/kv"; len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Fatalf("the interceptor saw %q", seen)
	}
	if got := kvValue(f.s, "seen"); got != "v-seen" {
		t.Fatalf("stored %q", got)
	}

	ph.SetIntercept(nil)
	if code, _ := post("plain"); code != http.StatusOK || kvValue(f.s, "plain") != "v-plain" {
		t.Fatalf("without an interceptor: %d", code)
	}
}
