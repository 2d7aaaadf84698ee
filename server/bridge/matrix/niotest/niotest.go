// Package niotest runs a second Matrix client beside the project's own:
// matrix-nio (Debian's python3-matrix-nio), driven by a small Python program
// (driver.py), so the tests check the bridge against what another
// implementation sends and understands, not only against mautrix's idea of
// Matrix. The driver writes event content as people's clients do (Element,
// nio bots): edits with m.new_content, reactions, replies with their quote
// fallback in HTML or in the body only, thread messages, redactions, files
// uploaded to the media repository; it reports every event its sync brings.
//
// Python or nio missing fails the test that asked for the client, saying
// how to install them (make test-deps); it never skips.
package niotest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/base64"
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
)

//go:embed driver.py
var driver []byte

// Python is the interpreter the driver runs with: $NIOTEST_PYTHON, else
// Debian's /usr/bin/python3, where python3-matrix-nio installs. A python3
// found first on PATH (pyenv, a virtualenv) does not see Debian's modules.
func Python() string {
	if p := os.Getenv("NIOTEST_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// Timeouts are failsafes for a busy machine, not expectations: a command
// answers in milliseconds on an idle one.
const (
	commandTimeout = 2 * time.Minute
	startTimeout   = time.Minute
	// WaitTimeout is how long WaitEvent waits for an event to come.
	WaitTimeout = time.Minute
)

// Event is a timeline event as nio's sync received it.
type Event struct {
	RoomID  string          `json:"room_id"`
	ID      string          `json:"event_id"`
	Type    string          `json:"type"`
	Sender  string          `json:"sender"`
	Redacts string          `json:"redacts"`
	Content json.RawMessage `json:"content"`
	// Raw is the whole event, as the homeserver sent it.
	Raw json.RawMessage `json:"-"`
	// NioClass is the class nio's sync parsed the event into: what nio
	// made of it (RoomMessageText, RoomMessageImage, RoomMessageFile,
	// RedactionEvent, UnknownEvent for types nio 0.20 does not model such
	// as m.reaction; BadEvent for content it found malformed).
	NioClass string `json:"-"`
}

// Content is the part of message, reaction and redaction content the tests
// read.
type Content struct {
	MsgType       string        `json:"msgtype"`
	Body          string        `json:"body"`
	Format        string        `json:"format"`
	FormattedBody string        `json:"formatted_body"`
	URL           string        `json:"url"`
	FileName      string        `json:"filename"`
	Redacts       string        `json:"redacts"`
	NewContent    *Content      `json:"m.new_content"`
	RelatesTo     *RelatesTo    `json:"m.relates_to"`
	Info          *FileInfo     `json:"info"`
	Mentions      *UserMentions `json:"m.mentions"`
}

// RelatesTo is m.relates_to.
type RelatesTo struct {
	RelType       string     `json:"rel_type"`
	EventID       string     `json:"event_id"`
	Key           string     `json:"key"`
	IsFallingBack bool       `json:"is_falling_back"`
	InReplyTo     *InReplyTo `json:"m.in_reply_to"`
}

// InReplyTo is m.in_reply_to.
type InReplyTo struct {
	EventID string `json:"event_id"`
}

// FileInfo is a file message's info.
type FileInfo struct {
	MimeType string `json:"mimetype"`
	Size     int    `json:"size"`
}

// UserMentions is m.mentions.
type UserMentions struct {
	UserIDs []string `json:"user_ids"`
}

// Message decodes the event's content; content that does not decode
// gives the zero Content.
func (e Event) Message() Content {
	var c Content
	_ = json.Unmarshal(e.Content, &c)
	return c
}

// RedactedID is the event a redaction redacts, wherever the room version
// puts it (top level before v11, content from v11).
func (e Event) RedactedID() string {
	if e.Redacts != "" {
		return e.Redacts
	}
	return e.Message().Redacts
}

// Client is one nio client: a driver process logged in as one user.
type Client struct {
	t      testing.TB
	hsURL  string
	stdin  io.WriteCloser
	cmd    *exec.Cmd
	exited chan struct{}
	// UserID is set by Login.
	UserID string
	// Version is nio's version, as the driver reported it.
	Version string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when something arrives
	next    int
	answers map[int]answer
	events  []Event
	stderr  bytes.Buffer
	ended   error // why the driver is gone, once it is
}

type answer struct {
	Result json.RawMessage
	Error  string
	Trace  string
}

type line struct {
	ID       *int            `json:"id"`
	Result   json.RawMessage `json:"result"`
	Error    string          `json:"error"`
	Trace    string          `json:"trace"`
	Event    json.RawMessage `json:"event"`
	RoomID   string          `json:"room_id"`
	NioClass string          `json:"nio_class"`
	Ready    *struct {
		Nio    string `json:"nio"`
		Python string `json:"python"`
	} `json:"ready"`
	Log string `json:"log"`
}

// Start runs a driver for the homeserver at hsURL. It fails the test when
// Python or matrix-nio is missing. The driver ends with the test.
func Start(t testing.TB, hsURL string) *Client {
	t.Helper()
	py := Python()
	if _, err := exec.LookPath(py); err != nil {
		t.Fatalf("niotest: no Python at %s (%v): install Debian's python3 and python3-matrix-nio (make test-deps), or set NIOTEST_PYTHON", py, err)
	}
	if out, err := exec.Command(py, "-c", "import nio").CombinedOutput(); err != nil {
		t.Fatalf("niotest: %s cannot import matrix-nio (%v): install Debian's python3-matrix-nio (make test-deps), or set NIOTEST_PYTHON to a Python that has it\n%s", py, err, out)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "driver.py")
	if err := os.WriteFile(script, driver, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Client{t: t, hsURL: hsURL, changed: make(chan struct{}), answers: map[int]answer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(py, "-u", script)
	c.cmd.Dir = dir
	// nio's own logging and Python's warnings go to stderr, shown when a
	// command fails.
	c.cmd.Stderr = &lockedWriter{c: c}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("niotest: start %s: %v", py, err)
	}
	go c.read(stdout)
	t.Cleanup(c.stop)
	c.waitFor(startTimeout, "the nio driver to start", func() bool { return c.Version != "" })
	t.Logf("niotest: matrix-nio %s", c.Version)
	return c
}

type lockedWriter struct{ c *Client }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	// Bounded: only the end matters when something fails.
	if w.c.stderr.Len() > 1<<20 {
		rest := w.c.stderr.Bytes()[w.c.stderr.Len()-(512<<10):]
		w.c.stderr = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return w.c.stderr.Write(p)
}

func (c *Client) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 128<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			c.note(func() { fmt.Fprintf(&c.stderr, "niotest: unreadable driver output %q\n", sc.Text()) })
			continue
		}
		c.note(func() {
			switch {
			case l.Ready != nil:
				c.Version = l.Ready.Nio + " (Python " + l.Ready.Python + ")"
			case l.ID != nil:
				c.answers[*l.ID] = answer{Result: l.Result, Error: l.Error, Trace: l.Trace}
			case l.Event != nil:
				var e Event
				if json.Unmarshal(l.Event, &e) == nil {
					e.RoomID, e.Raw, e.NioClass = l.RoomID, l.Event, l.NioClass
					c.events = append(c.events, e)
				}
			case l.Log != "":
				fmt.Fprintln(&c.stderr, l.Log)
			}
		})
	}
	err := c.cmd.Wait()
	c.note(func() { c.ended = fmt.Errorf("the nio driver ended: %v", err) })
	close(c.exited)
}

