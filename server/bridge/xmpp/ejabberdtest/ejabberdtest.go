// Package ejabberdtest starts a real ejabberd XMPP server (ejabberd 24.12,
// Debian's package from bookworm-backports; build/testdeps installs it and
// keeps its system service off) for the XMPP bridge's tests, the way
// prosodytest starts Prosody. Its clients (Client, from xmpptest) stand in
// as other room occupants.
//
// Each Server runs its own Erlang VM, without Erlang distribution (no epmd,
// no node name to collide), in its own t.TempDir() with its own loopback
// ports, certificate authority, Mnesia spool and log, so tests may run in
// parallel. Accounts are made through ejabberd's HTTP API (mod_http_api),
// which only loopback may use. It is for tests only.
package ejabberdtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/internal/servertest"
)

const (
	// startTimeout bounds how long ejabberd may take to serve; it usually
	// takes two seconds, longer on a busy machine.
	startTimeout = 60 * time.Second
	// stopTimeout bounds how long ejabberd may take to exit after SIGTERM
	// (the VM's init:stop) before it is killed.
	stopTimeout = 20 * time.Second
	// startAttempts is how many sets of ports Start tries when another
	// process takes a port between choosing it and ejabberd binding it.
	startAttempts = 3
	// restartAttempts is how many starts Restart tries on the same ports.
	restartAttempts = 3

	// DefaultStanzaSizeLimit is the max_stanza_size of the client ports in
	// the configuration Debian and upstream ship: a bigger stanza ends the
	// stream with <policy-violation/>.
	DefaultStanzaSizeLimit = 262144
	// DefaultUploadSizeLimit is mod_http_upload's default max_size.
	DefaultUploadSizeLimit = 104857600
	// DefaultRegistrationTimeout is ejabberd's registration_timeout: one
	// in-band registration per address in this time; the next gets
	// <resource-constraint/>.
	DefaultRegistrationTimeout = 600 * time.Second
)

// Options configure a Server. The zero value keeps ejabberd's defaults.
type Options struct {
	// Domain is the virtual host; "localhost" if empty. The MUC, upload and
	// component services are "conference.", "upload." and "bridge." under it.
	Domain string
	// ComponentSecret is the XEP-0114 password of the component
	// ComponentDomain; a random one if empty.
	ComponentSecret string
	// UploadSizeLimit is mod_http_upload's max_size in bytes;
	// DefaultUploadSizeLimit if 0.
	UploadSizeLimit int64
	// StanzaSizeLimit is the client ports' max_stanza_size;
	// DefaultStanzaSizeLimit if 0.
	StanzaSizeLimit int
	// NoRegistration refuses in-band registration (XEP-0077).
	NoRegistration bool
	// RegistrationTimeout replaces ejabberd's registration_timeout
	// (DefaultRegistrationTimeout) when positive; a negative value turns it
	// off ("infinity"). A test that changes it must say why: the default is
	// what admins run.
	RegistrationTimeout time.Duration
	// NoShaper lifts the c2s shaper (3000 B/s with bursts of 20000 bytes
	// by default) from clients: a test whose client sends hundreds of
	// kilobytes at once would wait minutes for it.
	NoShaper bool
	// NoComponentUploads leaves the component out of mod_http_upload's
	// access. ejabberd lets only local users upload by default; an admin
	// adds a bridge component (as the README says), and so does this
	// server unless this is set.
	NoComponentUploads bool
	// NoRoomArchive turns mam off in the rooms' default options: rooms
	// keep no archive.
	NoRoomArchive bool
	// Debug logs at debug level (every stanza) instead of info.
	Debug bool
	// ExtraConfig is YAML appended at the top level of the configuration.
	ExtraConfig string
}

// Server is a running (or stopped) ejabberd.
type Server struct {
	// Endpoints are the names, ports and credentials. Upload slots are on
	// HTTPURL + "/upload/...".
	xmpptest.Endpoints

	// Dir holds the configuration, the spool, the logs and uploads.
	Dir string
	// ConfigFile is the ejabberd.yml path.
	ConfigFile string
	// LogFile is ejabberd's log.
	LogFile string

	opts        Options
	erl, libs   string
	version     string
	consoleFile string
	spool       string

	servertest.Slot
}

