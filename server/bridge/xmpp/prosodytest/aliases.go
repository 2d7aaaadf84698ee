package prosodytest

import "github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"

// The client lives in xmpptest, shared with the other test servers; these
// names keep the tests written against prosodytest working.
type (
	Client      = xmpptest.Client
	Message     = xmpptest.Message
	Presence    = xmpptest.Presence
	DialOptions = xmpptest.DialOptions
)

var _ xmpptest.Server = (*Server)(nil)
