// Package slixmpptest runs slixmpp, an XMPP client library written in
// Python independently of this project, as a second room occupant in tests:
// what the bridge must understand is what real clients send, not only what
// the project's own Go client (xmpptest) sends, and what the bridge sends
// must make sense to a client it was not written with.
//
// A small Python program (driver.py, embedded) builds every stanza with
// slixmpp's own plugins and reports every message it receives as slixmpp
// parsed it. It needs Debian's python3-slixmpp and python3-aiohttp
// (build/testdeps/40-test-clients.sh); without them Connect fails the test.
// bookworm's slixmpp 1.8 is the one wanted: it still sends the older
// namespaces (urn:xmpp:feature-fallback:0, urn:xmpp:message-retract:0).
package slixmpptest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/internal/servertest"
)

//go:embed driver.py
var driverPy []byte

// DefaultPython is Debian's interpreter, which python3-slixmpp installs
// into; a python3 found on PATH may be another one (pyenv, a virtualenv)
// without it. $SLIXMPPTEST_PYTHON overrides it.
const DefaultPython = "/usr/bin/python3"

const installHint = "install Debian's python3-slixmpp and python3-aiohttp: build/testdeps/40-test-clients.sh (make test-deps)"

// Message is one message stanza slixmpp received, as slixmpp's plugins
// read it.
type Message struct {
	// Raw is the stanza as slixmpp serialises it.
	Raw  string `json:"raw"`
	Type string `json:"type"`
	// From is the sender's full JID (room/nick in a room).
	From string `json:"from"`
	ID   string `json:"id"`
	Body string `json:"body"`
	// Thread is the XEP-0201 thread ID.
	Thread string `json:"thread"`
	// OriginID is the XEP-0359 origin-id; StanzaID the stanza-id the room
	// (the sender's bare JID) gave the message.
	OriginID string `json:"origin_id"`
	StanzaID string `json:"stanza_id"`
	// ReplaceID is the XEP-0308 correction's target.
	ReplaceID string `json:"replace_id"`
	// ReactionsTo and Reactions are a XEP-0444 reactions update.
	ReactionsTo string   `json:"reactions_to"`
	Reactions   []string `json:"reactions"`
	// RetractID is the target of a XEP-0424 retraction in the form
	// slixmpp 1.8 understands (urn:xmpp:message-retract:0).
	RetractID string `json:"retract_id"`
	// ReplyTo is a XEP-0461 reply's target; ReplyBody the body without
	// the fallback quote, when slixmpp found one it understands.
	ReplyTo   string `json:"reply_to"`
	ReplyBody string `json:"reply_body"`
	// OOBURL is the XEP-0066 out-of-band URL (a shared file).
	OOBURL string `json:"oob_url"`
	// HTML is the XEP-0071 XHTML-IM body.
	HTML string `json:"html"`
}

// Nick is the sender's nick in a room: the resource of From.
func (m Message) Nick() string {
	_, nick, _ := strings.Cut(m.From, "/")
	return nick
}

// line is one line the driver writes: an answer or an event.
type line struct {
	Reply   *int   `json:"reply"`
	Event   string `json:"event"`
	Error   string `json:"error"`
	ID      string `json:"id"`
	URL     string `json:"url"`
	JID     string `json:"jid"`
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

// Client is a slixmpp client logged in to a test server.
type Client struct {
	// JID is the full JID the server bound; Version is slixmpp's.
	JID     jid.JID
	Version string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tail

	writeMu sync.Mutex
	mu      sync.Mutex
	seq     int
	pending map[int]chan line
	msgs    []Message
	notify  chan struct{} // closed and replaced on every message
	started chan line     // the started or fatal event
	done    chan struct{} // closed when the driver exited
	exitErr error

	closeOnce sync.Once
}

// Connect logs localpart@Domain in over STARTTLS, with slixmpp trusting only
// the server's CA, and fails the test if it cannot (also when Python or
// slixmpp is missing). t.Cleanup closes it.
func Connect(t testing.TB, e *xmpptest.Endpoints, localpart, password string) *Client {
	t.Helper()
	c, err := start(t, e, localpart, password)
	if err != nil {
		t.Fatalf("slixmpptest: log in as %s@%s: %v", localpart, e.Domain, err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("slixmpp (%s) stderr, last lines:\n%s", c.JID, c.stderr.String())
		}
	})
	return c
}

