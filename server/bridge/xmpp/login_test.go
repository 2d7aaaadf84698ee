package xmpp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
)

func names(ms []sasl.Mechanism) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return strings.Join(out, " ")
}

// XEP-0440: -PLUS only where the server binds the way this connection
// would (tls-exporter on TLS 1.3, tls-unique on 1.2).
func TestChooseMechanismsHonoursXEP0440(t *testing.T) {
	all := Config{TLSMode: TLSStartTLS}.mechanisms()
	tls13 := tls.ConnectionState{Version: tls.VersionTLS13}
	tls12 := tls.ConnectionState{Version: tls.VersionTLS12}
	const withPlus, withoutPlus = "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN", "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN"
	for _, tc := range []struct {
		name   string
		login  saslLogin
		cs     tls.ConnectionState
		noPlus bool
		want   string
	}{
		{"nothing named, TLS 1.3", saslLogin{}, tls13, false, withPlus},
		{"tls-exporter named, TLS 1.3", saslLogin{cbNamed: true, cbTypes: []string{"tls-exporter", "tls-server-end-point"}}, tls13, false, withPlus},
		{"only tls-server-end-point named, TLS 1.3", saslLogin{cbNamed: true, cbTypes: []string{"tls-server-end-point"}}, tls13, false, withoutPlus},
		{"only tls-exporter named, TLS 1.2", saslLogin{cbNamed: true, cbTypes: []string{"tls-exporter"}}, tls12, false, withoutPlus},
		{"tls-unique named, TLS 1.2", saslLogin{cbNamed: true, cbTypes: []string{"tls-unique"}}, tls12, false, withPlus},
		{"empty list", saslLogin{cbNamed: true}, tls13, false, withoutPlus},
		{"binding refused before", saslLogin{}, tls13, true, withoutPlus},
		{"no TLS", saslLogin{}, tls.ConnectionState{}, false, withoutPlus},
	} {
		if got := names(chooseMechanisms(all, &tc.login, tc.cs, tc.noPlus)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// tlsProxy ends TLS on a loopback port with a certificate of its own
// authority and carries the stream on over a second TLS connection to
// upstream, as a TLS-offloading load balancer does: channel binding cannot
// survive it. rewrite, when set, edits what the server sends.
func tlsProxy(t *testing.T, upstream string, upstreamTLS *tls.Config, rewrite func([]byte) []byte) (addr, caPEM string) {
	t.Helper()
	ca, err := xmpptest.NewAuthority("proxy CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue([]string{upstreamTLS.ServerName}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer down.Close()
				up, err := tls.Dial("tcp", upstream, upstreamTLS)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, down); up.Close() }()
				buf := make([]byte, 64<<10)
				for {
					n, err := up.Read(buf)
					if n > 0 {
						out := buf[:n]
						if rewrite != nil {
							out = rewrite(out)
						}
						if _, werr := down.Write(out); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String(), string(ca.PEM)
}

// startClient starts a client-mode bridge (no ghosts) with cfg's address,
// TLS mode and CA, as bridge@ with password.
func startClient(ctx context.Context, t *testing.T, srv xmpptest.Server, password string, tweak func(*Config)) *Bridge {
	t.Helper()
	p := srv.Reach()
	cfg := Config{
		Mode: ModeClient, Address: p.C2SAddr(), JID: p.JID(t, "bridge"), Password: password,
		TLSMode: TLSStartTLS, CAPEM: p.CACertPEM,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	return startBridge(ctx, t, cfg, newMemStore(), &eventRecorder{}, nil)
}

// waitHealth waits until b's health satisfies ok, and returns it.
func waitHealth(t *testing.T, b *Bridge, what string, ok func(bridge.Health) bool) bridge.Health {
	t.Helper()
	var h bridge.Health
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if h = b.Health(); ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: health stayed %+v", what, h)
		}
	}
}

func connected(h bridge.Health) bool { return h.State == bridge.StateConnected }

// Issue 10: on each server the bot logs in with channel binding where it
// works, and falls back to SCRAM without it where binding fails (here a
// TLS-offloading proxy; ejabberd 23.01 on TLS 1.3 failed the same way),
// saying so in status; a wrong password is still named a wrong password.
// A server that names its binding types (XEP-0440) without the one this
// connection would use gets no -PLUS attempt at all.
func TestClientLoginChannelBindingOnEachServer(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			srv := kind.Start(t, testservers.Options{})
			p := srv.Reach()
			srv.CreateUser(t, "bridge", "bridge-pw")

			direct := startClient(ctx, t, srv, "bridge-pw", nil)
			h := waitHealth(t, direct, "direct login", connected)
			if !strings.Contains(h.Detail, "login: SCRAM-SHA-1-PLUS with tls-exporter channel binding (named by the server)") {
				t.Errorf("direct login: %q", h.Detail)
			}

			proxied := func(rewrite func([]byte) []byte, password string) *Bridge {
				addr, ca := tlsProxy(t, p.DirectTLSAddr(), p.TLSConfig(), rewrite)
				return startClient(ctx, t, srv, password, func(c *Config) { c.Address, c.TLSMode, c.CAPEM = addr, TLSDirect, ca })
			}
			h = waitHealth(t, proxied(nil, "bridge-pw"), "login through the proxy", connected)
			if !strings.Contains(h.Detail, "login: SCRAM-SHA-1; channel binding is not used because the server refused SCRAM-SHA-1-PLUS with tls-exporter channel binding") {
				t.Errorf("login through the proxy: %q", h.Detail)
			}

			wrong := proxied(nil, "not-the-password")
			h = waitHealth(t, wrong, "a wrong password through the proxy", func(h bridge.Health) bool { return h.State == bridge.StateError })
			if !strings.Contains(h.LastError, ErrAuth.Error()) || strings.Contains(h.LastError, "channel binding") {
				t.Errorf("a wrong password is reported as %q", h.LastError)
			}

			// The proxy says the server binds only with tls-server-end-point,
			// which mellium does not do: no -PLUS is tried, so nothing is
			// refused.
			endPoint := func(b []byte) []byte {
				return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("'tls-exporter'"), []byte("'tls-server-end-point'")), []byte(`"tls-exporter"`), []byte(`"tls-server-end-point"`))
			}
			h = waitHealth(t, proxied(endPoint, "bridge-pw"), "login where XEP-0440 rules -PLUS out", connected)
			if !strings.HasSuffix(h.Detail, "login: SCRAM-SHA-1") {
				t.Errorf("login where XEP-0440 rules -PLUS out: %q", h.Detail)
			}
		})
	}
}

var _ = errors.New
