package xmpp

import (
	"context"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor/doctortest"
)

// clientSettings are the plugin's client-mode settings for bridge@ on srv.
func clientSettings(t *testing.T, srv *prosodytest.Server, password string) Config {
	return Config{
		Mode: ModeClient, Address: srv.C2SAddr(), JID: srv.JID(t, "bridge"), Password: password,
		TLSMode: TLSStartTLS, CAPEM: srv.CACertPEM,
	}
}

// Issue 13, check 4: the doctor against a healthy Prosody passes every
// check; a wrong password, a missing room, an untrusted certificate and a
// room without an archive each fail the check that names the cause and
// the fix.
func TestDoctorAgainstProsody(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, room, _ := serverWithCarol(ctx, t, testservers.Prosody, testservers.Options{})
	p := srv.(*prosodytest.Server)
	p.CreateUser(t, "bridge", "bridge-pw")
	env := connector.DoctorEnv{Rooms: []string{room.String()}}

	healthy := runDoctor(ctx, clientSettings(t, p, "bridge-pw"), env)
	if !healthy.Passed {
		t.Fatalf("the healthy server failed:\n%s", healthy.Text())
	}
	for _, name := range []string{"DNS", "TCP", "TLS", "Authentication", "HTTP upload", "In-band registration",
		"Room " + room.String(), "Join " + room.String(), "Archive (MAM) of " + room.String(), "Occupant IDs in " + room.String()} {
		doctortest.Check(t, healthy, name)
	}
	if auth := doctortest.Check(t, healthy, "Authentication"); !strings.Contains(auth.Detail, "SCRAM-SHA-1-PLUS with tls-exporter channel binding") {
		t.Errorf("the login is not named: %q", auth.Detail)
	}
	if tlsCheck := doctortest.Check(t, healthy, "TLS"); !strings.Contains(tlsCheck.Detail, "TLS 1.3") || !strings.Contains(tlsCheck.Detail, "prosodytest CA") {
		t.Errorf("TLS: %q", tlsCheck.Detail)
	}
	if join := doctortest.Check(t, healthy, "Join "+room.String()); !strings.Contains(join.Detail, "affiliation") {
		t.Errorf("the join does not name the affiliation: %q", join.Detail)
	}
	t.Logf("healthy:\n%s", healthy.Text())

	wrong := runDoctor(ctx, clientSettings(t, p, "not-the-password"), env)
	t.Logf("wrong password:\n%s", wrong.Text())
	doctortest.WantFailed(t, wrong, "Authentication", []string{"SCRAM-SHA-1 was refused", "not-authorized", "before that, the server refused SCRAM-SHA-1-PLUS"}, []string{"XMPPPassword"})
	if c := doctortest.Check(t, wrong, "TLS"); !c.Passed {
		t.Errorf("a wrong password failed TLS: %+v", c)
	}
	if strings.Contains(wrong.Text(), "not-the-password") {
		t.Error("the report quotes the password")
	}

	component := Config{
		Mode: ModeComponent, Address: p.ComponentTLSAddr(), TLSMode: TLSDirect, CAPEM: p.CACertPEM,
		ComponentDomain: jid.MustParse(p.ComponentDomain), ComponentSecret: p.ComponentSecret,
	}
	if r := runDoctor(ctx, component, env); !r.Passed || !doctortest.Check(t, r, "Component handshake").Passed || !doctortest.Check(t, r, "Join "+room.String()).Passed {
		t.Errorf("the healthy component failed:\n%s", r.Text())
	}
	running := startComponent(ctx, t, p, newMemStore(), &eventRecorder{}, nil, nil)
	if _, err := running.currentSession(ctx); err != nil {
		t.Fatal(err)
	}
	// With the bridge connected, the doctor opens no second component
	// stream (Prosody would refuse it, or drop the bridge's).
	busy := runDoctor(ctx, component, connector.DoctorEnv{Rooms: env.Rooms, Connected: true})
	if !busy.Passed || !strings.Contains(doctortest.Check(t, busy, "Component handshake").Detail, "running bridge is connected") {
		t.Errorf("the component doctor beside the running bridge:\n%s", busy.Text())
	}
	if running.Health().State != "connected" {
		t.Errorf("the running bridge was disturbed: %+v", running.Health())
	}
	// Without the flag, the doctor's handshake meets the bridge's stream.
	taken := runDoctor(ctx, component, env)
	doctortest.WantFailed(t, taken, "Component handshake", []string{"another connection already holds"}, []string{"Stop whatever else"})
	badSecret := component
	badSecret.ComponentSecret = "not-the-secret"
	doctortest.WantFailed(t, runDoctor(ctx, badSecret, env), "Component handshake", []string{"handshake"}, []string{"XMPPComponentSecret"})

	missing := p.RoomJID(t, "nosuchroom")
	gone := runDoctor(ctx, clientSettings(t, p, "bridge-pw"), connector.DoctorEnv{Rooms: []string{room.String(), missing.String()}})
	doctortest.WantFailed(t, gone, "Room "+missing.String(), []string{"does not exist"}, []string{"Create the room", "unmap"})
	if c := doctortest.Check(t, gone, "Join "+missing.String()); c.Passed || !strings.HasPrefix(c.Detail, "Not run") {
		t.Errorf("the missing room's join: %+v", c)
	}
	if p.RoomExists(t, missing) {
		t.Error("the doctor created the missing room")
	}
	if !doctortest.Check(t, gone, "Room "+room.String()).Passed {
		t.Error("the existing room failed beside the missing one")
	}
}

func TestDoctorNamesAnUntrustedCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := prosodytest.Start(t, prosodytest.Options{UntrustedCert: true})
	p.CreateUser(t, "bridge", "bridge-pw")
	r := runDoctor(ctx, clientSettings(t, p, "bridge-pw"), connector.DoctorEnv{})
	doctortest.WantFailed(t, r, "TLS", []string{"unknown authority"}, []string{"XMPPCACertificate"})
	t.Logf("untrusted:\n%s", r.Text())
	if c := doctortest.Check(t, r, "Authentication"); c.Passed || !strings.HasPrefix(c.Detail, "Not run") {
		t.Errorf("authentication after an untrusted certificate: %+v", c)
	}
}

func TestDoctorNamesARoomWithoutArchive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, room, _ := serverWithCarol(ctx, t, testservers.Prosody, testservers.Options{NoRoomArchive: true})
	p := srv.(*prosodytest.Server)
	p.CreateUser(t, "bridge", "bridge-pw")
	r := runDoctor(ctx, clientSettings(t, p, "bridge-pw"), connector.DoctorEnv{Rooms: []string{room.String()}})
	doctortest.WantFailed(t, r, "Archive (MAM) of "+room.String(), []string{"no message archive", "urn:xmpp:mam:2"}, []string{"muc_mam"})
	if !doctortest.Check(t, r, "Join "+room.String()).Passed {
		t.Errorf("the join failed:\n%s", r.Text())
	}
}

// A server that accepts the connection and says nothing: the stream
// check fails at its bound, saying so.
func TestDoctorBoundsASilentServer(t *testing.T) {
	cfg := Config{Mode: ModeClient, Address: doctortest.SilentServer(t), JID: jid.MustParse("bridge@localhost"), Password: "pw", TLSMode: TLSStartTLS}
	start := time.Now()
	r := runDoctor(context.Background(), cfg, connector.DoctorEnv{Limits: doctor.Limits{Check: 500 * time.Millisecond}})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the doctor took %v", took)
	}
	if !doctortest.Check(t, r, "TCP").Passed {
		t.Fatalf("TCP:\n%s", r.Text())
	}
	doctortest.WantFailed(t, r, "TLS", []string{"No answer within 500ms"}, []string{"server"})
}
