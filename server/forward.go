package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// Nodes talk through the server's plugin cluster events: a node that does
// not hold the bridge hands hooks, commands, HTTP requests and pings to the
// one that does, and gets answers back the same way. Every event goes to
// every node; only the holder acts on a forwarded one, only the asker on a
// reply.

const (
	eventForward  = "bridge-forward"
	eventReply    = "bridge-reply"
	eventReleased = "bridge-released"
)

// What a forwarded event carries.
const (
	kindPost            = "post"
	kindPostUpdated     = "post_updated"
	kindPostDeleted     = "post_deleted"
	kindReactionAdded   = "reaction_added"
	kindReactionRemoved = "reaction_removed"
	kindMember          = "member"
	kindCommand         = "command"
	kindHTTP            = "http"
	kindPing            = "ping"
	kindSync            = "sync"
	kindSyncFile        = "sync_file"
)

// forwarded is a hook, command, request or ping handed to the holder. ID
// and From are set when an answer is wanted.
type forwarded struct {
	Kind      string             `json:"kind"`
	ID        string             `json:"id,omitempty"`
	From      string             `json:"from,omitempty"`
	Post      *model.Post        `json:"post,omitempty"`
	OldPost   *model.Post        `json:"old_post,omitempty"`
	SessionID string             `json:"session_id,omitempty"`
	Reaction  *model.Reaction    `json:"reaction,omitempty"`
	ChannelID string             `json:"channel_id,omitempty"`
	UserID    string             `json:"user_id,omitempty"`
	Args      *model.CommandArgs `json:"args,omitempty"`
	Request   *httpMessage       `json:"request,omitempty"`
	RemoteID  string             `json:"remote_id,omitempty"`
	Sync      *model.SyncMsg     `json:"sync,omitempty"`
	// Hook marks a hook kept in its node's outbox until the holder
	// acknowledges it (outbox.go).
	Hook bool `json:"hook,omitempty"`
}

// reply is the holder's answer to a forwarded call.
type reply struct {
	ID       string                 `json:"id"`
	To       string                 `json:"to"`
	Command  *model.CommandResponse `json:"command,omitempty"`
	Response *httpMessage           `json:"response,omitempty"`
	Online   bool                   `json:"online,omitempty"`
	Sync     *model.SyncResponse    `json:"sync,omitempty"`
	Handled  bool                   `json:"handled,omitempty"`
}

