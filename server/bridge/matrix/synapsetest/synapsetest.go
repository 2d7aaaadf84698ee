// Package synapsetest starts a real Matrix homeserver, Synapse, for the
// Matrix bridge's tests, beside dendritetest's Dendrite. Synapse is Debian's
// matrix-synapse from sid (bookworm and its backports have none), installed
// in a sid chroot by build/testdeps/30-synapse.sh (make test-deps); the tests
// run it from there as root.
//
// Each Server runs in its own t.TempDir() on SQLite, on its own loopback
// port, with its own signing key, so tests may run in parallel. The
// directory is bind-mounted at /srv inside the chroot in a mount namespace
// of Synapse's own, so nothing stays mounted after it exits. Synapse keeps
// its real defaults (rate limits included) except what the tests need: a
// known registration shared secret, no federation listener and no key
// servers (nothing leaves the machine), no usage statistics.
package synapsetest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
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
	// MinVersion is the oldest Synapse the suite was run against; keep in
	// step with SYNAPSE_MIN_VERSION in build/testdeps/30-synapse.sh.
	MinVersion = "1.160.0"

	// ChrootEnv names an environment variable that, when set, is the
	// chroot holding matrix-synapse instead of DefaultChroot.
	ChrootEnv = "SYNAPSE_CHROOT"
	// DefaultChroot is where build/testdeps/30-synapse.sh builds it.
	DefaultChroot = "/var/cache/mattermost-bridge-tests/sid-synapse"

	// mountPoint is where the server's directory appears in the chroot.
	mountPoint = "/srv"

	// startTimeout bounds how long Synapse may take to answer
	// /_matrix/client/versions (its first start creates the database).
	startTimeout = 2 * time.Minute
	// stopTimeout bounds how long Synapse may take to exit after SIGTERM
	// before it is killed.
	stopTimeout = 20 * time.Second
	// startAttempts is how many ports Start tries when another process takes
	// the chosen port before Synapse binds it.
	startAttempts = 3
)

// Namespace, AppService and Options are those every test homeserver takes.
type (
	Namespace  = homeservertest.Namespace
	AppService = homeservertest.AppService
	Options    = homeservertest.Options
)

var _ homeservertest.Server = (*Server)(nil)

// Server is a running (or stopped) Synapse.
type Server struct {
	// Client has URL, the client-server (and application-service-facing)
	// API, "http://127.0.0.1:<port>", and SharedSecret, the registration
	// shared secret; and RegisterUser, Do and Request.
	homeservertest.Client
	// ServerName is the homeserver's name, such as "localhost".
	ServerName string
	// AppService is Options.AppService with defaults filled in, or nil.
	AppService *AppService
	// Version is the Synapse version in the chroot (Debian's, such as
	// "1.160.0-1").
	Version string

	// Dir holds the configuration, the key, the database, the media and
	// the log; Synapse sees it as /srv.
	Dir string
	// ConfigFile is homeserver.yaml.
	ConfigFile string
	// LogFile is Synapse's standard output and error.
	LogFile string

	opts   Options
	chroot string
	port   int

	servertest.Slot
}

var errPortInUse = homeservertest.ErrPortInUse

// Start writes a signing key and a configuration in t.TempDir(), starts
// Synapse from the chroot and waits until /_matrix/client/versions answers.
// It fails the test if the chroot or Synapse in it is missing (run `make
// test-deps` as root), if the test does not run as root (chroot needs it)
// or if Synapse does not come up. t.Cleanup stops it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	chroot, version, err := Find()
	if err != nil {
		t.Fatalf("synapsetest: %v", err)
	}
	opts = opts.WithDefaults()
	dir := t.TempDir()
	// Synapse runs as root in the chroot, but the directory may be made
	// by anyone; it must be able to write there.
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatalf("synapsetest: %v", err)
	}
	s := &Server{
		Client:     homeservertest.Client{SharedSecret: opts.SharedSecret, Name: "synapsetest"},
		ServerName: opts.ServerName,
		AppService: opts.AppService,
		Version:    version,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "homeserver.yaml"),
		LogFile:    filepath.Join(dir, "synapse.log"),
		opts:       opts,
		chroot:     chroot,
		Slot:       servertest.Slot{Name: "synapse", StopTimeout: stopTimeout},
	}
	if err := s.writeKey(); err != nil {
		t.Fatalf("synapsetest: signing key: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("synapsetest: last lines of %s:\n%s", s.LogFile, s.LogTail(40))
		}
		if err := s.Stop(); err != nil {
			t.Logf("synapsetest: %v", err)
		}
	})
	for attempt := 1; ; attempt++ {
		if err := s.choosePort(); err != nil {
			t.Fatalf("synapsetest: %v", err)
		}
		if err := s.writeConfig(); err != nil {
			t.Fatalf("synapsetest: %v", err)
		}
		err := s.launch()
		if err == nil {
			break
		}
		if errors.Is(err, errPortInUse) && attempt < startAttempts {
			t.Logf("synapsetest: %v; trying another port", err)
			continue
		}
		t.Fatalf("synapsetest: %v", err)
	}
	return s
}

