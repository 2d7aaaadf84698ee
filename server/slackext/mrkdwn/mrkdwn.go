// Package mrkdwn converts message text between Mattermost's Markdown and
// Slack's mrkdwn, the markup of Slack messages' text field ("Formatting text
// for app surfaces" in Slack's API documentation).
//
// The two look alike and are not: mrkdwn has *bold*, _italic_, ~strike~,
// `code`, ```pre``` blocks and > quotes, its spans must start and end at
// word boundaries, and everything else that is special in it is written in
// angle brackets: <url|label> links, <@U…> and <#C…> mentions, <!here> and
// friends, <!date^…|fallback>. Because of that, Slack escapes exactly &, <
// and > as &amp;, &lt; and &gt; and nothing else, and has no way to escape
// its span markers. Mattermost's Markdown is CommonMark with GFM tables and
// ~~strike~~, plus @username mentions, ~channel links and :emoji:.
//
// ToMarkdown reads mrkdwn with the rules above (there is no Slack parser to
// reuse: Slack never published one) and escapes what Markdown would take for
// markup Slack did not show. FromMarkdown parses Markdown with goldmark, the
// parser the project already has through mautrix, and writes the tree as
// mrkdwn, escaping &, < and > everywhere but in the markup it writes itself.
//
// Safety, in the terms of the design notes' threat model:
//
//   - Text from Slack never notifies a whole Mattermost channel: <!here>,
//     <!channel>, <!everyone> and user groups (<!subteam^…>) become "@here"
//     and so on with a word joiner (U+2060) after the @. The word joiner is
//     invisible and, not being a letter, digit or one of ".-_:", ends the
//     word Mattermost's mention parser reads at the @, so the parser sees a
//     bare "@" and no keyword. A backtick code span would also keep the
//     server quiet but changes how the text looks; the word joiner is also
//     what the Mattermost bridge uses for plain-text @channel, so the two
//     agree and running both changes nothing more. Plain-text @here, @all
//     and @channel in Slack text (Slack does not treat those as broadcasts)
//     get the same treatment.
//   - <@U…> mentions become the person's name, also behind a word joiner,
//     never a Mattermost @mention: the Slack person is not the Mattermost
//     user of the same name. ToMarkdown returns the IDs so the caller can
//     record who was mentioned.
//   - Text from Mattermost never becomes a Slack broadcast or mention: every
//     &, < and > of its text is escaped, so the only < in FromMarkdown's
//     output open links it writes (with an http, https, ftp or mailto URL)
//     or the <@U…> of a userIDs entry.
//   - Neither direction makes a link of text that was not one, and links
//     only carry http, https, ftp and mailto URLs; others (javascript:...)
//     are shown as text.
//   - Invalid UTF-8 is replaced with U+FFFD. ToMarkdown runs in time linear
//     in its input. FromMarkdown is bounded instead: goldmark is superlinear
//     on some constructed input, so quote nesting is capped before parsing
//     and input past MaxParsed (more than a Mattermost post holds) is
//     converted as plain text, in linear time.
package mrkdwn

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Resolver looks up names for Slack IDs found in text; a nil Resolver or an
// empty answer leaves the ID readable (e.g. "@U123").
type Resolver interface {
	UserName(id string) string    // display name for <@U…> / <@W…>
	ChannelName(id string) string // name for <#C…> without a label
}

// wordJoiner is invisible and joins nothing Mattermost's mention parser
// reads: written right after an @ or ~, it keeps the name after it from
// being a mention or a channel link.
const wordJoiner = "\u2060"

// broadcasts are the words that, after an @, notify many people: Slack's
// <!here>, <!channel> and <!everyone>, and Mattermost's @all.
var broadcasts = [...]string{"channel", "everyone", "here", "all"}

// linkSchemes are the URL schemes a converted link may carry. Both
// networks link these; anything else stays text.
var linkSchemes = [...]string{"http:", "https:", "ftp:", "mailto:"}

// linkable reports whether url has one of linkSchemes.
func linkable(url string) bool {
	for _, s := range linkSchemes {
		if len(url) > len(s) && strings.EqualFold(url[:len(s)], s) {
			return true
		}
	}
	return false
}

func isSpace(r rune) bool { return unicode.IsSpace(r) }

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// runeBefore returns the rune ending at s[i], or ' ' at the start: for word
// boundaries the edges of a line behave as white space.
func runeBefore(s string, i int) rune {
	if i <= 0 {
		return ' '
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return r
}

// runeAt returns the rune starting at s[i], or ' ' at the end.
func runeAt(s string, i int) rune {
	if i >= len(s) {
		return ' '
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r
}

// broadcastAt returns the length of the broadcast word s starts with (in
// any case) when no letter or digit follows it, or 0. It errs towards
// broadcasts: "@all-hands" counts, since Mattermost's parser trims or
// splits at "-" in some positions.
func broadcastAt(s string) int {
	for _, w := range broadcasts {
		if len(s) >= len(w) && strings.EqualFold(s[:len(w)], w) && !isAlnum(runeAt(s, len(w))) {
			return len(w)
		}
	}
	return 0
}

// oneLine replaces line breaks and other control characters in a name or
// label from the other network with spaces, so it cannot start a line of
// its own (a heading, a quote, a fence) where it is put.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// MentionText is how ToMarkdown writes a mention of the person called name
// in running text (behind a word joiner, escaped), so a caller can name
// the mention as it appears in the text.
func MentionText(name string) string {
	md, _ := ToMarkdown("x <@U0>", fixedName(name))
	return strings.TrimPrefix(md, "x ")
}

// fixedName resolves every user to one name.
type fixedName string

func (n fixedName) UserName(string) string    { return string(n) }
func (n fixedName) ChannelName(string) string { return "" }