// installation is where Debian's ejabberd lives: the Erlang VM, the
// library folder holding ejabberd's applications, and ejabberd's version.
func installation() (erl, libs, version string, err error) {
	// ejabberdctl knows both paths: it is what starts the system service.
	ctl, err := exec.LookPath("ejabberdctl")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/ejabberdctl"); serr != nil {
			return "", "", "", fmt.Errorf("ejabberdctl was not found (%v): install ejabberd 24.12 (make test-deps does, from bookworm-backports)", err)
		}
		ctl = "/usr/sbin/ejabberdctl"
	}
	script, err := os.ReadFile(ctl)
	if err != nil {
		return "", "", "", err
	}
	erl, libs = "erl", ""
	for line := range strings.Lines(string(script)) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "ERL="); ok && erl == "erl" {
			erl = strings.Trim(v, `"'`)
		}
		if v, ok := strings.CutPrefix(line, "ERL_LIBS="); ok && libs == "" {
			libs = strings.Trim(v, `"'`)
		}
	}
	if libs == "" {
		return "", "", "", fmt.Errorf("no ERL_LIBS in %s", ctl)
	}
	apps, _ := filepath.Glob(filepath.Join(libs, "ejabberd-*", "ebin", "ejabberd.app"))
	if len(apps) == 0 {
		return "", "", "", fmt.Errorf("no ejabberd application under %s", libs)
	}
	app, err := os.ReadFile(apps[0])
	if err != nil {
		return "", "", "", err
	}
	m := regexp.MustCompile(`\{vsn,\s*"([^"]+)"\}`).FindSubmatch(app)
	if m == nil {
		return "", "", "", fmt.Errorf("no version in %s", apps[0])
	}
	if _, err := exec.LookPath(erl); err != nil {
		return "", "", "", fmt.Errorf("the Erlang VM %s was not found: %v", erl, err)
	}
	return erl, libs, string(m[1]), nil
}

var errPortInUse = errors.New("a port was taken by another process")

// Start writes a configuration in t.TempDir(), starts ejabberd and waits
// until it serves. It fails the test if ejabberd is not installed or does
// not come up. t.Cleanup stops it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	erl, libs, version, err := installation()
	if err != nil {
		t.Fatalf("ejabberdtest: %v", err)
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
	if opts.StanzaSizeLimit == 0 {
		opts.StanzaSizeLimit = DefaultStanzaSizeLimit
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
		Slot:        servertest.Slot{Name: "ejabberd", StopTimeout: stopTimeout},
		Dir:         dir,
		ConfigFile:  filepath.Join(dir, "ejabberd.yml"),
		LogFile:     filepath.Join(dir, "log", "ejabberd.log"),
		opts:        opts,
		erl:         erl,
		libs:        libs,
		version:     version,
		consoleFile: filepath.Join(dir, "console.log"),
		spool:       filepath.Join(dir, "spool"),
	}
	for _, d := range []string{"log", "spool", "upload"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatalf("ejabberdtest: %v", err)
		}
	}
	if err := s.writeCertificates(); err != nil {
		t.Fatalf("ejabberdtest: certificates: %v", err)
	}
	// The resolver configuration: names from /etc/hosts, then DNS.
	if err := os.WriteFile(filepath.Join(dir, "inetrc"), []byte("{lookup,[\"file\",\"native\"]}.\n"), 0o600); err != nil {
		t.Fatalf("ejabberdtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ejabberdtest: last lines of %s:\n%s", s.LogFile, s.LogTail(40))
		}
		if err := s.Stop(); err != nil {
			t.Logf("ejabberdtest: %v", err)
		}
	})
	for attempt := 1; ; attempt++ {
		if err := s.ChoosePorts(); err != nil {
			t.Fatalf("ejabberdtest: %v", err)
		}
		if err := s.writeConfig(); err != nil {
			t.Fatalf("ejabberdtest: %v", err)
		}
		err := s.launch()
		if err == nil {
			break
		}
		if errors.Is(err, errPortInUse) && attempt < startAttempts {
			t.Logf("ejabberdtest: %v; trying other ports", err)
			continue
		}
		t.Fatalf("ejabberdtest: %v", err)
	}
	return s
}

