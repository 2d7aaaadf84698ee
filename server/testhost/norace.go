//go:build !race

package testhost

const raceEnabled = false
