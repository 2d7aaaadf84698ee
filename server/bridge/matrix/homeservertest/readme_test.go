package homeservertest_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/dendritetest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/synapsetest"
)

// The README's Matrix compatibility table names each homeserver the Matrix
// checks run on, with the version the tests use: it is checked against
// what the suite finds, not written from memory.
func TestREADMECompatibilityTable(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, matrixSection, ok := strings.Cut(string(readme), "\n### Matrix\n")
	if !ok {
		t.Fatal("the README has no Matrix section")
	}
	matrixSection, _, _ = strings.Cut(matrixSection, "\n### ")
	_, table, ok := strings.Cut(matrixSection, "#### Compatibility")
	if !ok {
		t.Fatal("the README's Matrix section has no Compatibility table")
	}
	_, synapseVersion, err := synapsetest.Find()
	if err != nil {
		t.Fatal(err)
	}
	for name, version := range map[string]string{"Dendrite": dendritetest.Version, "Synapse": synapseVersion} {
		m := regexp.MustCompile(`^\d+\.\d+`).FindString(version)
		if m == "" {
			t.Fatalf("no version in %s's %q", name, version)
		}
		if row := "| " + name + " | " + m + " "; !strings.Contains(table, row) {
			t.Errorf("the README's Matrix compatibility table has no row starting %q (found: %s %s)", row, name, version)
		}
	}
}
