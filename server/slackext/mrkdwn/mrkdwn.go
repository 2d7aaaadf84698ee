// Package mrkdwn converts between Slack's mrkdwn and Mattermost markdown.
//
// STAND-IN: this is a minimal placeholder written in the Slack bridge's
// branch so the bridge builds and its tests run; the real converter is
// being written on its own branch (issue 11) with the same API, and the
// merge replaces this file. It handles only what the bridge's tests need:
// user and channel references, broadcasts, links and HTML entities.
package mrkdwn

import (
	"regexp"
	"strings"
)

// Resolver names the users and channels a Slack message refers to.
type Resolver interface {
	UserName(id string) string
	ChannelName(id string) string
}

var entity = regexp.MustCompile(`<([^<>]*)>`)

// ToMarkdown turns Slack mrkdwn into Mattermost markdown. mentions lists the
// Slack user IDs the text mentions, in order of first appearance.
func ToMarkdown(text string, r Resolver) (md string, mentions []string) {
	seen := map[string]bool{}
	md = entity.ReplaceAllStringFunc(text, func(m string) string {
		inner := m[1 : len(m)-1]
		target, label, hasLabel := strings.Cut(inner, "|")
		switch {
		case strings.HasPrefix(target, "@"):
			id := target[1:]
			if !seen[id] {
				seen[id] = true
				mentions = append(mentions, id)
			}
			name := label
			if r != nil {
				if n := r.UserName(id); n != "" {
					name = n
				}
			}
			if name == "" {
				name = id
			}
			return "@" + name
		case strings.HasPrefix(target, "#"):
			name := label
			if r != nil && name == "" {
				name = r.ChannelName(target[1:])
			}
			if name == "" {
				name = target[1:]
			}
			return "~" + name
		case strings.HasPrefix(target, "!"):
			// Broadcasts stay readable but notify nobody: the word joiner
			// after the @ ends the mention for Mattermost's parser.
			word, _, _ := strings.Cut(target[1:], "^")
			return "@\u2060" + word
		case hasLabel:
			return "[" + label + "](" + target + ")"
		default:
			return target
		}
	})
	md = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(md)
	return md, mentions
}

var mdLink = regexp.MustCompile(`\[([^\]]*)\]\(([^)\s]+)\)`)

// FromMarkdown turns Mattermost markdown into Slack mrkdwn. userIDs maps a
// Mattermost username (without the @) to the Slack user ID its mention
// becomes (<@U...>).
func FromMarkdown(md string, userIDs map[string]string) string {
	out := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(md)
	out = mdLink.ReplaceAllString(out, "<$2|$1>")
	for name, id := range userIDs {
		re := regexp.MustCompile(`(?i)@` + regexp.QuoteMeta(name) + `\b`)
		out = re.ReplaceAllLiteralString(out, "<@"+id+">")
	}
	return out
}
