// Command bridge-doctor runs the bridge plugin's doctor from the plugin's
// settings, for admins without a running plugin (before installing it, or
// when Mattermost is down):
//
//	go run ./cmd/bridge-doctor -settings settings.json [-network xmpp] [-rooms room@conference.example.org,...]
//
// settings.json holds the plugin's settings as the System Console saves
// them: either the plugin's own object ({"XMPPEnabled": true, ...}) or the
// server's whole config.json, where they are under
// PluginSettings.Plugins["com.mattermost.bridge"]. Secrets stay in that file,
// never on the command line. The checks are those of /xmppbridge doctor and
// the System Console's Test button; it exits 1 when one fails.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
)

// pluginID is where config.json keeps the plugin's settings.
const pluginID = "com.mattermost.bridge"

// networks are the plugin's networks that have a doctor.
func networks() []connector.Descriptor {
	return []connector.Descriptor{xmpp.Descriptor(), matrix.Descriptor(), slack.Descriptor()}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("bridge-doctor", flag.ContinueOnError)
	fs.SetOutput(out)
	file := fs.String("settings", "", "JSON file of the plugin's settings, or the server's config.json")
	only := fs.String("network", "", "check only this network (xmpp, matrix or slack); default: every enabled one")
	rooms := fs.String("rooms", "", "comma-separated remote rooms to check, as linked to channels")
	pluginURL := fs.String("plugin-url", "", "<Site URL>/plugins/"+pluginID+", where the homeserver reaches the plugin (Matrix)")
	asJSON := fs.Bool("json", false, "print the reports as JSON, as POST /api/v1/networks/{network}/test answers")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(out, "bridge-doctor: -settings is required")
		return 2
	}
	raw, err := readSettings(*file)
	if err != nil {
		fmt.Fprintf(out, "bridge-doctor: %v\n", err)
		return 2
	}
	env := connector.DoctorEnv{PluginURL: *pluginURL}
	for _, r := range strings.Split(*rooms, ",") {
		if r = strings.TrimSpace(r); r != "" {
			env.Rooms = append(env.Rooms, r)
		}
	}
	var reports []doctor.Report
	known := false
	for _, n := range networks() {
		if *only != "" && string(n.Network()) != *only {
			continue
		}
		known = true
		cfg, _ := n.Configure(raw, connector.Shared{}) // the doctor's Settings check names what is wrong
		if cfg == nil || (!cfg.Enabled() && *only == "") {
			continue
		}
		reports = append(reports, n.Doctor(context.Background(), cfg, env))
	}
	if !known {
		fmt.Fprintf(out, "bridge-doctor: unknown network %q (xmpp, matrix or slack)\n", *only)
		return 2
	}
	if len(reports) == 0 {
		fmt.Fprintln(out, "bridge-doctor: no network is enabled in these settings; name one with -network")
		return 2
	}
	passed := true
	for _, r := range reports {
		passed = passed && r.Passed
	}
	if *asJSON {
		e := json.NewEncoder(out)
		e.SetIndent("", "  ")
		_ = e.Encode(reports)
	} else {
		for _, r := range reports {
			fmt.Fprintln(out, r.Text())
		}
	}
	if !passed {
		return 1
	}
	return 0
}

// readSettings reads the plugin's settings from a file of them or from the
// server's config.json.
func readSettings(path string) (map[string]any, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the admin names the file
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		// Not the decoder's text: it may quote the file, secrets and all.
		return nil, fmt.Errorf("%s is not a JSON object", path)
	}
	if ps, ok := raw["PluginSettings"].(map[string]any); ok {
		plugins, _ := ps["Plugins"].(map[string]any)
		settings, ok := plugins[pluginID].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s has no settings for %s under PluginSettings.Plugins", path, pluginID)
		}
		return settings, nil
	}
	return raw, nil
}
