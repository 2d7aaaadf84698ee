package mattermost

import (
	"strings"
	"testing"
	"unicode"
)

// channelWideMentions says which channel-wide mentions (here, channel, all)
// the Mattermost server finds in text when it decides whom a post notifies.
// server/public has no notification parser (model.Post.DisableMentionHighlights
// is a coarser regexp that only decides the highlight prop, which the bridge
// sets on every remote post anyway, and it takes @all-hands for @all), so
// this ports the rules of the server's own: StandardMentionParser.ProcessText and checkForMention
// in server/channels/app/mention_parser_standard.go (Mattermost v9/v10). It
// leaves out the server's removal of code spans first (removeCodeFromMessage),
// which can only make it find more.
func channelWideMentions(text string) []string {
	var found []string
	check := func(word string) {
		switch w := strings.ToLower(word); w {
		case "@here", "@channel", "@all":
			found = append(found, w)
		}
	}
	for _, word := range strings.FieldsFunc(text, func(c rune) bool {
		// The server splits on whatever cannot be part of an at-mention
		// or an emoji name.
		return !(c == ':' || c == '.' || c == '-' || c == '_' || c == '@' || unicode.IsLetter(c) || unicode.IsNumber(c))
	}) {
		if word[0] == ':' && word[len(word)-1] == ':' {
			continue // taken for an emoji
		}
		word = strings.TrimLeft(word, ":.-_")
		before := len(found)
		check(word)
		if len(found) > before {
			continue
		}
		// Trailing punctuation is trimmed one character at a time.
		stripped := word
		for stripped != "" && strings.LastIndexAny(stripped, ".-:_") == len(stripped)-1 {
			stripped = stripped[:len(stripped)-1]
			check(stripped)
			if len(found) > before {
				break
			}
		}
		if len(found) > before {
			continue
		}
		if !strings.HasPrefix(word, "@") && strings.ContainsAny(word, ".-:") {
			// A word that may hold sentence ends is split once more.
			for _, part := range strings.FieldsFunc(word, func(c rune) bool { return c == '.' || c == '-' || c == ':' }) {
				check(part)
			}
		}
	}
	return found
}

// visible is text as people see it: the defanging adds only characters that
// show nothing.
func visible(text string) string { return strings.ReplaceAll(text, "\u2060", "") }

func assertInert(t *testing.T, in string) {
	t.Helper()
	out := defangChannelMentions(in)
	if m := channelWideMentions(out); len(m) > 0 {
		t.Errorf("defanged %q is %q, and the server's parser still finds %v in it", in, out, m)
	}
	if visible(out) != visible(in) {
		t.Errorf("defanged %q shows as %q", in, visible(out))
	}
}

func TestChannelWideMentionsStayInert(t *testing.T) {
	for _, in := range []string{
		"@channel", "@all", "@here", "@ALL", "@Here", "hi @channel!",
		"_@channel_", "@here__", "(@all)", "**@channel**", "@channel.", "@here:", "@here-", "@all...",
		"__@channel", ":@all", ".@here", "x.@channel", "x-@all-hands", "a:@here:b", "x.@channel.foo",
		"~~@all~~", "`@channel`", "> @here", "[@all](http://x)", "@channel@all", "@@here", "email@all",
		"-_-@here", "@all\u2060", "\u2060@channel", "@here\u200b", "«@all»", "@channel_ @all_ @here_",
	} {
		assertInert(t, in)
	}
	// The parser agrees these are channel-wide mentions before defanging.
	for _, in := range []string{"_@channel_", "@here__", "(@all)", "**@channel**", "@channel.", "@ALL", "@here:", "x-@all-hands"} {
		if len(channelWideMentions(in)) == 0 {
			t.Errorf("the ported parser misses the mention in %q", in)
		}
	}
}

func TestUserMentionsStayAsTheyAre(t *testing.T) {
	for _, in := range []string{
		"@alice", "hi @alice.", "@allison", "@channels", "@here2", "@all-hands", "@here_team", "@channel.ops",
		"@alice:xmpp", "see @bob-smith, @c_d", "no mention at all", "here and all over the channel",
	} {
		if out := defangChannelMentions(in); out != in {
			t.Errorf("defanged %q into %q; it notifies no whole channel", in, out)
		}
	}
}

func FuzzChannelWideMentionsStayInert(f *testing.F) {
	for _, s := range []string{
		"@channel", "_@channel_", "@here__", "(@all)", "**@channel**", "@channel.", "@ALL", "@here:",
		"x-@all-hands", "@all-hands", "a.@here_x", ":@channel:", "@channel@here.", "email@all.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		assertInert(t, in)
	})
}
