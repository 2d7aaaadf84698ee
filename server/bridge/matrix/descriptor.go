package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/command"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
)

// RegistrationFilename is what the registration download is saved as.
const RegistrationFilename = "mattermost-bridge-registration.yaml"

// Descriptor plugs the Matrix bridge into the plugin: /matrixbridge with
// its create and registration subcommands, the Matrix settings, the
// application-service endpoints the homeserver calls and the registration
// download.
func Descriptor() connector.Descriptor {
	return connector.Descriptor{
		Command: command.Spec{
			Trigger: "matrixbridge", Network: bridge.NetworkMatrix, Title: "Matrix",
			RoomArg: "room-id-or-alias", RoomExample: "#room:example.com", ParseRoom: ParseRoom,
		},
		Configure: configure,
		Build: func(env connector.Env, c connector.Config) (bridge.Bridge, error) {
			return New(c.(configured).cfg, env.Store, env.Logger)
		},
		Subcommands:  subcommands,
		Doctor:       Doctor,
		CreatesRooms: true,
		Routes: []connector.Route{
			{Path: "/_matrix/", Handle: serveAppService},
			{Path: "/api/v1/matrix/registration", Handle: serveRegistration},
		},
	}
}

// settings are the Matrix settings as plugin.json names them.
type settings struct {
	MatrixEnabled       bool
	MatrixHomeserverURL string
	MatrixServerName    string
	MatrixASToken       string
	MatrixHSToken       string
	MatrixUserPrefix    string
	MatrixBotLocalpart  string
	MatrixInviteServers string
}

// configured is what the bridge and the registration file are built from
// alike, so the tokens and namespaces the homeserver is given are the ones
// the bridge uses.
type configured struct {
	enabled bool
	cfg     Config
}

func (c configured) Enabled() bool { return c.enabled }

func (c configured) Secrets() []string { return connector.Secrets(c.cfg.ASToken, c.cfg.HSToken) }

func configure(raw map[string]any, shared connector.Shared) (connector.Config, error) {
	var s settings
	if err := connector.Decode(raw, &s); err != nil {
		return nil, err
	}
	if s.MatrixUserPrefix == "" {
		s.MatrixUserPrefix = "mm_"
	}
	if s.MatrixBotLocalpart == "" {
		s.MatrixBotLocalpart = "mattermostbridge"
	}
	invite, inviteErr := ParseServerList(s.MatrixInviteServers)
	c := configured{enabled: s.MatrixEnabled, cfg: Config{
		HomeserverURL: s.MatrixHomeserverURL,
		ServerName:    s.MatrixServerName,
		ASToken:       s.MatrixASToken,
		HSToken:       s.MatrixHSToken,
		UserPrefix:    s.MatrixUserPrefix,
		BotLocalpart:  s.MatrixBotLocalpart,
		MaxFileSize:   shared.MaxFileSize,
		InviteServers: invite,
	}}
	if !s.MatrixEnabled {
		return c, nil
	}
	if inviteErr != nil {
		// Validate cannot see the names ParseServerList refused.
		return c, errors.Join(fmt.Errorf("MatrixInviteServers: %w", inviteErr), c.cfg.Validate())
	}
	return c, c.cfg.Validate()
}

func subcommands(h connector.Host) []command.Subcommand {
	return []command.Subcommand{{
		Name: "registration",
		Help: "Show the application-service registration file to install on the homeserver",
		Run: func(context.Context, command.Call) (string, error) {
			y, err := registration(h)
			if err != nil {
				return "", err
			}
			return "Install this as the homeserver's application-service registration file (see the README), then restart the homeserver:\n```yaml\n" + y + "```", nil
		},
	}}
}

// registration renders the application-service registration file for the
// saved settings. Its error is a SetupError when the settings or the Site
// URL are not ready; its text never holds a secret.
func registration(h connector.Host) (string, error) {
	pluginURL, err := h.PluginURL()
	if err != nil {
		return "", err
	}
	c, ok := h.Config().(configured)
	if !ok {
		return "", errors.New("the Matrix settings are not loaded")
	}
	cfg := c.cfg
	if err := cfg.Validate(); err != nil {
		// Validate names settings, never their values.
		return "", connector.SetupError("Complete and save the Matrix settings first (generate both tokens in the System Console): " +
			strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	y, err := RegistrationYAML(cfg, pluginURL)
	if err != nil {
		return "", fmt.Errorf("render the Matrix registration: %w", err)
	}
	return y, nil
}

// serveAppService hands the application-service API to the running
// bridge. The homeserver has no Mattermost session: the bridge checks its
// hs_token.
func serveAppService(h connector.Host, w http.ResponseWriter, r *http.Request) {
	if b, ok := h.Running(); ok {
		if handler, ok := b.(http.Handler); ok {
			handler.ServeHTTP(w, r)
			return
		}
	}
	// A Matrix-style error: homeservers keep a transaction and send it
	// again later when the answer is not 200.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"errcode": "M_UNKNOWN", "error": "the Matrix bridge is not running"})
}

// serveRegistration lets a system admin download the registration file to
// install on the homeserver (the System Console's button).
func serveRegistration(h connector.Host, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	if !h.IsSystemAdmin(r) {
		http.Error(w, "only system admins can download the Matrix registration", http.StatusForbidden)
		return
	}
	y, err := registration(h)
	switch {
	case connector.IsSetupError(err):
		// 409: the request is fine, the settings are not ready for it.
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case err != nil:
		h.LogError("Could not render the Matrix registration", "error", err.Error())
		http.Error(w, "could not render the Matrix registration", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/yaml")
	hdr.Set("Content-Disposition", `attachment; filename="`+RegistrationFilename+`"`)
	// It holds both tokens: no cache may keep a copy.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(y))
	}
}

// ParseRoom accepts a room ID (!opaque:server) or alias (#name:server).
func ParseRoom(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 255 {
		return "", errors.New("longer than the 255 bytes Matrix allows")
	}
	if len(s) < 4 || (s[0] != '!' && s[0] != '#') {
		return "", errors.New("a Matrix room is a room ID like !abc:example.com or an alias like #room:example.com")
	}
	local, server, ok := strings.Cut(s[1:], ":")
	if !ok || local == "" || !ValidServerName(server) {
		return "", errors.New("a Matrix room ID or alias needs a :server part, as in #room:example.com")
	}
	return s, nil
}
