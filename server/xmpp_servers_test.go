package main

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
)

// xmppServer is a harness's XMPP server, whichever program runs it: where
// it is and how to reach it (the embedded Endpoints: Domain, C2SAddr(),
// Client(), ...) and its controls.
type xmppServer struct {
	*xmpptest.Endpoints
	srv xmpptest.Server
}

// reachable is anything that says where an XMPP server is: an xmppServer,
// a prosodytest.Server, an ejabberdtest.Server.
type reachable interface{ Reach() *xmpptest.Endpoints }

func startXMPPServer(t *testing.T, kind testservers.Kind, o testservers.Options) xmppServer {
	t.Helper()
	srv := kind.Start(t, o)
	return xmppServer{Endpoints: srv.Reach(), srv: srv}
}

func (x xmppServer) CreateUser(t testing.TB, localpart, password string) jid.JID {
	t.Helper()
	return x.srv.CreateUser(t, localpart, password)
}
func (x xmppServer) Kill() error          { return x.srv.Kill() }
func (x xmppServer) Restart(t testing.TB) { t.Helper(); x.srv.Restart(t) }
func (x xmppServer) Program() string      { return x.srv.Program() }
func (x xmppServer) LogTail(n int) string { return x.srv.LogTail(n) }

// forEachXMPPServer runs check once on each XMPP server program
// (testservers.All), as subtests named after them.
func forEachXMPPServer(t *testing.T, check func(t *testing.T, kind testservers.Kind)) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) { check(t, kind) })
	}
}
