// Package xmpptest holds what the tests of the XMPP bridge share across the
// real XMPP servers they start (prosodytest, ejabberdtest): the addresses a
// running server listens on, a throwaway certificate authority, a small XMPP
// client to stand in as a room occupant, and Server, the interface both
// servers satisfy so a test can run on each.
package xmpptest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// Server is a running test XMPP server, whichever program it is.
type Server interface {
	// Reach is where and how clients and components reach the server.
	Reach() *Endpoints
	// Program names the server program and its version, such as
	// "Prosody 13.0.1".
	Program() string
	// CreateUser creates (or resets the password of) localpart@Domain.
	CreateUser(t testing.TB, localpart, password string) jid.JID
	// DeleteUser removes localpart@Domain, as an admin would.
	DeleteUser(t testing.TB, localpart string)
	// Kill ends the server as a crash would; Stop shuts it down cleanly;
	// Restart starts it again with the same configuration, data and ports.
	Kill() error
	Stop() error
	Restart(t testing.TB)
	Running() bool
	// LogTail is the last n lines of the server's log.
	LogTail(n int) string
}

// Endpoints are a test server's names, ports and credentials: what a
// client or a component needs to reach it. Servers embed it.
type Endpoints struct {
	// Domain is the virtual host of user accounts, such as "localhost".
	Domain string
	// MUCDomain is the multi-user chat service, such as "conference.localhost".
	MUCDomain string
	// UploadDomain is the XEP-0363 HTTP upload service, such as "upload.localhost".
	UploadDomain string
	// ComponentDomain is the XEP-0114 external component, such as
	// "bridge.localhost"; it connects to ComponentAddr() with ComponentSecret.
	ComponentDomain string
	ComponentSecret string
	// HTTPURL is the server's HTTP server, "http://127.0.0.1:<port>" (no
	// trailing slash).
	HTTPURL string
	// CACertPEM is the certificate authority that signed the server's
	// certificate, for clients to trust.
	CACertPEM string

	// The loopback ports: client (STARTTLS), client with direct TLS
	// (XEP-0368), component (XEP-0114, plain), component with direct TLS,
	// and HTTP.
	C2SPort, DirectTLSPort, ComponentPort, ComponentTLSPort, HTTPPort int
}

// Reach returns e itself, so a Server embedding Endpoints has it.
func (e *Endpoints) Reach() *Endpoints { return e }

// ChoosePorts finds five free loopback ports, holding them all open at
// once so they differ, and sets the ports and HTTPURL.
func (e *Endpoints) ChoosePorts() error {
	ports := make([]int, 0, 5)
	listeners := make([]net.Listener, 0, 5)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range 5 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	e.C2SPort, e.DirectTLSPort, e.ComponentPort, e.ComponentTLSPort, e.HTTPPort = ports[0], ports[1], ports[2], ports[3], ports[4]
	e.HTTPURL = "http://" + e.HTTPAddr()
	return nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// C2SAddr is the client port (host:port), which offers STARTTLS.
func (e *Endpoints) C2SAddr() string { return loopback(e.C2SPort) }

// DirectTLSAddr is the client port that speaks TLS from the first byte
// (XEP-0368).
func (e *Endpoints) DirectTLSAddr() string { return loopback(e.DirectTLSPort) }

// ComponentAddr is the XEP-0114 component port, without TLS.
func (e *Endpoints) ComponentAddr() string { return loopback(e.ComponentPort) }

// ComponentTLSAddr is a port that speaks TLS from the first byte and
// carries XEP-0114 component streams inside: XEP-0114 itself has no
// STARTTLS.
func (e *Endpoints) ComponentTLSAddr() string { return loopback(e.ComponentTLSPort) }

// HTTPAddr is the HTTP port (host:port).
func (e *Endpoints) HTTPAddr() string { return loopback(e.HTTPPort) }

// CertPool returns a pool holding only CACertPEM.
func (e *Endpoints) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(e.CACertPEM))
	return pool
}

// TLSConfig returns a client configuration that trusts only CACertPEM, for
// the server name Domain.
func (e *Endpoints) TLSConfig() *tls.Config {
	return &tls.Config{
		ServerName: e.Domain,
		RootCAs:    e.CertPool(),
		MinVersion: tls.VersionTLS12,
	}
}

// JID parses localpart@Domain (or Domain if localpart is empty), failing the
// test if that is no valid JID.
func (e *Endpoints) JID(t testing.TB, localpart string) jid.JID {
	t.Helper()
	j, err := jid.New(localpart, e.Domain, "")
	if err != nil {
		t.Fatalf("xmpptest: %q@%s: %v", localpart, e.Domain, err)
	}
	return j
}

// RoomJID returns name@MUCDomain, failing the test if that is no valid JID.
func (e *Endpoints) RoomJID(t testing.TB, name string) jid.JID {
	t.Helper()
	j, err := jid.New(name, e.MUCDomain, "")
	if err != nil {
		t.Fatalf("xmpptest: room %q: %v", name, err)
	}
	return j
}

// UploadJID is the XEP-0363 upload service's JID, for upload.GetSlot.
func (e *Endpoints) UploadJID(t testing.TB) jid.JID {
	t.Helper()
	j, err := jid.New("", e.UploadDomain, "")
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	return j
}

// ServerNames are the names a test server's certificate is for.
func (e *Endpoints) ServerNames() []string {
	names := []string{e.Domain, "localhost", e.MUCDomain, e.UploadDomain, e.ComponentDomain}
	if e.Domain == "localhost" {
		names = names[1:]
	}
	return names
}

// Probe checks that every port accepts connections and that the client
// port answers a stream header with its features, which shows the server
// serves.
func (e *Endpoints) Probe() error {
	for _, addr := range []string{e.DirectTLSAddr(), e.ComponentAddr(), e.ComponentTLSAddr(), e.HTTPAddr()} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	c, err := net.DialTimeout("tcp", e.C2SAddr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	header := "<?xml version='1.0'?><stream:stream to='" + e.Domain +
		"' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
	if _, err := io.WriteString(c, header); err != nil {
		return err
	}
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("features")) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("c2s port: no stream features yet (%w), got %q", err, got)
		}
	}
	_, _ = io.WriteString(c, "</stream:stream>")
	return nil
}