// httpMessage is a request or a response crossing between nodes.
type httpMessage struct {
	Method string      `json:"method,omitempty"`
	URL    string      `json:"url,omitempty"`
	Status int         `json:"status,omitempty"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
}

// maxForwardedBody bounds a request body handed to the holder; a Matrix
// transaction (at most 100 events of at most 64 KiB, and as many EDUs) is
// well under it.
const maxForwardedBody = 32 << 20

// callResend is how long an asker waits for an answer before it asks
// again: the holder may have changed meanwhile. The holder acts on a
// question once and gives every copy the same answer (answerOnce).
const callResend = 2 * time.Second

// answerMemory is how long the holder remembers an answer.
const answerMemory = 2 * time.Minute

// calls tracks this node's open questions and, on the holder, the answers
// it is working on or gave lately.
type calls struct {
	mu      sync.Mutex
	waiting map[string]chan reply
	answers map[string]*answering
}

// answering is one question on the holder: done closes once r is set.
type answering struct {
	done chan struct{}
	r    reply
	at   time.Time
}

func newCalls() *calls {
	return &calls{waiting: map[string]chan reply{}, answers: map[string]*answering{}}
}

func (c *calls) open(id string) chan reply {
	ch := make(chan reply, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	return ch
}

func (c *calls) close(id string) {
	c.mu.Lock()
	delete(c.waiting, id)
	c.mu.Unlock()
}

func (c *calls) deliver(r reply) {
	c.mu.Lock()
	ch := c.waiting[r.ID]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
		default:
		}
	}
}

// answerOnce answers question id with answer, once: a copy that comes
// while the answer is being worked on waits for it, a later one gets it
// from memory.
func (c *calls) answerOnce(id string, answer func() reply) reply {
	c.mu.Lock()
	now := time.Now()
	for k, a := range c.answers {
		if !a.at.IsZero() && now.Sub(a.at) > answerMemory {
			delete(c.answers, k)
		}
	}
	a, asked := c.answers[id]
	if !asked {
		a = &answering{done: make(chan struct{})}
		c.answers[id] = a
	}
	c.mu.Unlock()
	if asked {
		<-a.done
		return a.r
	}
	r := answer()
	c.mu.Lock()
	a.r, a.at = r, time.Now()
	c.mu.Unlock()
	close(a.done)
	return r
}

// publish sends an event to the other nodes; reliable, so the server
// retries it, and in order from one sender.
func (p *Plugin) publish(id string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		p.API.LogError("Cannot encode a message for the other nodes", "event", id, "error", err.Error())
		return
	}
	if err := p.API.PublishPluginClusterEvent(model.PluginClusterEvent{Id: id, Data: data},
		model.PluginClusterEventSendOptions{SendType: model.PluginClusterEventSendTypeReliable}); err != nil {
		p.API.LogWarn("Cannot reach the other nodes", "event", id, "error", err.Error())
	}
}

// forward hands a hook to the holder, without waiting; the node's outbox
// hands it again until the holder acknowledges it.
func (p *Plugin) forward(f forwarded) {
	n := p.currentNode()
	if n == nil {
		return
	}
	f.ID, f.From, f.Hook = model.NewId(), n.id, true
	if n.hooks.add(f, time.Now()) {
		p.publish(eventForward, f)
	}
}

// resendHooks hands on again what the holder has not acknowledged, and
// handles it here once this node holds the bridge itself.
func (p *Plugin) resendHooks(n *node) {
	t := time.NewTicker(hookResend / 2)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if rt := p.active(); rt != nil {
			for _, f := range n.hooks.takeAll() {
				p.handleHookOnce(rt, n, f)
			}
			continue
		}
		again, dropped := n.hooks.due(time.Now())
		for _, f := range again {
			p.publish(eventForward, f)
		}
		for _, f := range dropped {
			p.API.LogWarn("Dropped a change no node could take: none held the bridge for two minutes", "kind", f.Kind)
		}
	}
}

// handleHookOnce handles a handed-on hook on the holder once, however
// often it comes, and returns the acknowledgement.
func (p *Plugin) handleHookOnce(rt *runtime, n *node, f forwarded) reply {
	return n.calls.answerOnce(f.ID, func() reply {
		p.handleHook(rt, f)
		return reply{ID: f.ID, To: f.From, Handled: true}
	})
}

var errNoNode = errors.New("the plugin is not active on this node")

// call hands f to the holder and waits for its answer, asking again every
// callResend until ctx ends; if this node takes the lease meanwhile, it
// answers itself.
func (p *Plugin) call(ctx context.Context, f forwarded) (reply, error) {
	n := p.currentNode()
	if n == nil {
		return reply{}, errNoNode
	}
	f.ID, f.From = model.NewId(), n.id
	answer := n.calls.open(f.ID)
	defer n.calls.close(f.ID)
	for {
		if rt := p.active(); rt != nil {
			return p.answer(rt, f), nil
		}
		p.publish(eventForward, f)
		t := time.NewTimer(callResend)
		select {
		case r := <-answer:
			t.Stop()
			return r, nil
		case <-ctx.Done():
			t.Stop()
			return reply{}, ctx.Err()
		case <-t.C:
		}
	}
}

// OnPluginClusterEvent receives what the other nodes send.
func (p *Plugin) OnPluginClusterEvent(_ *plugin.Context, ev model.PluginClusterEvent) {
	n := p.currentNode()
	if n == nil {
		return
	}
	switch ev.Id {
	case eventReleased:
		n.elector.Wake()
	case eventReply:
		var r reply
		if err := json.Unmarshal(ev.Data, &r); err == nil && r.To == n.id {
			n.calls.deliver(r)
			n.hooks.ack(r.ID)
		}
	case eventForward:
		rt := p.active()
		if rt == nil {
			return // another node holds the bridge, or none does for now
		}
		var f forwarded
		if err := json.Unmarshal(ev.Data, &f); err != nil {
			p.API.LogWarn("Ignoring an unreadable message from another node", "error", err.Error())
			return
		}
		if f.Hook || f.ID == "" {
			// A hook: handled here, in the order the node sent them, once
			// each; the answer acknowledges it.
			if f.ID == "" {
				p.handleHook(rt, f)
				return
			}
			p.publish(eventReply, p.handleHookOnce(rt, n, f))
			return
		}
		go func() {
			p.publish(eventReply, n.calls.answerOnce(f.ID, func() reply { return p.answer(rt, f) }))
		}()
	}
}

// answer is the holder's answer to a call.
func (p *Plugin) answer(rt *runtime, f forwarded) reply {
	r := reply{ID: f.ID, To: f.From}
	switch f.Kind {
	case kindCommand:
		if f.Args != nil {
			r.Command = p.executeCommand(rt, f.Args)
		}
	case kindPing:
		r.Online = p.ping(rt, f.RemoteID)
	case kindHTTP:
		r.Response = p.serveForwarded(f.Request)
	case kindSync:
		resp := rt.mm.OnSyncMsg(f.Sync)
		r.Sync = &resp
	case kindSyncFile:
		r.Handled = rt.mm.SyncAttachment(f.Post)
	}
	return r
}

// forwardWait bounds a request handed to the holder: a homeserver waits
// about a minute for its transactions to be answered.
const forwardWait = 30 * time.Second

// forwardHTTP hands a request to the holder and writes out its answer;
// 503 when no node holds the bridge in time.
func (p *Plugin) forwardHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxForwardedBody+1))
	if err != nil {
		p.writeError(w, http.StatusBadRequest, "could not read the request")
		return
	}
	if len(body) > maxForwardedBody {
		p.writeError(w, http.StatusRequestEntityTooLarge, "the request is too large")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardWait)
	defer cancel()
	req := &httpMessage{Method: r.Method, URL: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body}
	rep, err := p.call(ctx, forwarded{Kind: kindHTTP, Request: req})
	if err != nil || rep.Response == nil {
		w.Header().Set("Retry-After", "5")
		p.writeError(w, http.StatusServiceUnavailable, "the bridge is starting or stopping; try again in a moment")
		return
	}
	maps.Copy(w.Header(), rep.Response.Header)
	w.WriteHeader(rep.Response.Status)
	_, _ = w.Write(rep.Response.Body)
}

// serveForwarded serves a request another node received.
func (p *Plugin) serveForwarded(m *httpMessage) *httpMessage {
	if m == nil {
		return &httpMessage{Status: http.StatusBadRequest}
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, m.Method, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return &httpMessage{Status: http.StatusBadRequest}
	}
	req.Header = m.Header
	rec := httptest.NewRecorder()
	p.serveOnHolder(rec, req)
	res := rec.Result()
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return &httpMessage{Status: res.StatusCode, Header: res.Header, Body: body}
}

// announceRelease tells the other nodes the lease is free, so one takes
// it at once instead of at its next try.
func (p *Plugin) announceRelease() {
	p.publish(eventReleased, struct{}{})
}
