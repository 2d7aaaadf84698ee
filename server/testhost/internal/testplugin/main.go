// Command testplugin is a tiny plugin the test host's own tests load
// through the real plugin environment (see package hostcheck).
package main

import (
	"github.com/mattermost/mattermost/server/public/plugin"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/internal/testplugin/hostcheck"
)

func main() {
	plugin.ClientMain(hostcheck.New())
}
