package testservers_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
)

// The README's compatibility table names each server the XMPP checks run
// on, with the version installed here: it is checked against the suite,
// not written from memory.
func TestREADMECompatibilityTable(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	_, table, ok := strings.Cut(text, "#### Compatibility")
	if !ok {
		t.Fatal("the README has no Compatibility section")
	}
	version := regexp.MustCompile(`^(\S+) (\d+\.\d+)`)
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			srv := kind.Start(t, testservers.Options{})
			m := version.FindStringSubmatch(srv.Program())
			if m == nil {
				t.Fatalf("no version in %q", srv.Program())
			}
			row := "| " + m[1] + " | " + m[2] + " "
			if !strings.Contains(table, row) {
				t.Errorf("the README's compatibility table has no row starting %q (installed: %s)", row, srv.Program())
			}
		})
	}
}
