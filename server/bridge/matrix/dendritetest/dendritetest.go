// Package dendritetest starts a real Matrix homeserver, Dendrite v0.15.2,
// for the Matrix bridge's tests. The binaries come from "make dendrite",
// which builds them from the pinned module in build/tools/dendrite into
// <repo>/bin.
//
// Each Server runs in its own t.TempDir() with SQLite databases, an
// embedded NATS JetStream, its own loopback port and its own signing key, so
// tests may run in parallel. It is for tests only: federation is off, the
// registration shared secret is known, rate limiting is off and it listens
// only on 127.0.0.1.
package dendritetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/homeservertest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/internal/servertest"
)

const (
	// Version is the Dendrite version build/tools/dendrite pins; Start
	// refuses another.
	Version = "0.15.2"

	// startTimeout bounds how long Dendrite may take to answer
	// /_matrix/client/versions.
	startTimeout = 60 * time.Second
	// stopTimeout bounds how long Dendrite may take to exit after SIGTERM
	// before it is killed.
	stopTimeout = 15 * time.Second
	// startAttempts is how many ports Start tries when another process takes
	// the chosen port before Dendrite binds it.
	startAttempts = 3
)

// BinaryEnv names an environment variable that, when set, is the dendrite
// binary to run instead of <repo>/bin/dendrite; generate-keys is looked for
// next to it.
const BinaryEnv = "DENDRITE_BIN"

// Namespace, AppService and Options are those every test homeserver takes.
type (
	Namespace  = homeservertest.Namespace
	AppService = homeservertest.AppService
	Options    = homeservertest.Options
)

var _ homeservertest.Server = (*Server)(nil)

// Server is a running (or stopped) Dendrite.
type Server struct {
	// Client has URL, the client-server (and application-service-facing)
	// API, "http://127.0.0.1:<port>", and SharedSecret, the registration
	// shared secret; and RegisterUser, Do and Request.
	homeservertest.Client
	// ServerName is the homeserver's name, such as "localhost".
	ServerName string
	// AppService is Options.AppService with defaults filled in, or nil.
	AppService *AppService

	// Dir holds the configuration, the key, the databases and the log.
	Dir string
	// ConfigFile is dendrite.yaml.
	ConfigFile string
	// LogFile is Dendrite's standard output and error.
	LogFile string

	opts     Options
	dendrite string
	port     int

	servertest.Slot
}

var errPortInUse = homeservertest.ErrPortInUse

// Start writes a signing key and a configuration in t.TempDir(), starts
// Dendrite and waits until /_matrix/client/versions answers. It fails the
// test if the binaries are missing (run "make dendrite") or Dendrite does not
// come up. t.Cleanup stops it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	dendrite, err := binary()
	if err != nil {
		t.Fatalf("dendritetest: %v", err)
	}
	opts = opts.WithDefaults()
	dir := t.TempDir()
	s := &Server{
		Client:     homeservertest.Client{SharedSecret: opts.SharedSecret, Name: "dendritetest"},
		ServerName: opts.ServerName,
		AppService: opts.AppService,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "dendrite.yaml"),
		LogFile:    filepath.Join(dir, "dendrite.log"),
		opts:       opts,
		dendrite:   dendrite,
		Slot:       servertest.Slot{Name: "dendrite", StopTimeout: stopTimeout},
	}
	if err := s.writeKey(); err != nil {
		t.Fatalf("dendritetest: signing key: %v", err)
	}
	if err := s.writeConfig(); err != nil {
		t.Fatalf("dendritetest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dendritetest: last lines of %s:\n%s", s.LogFile, s.LogTail(40))
		}
		if err := s.Stop(); err != nil {
			t.Logf("dendritetest: %v", err)
		}
	})

	for attempt := 1; ; attempt++ {
		if err := s.choosePort(); err != nil {
			t.Fatalf("dendritetest: %v", err)
		}
		err := s.launch()
		if err == nil {
			break
		}
		if errors.Is(err, errPortInUse) && attempt < startAttempts {
			t.Logf("dendritetest: %v; trying another port", err)
			continue
		}
		t.Fatalf("dendritetest: %v", err)
	}
	return s
}

