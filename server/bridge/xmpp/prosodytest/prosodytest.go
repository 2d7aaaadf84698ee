// Package prosodytest starts a real Prosody XMPP server (Prosody 13, Debian's
// package from bookworm-backports; build/testdeps installs it) for the XMPP
// bridge's tests. Its clients (Client, from xmpptest) stand in as other room
// occupants.
//
// Each Server runs in its own t.TempDir() with its own loopback ports, its
// own throwaway certificate authority and its own data, so tests may run in
// parallel. It is for tests only: the configuration allows in-band
// registration and is reachable only on 127.0.0.1.
package prosodytest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

const (
	// startTimeout bounds how long Prosody may take to accept connections.
	startTimeout = 20 * time.Second
	// stopTimeout bounds how long Prosody may take to exit after SIGTERM
	// before it is killed.
	stopTimeout = 10 * time.Second
	// startAttempts is how many sets of ports Start tries when another
	// process takes a port between choosing it and Prosody binding it.
	startAttempts = 3

	// DefaultUploadSizeLimit is the HTTP upload size limit when
	// Options.UploadSizeLimit is 0 (Prosody's own default).
	DefaultUploadSizeLimit = 10 << 20
	// DefaultStanzaSizeLimit is Prosody's c2s_stanza_size_limit, used
	// when Options.StanzaSizeLimit is 0: a client that sends a bigger stanza
	// gets a <policy-violation/> stream error (with a <stanza-too-big
	// xmlns='urn:xmpp:errors'/> child) and is disconnected. Prosody checks
	// after each 4 KiB read, so a stanza only slightly over the limit can
	// get through when its last read completes it; send limit + 64 KiB to
	// be sure. (The component port's default is twice that, 512 KiB.)
	DefaultStanzaSizeLimit = 256 << 10
	// MinStanzaSizeLimit is the smallest limit Prosody accepts; it raises
	// smaller settings to this.
	MinStanzaSizeLimit = 10000
)

// Options configure a Server. The zero value is a sensible default.
type Options struct {
	// Domain is the virtual host; "localhost" if empty. The MUC, upload and
	// component services are "conference.", "upload." and "bridge." under it.
	Domain string
	// ComponentSecret is the XEP-0114 secret of the component Server.ComponentDomain;
	// a random one if empty.
	ComponentSecret string
	// UploadSizeLimit is the largest file XEP-0363 upload accepts, in bytes;
	// DefaultUploadSizeLimit if 0.
	UploadSizeLimit int64
	// StanzaSizeLimit sets c2s_stanza_size_limit and
	// component_stanza_size_limit, in bytes; 0 keeps Prosody's defaults
	// (DefaultStanzaSizeLimit for clients, 512 KiB for components).
	StanzaSizeLimit int
	// UntrustedCert makes Prosody present a certificate from a second
	// authority that is not exposed: clients trusting Server.CACertPEM must
	// refuse it.
	UntrustedCert bool
	// AllowUnencrypted turns c2s_require_encryption off (and allows PLAIN
	// without TLS) so a client may log in over a plain loopback stream.
	// STARTTLS is still offered.
	AllowUnencrypted bool
	// NoRegistration turns in-band registration (XEP-0077) off.
	NoRegistration bool
	// NoComponentUploads leaves the component out of
	// http_file_share_access. Prosody 13 lets only the host's own users
	// upload; an admin adds a bridge component there (as the README says),
	// and so does this server unless this is set.
	NoComponentUploads bool
	// NoRoomArchive leaves muc_mam out: rooms keep no archive.
	NoRoomArchive bool
	// PasswordHash is Prosody's password_hash: "SHA-1" (the default, offers
	// SCRAM-SHA-1) or "SHA-256" (offers SCRAM-SHA-256 instead). Prosody
	// stores one hash per account, so it offers only one SCRAM family; PLAIN
	// is always offered over TLS. Prosody 13 offers the -PLUS variants too,
	// and names its channel-binding types (XEP-0440): tls-exporter on TLS
	// 1.3, tls-unique on TLS 1.2.
	PasswordHash string
	// Debug logs at debug level (every stanza) instead of info.
	Debug bool
	// ExtraConfig is Lua appended to the global section of the config.
	ExtraConfig string
}

// Server is a running (or stopped) Prosody.
type Server struct {
	// Endpoints are the names, ports and credentials (Domain, MUCDomain,
	// UploadDomain, ComponentDomain, ComponentSecret, HTTPURL, CACertPEM;
	// C2SAddr() and the other addresses). Upload slots are HTTPURL +
	// "/file_share/<id>/<name>". Clients trust CACertPEM, which did not sign
	// the server's certificate when Options.UntrustedCert is set.
	xmpptest.Endpoints

	// Dir holds the config file, the data directory, the log and the pid file.
	Dir string
	// ConfigFile is the prosody.cfg.lua path, for prosody and prosodyctl --config.
	ConfigFile string
	// LogFile is Prosody's log.
	LogFile string

	opts        Options
	prosody     string
	prosodyctl  string
	consoleFile string

	version string // "13.0.1", from prosodyctl about on first use

	servertest.Slot
	mu       sync.Mutex
	observer string // password of the account RoomExists uses, once created
}

