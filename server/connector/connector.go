// Package connector is how a network plugs into the plugin. Each network's
// package (server/bridge/<network>) provides a Descriptor: its slash
// command and room syntax, its settings (decoded and validated there), its
// own subcommands and HTTP routes, and how its bridge is built. The
// plugin's main package only lists the descriptors, so adding a network
// touches its own folder and that list.
package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/secret"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Descriptor is everything the plugin needs to know about one network.
type Descriptor struct {
	// Command is the network's slash command: trigger, title, room syntax.
	Command command.Spec
	// Configure reads the network's settings from the plugin's saved
	// settings (Decode them into a struct of the network's own) and checks
	// them when the network is enabled. Its errors name settings, never
	// their values. The plugin rebuilds the network's bridge when the
	// Config it returns changes (reflect.DeepEqual), so the Config must hold
	// everything Build reads from the settings. The Config is nil only
	// when the settings cannot be decoded at all.
	Configure func(raw map[string]any, shared Shared) (Config, error)
	// Build makes the bridge from a Config that Configure returned and that
	// is enabled.
	Build func(env Env, cfg Config) (bridge.Bridge, error)
	// Subcommands are the network's own, beside the shared map, unmap,
	// status...; nil when it has none.
	Subcommands func(h Host) []command.Subcommand
	// Routes are the network's HTTP endpoints under the plugin's URL.
	Routes []Route
	// Doctor checks the network for an admin from its settings alone (it
	// is also for when the bridge cannot connect), without disturbing a
	// running bridge: its own connections, read-only calls. Each check is
	// bounded (doctor.Run). nil when the network has no doctor.
	Doctor func(ctx context.Context, cfg Config, env DoctorEnv) doctor.Report
	// CreatesRooms offers "create" (a new remote room for the channel,
	// linked at once, which the channel's members join) when the running
	// bridge is a bridge.RoomCreator.
	CreatesRooms bool
}

// Network is the network the descriptor is for.
func (d Descriptor) Network() bridge.Network { return d.Command.Network }

// Config is a network's settings as Configure decoded them.
type Config interface {
	// Enabled reports whether the settings turn the network on.
	Enabled() bool
	// Secrets are the setting values that must never reach a log line, an
	// error or a status.
	Secrets() []string
}

// Secrets lists the secret setting values that are set, for
// Config.Secrets.
func Secrets(values ...string) []string {
	var out []string
	for _, v := range values {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Shared are the plugin-wide settings a network's bridge may read.
type Shared struct {
	// MaxFileSize is the largest file relayed, in bytes.
	MaxFileSize int64
}

// Env is what the plugin lends a bridge it builds.
type Env struct {
	Store  *store.Store
	Logger bridge.Logger
	// Keys seals secrets kept in the store; it is the plugin's own
	// keyring, so a regenerated EncryptionKey reaches a running bridge.
	Keys *secret.Keyring
	// InstanceSecret is the installation's own secret, which never
	// changes (unlike EncryptionKey).
	InstanceSecret func() (string, error)
	// Portals creates and links Mattermost channels for remote rooms
	// (automatic portals); a bridge uses it only when its own settings
	// turn portals on.
	Portals bridge.Portals
	// AvatarURL is a public URL of a Mattermost author's picture, for
	// networks that have the remote side fetch pictures by URL; "" for
	// other senders or when the Site URL is not set.
	AvatarURL func(bridge.Sender) string
}

// DoctorEnv is what a network's doctor is told beside its settings.
type DoctorEnv struct {
	// Rooms are the remote rooms linked to channels on this network.
	Rooms []string
	// PluginURL is where the server serves the plugin's HTTP routes
	// (<Site URL>/plugins/<plugin id>); "" when unknown.
	PluginURL string
	// Connected says the network's running bridge is connected with these
	// settings: a network whose server allows one connection (an XMPP
	// component) relies on it instead of opening another.
	Connected bool
	// Limits bound the checks; zero is the doctor's defaults.
	Limits doctor.Limits
}

// Host is the plugin as a network's subcommands and routes see it.
type Host interface {
	// Running is the network's bridge, when it runs.
	Running() (bridge.Bridge, bool)
	// Config is the network's saved settings.
	Config() Config
	// PluginURL is where the server serves the plugin's HTTP routes
	// (<Site URL>/plugins/<plugin id>), or a SetupError when the Site URL is
	// not set.
	PluginURL() (string, error)
	// IsSystemAdmin reports whether the request carries the session of a
	// system admin.
	IsSystemAdmin(r *http.Request) bool
	// LogError logs for the admin; secrets are removed.
	LogError(msg string, keyValuePairs ...any)
}

// Route is one HTTP endpoint of a network.
type Route struct {
	// Path is matched exactly, or as a prefix when it ends with "/". It is
	// relative to the plugin's URL and starts with "/".
	Path string
	// Handle serves a request.
	Handle func(h Host, w http.ResponseWriter, r *http.Request)
}

// Matches reports whether the route serves path.
func (r Route) Matches(path string) bool {
	if strings.HasSuffix(r.Path, "/") {
		return strings.HasPrefix(path, r.Path)
	}
	return path == r.Path
}

// Decode reads settings into v, a pointer to a struct whose field names (or
// json tags) are the setting keys: the server stores the keys in lower
// case, and JSON matches them without case. A setting of the wrong type is
// named in the error, never its value.
func Decode(raw map[string]any, v any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("invalid plugin configuration: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("invalid plugin configuration: %s has the wrong type (want %s)", typeErr.Field, typeErr.Type)
		}
		// Never echo the input: it may hold secrets.
		return fmt.Errorf("invalid plugin configuration: %s", redactJSONError(err))
	}
	return nil
}

// redactJSONError keeps only the setting name from a JSON decoding error,
// whose text may quote the offending (possibly secret) value.
func redactJSONError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "Go struct field "); i >= 0 {
		return "cannot decode setting " + strings.Fields(msg[i+len("Go struct field "):])[0]
	}
	return "cannot decode settings"
}

// Problems collects what is wrong with settings, each naming its setting,
// so an admin sees every problem at once.
type Problems []error

// Add records a problem with setting.
func (p *Problems) Add(setting, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
}

// Err is nil when nothing was added.
func (p Problems) Err() error { return errors.Join(p...) }

// SetupError is something the admin must fix in the settings before the
// plugin can do what was asked; its text says what.
type SetupError string

func (e SetupError) Error() string { return string(e) }

// IsSetupError reports whether err is, or wraps, a SetupError.
func IsSetupError(err error) bool {
	var s SetupError
	return errors.As(err, &s)
}

// NotImplemented builds nothing: it stands for a network whose bridge this
// version does not have, so enabling it reports so instead of pretending.
func NotImplemented(title string) func(Env, Config) (bridge.Bridge, error) {
	return func(Env, Config) (bridge.Bridge, error) {
		return nil, fmt.Errorf("the %s bridge is not implemented in this version of the plugin: %w", title, bridge.ErrNotImplemented)
	}
}
