package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/socketmode"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// The bridge runs Socket Mode itself rather than through socketmode.Client:
// that client closes its socket before opening the next one when Slack asks
// for a refresh, and acknowledges on its own schedule. Here a refresh opens
// the new socket first and retires the old one once everything it carried
// was handed on, and an envelope is acknowledged only after the core
// accepted its event.

const (
	// readTimeout: Slack pings every socket; one silent this long is dead.
	// slack-go's client allows 30 s; a little more spares a busy host.
	readTimeout = 45 * time.Second
	// helloTimeout bounds the wait for the hello that opens a socket.
	helloTimeout = 30 * time.Second
	// maxFrame bounds one websocket message (Slack's events are small;
	// a file_share with many files is the largest).
	maxFrame = 4 << 20
)

// item is one thing for the processing loop, in the order it came.
type item struct {
	conn *sockConn
	req  socketmode.Request
	// catchUp asks for the missed history of every linked channel to be
	// read before anything the new socket carries.
	catchUp bool
}

// sockConn is one Socket Mode websocket.
type sockConn struct {
	b  *Bridge
	ws *websocket.Conn
	// prev is the socket this one replaces at Slack's request; nil at the
	// start and after a drop.
	prev *sockConn

	writeMu   sync.Mutex
	hello     chan struct{}
	helloOnce sync.Once
	refresh   chan string // Slack's disconnect reason
	done      chan struct{}
	closeOnce sync.Once
	err       error // why the read loop ended; read after done

	pending  atomic.Int64 // envelopes read and not yet finished
	retiring atomic.Bool
}

// backoff is exponential with full jitter, so many plugins reconnecting at
// once do not hammer apps.connections.open in step.
func backoff(attempt int) time.Duration {
	const initial, maxWait = time.Second, 2 * time.Minute
	d := min(initial<<min(attempt, 7), maxWait)
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter, not security
}

// retryWait is how long to wait after a failed attempt: Slack's
// Retry-After when it gave one, else the backoff.
func retryWait(err error, attempt int) time.Duration {
	if d, ok := bridge.RetryDelay(err); ok {
		return max(d, 100*time.Millisecond)
	}
	return backoff(attempt)
}

// failed puts the bridge in the state a refused token leaves it in: no
// more attempts (a retry storm helps nobody) until an admin saves a new
// token, which rebuilds the bridge.
func (b *Bridge) failed(err error) {
	b.fatal.Store(true)
	b.health.Set(bridge.StateError, err)
	b.log.Error("Slack refused a token; the bridge stops until the token is replaced in the plugin settings", "error", b.redact(err.Error()))
}

func (b *Bridge) run(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		err := b.identify(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if isTokenError(err) {
			b.failed(err)
			return
		}
		b.health.Set(bridge.StateError, err)
		b.log.Warn("Slack auth.test failed", "error", err.Error(), "attempt", attempt+1)
		if !sleep(ctx, retryWait(err, attempt)) {
			return
		}
		b.health.Reconnecting()
	}

	var cur *sockConn
	defer func() {
		if cur != nil {
			cur.close()
		}
	}()
	// retryAt is when a failed open may be tried again.
	var retryAt time.Time
	for attempt := 0; ctx.Err() == nil; {
		until, why := b.openPace.allowedAt(), "Slack allows one new socket a minute"
		if retryAt.After(until) {
			until, why = retryAt, "after a failed attempt"
		}
		var ok bool
		if cur, ok = b.waitToReconnect(ctx, until, why, cur); !ok {
			return
		}
		next, err := b.open(ctx, cur)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isTokenError(err) {
				b.failed(err)
				return
			}
			if cur == nil {
				b.health.Set(bridge.StateError, err)
			} else {
				b.health.Failed(err)
			}
			b.log.Warn("Could not open a Slack socket", "error", err.Error(), "attempt", attempt+1)
			retryAt = time.Now().Add(retryWait(err, attempt))
			attempt++
			b.health.Reconnecting()
			continue
		}
		attempt, retryAt = 0, time.Time{}
		if cur != nil {
			cur.retire()
		}
		cur = next
		b.health.Connected()
		select {
		case <-ctx.Done():
			return
		case <-cur.done:
			b.dropped(cur)
			cur = nil
		case reason := <-cur.refresh:
			// The old socket stays open (Slack keeps it a while) until the
			// new one is up, so nothing falls between the two.
			b.refreshes.Add(1)
			b.log.Debug("Slack asked for a new socket", "reason", cleanCode(reason))
			if reason == "link_disabled" {
				b.health.Failed(errors.New("slack: Socket Mode was turned off for the app (link_disabled): turn it on in the app's settings"))
			}
		}
	}
}