var errPortInUse = errors.New("a port was taken by another process")

// Start writes a configuration in t.TempDir(), starts Prosody and waits
// until it accepts connections. It fails the test if Prosody is not
// installed or does not come up. t.Cleanup stops it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	prosody, err := exec.LookPath("prosody")
	if err != nil {
		t.Fatalf("prosodytest: the prosody binary was not found (%v): install Prosody, e.g. `apt-get install prosody`", err)
	}
	prosodyctl, err := exec.LookPath("prosodyctl")
	if err != nil {
		t.Fatalf("prosodytest: prosodyctl was not found (%v): install Prosody, e.g. `apt-get install prosody`", err)
	}

	if opts.Domain == "" {
		opts.Domain = "localhost"
	}
	if opts.ComponentSecret == "" {
		opts.ComponentSecret = servertest.RandomString()
	}
	if opts.UploadSizeLimit == 0 {
		opts.UploadSizeLimit = DefaultUploadSizeLimit
	}
	if opts.PasswordHash == "" {
		opts.PasswordHash = "SHA-1"
	}
	dir := t.TempDir()
	s := &Server{
		Endpoints: xmpptest.Endpoints{
			Domain:          opts.Domain,
			MUCDomain:       "conference." + opts.Domain,
			UploadDomain:    "upload." + opts.Domain,
			ComponentDomain: "bridge." + opts.Domain,
			ComponentSecret: opts.ComponentSecret,
		},
		Slot:        servertest.Slot{Name: "prosody", StopTimeout: stopTimeout},
		Dir:         dir,
		ConfigFile:  filepath.Join(dir, "prosody.cfg.lua"),
		LogFile:     filepath.Join(dir, "prosody.log"),
		opts:        opts,
		prosody:     prosody,
		prosodyctl:  prosodyctl,
		consoleFile: filepath.Join(dir, "console.log"),
	}
	if err := s.writeCertificates(); err != nil {
		t.Fatalf("prosodytest: certificates: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o750); err != nil {
		t.Fatalf("prosodytest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prosodytest: last lines of %s:\n%s", s.LogFile, s.LogTail(40))
		}
		if err := s.Stop(); err != nil {
			t.Logf("prosodytest: %v", err)
		}
	})

	for attempt := 1; ; attempt++ {
		if err := s.ChoosePorts(); err != nil {
			t.Fatalf("prosodytest: %v", err)
		}
		if err := s.writeConfig(); err != nil {
			t.Fatalf("prosodytest: %v", err)
		}
		err := s.launch()
		if err == nil {
			break
		}
		if errors.Is(err, errPortInUse) && attempt < startAttempts {
			t.Logf("prosodytest: %v; trying other ports", err)
			continue
		}
		t.Fatalf("prosodytest: %v", err)
	}
	return s
}

func (s *Server) writeCertificates() error {
	ca, err := xmpptest.NewAuthority("prosodytest CA")
	if err != nil {
		return err
	}
	s.CACertPEM = string(ca.PEM)
	signer := ca
	if s.opts.UntrustedCert {
		if signer, err = xmpptest.NewAuthority("prosodytest untrusted CA"); err != nil {
			return err
		}
	}
	certPEM, keyPEM, err := signer.Issue(s.ServerNames(), []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return err
	}
	certs := filepath.Join(s.Dir, "certs")
	if err := os.Mkdir(certs, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "ca.crt"), ca.PEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(certs, "server.crt"), certPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(certs, "server.key"), keyPEM, 0o600)
}

