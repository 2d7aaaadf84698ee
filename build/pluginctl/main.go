// Command pluginctl installs and controls the plugin on a Mattermost server
// through the REST API (model.Client4).
//
// It connects in local mode over the server's unix socket when that socket
// exists (MM_LOCALSOCKETPATH, default /var/tmp/mattermost_local.socket; the
// server needs ServiceSettings.EnableLocalMode), and otherwise over HTTP(S) to
// MM_SERVICESETTINGS_SITEURL as a system admin, authenticated by
// MM_ADMIN_TOKEN (a personal access token) or MM_ADMIN_USERNAME and
// MM_ADMIN_PASSWORD.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const helpText = `Usage:
    pluginctl deploy <plugin id> <bundle path>   upload (replacing any installed version) and enable
    pluginctl disable <plugin id>
    pluginctl enable <plugin id>
    pluginctl reset <plugin id>                   disable, then enable

Environment:
    MM_LOCALSOCKETPATH           local-mode socket (default /var/tmp/mattermost_local.socket)
    MM_SERVICESETTINGS_SITEURL   server URL, used when the socket is not there
    MM_ADMIN_TOKEN               system admin's personal access token, or
    MM_ADMIN_USERNAME / MM_ADMIN_PASSWORD
`

// timeout bounds the whole command, upload included.
const timeout = 5 * time.Minute

func main() {
	log.SetFlags(0)
	log.SetPrefix("pluginctl: ")
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "pluginctl: %s\n\n%s", err, helpText)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("invalid number of arguments")
	}
	cmd, pluginID := args[0], args[1]
	if cmd == "deploy" && len(args) != 3 || cmd != "deploy" && len(args) != 2 {
		return errors.New("invalid number of arguments")
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	client, err := getClient(ctx)
	if err != nil {
		return err
	}

	switch cmd {
	case "deploy":
		return deploy(ctx, client, pluginID, args[2])
	case "disable":
		return disablePlugin(ctx, client, pluginID)
	case "enable":
		return enablePlugin(ctx, client, pluginID)
	case "reset":
		if err := disablePlugin(ctx, client, pluginID); err != nil {
			return err
		}
		return enablePlugin(ctx, client, pluginID)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func getClient(ctx context.Context) (*model.Client4, error) {
	socketPath := os.Getenv("MM_LOCALSOCKETPATH")
	if socketPath == "" {
		socketPath = model.LocalModeSocketPath
	}
	if socketAvailable(ctx, socketPath) {
		log.Printf("connecting in local mode over %s", socketPath)
		return model.NewAPIv4SocketClient(socketPath), nil
	}
	if os.Getenv("MM_LOCALSOCKETPATH") != "" {
		log.Printf("no socket at %s for local mode; trying credentials", socketPath)
	}

	siteURL := os.Getenv("MM_SERVICESETTINGS_SITEURL")
	if siteURL == "" {
		return nil, errors.New("no local-mode socket found and MM_SERVICESETTINGS_SITEURL is not set")
	}
	client := model.NewAPIv4Client(siteURL)

	if token := os.Getenv("MM_ADMIN_TOKEN"); token != "" {
		log.Printf("authenticating with a token against %s", siteURL)
		client.SetToken(token)
		return client, nil
	}

	username, password := os.Getenv("MM_ADMIN_USERNAME"), os.Getenv("MM_ADMIN_PASSWORD")
	if username != "" && password != "" {
		log.Printf("authenticating as %s against %s", username, siteURL)
		if _, _, err := client.Login(ctx, username, password); err != nil {
			return nil, fmt.Errorf("failed to log in as %s: %w", username, err)
		}
		return client, nil
	}

	return nil, errors.New("one of MM_ADMIN_TOKEN or MM_ADMIN_USERNAME/MM_ADMIN_PASSWORD must be set")
}

func socketAvailable(ctx context.Context, path string) bool {
	var d net.Dialer
	dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(dialCtx, "unix", path)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// deploy uploads the bundle, replacing any installed version, and enables
// the plugin. The server must allow uploads (PluginSettings.EnableUploads)
// unless local mode is used.
func deploy(ctx context.Context, client *model.Client4, pluginID, bundlePath string) error {
	bundle, err := os.Open(bundlePath)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", bundlePath, err)
	}
	defer bundle.Close()

	log.Printf("uploading %s", bundlePath)
	manifest, _, err := client.UploadPluginForced(ctx, bundle)
	if err != nil {
		return fmt.Errorf("failed to upload plugin bundle: %w", err)
	}
	if manifest != nil && manifest.Id != pluginID {
		return fmt.Errorf("uploaded bundle holds plugin %q, not %q", manifest.Id, pluginID)
	}

	return enablePlugin(ctx, client, pluginID)
}

func disablePlugin(ctx context.Context, client *model.Client4, pluginID string) error {
	log.Printf("disabling %s", pluginID)
	if _, err := client.DisablePlugin(ctx, pluginID); err != nil {
		return fmt.Errorf("failed to disable plugin: %w", err)
	}
	return nil
}

func enablePlugin(ctx context.Context, client *model.Client4, pluginID string) error {
	log.Printf("enabling %s", pluginID)
	if _, err := client.EnablePlugin(ctx, pluginID); err != nil {
		return fmt.Errorf("failed to enable plugin: %w", err)
	}
	return nil
}