// binary finds the dendrite binary and checks its version.
func binary() (string, error) {
	path := os.Getenv(BinaryEnv)
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		path = filepath.Join(root, "bin", "dendrite")
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("the Dendrite homeserver was not found (%v): run `make dendrite` in the repository root to build bin/dendrite", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-version").Output()
	if err != nil {
		return "", fmt.Errorf("%s -version: %v: run `make dendrite` to rebuild it", path, err)
	}
	if v := strings.TrimSpace(string(out)); v != Version {
		return "", fmt.Errorf("%s is Dendrite %q, want %q: run `make dendrite` to rebuild it", path, v, Version)
	}
	return path, nil
}

// repoRoot walks up from the working directory (the package directory under
// go test) to the directory holding build/tools/dendrite/go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "build", "tools", "dendrite", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no build/tools/dendrite/go.mod above %s: cannot find the repository's bin/dendrite; set %s or run the tests inside the repository", wd, BinaryEnv)
		}
		dir = parent
	}
}

// writeKey runs generate-keys, from beside the dendrite binary, for the
// Ed25519 signing key.
func (s *Server) writeKey() error {
	gen := filepath.Join(filepath.Dir(s.dendrite), "generate-keys")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gen, "-private-key", filepath.Join(s.Dir, "matrix_key.pem"))
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s(run `make dendrite` to build it)", gen, err, out)
	}
	return nil
}

func (s *Server) writeConfig() error {
	data := configData{
		ServerName:   s.ServerName,
		Dir:          s.Dir,
		PrivateKey:   filepath.Join(s.Dir, "matrix_key.pem"),
		JetStreamDir: filepath.Join(s.Dir, "jetstream"),
		MediaDir:     filepath.Join(s.Dir, "media"),
		SharedSecret: s.SharedSecret,
		LogLevel:     s.opts.LogLevel,
	}
	if as := s.AppService; as != nil {
		data.AppServiceFile = filepath.Join(s.Dir, "appservice.yaml")
		var b bytes.Buffer
		err := appServiceTemplate.Execute(&b, struct {
			*AppService
			Namespaces map[string][]Namespace
		}{as, as.Namespaces()})
		if err != nil {
			return fmt.Errorf("application service registration: %w", err)
		}
		if err := os.WriteFile(data.AppServiceFile, b.Bytes(), 0o600); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, data); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return os.WriteFile(s.ConfigFile, b.Bytes(), 0o600)
}

// Config returns the configuration file's text.
func (s *Server) Config() string {
	b, err := os.ReadFile(s.ConfigFile)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// choosePort finds a free loopback port.
func (s *Server) choosePort() error {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("find a free port: %w", err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.URL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	return nil
}

// launch starts Dendrite and waits until it serves; on failure Dendrite is
// killed.
func (s *Server) launch() error {
	logStart := servertest.FileSize(s.LogFile)
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	// The HTTPS listener only starts with -tls-cert and -tls-key, so
	// -https-bind-address is moot; give it the same loopback address anyway
	// so nothing could listen on all interfaces.
	cmd := exec.Command(s.dendrite,
		"-config", s.ConfigFile,
		"-http-bind-address", addr,
		"-https-bind-address", addr,
	)
	cmd.Dir = s.Dir
	launch := homeservertest.Launch{Name: "dendrite", BaseURL: s.URL, Timeout: startTimeout, Log: func() string { return s.logSince(logStart) }, PortInUse: "address already in use"}
	return s.Start(cmd, logf, launch.WaitUp)
}

func (s *Server) logSince(offset int64) string {
	return servertest.ReadFrom(s.LogFile, offset)
}

// LogTail returns the last n lines of Dendrite's log.
func (s *Server) LogTail(n int) string {
	return servertest.LastLines(s.logSince(0), n)
}

// BaseURL is URL.
func (s *Server) BaseURL() string { return s.URL }

// Restart stops Dendrite if it runs and starts it again with the same
// configuration, key, data and port, waiting until it serves. Accounts,
// access tokens, rooms and events persist.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Logf("dendritetest: %v", err)
	}
	if err := s.launch(); err != nil {
		t.Fatalf("dendritetest: restart: %v", err)
	}
}
