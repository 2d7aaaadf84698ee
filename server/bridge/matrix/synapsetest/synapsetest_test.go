package synapsetest

import (
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/homeservertest"
)

func TestSynapse(t *testing.T) {
	homeservertest.RunChecks(t, func(t testing.TB, opts Options) homeservertest.Server {
		s := Start(t, opts)
		t.Logf("Synapse %s answered after %v at %s", s.Version, s.StartupTime(), s.URL)
		return s
	})
}

func TestVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.160.0-1", "1.160.0", 0},
		{"1.161.0-1", "1.160.0", 1},
		{"1.99.0-2", "1.160.0", -1},
		{"1:1.160.1~rc1-1", "1.160.0", 1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	status := "Package: python3\nStatus: install ok installed\nVersion: 3.13\n\nPackage: matrix-synapse\nStatus: install ok installed\nVersion: 1.160.0-1\n"
	if v := installedVersion(status, "matrix-synapse"); v != "1.160.0-1" {
		t.Errorf("installedVersion = %q", v)
	}
	if v := installedVersion("Package: matrix-synapse\nStatus: deinstall ok config-files\nVersion: 1.1\n", "matrix-synapse"); v != "" {
		t.Errorf("installedVersion of a removed package = %q", v)
	}
}

// Without the chroot Start fails (it never skips) and says how to build it.
func TestFindWithoutTheChroot(t *testing.T) {
	t.Setenv(ChrootEnv, t.TempDir())
	_, _, err := Find()
	if err == nil || !strings.Contains(err.Error(), "make test-deps") {
		t.Fatalf("Find without a chroot: %v", err)
	}
}
