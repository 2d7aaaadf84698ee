// Package doctortest holds what the networks' doctor tests share: finding a
// check in a report, asserting that it failed naming the cause and the fix,
// and a server that accepts connections and never answers.
package doctortest

import (
	"net"
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
)

// Check is the report's check called name; it fails the test if there is
// none.
func Check(t testing.TB, r doctor.Report, name string) doctor.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in the report:\n%s", name, r.Text())
	return doctor.Check{}
}

// WantFailed checks that the check called name failed, its detail saying
// each of detail and its fix each of fix.
func WantFailed(t testing.TB, r doctor.Report, name string, detail, fix []string) {
	t.Helper()
	c := Check(t, r, name)
	if c.Passed {
		t.Fatalf("%s passed:\n%s", name, r.Text())
	}
	for _, w := range detail {
		if !strings.Contains(c.Detail, w) {
			t.Errorf("%s: the detail %q does not say %q", name, c.Detail, w)
		}
	}
	for _, w := range fix {
		if !strings.Contains(c.Fix, w) {
			t.Errorf("%s: the fix %q does not say %q", name, c.Fix, w)
		}
	}
}

// SilentServer listens on loopback, accepts every connection and never
// says a word, until the test ends; it returns its address.
func SilentServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}