// note changes c's state under its lock and wakes whoever waits.
func (c *Client) note(change func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	change()
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitFor waits until cond (called under c's lock) holds, failing the test
// after timeout or when the driver ended.
func (c *Client) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, ended, changed := cond(), c.ended, c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		if ended != nil {
			c.t.Fatalf("niotest: waiting for %s: %v\n%s", what, ended, c.stderrTail())
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.t.Fatalf("niotest: %s did not happen within %s\n%s", what, timeout, c.stderrTail())
		}
	}
}

func (c *Client) stderrTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stderr.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

func (c *Client) stop() {
	_ = c.stdin.Close() // the driver ends at the end of its input
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// request runs one driver command and returns its answer.
func (c *Client) request(op string, args map[string]any) answer {
	c.t.Helper()
	c.mu.Lock()
	c.next++
	n := c.next
	c.mu.Unlock()
	msg := map[string]any{"id": n, "op": op}
	for k, v := range args {
		msg[k] = v
	}
	b, err := json.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("niotest: send %s to the driver: %v\n%s", op, err, c.stderrTail())
	}
	var a answer
	c.waitFor(commandTimeout, "the answer to "+op, func() bool {
		var ok bool
		a, ok = c.answers[n]
		delete(c.answers, n)
		return ok
	})
	return a
}