// dropped records that the current socket closed under the bridge.
func (b *Bridge) dropped(c *sockConn) {
	b.reconnects.Add(1)
	b.health.Reconnecting()
	b.health.Set(bridge.StateDisconnected, fmt.Errorf("the Slack socket dropped: %w", c.err))
	b.log.Warn("The Slack socket dropped; reconnecting", "error", b.redact(c.err.Error()))
}

// waitToReconnect waits until the next socket may be opened, saying so in
// the health meanwhile. A current socket (one Slack asked to replace) that
// drops during the wait is recorded and given up; the returned socket is
// what is left of cur. False when the bridge is stopping.
func (b *Bridge) waitToReconnect(ctx context.Context, until time.Time, why string, cur *sockConn) (*sockConn, bool) {
	if !time.Now().Before(until) {
		return cur, ctx.Err() == nil
	}
	b.mu.Lock()
	b.reconnectAt, b.reconnectWhy = until, why
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.reconnectAt, b.reconnectWhy = time.Time{}, ""
		b.mu.Unlock()
	}()
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	for {
		var gone <-chan struct{}
		if cur != nil {
			gone = cur.done
		}
		select {
		case <-ctx.Done():
			return cur, false
		case <-t.C:
			return cur, true
		case <-gone:
			b.dropped(cur)
			cur = nil
		}
	}
}

// reconnectNote says, for the health, that the bridge waits to open a
// socket and until when.
func (b *Bridge) reconnectNote() string {
	b.mu.Lock()
	at, why := b.reconnectAt, b.reconnectWhy
	b.mu.Unlock()
	if at.IsZero() {
		return ""
	}
	return fmt.Sprintf("waiting to reconnect until %s (%s)", at.UTC().Format(time.RFC3339), why)
}

// open asks for a socket URL with the app-level token, dials it and waits
// for hello. prev is the socket it replaces, nil after a drop or at the
// start.
func (b *Bridge) open(ctx context.Context, prev *sockConn) (*sockConn, error) {
	var wsURL string
	err := pace(ctx, b.openPace, func() error {
		var err error
		_, wsURL, err = b.app.StartSocketModeContext(ctx)
		return b.wrap("apps.connections.open", err)
	})
	if err != nil {
		return nil, err
	}
	dialer := websocket.Dialer{HandshakeTimeout: helloTimeout}
	dctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	ws, resp, err := dialer.DialContext(dctx, wsURL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		// The URL holds a one-time ticket: it is never quoted.
		if resp != nil {
			return nil, fmt.Errorf("slack: opening the socket failed with HTTP status %d", resp.StatusCode)
		}
		return nil, errors.New("slack: could not open the socket: " + b.redact(dialError(err)))
	}
	c := &sockConn{
		b: b, ws: ws, prev: prev,
		hello: make(chan struct{}), refresh: make(chan string, 1), done: make(chan struct{}),
	}
	go c.readLoop(ctx)
	select {
	case <-c.hello:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("slack: the socket closed before hello: %s", b.redact(c.err.Error()))
	case <-dctx.Done():
		c.close()
		return nil, errors.New("slack: no hello on the new socket")
	}
}

// followsDrop says whether this socket's hello should be preceded by a
// catch-up: it follows a start or a drop, or the socket it replaces dropped
// while the bridge waited its turn to open this one (its unacknowledged
// events may never come again).
func (c *sockConn) followsDrop() bool {
	if c.prev == nil {
		return true
	}
	select {
	case <-c.prev.done:
		return true
	default:
		return false
	}
}