// Program is "ejabberd " and the installed version, such as
// "ejabberd 24.12-3~bpo12+1".
func (s *Server) Program() string { return "ejabberd " + s.version }

func (s *Server) writeCertificates() error {
	ca, err := xmpptest.NewAuthority("ejabberdtest CA")
	if err != nil {
		return err
	}
	s.CACertPEM = string(ca.PEM)
	certPEM, keyPEM, err := ca.Issue(s.ServerNames(), []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return err
	}
	// ejabberd reads the certificate, its key and its issuer from one file
	// and checks the chain.
	pem := bytes.Join([][]byte{certPEM, keyPEM, ca.PEM}, nil)
	return os.WriteFile(filepath.Join(s.Dir, "server.pem"), pem, 0o600)
}

func (s *Server) writeConfig() error {
	level := "info"
	if s.opts.Debug {
		level = "debug"
	}
	timeout := ""
	switch {
	case s.opts.RegistrationTimeout > 0:
		timeout = fmt.Sprint(int(s.opts.RegistrationTimeout.Seconds()))
	case s.opts.RegistrationTimeout < 0:
		timeout = "infinity"
	}
	data := configData{
		LogLevel:            level,
		CertFile:            filepath.Join(s.Dir, "server.pem"),
		UploadDir:           filepath.Join(s.Dir, "upload"),
		Domain:              s.Domain,
		MUCDomain:           s.MUCDomain,
		UploadDomain:        s.UploadDomain,
		ComponentDomain:     s.ComponentDomain,
		ComponentSecret:     s.ComponentSecret,
		C2SPort:             s.C2SPort,
		DirectTLSPort:       s.DirectTLSPort,
		ComponentPort:       s.ComponentPort,
		ComponentTLSPort:    s.ComponentTLSPort,
		HTTPPort:            s.HTTPPort,
		UploadURL:           s.HTTPURL + "/upload",
		StanzaSizeLimit:     s.opts.StanzaSizeLimit,
		UploadSizeLimit:     s.opts.UploadSizeLimit,
		AllowRegistration:   !s.opts.NoRegistration,
		RegistrationTimeout: timeout,
		NoComponentUploads:  s.opts.NoComponentUploads,
		NoShaper:            s.opts.NoShaper,
		RoomArchive:         !s.opts.NoRoomArchive,
		Extra:               s.opts.ExtraConfig,
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

// launch starts ejabberd in an Erlang VM of its own and waits until it
// serves; on failure it is killed. This is what `ejabberdctl foreground`
// runs, without Erlang distribution and without switching to the ejabberd
// user.
func (s *Server) launch() error {
	logStart := servertest.FileSize(s.LogFile)
	console, err := os.OpenFile(s.consoleFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.erl, "-noinput", "+K", "true",
		"-mnesia", "dir", `"`+s.spool+`"`,
		"-s", "ejabberd")
	cmd.Dir = s.spool
	cmd.Env = append(os.Environ(),
		"EJABBERD_CONFIG_PATH="+s.ConfigFile,
		"EJABBERD_LOG_PATH="+s.LogFile,
		"ERL_LIBS="+s.libs,
		"ERL_CRASH_DUMP="+filepath.Join(s.Dir, "log", "erl_crash.dump"),
		"ERL_INETRC="+filepath.Join(s.Dir, "inetrc"),
		"HOME="+s.Dir,
	)
	return s.Start(cmd, console, func(p *servertest.Process) error { return s.waitUp(p, logStart) })
}

// waitUp polls until every port serves, ejabberd exits, logs an error, or
// startTimeout passes.
func (s *Server) waitUp(p *servertest.Process, logStart int64) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.Done():
			if err := s.startupErrors(logStart); err != nil {
				return fmt.Errorf("ejabberd exited while starting (%v): %w", p.Err(), err)
			}
			return fmt.Errorf("ejabberd exited while starting (%v)\n%s", p.Err(), s.diagnostics())
		default:
		}
		if err := s.startupErrors(logStart); err != nil {
			return err
		}
		probeErr := s.Probe()
		if probeErr == nil && strings.Contains(servertest.ReadFrom(s.LogFile, logStart), " is started in the node ") {
			return s.startupErrors(logStart)
		}
		if probeErr == nil {
			probeErr = errors.New(`the log does not say "is started" yet`)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ejabberd did not come up within %v: %v\n%s", startTimeout, probeErr, s.diagnostics())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startupErrors reports error lines ejabberd logged since logStart.
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
		if !strings.Contains(line, " [error] ") && !strings.Contains(line, " [critical] ") {
			continue
		}
		errs = append(errs, line)
		if strings.Contains(line, "eaddrinuse") || strings.Contains(line, "address already in use") {
			portInUse = true
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msg := fmt.Sprintf("ejabberd logged errors while starting:\n%s\n%s", strings.Join(errs, "\n"), s.diagnostics())
	if portInUse {
		return fmt.Errorf("%w: %s", errPortInUse, msg)
	}
	return errors.New(msg)
}

func (s *Server) diagnostics() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- last lines of %s:\n%s", s.LogFile, s.LogTail(30))
	if console := servertest.LastLines(servertest.ReadFrom(s.consoleFile, 0), 15); strings.TrimSpace(console) != "" {
		fmt.Fprintf(&b, "--- ejabberd's output (%s):\n%s", s.consoleFile, console)
	}
	return b.String()
}

// LogTail returns the last n lines of ejabberd's log.
func (s *Server) LogTail(n int) string {
	return servertest.LastLines(servertest.ReadFrom(s.LogFile, 0), n)
}

// Restart stops ejabberd if it runs and starts it again with the same
// configuration, data and ports, waiting until it serves. Accounts, rooms
// and archives persist. A start that fails is tried again (twice, a
// second apart, with what went wrong logged): on a loaded machine the old
// VM's ports can still be held for a moment.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Logf("ejabberdtest: %v", err)
	}
	for attempt := 1; ; attempt++ {
		err := s.launch()
		if err == nil {
			return
		}
		if attempt == restartAttempts {
			t.Fatalf("ejabberdtest: restart: %v", err)
		}
		t.Logf("ejabberdtest: restart attempt %d failed, trying again: %v", attempt, err)
		time.Sleep(time.Second)
	}
}

