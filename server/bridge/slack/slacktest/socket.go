package slacktest

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode, as Slack's "Socket Mode implementation" guide describes it:
// apps.connections.open (app-level token) returns a one-time websocket URL;
// on connect Slack sends hello; events come as events_api envelopes the app
// acknowledges by sending back {"envelope_id": ...}; Slack sends an
// unacknowledged envelope again (retry_attempt, retry_reason) and asks the
// app to reconnect with a disconnect message (reason refresh_requested,
// warning or link_disabled), keeping the old socket open a while.

// Delivery is one event's life on the sockets.
type Delivery struct {
	EventID string
	// Type is the inner event's type (message, reaction_added...).
	Type string
	// Payload is the event_callback object the envelopes carry.
	Payload json.RawMessage
	// Envelopes are the envelope IDs sent for it, one per attempt.
	Envelopes []string
	Acked     bool
	// Failed: Slack gave up after MaxRetries unacknowledged retries.
	Failed bool
}

// Ack is an acknowledgement a socket received.
type Ack struct {
	EnvelopeID string
	EventID    string // "" when the envelope ID matched nothing sent
	Payload    json.RawMessage
	Conn       int
}

type delivery struct {
	Delivery
	attempts int // sends so far
	reason   string
	timer    *time.Timer
}

type socketState struct {
	tickets    map[string]bool
	conns      []*sockConn // open, oldest first
	opened     int
	deliveries []*delivery
	byEnvelope map[string]*delivery
	waiting    []*delivery // queued while no socket was open
	acks       []Ack
	down       bool // SocketsDown: no socket can open (see outage.go)
}

func newSocketState() *socketState {
	return &socketState{tickets: map[string]bool{}, byEnvelope: map[string]*delivery{}}
}

func (st *socketState) all() []*sockConn { return append([]*sockConn(nil), st.conns...) }

func (st *socketState) stopTimers() {
	for _, d := range st.deliveries {
		if d.timer != nil {
			d.timer.Stop()
		}
	}
}

// sockConn is one open websocket. Writes go through one goroutine (the
// websocket library allows one writer), fed by a queue.
type sockConn struct {
	id   int
	ws   *websocket.Conn
	mu   sync.Mutex
	out  [][]byte
	wake chan struct{}
	done chan struct{}
	once sync.Once
	// leaving: told to disconnect; new events go to other sockets.
	leaving bool
}

func (c *sockConn) send(b []byte) {
	c.mu.Lock()
	c.out = append(c.out, b)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// drop closes the TCP connection without a close frame, as a network
// failure would.
func (c *sockConn) drop() {
	c.once.Do(func() { close(c.done) })
	_ = c.ws.NetConn().Close()
}

// closeGracefully sends a close frame, then closes.
func (c *sockConn) closeGracefully() {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.drop()
}

func (s *Server) appsConnectionsOpen(*request) answer {
	if s.socket.down {
		return errAnswer("internal_error")
	}
	if len(s.socket.conns) >= 10 {
		// Slack allows an app up to 10 open Socket Mode connections.
		return errAnswer("too_many_websockets")
	}
	ticket := randomHex(32)
	s.socket.tickets[ticket] = true
	u := "ws" + strings.TrimPrefix(s.URL, "http") + "/link/?ticket=" + ticket + "&app_id=" + s.appID
	return okAnswer(answer{"url": u})
}

// serveSocket is the websocket endpoint apps.connections.open points at.
func (s *Server) serveSocket(w http.ResponseWriter, hr *http.Request) {
	ticket := hr.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.socket.tickets[ticket] && !s.closed
	delete(s.socket.tickets, ticket) // a URL is good for one connection
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	ws, err := s.upgrade.Upgrade(w, hr, nil)
	if err != nil {
		return
	}
	c := &sockConn{ws: ws, wake: make(chan struct{}, 1), done: make(chan struct{})}

	s.mu.Lock()
	s.socket.opened++
	c.id = s.socket.opened
	s.socket.conns = append(s.socket.conns, c)
	hello, _ := json.Marshal(map[string]any{
		"type":            "hello",
		"num_connections": len(s.socket.conns),
		"debug_info": map[string]any{
			"host": "applink-slacktest", "build_number": 1,
			"approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": s.appID},
	})
	c.send(hello)
	waiting := s.socket.waiting
	s.socket.waiting = nil
	for _, d := range waiting {
		s.sendLocked(d)
	}
	s.notifyLocked()
	s.mu.Unlock()

	go s.writeLoop(c)
	s.readLoop(c)
}

func (s *Server) writeLoop(c *sockConn) {
	ping := time.NewTicker(s.opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-ping.C:
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)) != nil {
				c.drop()
				return
			}
		case <-c.wake:
			for {
				c.mu.Lock()
				if len(c.out) == 0 {
					c.mu.Unlock()
					break
				}
				b := c.out[0]
				c.out = c.out[1:]
				c.mu.Unlock()
				_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if c.ws.WriteMessage(websocket.TextMessage, b) != nil {
					c.drop()
					return
				}
			}
		}
	}
}

