package dendritetest

import (
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/homeservertest"
)

func TestDendrite(t *testing.T) {
	homeservertest.RunChecks(t, func(t testing.TB, opts Options) homeservertest.Server {
		s := Start(t, opts)
		t.Logf("Dendrite answered after %v at %s", s.StartupTime(), s.URL)
		return s
	})
}