// API calls a command of ejabberd's HTTP API (mod_http_api) with args and
// returns the answer's body; an answer other than 200 is an error holding
// the body.
func (s *Server) API(ctx context.Context, command string, args map[string]any) ([]byte, error) {
	body, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTPURL+"/api/"+command, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("ejabberd API %s: %s: %s", command, resp.Status, out)
	}
	return out, nil
}

// CreateUser creates (or resets the password of) the account
// localpart@Domain through the HTTP API; ejabberd must be running. It is
// no in-band registration, so registration_timeout does not apply.
func (s *Server) CreateUser(t testing.TB, localpart, password string) jid.JID {
	t.Helper()
	j := s.JID(t, localpart)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := map[string]any{"user": localpart, "host": s.Domain, "password": password}
	if _, err := s.API(ctx, "register", args); err != nil {
		args["newpass"] = password
		delete(args, "password")
		if _, cerr := s.API(ctx, "change_password", args); cerr != nil {
			t.Fatalf("ejabberdtest: create %s: %v; change its password: %v", j, err, cerr)
		}
	}
	return j
}

// DeleteUser removes the account localpart@Domain, as an admin would.
func (s *Server) DeleteUser(t testing.TB, localpart string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.API(ctx, "unregister", map[string]any{"user": localpart, "host": s.Domain}); err != nil {
		t.Fatalf("ejabberdtest: delete %s@%s: %v", localpart, s.Domain, err)
	}
}

var _ xmpptest.Server = (*Server)(nil)