func start(t testing.TB, e *xmpptest.Endpoints, localpart, password string) (*Client, error) {
	python := os.Getenv("SLIXMPPTEST_PYTHON")
	if python == "" {
		python = DefaultPython
	}
	if _, err := exec.LookPath(python); err != nil {
		return nil, fmt.Errorf("no Python interpreter at %s (%v); %s", python, err, installHint)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "driver.py")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(script, driverPy, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(caFile, []byte(e.CACertPEM), 0o600); err != nil {
		return nil, err
	}
	conf, err := json.Marshal(map[string]any{
		"jid": localpart + "@" + e.Domain, "password": password,
		"host": "127.0.0.1", "port": e.C2SPort, "ca_file": caFile,
	})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(python, script)
	cmd.Env = append(os.Environ(), "SLIXMPPTEST_CONFIG="+string(conf), "PYTHONUNBUFFERED=1")
	if lvl := os.Getenv("SLIXMPPTEST_LOG"); lvl != "" {
		cmd.Env = append(cmd.Env, "SLIXMPP_LOG="+lvl)
	}
	cmd.SysProcAttr = servertest.ChildProcAttr()
	c := &Client{
		cmd:     cmd,
		stderr:  &tail{max: 64 << 10},
		pending: map[int]chan line{},
		notify:  make(chan struct{}),
		started: make(chan line, 1),
		done:    make(chan struct{}),
	}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w; %s", python, err, installHint)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c.read(stdout)
	}()
	go func() {
		<-readDone
		err := cmd.Wait()
		c.mu.Lock()
		c.exitErr = err
		for seq, ch := range c.pending {
			close(ch)
			delete(c.pending, seq)
		}
		c.mu.Unlock()
		close(c.done)
	}()

	// Generous: Python starts slowly on a loaded machine, and the login is
	// a real SASL exchange.
	timer := time.NewTimer(90 * time.Second)
	defer timer.Stop()
	select {
	case l := <-c.started:
		if l.Event == "fatal" {
			c.Close()
			hint := ""
			if strings.HasPrefix(l.Error, "cannot import") {
				hint = "; " + installHint
			}
			return nil, fmt.Errorf("slixmpp: %s%s\n%s", l.Error, hint, c.stderr.String())
		}
		c.Version = l.Version
		if c.JID, err = jid.Parse(l.JID); err != nil {
			c.Close()
			return nil, fmt.Errorf("slixmpp bound %q: %w", l.JID, err)
		}
		return c, nil
	case <-c.done:
		err := c.exitErr
		if strings.Contains(c.stderr.String(), "ModuleNotFoundError") {
			err = fmt.Errorf("%w; %s", err, installHint)
		}
		return nil, fmt.Errorf("the slixmpp driver exited before logging in (%v):\n%s", err, c.stderr.String())
	case <-timer.C:
		c.Close()
		return nil, fmt.Errorf("slixmpp did not log in within 90s:\n%s", c.stderr.String())
	}
}

func (c *Client) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		raw := sc.Bytes()
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			_, _ = c.stderr.Write([]byte("slixmpptest: bad line from the driver: " + string(raw) + "\n"))
			continue
		}
		switch {
		case l.Reply != nil:
			c.mu.Lock()
			ch := c.pending[*l.Reply]
			delete(c.pending, *l.Reply)
			c.mu.Unlock()
			if ch != nil {
				ch <- l
			}
		case l.Event == "message":
			var m Message
			if err := json.Unmarshal(raw, &m); err != nil {
				continue
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			close(c.notify)
			c.notify = make(chan struct{})
			c.mu.Unlock()
		case l.Event == "started", l.Event == "fatal":
			select {
			case c.started <- l:
			default:
			}
		}
	}
}

// Close ends the session and the driver, killing it if it does not exit
// within a few seconds.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		_ = c.stdin.Close() // the driver disconnects and exits at EOF
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
}

// do sends one command and waits for its answer.
func (c *Client) do(ctx context.Context, cmd map[string]any) (line, error) {
	ch := make(chan line, 1)
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.pending[seq] = ch
	c.mu.Unlock()
	cmd["seq"] = seq
	enc, err := json.Marshal(cmd)
	if err != nil {
		return line{}, err
	}
	c.writeMu.Lock()
	_, err = c.stdin.Write(append(enc, '\n'))
	c.writeMu.Unlock()
	if err != nil {
		return line{}, fmt.Errorf("slixmpp %s: %w", cmd["op"], err)
	}
	select {
	case l, ok := <-ch:
		if !ok {
			return line{}, fmt.Errorf("slixmpp %s: the driver exited: %v", cmd["op"], c.exitErr)
		}
		if l.Error != "" {
			return l, fmt.Errorf("slixmpp %s: %s", cmd["op"], l.Error)
		}
		return l, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, seq)
		c.mu.Unlock()
		return line{}, fmt.Errorf("slixmpp %s: %w", cmd["op"], ctx.Err())
	}
}

// JoinRoom joins room as nick, asking for no history, with slixmpp's
// XEP-0045 plugin.
func (c *Client) JoinRoom(ctx context.Context, room jid.JID, nick string) error {
	_, err := c.do(ctx, map[string]any{"op": "join", "room": room.Bare().String(), "nick": nick})
	return err
}

