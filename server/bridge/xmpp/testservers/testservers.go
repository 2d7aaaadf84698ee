// Package testservers lists the XMPP servers the bridge's tests run on, so
// a test takes the server as a parameter instead of being copied per
// server:
//
//	for _, srv := range testservers.All {
//		t.Run(srv.Name, func(t *testing.T) {
//			s := srv.Start(t, testservers.Options{})
//			...
//		})
//	}
package testservers

import (
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/ejabberdtest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
)

// Options are what a test may ask of any server. The zero value is each
// server's own defaults, limits included.
type Options struct {
	// NoRegistration turns in-band registration (XEP-0077) off.
	NoRegistration bool
	// StanzaSizeLimit replaces the client ports' stanza size limit, in
	// bytes, when positive.
	StanzaSizeLimit int
	// UnlimitedRegistration turns off the limit on in-band registrations
	// per address (ejabberd's registration_timeout, one per 600 s; Prosody
	// has none by default). A test that sets it must say why.
	UnlimitedRegistration bool
	// ThrottleRegistration turns on a limit of one in-band registration per
	// address per 600 s where it is off by default: Prosody's
	// min_seconds_between_registrations (mod_register_limits), with
	// loopback no longer exempt as it is by default (the bridge runs on
	// another host in production; here it shares 127.0.0.1). ejabberd has
	// the limit on by default (registration_timeout). A test that sets it
	// must say why.
	ThrottleRegistration bool
	// NoComponentUploads keeps the component from the upload service, as
	// both servers do by default: Prosody 13's http_file_share_access and
	// ejabberd's mod_http_upload access let only the host's users in until
	// an admin adds the component, which the test servers do otherwise.
	NoComponentUploads bool
	// NoClientShaper lifts a limit on how fast clients may send where the
	// server has one by default (ejabberd's c2s shaper, 3000 B/s with
	// bursts of 20000 bytes). A test that sets it must say why.
	NoClientShaper bool
	// NoRoomArchive leaves rooms without a message archive (XEP-0313), as
	// a server without muc_mam (Prosody) or with mam off in the rooms'
	// options (ejabberd) has them.
	NoRoomArchive bool
}

// Kind is one XMPP server program.
type Kind struct {
	// Name is the program's name, for subtest names: "prosody", "ejabberd".
	Name string
	// Start starts one on loopback for the test; it fails the test if the
	// program is not installed.
	Start func(t testing.TB, o Options) xmpptest.Server
}

// Prosody is Prosody 13 (prosodytest).
var Prosody = Kind{Name: "prosody", Start: func(t testing.TB, o Options) xmpptest.Server {
	t.Helper()
	po := prosodytest.Options{NoRegistration: o.NoRegistration, StanzaSizeLimit: o.StanzaSizeLimit, NoComponentUploads: o.NoComponentUploads, NoRoomArchive: o.NoRoomArchive}
	if o.ThrottleRegistration {
		po.ExtraConfig = "min_seconds_between_registrations = 600\nregistration_allowlist = { }"
	}
	return prosodytest.Start(t, po)
}}

// Ejabberd is ejabberd 24.12 (ejabberdtest).
var Ejabberd = Kind{Name: "ejabberd", Start: func(t testing.TB, o Options) xmpptest.Server {
	t.Helper()
	eo := ejabberdtest.Options{NoRegistration: o.NoRegistration, StanzaSizeLimit: o.StanzaSizeLimit, NoComponentUploads: o.NoComponentUploads, NoShaper: o.NoClientShaper, NoRoomArchive: o.NoRoomArchive}
	if o.UnlimitedRegistration {
		eo.RegistrationTimeout = -1
	}
	return ejabberdtest.Start(t, eo)
}}

// All are the servers every XMPP check runs on.
var All = []Kind{Prosody, Ejabberd}