// call runs one driver command and decodes its result into out (unless
// nil), failing the test on an error.
func (c *Client) call(op string, args map[string]any, out any) {
	c.t.Helper()
	a := c.request(op, args)
	if a.Error != "" {
		c.t.Fatalf("niotest: %s: %s\n%s\n%s", op, a.Error, a.Trace, c.stderrTail())
	}
	if out != nil {
		if err := json.Unmarshal(a.Result, out); err != nil {
			c.t.Fatalf("niotest: %s: decode %s: %v", op, a.Result, err)
		}
	}
}

func (c *Client) eventID(op string, args map[string]any) string {
	c.t.Helper()
	var r struct {
		EventID string `json:"event_id"`
	}
	c.call(op, args, &r)
	return r.EventID
}

// Login logs in with a password (m.login.password, through nio's login)
// and starts syncing: every event of the user's rooms from then on is seen.
// user is a localpart or a full user ID.
func (c *Client) Login(user, password string) {
	c.t.Helper()
	var r struct {
		UserID string `json:"user_id"`
	}
	c.call("login", map[string]any{"homeserver": c.hsURL, "user": user, "password": password}, &r)
	c.UserID = r.UserID
}

// Join joins a room by ID or alias.
func (c *Client) Join(room string) {
	c.t.Helper()
	c.call("join", map[string]any{"room": room}, nil)
}

// Say sends a plain m.text message and returns its event ID.
func (c *Client) Say(room, body string) string {
	c.t.Helper()
	return c.eventID("text", map[string]any{"room": room, "body": body})
}

// SayHTML sends an m.text message with an HTML formatted_body.
func (c *Client) SayHTML(room, body, html string) string {
	c.t.Helper()
	return c.eventID("text", map[string]any{"room": room, "body": body, "html": html})
}

// Emote sends an m.emote.
func (c *Client) Emote(room, body string) string {
	c.t.Helper()
	return c.eventID("text", map[string]any{"room": room, "body": body, "msgtype": "m.emote"})
}

// Edit replaces target's text as Element does (m.replace, the new text in
// m.new_content, "* text" as the fallback body); html, if not empty, is
// the new formatted_body.
func (c *Client) Edit(room, target, body, html string) string {
	c.t.Helper()
	return c.eventID("edit", map[string]any{"room": room, "target": target, "body": body, "html": html})
}

// EditEmote replaces an emote's text; the edit keeps msgtype m.emote, as
// Element's does.
func (c *Client) EditEmote(room, target, body string) string {
	c.t.Helper()
	return c.eventID("edit", map[string]any{"room": room, "target": target, "body": body, "msgtype": "m.emote"})
}

// React annotates target with key (an emoji, as clients send it).
func (c *Client) React(room, target, key string) string {
	c.t.Helper()
	return c.eventID("react", map[string]any{"room": room, "target": target, "key": key})
}