// Say sends a groupchat message; the returned id is the stanza's id and
// its origin-id. A non-empty html is sent as XHTML-IM too.
func (c *Client) Say(ctx context.Context, room jid.JID, body, html string) (string, error) {
	l, err := c.do(ctx, map[string]any{"op": "say", "room": room.Bare().String(), "body": body, "html": html})
	return l.ID, err
}

// SayInThread sends a groupchat message in the XEP-0201 thread named
// thread.
func (c *Client) SayInThread(ctx context.Context, room jid.JID, body, thread string) (string, error) {
	l, err := c.do(ctx, map[string]any{"op": "say", "room": room.Bare().String(), "body": body, "thread": thread})
	return l.ID, err
}

// Correct sends a XEP-0308 correction of the message whose id (as its
// sender chose it) is id.
func (c *Client) Correct(ctx context.Context, room jid.JID, id, body string) (string, error) {
	l, err := c.do(ctx, map[string]any{"op": "correct", "room": room.Bare().String(), "id": id, "body": body})
	return l.ID, err
}

// React sets this client's XEP-0444 reactions to the message with the
// room's stanza-id id; none removes them all.
func (c *Client) React(ctx context.Context, room jid.JID, id string, reactions ...string) error {
	if reactions == nil {
		reactions = []string{}
	}
	_, err := c.do(ctx, map[string]any{"op": "react", "room": room.Bare().String(), "id": id, "reactions": reactions})
	return err
}

// Reply is a XEP-0461 reply: To is the replied-to occupant's full JID in
// the room, ID the room's stanza-id of the message. Quote is put in front
// of Body as "> " lines and marked as the fallback, as slixmpp clients do.
// HTML and QuoteHTML, when set, go in a XHTML-IM body as well.
type Reply struct {
	To, ID, Quote, Body string
	HTML, QuoteHTML     string
}

// Reply sends r to room and returns the stanza's id.
func (c *Client) Reply(ctx context.Context, room jid.JID, r Reply) (string, error) {
	l, err := c.do(ctx, map[string]any{
		"op": "reply", "room": room.Bare().String(), "to": r.To, "id": r.ID,
		"quote": r.Quote, "body": r.Body, "html": r.HTML, "quote_html": r.QuoteHTML,
	})
	return l.ID, err
}

// Retract sends a XEP-0424 retraction of id with slixmpp's plugin, which in
// 1.8 is the urn:xmpp:message-retract:0 form in a XEP-0422 apply-to, with a
// fallback body. Which id a client puts there varied: the origin-id (up to
// XEP-0424 0.3) or the room's stanza-id.
func (c *Client) Retract(ctx context.Context, room jid.JID, id string) error {
	_, err := c.do(ctx, map[string]any{"op": "retract", "room": room.Bare().String(), "id": id})
	return err
}

// Upload puts data on the server's XEP-0363 upload service with slixmpp's
// plugin and shares the URL in room as slixmpp clients do (body and
// out-of-band URL). It returns the URL and the message's id.
func (c *Client) Upload(ctx context.Context, room jid.JID, uploadDomain, name, contentType string, data []byte) (url, id string, err error) {
	l, err := c.do(ctx, map[string]any{
		"op": "upload", "room": room.Bare().String(), "domain": uploadDomain,
		"name": name, "content_type": contentType, "data_hex": hex.EncodeToString(data),
	})
	return l.URL, l.ID, err
}

// Messages returns every message received so far, oldest first.
func (c *Client) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// WaitMessage returns the first message received (already, or until ctx
// ends) for which match is true.
func (c *Client) WaitMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	for i := 0; ; {
		c.mu.Lock()
		msgs, notify := c.msgs, c.notify
		c.mu.Unlock()
		for ; i < len(msgs); i++ {
			if match(msgs[i]) {
				return msgs[i], nil
			}
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("no matching message among %d slixmpp received: %w%s", len(msgs), ctx.Err(), summary(msgs))
		case <-c.done:
			c.mu.Lock()
			n := len(c.msgs)
			c.mu.Unlock()
			if n == len(msgs) {
				return Message{}, fmt.Errorf("the slixmpp driver exited (%v) with no matching message among %d received%s", c.exitErr, len(msgs), summary(msgs))
			}
		}
	}
}

func summary(msgs []Message) string {
	const last = 5
	if len(msgs) > last {
		msgs = msgs[len(msgs)-last:]
	}
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("\n  ")
		b.WriteString(m.Raw)
	}
	return b.String()
}

// tail keeps the last max bytes written to it: the driver's stderr, for
// failure messages.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
		if i := bytes.IndexByte(t.buf, '\n'); i >= 0 {
			t.buf = t.buf[i+1:]
		}
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