func (s *Server) writeConfig() error {
	level := "info"
	if s.opts.Debug {
		level = "debug"
	}
	data := configData{
		Dir:               s.Dir,
		DataDir:           filepath.Join(s.Dir, "data"),
		PIDFile:           filepath.Join(s.Dir, "prosody.pid"),
		AdminSocket:       filepath.Join(s.Dir, "prosody.sock"),
		LogFile:           s.LogFile,
		LogLevel:          level,
		CertDir:           filepath.Join(s.Dir, "certs"),
		CertFile:          filepath.Join(s.Dir, "certs", "server.crt"),
		KeyFile:           filepath.Join(s.Dir, "certs", "server.key"),
		Domain:            s.Domain,
		MUCDomain:         s.MUCDomain,
		UploadDomain:      s.UploadDomain,
		ComponentDomain:   s.ComponentDomain,
		ComponentSecret:   s.ComponentSecret,
		C2SPort:           s.C2SPort,
		DirectTLSPort:     s.DirectTLSPort,
		ComponentPort:     s.ComponentPort,
		ComponentTLSPort:  s.ComponentTLSPort,
		HTTPPort:          s.HTTPPort,
		HTTPURL:           s.HTTPURL + "/",
		RequireEncryption: !s.opts.AllowUnencrypted,
		AllowRegistration: !s.opts.NoRegistration,
		PasswordHash:      s.opts.PasswordHash,
		StanzaSizeLimit:   s.opts.StanzaSizeLimit,
		UploadSizeLimit:   s.opts.UploadSizeLimit,
		UploadDailyQuota:  s.opts.UploadSizeLimit * 1000,
		UploadComponent:   !s.opts.NoComponentUploads,
		RoomArchive:       !s.opts.NoRoomArchive,
		Extra:             s.opts.ExtraConfig,
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

// launch starts Prosody and waits until it serves; on failure Prosody is
// killed.
func (s *Server) launch() error {
	logStart := servertest.FileSize(s.LogFile)
	console, err := os.OpenFile(s.consoleFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// -F: stay in the foreground (Prosody deprecates the daemonize
	// option in favour of -D/-F).
	cmd := exec.Command(s.prosody, "--config", s.ConfigFile, "-F")
	cmd.Dir = s.Dir
	return s.Start(cmd, console, func(p *servertest.Process) error { return s.waitUp(p, logStart) })
}

// waitUp polls until every port serves, Prosody exits, logs an error, or
// startTimeout passes.
func (s *Server) waitUp(p *servertest.Process, logStart int64) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.Done():
			return fmt.Errorf("prosody exited while starting (%v)\n%s", p.Err(), s.diagnostics())
		default:
		}
		if err := s.startupErrors(logStart); err != nil {
			return err
		}
		probeErr := s.Probe()
		if probeErr == nil {
			// Errors logged while the ports opened still count.
			return s.startupErrors(logStart)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prosody did not come up within %v: %v\n%s", startTimeout, probeErr, s.diagnostics())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// startupErrors reports error lines Prosody logged since logStart.
func (s *Server) startupErrors(logStart int64) error {
	f, err := os.Open(s.LogFile)
	if err != nil {
		return nil // not written yet
	}
	defer f.Close()
	if _, err := f.Seek(logStart, io.SeekStart); err != nil {
		return nil
	}
	var errs []string
	portInUse := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "\terror\t") {
			continue
		}
		errs = append(errs, line)
		if strings.Contains(line, "Failed to open server port") {
			portInUse = true
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msg := fmt.Sprintf("prosody logged errors while starting:\n%s\n%s", strings.Join(errs, "\n"), s.diagnostics())
	if portInUse {
		return fmt.Errorf("%w: %s", errPortInUse, msg)
	}
	return errors.New(msg)
}

func (s *Server) diagnostics() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- last lines of %s:\n%s", s.LogFile, s.LogTail(30))
	if console := servertest.LastLines(servertest.ReadFrom(s.consoleFile, 0), 15); strings.TrimSpace(console) != "" {
		fmt.Fprintf(&b, "--- prosody's output (%s):\n%s", s.consoleFile, console)
	}
	return b.String()
}

// LogTail returns the last n lines of Prosody's log.
func (s *Server) LogTail(n int) string {
	return servertest.LastLines(servertest.ReadFrom(s.LogFile, 0), n)
}

// Restart stops Prosody if it runs and starts it again with the same
// configuration, data and ports, waiting until it serves. Accounts, rooms
// and archives persist.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Logf("prosodytest: %v", err)
	}
	if err := s.launch(); err != nil {
		t.Fatalf("prosodytest: restart: %v", err)
	}
}

// CreateUser creates (or resets the password of) the account
// localpart@Domain with prosodyctl; Prosody need not be running.
func (s *Server) CreateUser(t testing.TB, localpart, password string) jid.JID {
	t.Helper()
	j := s.JID(t, localpart)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.prosodyctl, "--config", s.ConfigFile, "register", localpart, s.Domain, password)
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("prosodytest: prosodyctl register %s %s: %v\n%s", localpart, s.Domain, err, out)
	}
	return j
}

// DeleteUser removes the account localpart@Domain with prosodyctl, as an
// admin would.
func (s *Server) DeleteUser(t testing.TB, localpart string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.prosodyctl, "--config", s.ConfigFile, "deluser", localpart+"@"+s.Domain)
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("prosodytest: prosodyctl deluser %s@%s: %v\n%s", localpart, s.Domain, err, out)
	}
}

// RoomExists asks the MUC service, by disco#info, whether room exists. It
// logs in as a dedicated account created on first use.
func (s *Server) RoomExists(t testing.TB, room jid.JID) bool {
	t.Helper()
	const observer = "prosodytest-observer"
	s.mu.Lock()
	password := s.observer
	s.mu.Unlock()
	if password == "" {
		password = servertest.RandomString()
		s.CreateUser(t, observer, password)
		s.mu.Lock()
		s.observer = password
		s.mu.Unlock()
	}
	c := s.Client(t, observer, password)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exists, err := c.RoomExists(ctx, room)
	if err != nil {
		t.Fatalf("prosodytest: disco#info %s: %v", room, err)
	}
	return exists
}

// Program is "Prosody " and the version prosodyctl reports.
func (s *Server) Program() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.version == "" {
		out, _ := exec.Command(s.prosodyctl, "--config", s.ConfigFile, "about").CombinedOutput()
		s.version = "(unknown version)"
		for line := range strings.Lines(string(out)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Prosody "); ok && v != "" && v[0] >= '0' && v[0] <= '9' {
				s.version = v
				break
			}
		}
	}
	return "Prosody " + s.version
}