// Reply answers target with a rich reply carrying the quote fallback:
// in the body always, and in an <mx-reply> leading formatted_body when
// htmlFallback (the plain form, body only, is what text-only clients send).
func (c *Client) Reply(room, target, body string, htmlFallback bool) string {
	c.t.Helper()
	return c.eventID("reply", map[string]any{"room": room, "target": target, "body": body, "html_fallback": htmlFallback})
}

// ReplyInThread quotes target inside the thread of root (Element's
// "Quote" in a thread: an m.thread relation with a real m.in_reply_to),
// with the HTML and body fallback.
func (c *Client) ReplyInThread(room, root, target, body string) string {
	c.t.Helper()
	return c.eventID("reply", map[string]any{"room": room, "target": target, "body": body, "html_fallback": true, "thread_root": root})
}

// Thread sends body in the thread of root as Element does; latest is the
// thread's latest event, which the fallback reply points at (root if
// empty).
func (c *Client) Thread(room, root, latest, body string) string {
	c.t.Helper()
	return c.eventID("thread", map[string]any{"room": room, "root": root, "latest": latest, "body": body})
}

// Redact redacts target through nio's room_redact.
func (c *Client) Redact(room, target, reason string) string {
	c.t.Helper()
	return c.eventID("redact", map[string]any{"room": room, "target": target, "reason": reason})
}

// SendFile uploads data with nio's upload and sends it as an m.image
// (image MIME types) or m.file; it returns the event ID and the mxc URI.
func (c *Client) SendFile(room, name, mimeType string, data []byte) (eventID, mxc string) {
	c.t.Helper()
	return c.SendCaptionedFile(room, name, mimeType, "", data)
}

// SendCaptionedFile is SendFile with a caption: the body, with the file's
// name in filename, as Matrix 1.10 has it.
func (c *Client) SendCaptionedFile(room, name, mimeType, caption string, data []byte) (eventID, mxc string) {
	c.t.Helper()
	var r struct {
		EventID string `json:"event_id"`
		URL     string `json:"url"`
	}
	c.call("file", map[string]any{
		"room": room, "name": name, "mimetype": mimeType, "caption": caption, "data": base64.StdEncoding.EncodeToString(data),
	}, &r)
	return r.EventID, r.URL
}

// Download fetches an mxc:// URI with nio's download, or, where the
// homeserver refuses that for want of authentication (nio 0.20 predates
// authenticated media), from the authenticated media endpoint through
// nio's HTTP session. via says which, and why.
func (c *Client) Download(mxc string) (data []byte, via string, err error) {
	c.t.Helper()
	a := c.request("download", map[string]any{"mxc": mxc})
	if a.Error != "" {
		return nil, "", fmt.Errorf("nio download: %s", a.Error)
	}
	var r struct {
		Data string `json:"data"`
		Via  string `json:"via"`
	}
	if err := json.Unmarshal(a.Result, &r); err != nil {
		return nil, "", err
	}
	data, err = base64.StdEncoding.DecodeString(r.Data)
	return data, r.Via, err
}

// Events are the events seen so far, in the order the syncs brought them.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// WaitEvent waits for an event in room that matches and returns the first
// one.
func (c *Client) WaitEvent(room, what string, match func(Event) bool) Event {
	c.t.Helper()
	var found Event
	c.waitFor(WaitTimeout, fmt.Sprintf("%s to see %s", c.UserID, what), func() bool {
		for _, e := range c.events {
			if e.RoomID == room && match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// Seen are the events seen so far in room that match.
func (c *Client) Seen(room string, match func(Event) bool) []Event {
	var out []Event
	for _, e := range c.Events() {
		if e.RoomID == room && match(e) {
			out = append(out, e)
		}
	}
	return out
}

// BodyIs matches m.room.message events with this body.
func BodyIs(body string) func(Event) bool {
	return func(e Event) bool { return e.Type == "m.room.message" && e.Message().Body == body }
}

// String shows an event for failure messages.
func (e Event) String() string {
	return strings.TrimSpace(string(e.Raw))
}
