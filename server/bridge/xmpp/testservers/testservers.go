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
	return prosodytest.Start(t, prosodytest.Options{NoRegistration: o.NoRegistration, StanzaSizeLimit: o.StanzaSizeLimit})
}}

// Ejabberd is ejabberd 24.12 (ejabberdtest).
var Ejabberd = Kind{Name: "ejabberd", Start: func(t testing.TB, o Options) xmpptest.Server {
	t.Helper()
	eo := ejabberdtest.Options{NoRegistration: o.NoRegistration, StanzaSizeLimit: o.StanzaSizeLimit}
	if o.UnlimitedRegistration {
		eo.RegistrationTimeout = -1
	}
	return ejabberdtest.Start(t, eo)
}}

// All are the servers every XMPP check runs on.
var All = []Kind{Prosody, Ejabberd}
