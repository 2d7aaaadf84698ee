package mattermost

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Remote people must never notify a whole channel. Every post they make
// carries model.PostPropsMentionHighlightDisabled, and besides their
// @channel, @all and @here are made inert in the text itself, by the rules
// the server uses to find mentions (StandardMentionParser.ProcessText in
// server/channels/app/mention_parser_standard.go): it splits the text into
// words of letters, digits and ":.-_@", trims ":.-_" off a word's start and,
// one at a time, off its end, and splits a word that does not start with @
// once more at ".-:". So "_@channel_", "@here__" and "x.@all-hands" notify
// everyone, while "@all-hands" is a mention of the user all-hands.

// wordJoiner shows nothing and joins nothing the server parses: written
// right after the @, it ends the word there.
const wordJoiner = '\u2060'

// channelWide are the words that, after an @, notify a whole channel.
var channelWide = []string{"channel", "all", "here"}

// defangChannelMentions returns text with a word joiner after the @ of every
// channel-wide mention the server would find in it. It looks the same, and
// mentions of single users (@alice, @all-hands) stay as they are.
func defangChannelMentions(text string) string {
	if !strings.Contains(text, "@") {
		return text
	}
	var out strings.Builder
	out.Grow(len(text) + 8)
	w := wordState{lead: true}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == '@' {
			if n := channelWideAt(text[i+1:]); n > 0 && w.notifies(text, i+1+n) {
				out.WriteRune('@')
				out.WriteRune(wordJoiner)
				w.add('@')
				w.add(wordJoiner)
				i += size
				continue
			}
		}
		out.WriteString(text[i : i+size])
		w.add(r)
		i += size
	}
	return out.String()
}

// channelWideAt returns the length of the channel-wide word s starts with
// (in any case), or 0.
func channelWideAt(s string) int {
	for _, kw := range channelWide {
		if len(s) >= len(kw) && strings.EqualFold(s[:len(kw)], kw) {
			return len(kw)
		}
	}
	return 0
}

// wordState follows the word being written, as the server splits words.
type wordState struct {
	// lead: the word so far is empty or only ":.-_", which the server trims.
	lead bool
	// atFirst: the trimmed word starts with an @ (so it is not split again).
	atFirst bool
	// prev is the last character written.
	prev rune
}

func (w *wordState) add(r rune) {
	if !isWordRune(r) {
		*w = wordState{lead: true, prev: r}
		return
	}
	if w.lead && !strings.ContainsRune(":.-_", r) {
		w.lead, w.atFirst = false, r == '@'
	}
	w.prev = r
}

// notifies reports whether the @ about to be written, followed by a
// channel-wide word that ends at text[end], is a channel-wide mention. It
// errs on the side of yes, except where the word is a user's name.
func (w *wordState) notifies(text string, end int) bool {
	next, _ := utf8.DecodeRuneInString(text[end:])
	switch {
	case end == len(text) || !isWordRune(next):
		// "@all" ends the word: a mention wherever the word starts
		// (at worst a word joiner lands in an address like x@all).
		return true
	case unicode.IsLetter(next) || unicode.IsNumber(next):
		return false // @allison, @here2
	}
	if w.lead {
		// The trimmed word starts here: only punctuation may follow, which
		// the server trims off the end ("@here__", "@channel.").
		for _, r := range text[end:] {
			if !isWordRune(r) {
				return true
			}
			if !strings.ContainsRune(".-:_", r) {
				return false // @all-hands, @here_team: a user
			}
		}
		return true
	}
	// A word that does not start with @ is split at ".-:": "x.@all-hands"
	// holds "@all".
	return !w.atFirst && strings.ContainsRune(".-:", w.prev) && strings.ContainsRune(".-:", next)
}

// isWordRune reports whether the server's parser keeps r inside a word.
func isWordRune(r rune) bool {
	return r == ':' || r == '.' || r == '-' || r == '_' || r == '@' || unicode.IsLetter(r) || unicode.IsNumber(r)
}
