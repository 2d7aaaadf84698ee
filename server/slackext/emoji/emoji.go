// Package emoji maps emoji names between Slack and Mattermost.
//
// STAND-IN: a minimal placeholder written in the Slack bridge's branch so
// the bridge builds; the real table is being written on its own branch
// (issue 11) with the same API, and the merge replaces this file.
package emoji

import "strings"

var toMattermost = map[string]string{"thumbsup": "+1", "thumbsdown": "-1", "simple_smile": "slightly_smiling_face"}

var toSlack = map[string]string{"slightly_smiling_face": "simple_smile"}

// ToMattermost returns the Mattermost name of a Slack emoji ("+1" for
// "thumbsup"); skin tones ("::skin-tone-2") are dropped.
func ToMattermost(slackName string) string {
	name, _, _ := strings.Cut(slackName, "::")
	if mm, ok := toMattermost[name]; ok {
		return mm
	}
	return name
}

// ToSlack returns the Slack name of a Mattermost emoji.
func ToSlack(mattermostName string) string {
	if s, ok := toSlack[mattermostName]; ok {
		return s
	}
	return mattermostName
}