// dialError keeps the part of a dial error that names no URL.
func dialError(err error) string {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	if errors.Is(err, websocket.ErrBadHandshake) {
		return "bad handshake"
	}
	var op interface{ Unwrap() error }
	if errors.As(err, &op) {
		if inner := op.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return "connection failed"
}

func (c *sockConn) readLoop(ctx context.Context) {
	defer func() {
		c.closeOnce.Do(func() { _ = c.ws.Close() })
		close(c.done)
	}()
	c.ws.SetReadLimit(maxFrame)
	c.ws.SetPingHandler(func(data string) error {
		_ = c.ws.SetReadDeadline(time.Now().Add(readTimeout))
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(readTimeout))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		if !c.frame(ctx, data) {
			c.err = ctx.Err()
			return
		}
	}
}

// frame handles one websocket message; false when the bridge is stopping.
func (c *sockConn) frame(ctx context.Context, data []byte) bool {
	var req socketmode.Request
	if err := json.Unmarshal(data, &req); err != nil {
		c.b.malformed.Add(1)
		c.b.log.Warn("Ignoring a Slack socket message that is not JSON", "bytes", len(data))
		return true
	}
	switch req.Type {
	case "hello":
		first := false
		c.helloOnce.Do(func() { first = true })
		if first && c.followsDrop() {
			// Whatever a dropped socket did not carry is in the history:
			// read it before the new socket's events, which keeps order.
			if !c.b.enqueue(ctx, item{catchUp: true}) {
				return false
			}
		}
		if first {
			c.prev = nil // else every socket would keep all before it
			for n := int64(req.NumConnections); ; {
				old := c.b.overlap.Load()
				if n <= old || c.b.overlap.CompareAndSwap(old, n) {
					break
				}
			}
			close(c.hello)
		}
	case "disconnect":
		if req.Reason == "warning" {
			return true
		}
		select {
		case c.refresh <- req.Reason:
		default:
		}
	case "events_api":
		if req.EnvelopeID == "" {
			c.b.malformed.Add(1)
			c.b.log.Warn("Ignoring a Slack event envelope without an envelope_id")
			return true
		}
		c.pending.Add(1)
		if !c.b.enqueue(ctx, item{conn: c, req: req}) {
			return false
		}
	case "slash_commands", "interactive":
		// The app declares neither; acknowledging stops the redeliveries.
		if req.EnvelopeID != "" {
			c.ack(req.EnvelopeID)
		}
	default:
		c.b.log.Debug("Ignoring a Slack socket message", "type", cleanCode(req.Type))
	}
	return true
}

func (b *Bridge) enqueue(ctx context.Context, it item) bool {
	select {
	case b.queue <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// ack acknowledges an envelope on the socket it came on. A failure is
// harmless: Slack sends the event again and it is recognised then.
func (c *sockConn) ack(envelopeID string) {
	msg, _ := json.Marshal(map[string]string{"envelope_id": envelopeID})
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		c.b.log.Debug("Could not acknowledge a Slack envelope; Slack will send it again", "error", err.Error())
	}
}

// finished is called once an envelope of this socket was handled.
func (c *sockConn) finished() {
	if c.pending.Add(-1) == 0 && c.retiring.Load() {
		c.close()
	}
}

// retire closes the socket once what it carried is handled (at once when
// nothing is left).
func (c *sockConn) retire() {
	c.retiring.Store(true)
	if c.pending.Load() == 0 {
		c.close()
	}
}

// close says goodbye with a close frame and ends the read loop.
func (c *sockConn) close() {
	c.closeOnce.Do(func() {
		c.writeMu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		_ = c.ws.Close()
	})
}

// process handles the queue in order: events from every socket and the
// catch-ups, one at a time, so a channel's messages are handed on in the
// order Slack sent them.
func (b *Bridge) process(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-b.queue:
			if it.catchUp {
				b.catchUpAll(ctx)
				continue
			}
			if b.handleEnvelope(ctx, it.req) {
				it.conn.ack(it.req.EnvelopeID)
			}
			it.conn.finished()
		}
	}
}
