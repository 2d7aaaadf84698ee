// Package homeservertest is what the test homeservers have in common
// (dendritetest runs Dendrite, synapsetest runs Synapse): the application
// service registration and options they take, the Server interface both
// satisfy, so a test takes the homeserver as a parameter, and the client
// helpers (shared-secret registration, raw requests) both serve alike.
package homeservertest

import (
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/internal/servertest"
)

// Server is a running (or stopped) test homeserver.
type Server interface {
	// BaseURL is the client-server (and application-service-facing) API,
	// "http://127.0.0.1:<port>", without a trailing slash.
	BaseURL() string
	// API is the client for raw requests.
	API() *Client
	// RegisterUser creates @localpart:server_name with the shared secret
	// and returns its user ID and an access token; see Client.RegisterUser.
	RegisterUser(t testing.TB, localpart, password string) (userID, accessToken string)
	// Restart stops the homeserver if it runs and starts it again with the
	// same configuration, data and port, waiting until it serves.
	Restart(t testing.TB)
	// Stop sends SIGTERM and waits for the homeserver to exit.
	Stop() error
	// Kill ends the homeserver as a crash would.
	Kill() error
	// Running reports whether it was started and has not stopped.
	Running() bool
	// LogTail is the last n lines of its log.
	LogTail(n int) string
}

// Namespace is one regular expression of an application service's users,
// aliases or rooms namespace. Dendrite does not anchor the expression (it
// uses MatchString), Synapse anchors it at the start only (re.match): write
// ^...$ to match whole IDs on both.
type Namespace struct {
	Regex     string
	Exclusive bool
}

// AppService is an application-service registration (the plugin is the
// application service).
type AppService struct {
	// ID is unique per homeserver; "bridge" if empty.
	ID string
	// URL is where the homeserver pushes transactions
	// (PUT URL/_matrix/app/v1/transactions/{txnId}); empty means it pushes
	// nothing.
	URL string
	// ASToken authenticates the application service to the homeserver
	// ("Authorization: Bearer ASToken"); random if empty.
	ASToken string
	// HSToken authenticates the homeserver to the application service
	// ("Authorization: Bearer HSToken"); random if empty.
	HSToken string
	// SenderLocalpart is the application service's own user, which the
	// homeserver creates; "bridge" if empty.
	SenderLocalpart string
	// Users, Aliases and Rooms are the namespaces.
	Users, Aliases, Rooms []Namespace
}

// WithDefaults returns a copy of as with the empty fields filled in, or nil
// for nil.
func (as *AppService) WithDefaults() *AppService {
	if as == nil {
		return nil
	}
	c := *as
	if c.ID == "" {
		c.ID = "bridge"
	}
	if c.ASToken == "" {
		c.ASToken = servertest.RandomString()
	}
	if c.HSToken == "" {
		c.HSToken = servertest.RandomString()
	}
	if c.SenderLocalpart == "" {
		c.SenderLocalpart = "bridge"
	}
	return &c
}

// Namespaces maps "users", "aliases" and "rooms" to their lists, as a
// registration file has them.
func (as *AppService) Namespaces() map[string][]Namespace {
	return map[string][]Namespace{"users": as.Users, "aliases": as.Aliases, "rooms": as.Rooms}
}

// Options configure a test homeserver. The zero value is a sensible
// default.
type Options struct {
	// ServerName is the homeserver's name, the part after the colon of user
	// IDs; "localhost" if empty.
	ServerName string
	// AppService, if not nil, is registered with the homeserver. The
	// server's AppService field holds it with its defaults filled in.
	AppService *AppService
	// SharedSecret is registration_shared_secret; random if empty.
	SharedSecret string
	// LogLevel is the homeserver's log level ("debug", "info", "warn",
	// "error"; Dendrite also takes "trace"); "info" if empty.
	LogLevel string
}

// WithDefaults fills in the empty fields of o.
func (o Options) WithDefaults() Options {
	if o.ServerName == "" {
		o.ServerName = "localhost"
	}
	if o.SharedSecret == "" {
		o.SharedSecret = servertest.RandomString()
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	o.AppService = o.AppService.WithDefaults()
	return o
}