// Find returns the chroot holding Synapse and the version there, or an
// error saying how to get it.
func Find() (chroot, version string, err error) {
	chroot = os.Getenv(ChrootEnv)
	if chroot == "" {
		chroot = DefaultChroot
	}
	const howTo = "run `make test-deps` (build/testdeps/30-synapse.sh) as root to build it"
	status, err := os.ReadFile(filepath.Join(chroot, "var", "lib", "dpkg", "status"))
	if err != nil {
		return "", "", fmt.Errorf("no Debian sid chroot for Synapse at %s (%s): %v; %s", chroot, ChrootEnv, err, howTo)
	}
	version = installedVersion(string(status), "matrix-synapse")
	if version == "" {
		return "", "", fmt.Errorf("matrix-synapse is not installed in the chroot at %s; %s", chroot, howTo)
	}
	if compareVersions(version, MinVersion) < 0 {
		return "", "", fmt.Errorf("the chroot at %s has Synapse %s, older than %s; %s", chroot, version, MinVersion, howTo)
	}
	if os.Geteuid() != 0 {
		return "", "", errors.New("Synapse runs in a chroot, which needs root: run the tests as root") //nolint:staticcheck // Synapse is a name
	}
	return chroot, version, nil
}

// installedVersion reads a package's version from a dpkg status file, if it
// is installed.
func installedVersion(status, pkg string) string {
	for _, stanza := range strings.Split(status, "\n\n") {
		var name, state, version string
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			switch k {
			case "Package":
				name = v
			case "Status":
				state = v
			case "Version":
				version = v
			}
		}
		if name == pkg && state == "install ok installed" {
			return version
		}
	}
	return ""
}

// compareVersions compares the dotted numbers of two upstream versions,
// ignoring an epoch and a Debian revision ("1:1.160.0-1" is 1.160.0).
func compareVersions(a, b string) int {
	parts := func(v string) []int {
		if _, after, ok := strings.Cut(v, ":"); ok {
			v = after
		}
		v, _, _ = strings.Cut(v, "-")
		v, _, _ = strings.Cut(v, "~")
		var out []int
		for _, p := range strings.Split(v, ".") {
			n, _ := strconv.Atoi(strings.TrimRightFunc(p, func(r rune) bool { return r < '0' || r > '9' }))
			out = append(out, n)
		}
		return out
	}
	x, y := parts(a), parts(b)
	for i := 0; i < max(len(x), len(y)); i++ {
		var p, q int
		if i < len(x) {
			p = x[i]
		}
		if i < len(y) {
			q = y[i]
		}
		if p != q {
			if p < q {
				return -1
			}
			return 1
		}
	}
	return 0
}

// writeKey writes an Ed25519 signing key in Synapse's format
// ("ed25519 <key ID> <unpadded base64 of the seed>"), as
// `synapse_generate_signing_key` would, without starting Python for it.
func (s *Server) writeKey() error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	line := "ed25519 a_test " + base64.RawStdEncoding.EncodeToString(priv.Seed()) + "\n"
	return os.WriteFile(filepath.Join(s.Dir, "signing.key"), []byte(line), 0o600)
}

func (s *Server) writeConfig() error {
	data := configData{
		ServerName:   s.ServerName,
		Port:         s.port,
		Dir:          mountPoint,
		SharedSecret: s.SharedSecret,
		LogLevel:     strings.ToUpper(s.opts.LogLevel),
	}
	if as := s.AppService; as != nil {
		data.AppServiceFile = mountPoint + "/appservice.yaml"
		if err := writeTemplate(filepath.Join(s.Dir, "appservice.yaml"), appServiceTemplate, struct {
			*AppService
			Namespaces map[string][]Namespace
		}{as, as.Namespaces()}); err != nil {
			return fmt.Errorf("application service registration: %w", err)
		}
	}
	if err := writeTemplate(filepath.Join(s.Dir, "log.yaml"), logTemplate, data); err != nil {
		return fmt.Errorf("log config: %w", err)
	}
	return writeTemplate(s.ConfigFile, configTemplate, data)
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

// launch starts Synapse and waits until it serves; on failure Synapse is
// killed. unshare gives it a mount namespace of its own, where Dir is
// bind-mounted at /srv in the chroot; the namespace, and the mount, end
// with Synapse. unshare, sh and chroot each exec the next, so the process
// the test holds is Synapse itself: signals and the kill on the test's
// death reach it.
func (s *Server) launch() error {
	logStart := servertest.FileSize(s.LogFile)
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--",
		"/bin/sh", "-euc", `mount --bind "$1" "$2$3"; exec chroot "$2" python3 -m synapse.app.homeserver --config-path "$3/homeserver.yaml"`,
		"sh", s.Dir, s.chroot, mountPoint)
	cmd.Dir = s.Dir
	// Python writes its bytecode cache in the chroot otherwise.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8")
	launch := homeservertest.Launch{Name: "synapse", BaseURL: s.URL, Timeout: startTimeout, Log: func() string { return s.logSince(logStart) }, PortInUse: "Address already in use"}
	return s.Start(cmd, logf, launch.WaitUp)
}

func (s *Server) logSince(offset int64) string {
	return servertest.ReadFrom(s.LogFile, offset)
}

// LogTail returns the last n lines of Synapse's log.
func (s *Server) LogTail(n int) string {
	return servertest.LastLines(s.logSince(0), n)
}

// BaseURL is URL.
func (s *Server) BaseURL() string { return s.URL }

// Restart stops Synapse if it runs and starts it again with the same
// configuration, key, data and port, waiting until it serves. Accounts,
// access tokens, rooms and events persist.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Logf("synapsetest: %v", err)
	}
	if err := s.launch(); err != nil {
		t.Fatalf("synapsetest: restart: %v", err)
	}
}
