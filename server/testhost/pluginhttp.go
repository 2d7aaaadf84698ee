package testhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// PluginHTTP serves the plugin's HTTP endpoints on a real TCP port, so that
// another process (a Matrix homeserver pushing to its application service,
// a webhook sender) can reach the plugin the way it reaches
// https://mattermost.example.com/plugins/<id>/... on a real server.
type PluginHTTP struct {
	s    *Server
	srv  *http.Server
	url  string
	done chan struct{} // closed when Serve has returned

	closeOnce sync.Once
	mu        sync.Mutex
	intercept Intercept
}

// Intercept sees every request PluginHTTP receives before the plugin does.
// forward sends the request to the plugin (once; later calls return the
// same response) and returns its fully read response; the request body
// can be read both by the interceptor and by forward. Returning true means
// the interceptor has answered on w and the plugin's response, if any, is
// thrown away: call forward and answer 502 to simulate a response lost on
// the way back, or answer without calling forward to simulate a request
// that never arrived. Returning false (without writing to w) lets
// PluginHTTP answer with the plugin's response.
type Intercept func(w http.ResponseWriter, r *http.Request, forward func() *http.Response) bool

// ListenHTTP starts serving the plugin's HTTP endpoints on a free port of
// 127.0.0.1. Requests under /plugins/<PluginID>/ (unauthenticated: no
// Mattermost-User-ID) go to the plugin's ServeHTTP hook on the first node
// where the plugin is active, through Node.ServeHTTP; with no such node
// the answer is 404, like a server whose plugin is disabled, so the
// listener keeps working across Node.Deactivate, Activate and Restart.
// Other paths answer 404. It is closed by t.Cleanup, before the nodes
// shut down, if not closed earlier.
func (s *Server) ListenHTTP() (*PluginHTTP, error) {
	s.nodesMu.Lock()
	closed := s.closed
	s.nodesMu.Unlock()
	if closed {
		return nil, errors.New("testhost: ListenHTTP after the server was closed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &PluginHTTP{s: s, url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln) // always http.ErrServerClosed after Close
	}()
	s.t.Cleanup(p.Close)
	return p, nil
}

// URL is the listener's base URL, e.g. "http://127.0.0.1:41234", under
// which /plugins/<id>/... is served (what SiteURL is on a real server).
func (p *PluginHTTP) URL() string { return p.url }

// PluginURL is URL() + "/plugins/" + the server's PluginID.
func (p *PluginHTTP) PluginURL() string { return p.url + "/plugins/" + p.s.PluginID() }

// SetIntercept installs f for the requests that arrive from now on (nil
// removes it).
func (p *PluginHTTP) SetIntercept(f Intercept) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.intercept = f
}

// Close stops listening; requests in progress get up to 5 seconds to
// finish before their connections are closed.
func (p *PluginHTTP) Close() {
	p.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if p.srv.Shutdown(ctx) != nil {
			_ = p.srv.Close()
		}
		<-p.done
	})
}

// ServeHTTP is the listener's handler: the interceptor, then the plugin.
func (p *PluginHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Buffered so that both the interceptor and the plugin can read it.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	send := sync.OnceValue(func() answer {
		resp := p.forward(r, body)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body) // in memory: cannot fail
		return answer{status: resp.StatusCode, header: resp.Header, body: b}
	})
	p.mu.Lock()
	intercept := p.intercept
	p.mu.Unlock()
	if intercept != nil && intercept(w, r, func() *http.Response { return send().response() }) {
		return
	}
	a := send()
	maps.Copy(w.Header(), a.header)
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// answer is the plugin's response, read in full, so that it can be handed
// out more than once.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) response() *http.Response {
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)),
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
	}
}

// forward hands the request to the first node where the plugin is active.
func (p *PluginHTTP) forward(r *http.Request, body []byte) *http.Response {
	id := p.s.PluginID()
	prefix := "/plugins/" + id
	var node *Node
	if id != "" && (r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/")) {
		for _, n := range p.s.Nodes() {
			if n.IsActive() {
				node = n
				break
			}
		}
	}
	if node == nil {
		rec := newRecorder()
		http.NotFound(rec, r)
		return rec.result()
	}
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	// A plugin deactivated since the check answers 404 too (Node.ServeHTTP);
	// one deactivated during the call 500, as on the server.
	return node.ServeHTTP("", req)
}
