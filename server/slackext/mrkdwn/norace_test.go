//go:build !race

package mrkdwn

const raceEnabled = false
