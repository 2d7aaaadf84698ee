package testhost

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// verboseEnv, when "1", streams every collected log line to stderr as it
// arrives and dumps all lines through t.Log when the test ends.
const verboseEnv = "BRIDGE_TEST_VERBOSE"

func verbose() bool { return os.Getenv(verboseEnv) == "1" }

// logCollector keeps every log line of one Server, in arrival order.
type logCollector struct {
	mu      sync.Mutex
	lines   []logLine
	verbose bool
}

type logLine struct {
	node string // "" for server-wide lines
	text string
}

func (c *logCollector) add(node, text string) {
	text = strings.TrimRight(text, "\r\n")
	if text == "" {
		return
	}
	c.mu.Lock()
	c.lines = append(c.lines, logLine{node: node, text: text})
	c.mu.Unlock()
	if c.verbose {
		fmt.Fprintf(os.Stderr, "[testhost %s] %s\n", labelOr(node, "server"), text)
	}
}

func labelOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// snapshot returns the lines of one node ("" and all=true for every line).
func (c *logCollector) snapshot(node string, all bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.lines))
	for _, l := range c.lines {
		if all {
			out = append(out, "["+labelOr(l.node, "server")+"] "+l.text)
		} else if l.node == node {
			out = append(out, l.text)
		}
	}
	return out
}

// lineWriter turns each Write (one formatted log record, as written by an
// mlog writer target) into one collected line.
type lineWriter struct {
	c    *logCollector
	node string
}

func (w lineWriter) Write(p []byte) (int, error) {
	w.c.add(w.node, string(p))
	return len(p), nil
}

// newNodeLogger builds the mlog logger a node's plugin environment logs to:
// the supervisor forwards the plugin process's stdout and stderr to it, and
// the API's Log* methods write to it, like the server's logger.
func newNodeLogger(c *logCollector, node string) (*mlog.Logger, error) {
	logger, err := mlog.NewLogger()
	if err != nil {
		return nil, err
	}
	levels := append([]mlog.Level{mlog.LvlCritical}, mlog.StdAll...)
	if err := mlog.AddWriterTarget(logger, lineWriter{c: c, node: node}, false, levels...); err != nil {
		_ = logger.Shutdown()
		return nil, err
	}
	return logger, nil
}

// Process-wide sink for mlog's global logger, which the plugin package
// itself writes to ("Plugin activated", RPC shutdown warnings). Lines go to
// every live server, since the global logger cannot tell them apart.
var global struct {
	once    sync.Once
	mu      sync.Mutex
	servers map[*logCollector]struct{}
	logger  *mlog.Logger
}

func flushGlobal() {
	global.mu.Lock()
	l := global.logger
	global.mu.Unlock()
	if l != nil {
		_ = l.Flush()
	}
}

type globalWriter struct{}

func (globalWriter) Write(p []byte) (int, error) {
	global.mu.Lock()
	defer global.mu.Unlock()
	for c := range global.servers {
		c.add("", "global: "+string(p))
	}
	return len(p), nil
}

func registerGlobalSink(c *logCollector) {
	global.once.Do(func() {
		global.servers = map[*logCollector]struct{}{}
		logger, err := mlog.NewLogger()
		if err != nil {
			return
		}
		if err := mlog.AddWriterTarget(logger, globalWriter{}, false, mlog.StdAll...); err != nil {
			return
		}
		mlog.InitGlobalLogger(logger)
		global.mu.Lock()
		global.logger = logger
		global.mu.Unlock()
	})
	global.mu.Lock()
	global.servers[c] = struct{}{}
	global.mu.Unlock()
}

func unregisterGlobalSink(c *logCollector) {
	global.mu.Lock()
	delete(global.servers, c)
	global.mu.Unlock()
}

var _ io.Writer = lineWriter{}