// readLoop takes acknowledgements until the socket closes.
func (s *Server) readLoop(c *sockConn) {
	defer func() {
		c.drop()
		s.mu.Lock()
		for i, o := range s.socket.conns {
			if o == c {
				s.socket.conns = append(s.socket.conns[:i], s.socket.conns[i+1:]...)
				break
			}
		}
		s.notifyLocked()
		s.mu.Unlock()
	}()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var resp struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &resp) != nil || resp.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		ack := Ack{EnvelopeID: resp.EnvelopeID, Payload: resp.Payload, Conn: c.id}
		if d := s.socket.byEnvelope[resp.EnvelopeID]; d != nil {
			ack.EventID = d.EventID
			d.Acked = true
			if d.timer != nil {
				d.timer.Stop()
			}
		}
		s.socket.acks = append(s.socket.acks, ack)
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// queueEventLocked wraps an inner event in an event_callback and sends it.
func (s *Server) queueEventLocked(inner map[string]any) {
	eventID := "Ev" + s.ws.newID('E')[1:]
	payload, _ := json.Marshal(map[string]any{
		"token":      "slacktest-verification-token",
		"team_id":    s.ws.team.ID,
		"api_app_id": s.appID,
		"event":      inner,
		"type":       "event_callback",
		"event_id":   eventID,
		"event_time": time.Now().Unix(),
		"authorizations": []map[string]any{{
			"enterprise_id": nil, "team_id": s.ws.team.ID, "user_id": s.botUser,
			"is_bot": true, "is_enterprise_install": false,
		}},
		"is_ext_shared_channel": false,
		"event_context":         "4-" + randomHex(40),
	})
	typ, _ := inner["type"].(string)
	d := &delivery{Delivery: Delivery{EventID: eventID, Type: typ, Payload: payload}}
	s.socket.deliveries = append(s.socket.deliveries, d)
	s.sendLocked(d)
}

// sendLocked sends one attempt of a delivery to the newest socket that is
// not leaving, or queues it until one opens, and arms the ack timer.
func (s *Server) sendLocked(d *delivery) {
	var target *sockConn
	for _, c := range s.socket.conns {
		if !c.leaving {
			target = c
		}
	}
	if target == nil || s.closed {
		s.socket.waiting = append(s.socket.waiting, d)
		return
	}
	envelopeID := newUUID()
	env, _ := json.Marshal(map[string]any{
		"envelope_id":              envelopeID,
		"payload":                  d.Payload,
		"type":                     "events_api",
		"accepts_response_payload": false,
		"retry_attempt":            d.attempts,
		"retry_reason":             d.reason,
	})
	d.attempts++
	d.Envelopes = append(d.Envelopes, envelopeID)
	s.socket.byEnvelope[envelopeID] = d
	target.send(env)
	if d.timer != nil {
		d.timer.Stop()
	}
	d.timer = time.AfterFunc(s.opts.AckTimeout, func() { s.ackTimedOut(d, envelopeID) })
	s.notifyLocked()
}

// ackTimedOut sends the event again (retry_reason "timeout") unless it was
// acknowledged meanwhile, or gives up after MaxRetries retries.
func (s *Server) ackTimedOut(d *delivery, envelopeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || d.Acked || d.Failed || d.Envelopes[len(d.Envelopes)-1] != envelopeID {
		return
	}
	if d.attempts > s.opts.MaxRetries {
		d.Failed = true
		s.notifyLocked()
		return
	}
	d.reason = "timeout"
	s.sendLocked(d)
}

func newUUID() string {
	h := randomHex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// SendDisconnect sends a disconnect message (reason refresh_requested,
// warning or link_disabled) to every open socket. After refresh_requested
// and link_disabled the socket gets no new events and the server closes it
// after Options.DisconnectGrace (unless the app closes it first); a
// warning leaves it as it is.
func (s *Server) SendDisconnect(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{
		"type": "disconnect", "reason": reason,
		"debug_info": map[string]any{"host": "applink-slacktest"},
	})
	for _, c := range s.socket.conns {
		if c.leaving {
			continue
		}
		c.send(msg)
		if reason != "warning" {
			c.leaving = true
			time.AfterFunc(s.opts.DisconnectGrace, c.closeGracefully)
		}
	}
	s.notifyLocked()
}

// RequestRefresh is SendDisconnect("refresh_requested"), what Slack sends
// when it recycles a connection.
func (s *Server) RequestRefresh() { s.SendDisconnect("refresh_requested") }

// DropConnections closes every socket's TCP connection abruptly, without
// a disconnect message or close frame.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := s.socket.all()
	s.mu.Unlock()
	for _, c := range conns {
		c.drop()
	}
}

// SendRaw sends a text frame as is to every open socket (a malformed
// envelope, an unknown type...).
func (s *Server) SendRaw(frame string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.socket.conns {
		c.send([]byte(frame))
	}
}

// Redeliver sends an event again, acknowledged or not, as Slack's
// at-least-once delivery may: a new envelope with retry_attempt one more
// than the last and retry_reason "timeout".
func (s *Server) Redeliver(eventID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.socket.deliveries {
		if d.EventID == eventID {
			d.Acked = false
			d.Failed = false
			d.reason = "timeout"
			s.sendLocked(d)
			return true
		}
	}
	return false
}

// OpenConnections counts the open sockets.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.socket.conns)
}

// ConnectionsOpened counts every socket ever opened.
func (s *Server) ConnectionsOpened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socket.opened
}

// Deliveries returns every event queued for the app, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, 0, len(s.socket.deliveries))
	for _, d := range s.socket.deliveries {
		c := d.Delivery
		c.Envelopes = append([]string(nil), d.Envelopes...)
		out = append(out, c)
	}
	return out
}

// Acks returns the acknowledgements received, oldest first.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.socket.acks...)
}
