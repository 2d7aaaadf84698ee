//go:build race

package testhost

// raceEnabled: the test binary runs with the race detector, so plugins are
// built with -race too.
const raceEnabled = true
