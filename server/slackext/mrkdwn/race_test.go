//go:build race

package mrkdwn

// raceEnabled: the race detector's bookkeeping makes timings too noisy to
// compare, so the linear-time tests only check them without it.
const raceEnabled = true
