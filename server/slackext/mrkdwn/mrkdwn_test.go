package mrkdwn

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

type names map[string]string

func (n names) UserName(id string) string    { return n[id] }
func (n names) ChannelName(id string) string { return n[id] }

var resolver = names{"U1": "Alice", "W2": "bob", "C1": "general", "UEVIL": "x\n# @here"}

const wj = "\u2060"

func TestToMarkdown(t *testing.T) {
	tests := []struct {
		name, in, want string
		mentions       []string
	}{
		{"empty", "", "", nil},
		{"plain", "just text", "just text", nil},
		{"bold", "*bold*", "**bold**", nil},
		{"italic", "_it_", "_it_", nil},
		{"strike", "~gone~", "~~gone~~", nil},
		{"code", "`x := *y*`", "`x := *y*`", nil},
		{"nested", "*bold _and it_*", "**bold _and it_**", nil},
		{"bold italic", "*_both_*", "**_both_**", nil},
		{"intraword not styled", "a*b*c snake_case_x", `a\*b\*c snake\_case\_x`, nil},
		{"spaced markers", "a * b * c", `a \* b \* c`, nil},
		{"unclosed", "*not closed", `\*not closed`, nil},
		{"not across lines", "*a\nb*", "\\*a\nb\\*", nil},
		{"punctuation around", "(*b*), _i_.", "(**b**), _i_.", nil},
		{"italic after name", "<@U1>_x_", "@" + wj + "Alice*x*", []string{"U1"}},
		{"double markers", "**x**", `\***x**\*`, nil},
		{"entities", "a &amp; b &lt;c&gt;", `a & b \<c\>`, nil},
		{"entity stays literal", "&amp;copy; &amp;#42;", `\&copy; \&#42;`, nil},
		{"other entities not decoded", "&quot;", `\&quot;`, nil},
		{"markdown escaped", "**x** [a](b) # h `", "\\***x**\\* \\[a\\](b) # h \\`", nil},
		{"heading escaped", "# not a heading", `\# not a heading`, nil},
		{"hashtag", "#tag", "#tag", nil},
		{"setext escaped", "title\n---\n===", "title\n\\---\n\\===", nil},
		{"list kept", "- one\n1. two", "- one\n1. two", nil},
		{"indented", "    code?", "\u00a0\u00a0\u00a0\u00a0code?", nil},
		{"pipes", "a | b", `a \| b`, nil},
		{"backslash", `C:\dir`, `C:\\dir`, nil},
		{"quote", "&gt; quoted *b*", "> quoted **b**", nil},
		{"raw quote", "> quoted", "> quoted", nil},
		{"quote then text", "&gt; q\nafter", "> q\n\nafter", nil},
		{"quote lines", "&gt; a\n&gt; b", "> a\n> b", nil},
		{"empty quote line", "&gt;\n&gt; b", ">\n> b", nil},
		{"no nested quotes", "&gt; &gt; x", `> \> x`, nil},
		{"quote rest", "&gt;&gt;&gt; a\nb\n\nc", "> a\n> b\n>\n> c", nil},
		{"pre", "```a *b*\n<c>```", "```\na *b*\n<c>\n```", nil},
		{"pre newlines", "```\ncode\n```", "```\ncode\n```", nil},
		{"pre inline", "see ```x``` now", "see \n```\nx\n```\nnow", nil},
		{"pre in quote", "&gt; ```x\ny```", "> ```\n> x\n> y\n> ```", nil},
		{"pre entities", "```a &amp;&amp; b &lt;- c```", "```\na && b <- c\n```", nil},
		{"pre with link", "```see <https://e.com|docs>```", "```\nsee docs (https://e.com)\n```", nil},
		{"pre with mention", "```<@U1> <!here>```", "```\n@" + wj + "Alice @" + wj + "here\n```", []string{"U1"}},
		{"unclosed pre", "```x", "\\`\\`\\`x", nil},
		{"empty pre", "``````", "\\`\\`\\`\\`\\`\\`", nil},
		{"code entities", "`a &lt;b&gt;`", "`a <b>`", nil},
		{"code ends at backtick", "`<https://e.com|a`b>`", "`<https://e.com|a`b\\>\\`", nil},
		{"link", "<https://e.com/a|docs>", "[docs](https://e.com/a)", nil},
		{"link bare", "<https://e.com/a>", "<https://e.com/a>", nil},
		{"link same label", "<https://e.com|https://e.com>", "[https://e.com](https://e.com)", nil},
		{"link query", "<https://e.com/?a=1&amp;b=2|q>", "[q](https://e.com/?a=1&b=2)", nil},
		{"link parens", "<https://e.com/a_(b)|w>", "[w](https://e.com/a_%28b%29)", nil},
		{"link entity-like", "<https://e.com/?x&amp;copy;|w>", "[w](https://e.com/?x%26copy;)", nil},
		{"link label escaped", "<https://e.com|*a* [b](c)>", `[\*a\* \[b\](c)](https://e.com)`, nil},
		{"mailto", "<mailto:a@b.c|a@b.c>", "[a@b.c](mailto:a@b.c)", nil},
		{"javascript not a link", "<javascript:alert(1)|click>", `click (javascript:alert(1))`, nil},
		{"javascript bare", "<javascript:alert(1)>", `javascript:alert(1)`, nil},
		{"unknown token", "<foo>", `\<foo\>`, nil},
		{"lone angle", "a < b > c", `a \< b \> c`, nil},
		{"mention", "hi <@U1>!", "hi @" + wj + "Alice!", []string{"U1"}},
		{"mention W", "<@W2>", "@" + wj + "bob", []string{"W2"}},
		{"mention unknown", "<@U9>", "@" + wj + "U9", []string{"U9"}},
		{"mention label", "<@U9|carol>", "@" + wj + "carol", []string{"U9"}},
		{"mentions once", "<@U1> <@U1> <@W2>", "@" + wj + "Alice @" + wj + "Alice @" + wj + "bob", []string{"U1", "W2"}},
		{"hostile name", "<@UEVIL>", "@" + wj + "x # @" + wj + "here", []string{"UEVIL"}},
		{"not a user id", "<@alice>", `\<@alice\>`, nil},
		{"channel label", "<#C9|random>", "~" + wj + "random", nil},
		{"channel resolved", "<#C1>", "~" + wj + "general", nil},
		{"channel unknown", "<#C9>", "~" + wj + "C9", nil},
		{"here", "<!here>", "@" + wj + "here", nil},
		{"here label", "<!here|@here>", "@" + wj + "here", nil},
		{"channel broadcast", "<!channel>", "@" + wj + "channel", nil},
		{"everyone", "<!everyone>", "@" + wj + "everyone", nil},
		{"subteam", "<!subteam^S1|@devs>", "@" + wj + "devs", nil},
		{"subteam bare", "<!subteam^S1>", "@" + wj + "S1", nil},
		{"date", "<!date^1392734382^{date_short}|Feb 18, 2014>", "Feb 18, 2014", nil},
		{"date with link", "<!date^1392734382^{date}^https://e.com|Feb 18>", "Feb 18", nil},
		{"date no fallback", "<!date^1^{date}>", `\<!date^1^{date}\>`, nil},
		{"plain broadcasts", "@here @Channel @all @everyone", "@" + wj + "here @" + wj + "Channel @" + wj + "all @" + wj + "everyone", nil},
		{"plain broadcast punctuation", "(@here) @here_", "(@" + wj + "here) @" + wj + `here\_`, nil},
		{"not broadcasts", "@allison @here2 me@here.com", "@allison @here2 me@here.com", nil},
		{"plain mention kept", "@alice", "@alice", nil},
		{"emoji", ":smile: :+1::skin-tone-2:", ":smile: :+1_light_skin_tone:", nil},
		{"emoji renamed", ":men-with-bunny-ears-partying:", ":dancing_men:", nil}, // Mattermost's primary name (emoji.ToMattermost)
		{"emoji underscores", ":smile_cat: :_x_:", ":smile_cat: :*x*:", nil},
		{"bare url", "see https://e.com/a_b*c* now", "see https://e.com/a_b*c\\* now", nil},
		{"bare url entity", "https://e.com/?a&amp;b", "https://e.com/?a&b", nil},
		{"styled link", "*<https://e.com|a*b>*", "**[a\\*b](https://e.com)**", nil},
		{"invalid utf8", "a\xffb", "a\uFFFDb", nil},
		{"crlf", "a\r\nb", "a\nb", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, mentions := ToMarkdown(tt.in, resolver)
			if got != tt.want {
				t.Errorf("ToMarkdown(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if strings.Join(mentions, ",") != strings.Join(tt.mentions, ",") {
				t.Errorf("mentions = %v, want %v", mentions, tt.mentions)
			}
		})
	}
}

func TestToMarkdownNilResolver(t *testing.T) {
	got, mentions := ToMarkdown("<@U1> <#C1>", nil)
	if want := "@" + wj + "U1 ~" + wj + "C1"; got != want || len(mentions) != 1 {
		t.Errorf("got %q %v, want %q [U1]", got, mentions, want)
	}
}

func TestFromMarkdown(t *testing.T) {
	ids := map[string]string{"alice": "U1", "Bob": "W2", "evil": "!channel", "evil2": "U1><!here"}
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"plain", "just text", "just text"},
		{"bold", "**bold** __b__", "*bold* *b*"},
		{"italic", "*it* _it_", "_it_ _it_"},
		{"strike", "~~gone~~", "~gone~"},
		{"single tilde", "~town-square ~x~", "~town-square ~x~"},
		{"bold italic", "***both***", "_*both*_"},
		{"nested same", "**a **b** c**", "*a b c*"},
		{"code", "`a *b* <c> &amp;`", "`a *b* &lt;c&gt; &amp;amp;`"},
		{"code mention", "`@alice <!here>`", "`@alice &lt;!here&gt;`"},
		{"fence", "```go\nif a < b && c {\n  **x**\n}\n```", "```\nif a &lt; b &amp;&amp; c {\n  **x**\n}\n```"},
		{"fence with backticks", "````\n```\n````", "```\n`\u200b``\n```"},
		{"indented code", "    x <- 1", "```\nx &lt;- 1\n```"},
		{"escapes", `\*not\* \_it\_ \<b\>`, "*not* _it_ &lt;b&gt;"},
		{"entities", "&lt;!channel&gt; &amp; &copy; &#64;here", "&lt;!channel&gt; &amp; © @here"},
		{"broadcast text", "<!channel> <!here|x> <@U123> <#C1>", "&lt;!channel&gt; &lt;!here|x&gt; &lt;@U123&gt; &lt;#C1&gt;"},
		{"mention", "hi @alice and @bob.", "hi <@U1> and <@W2>."},
		{"mention case", "@Alice", "<@U1>"},
		{"mention unknown", "@carol @alice_x @alice2 x@alice", "@carol @alice_x @alice2 x@alice"},
		{"mention trailing punct", "@alice: @alice- @alice_", "<@U1>: <@U1>- <@U1>_"},
		{"mention bad id ignored", "@evil @evil2", "@evil @evil2"},
		{"mention in emphasis", "**@alice**", "*<@U1>*"},
		{"mention in link", "[@alice](https://e.com)", "<https://e.com|@alice>"},
		{"link", "[docs](https://e.com/d)", "<https://e.com/d|docs>"},
		{"link same text", "[https://e.com](https://e.com)", "<https://e.com>"},
		{"link styled text", "[**b** x](https://e.com)", "<https://e.com|b x>"},
		{"link pipe and amp", "[a|b](https://e.com/?x=1&y=2|3)", "<https://e.com/?x=1&amp;y=2%7C3|a|b>"},
		{"link label angle", "[<!here>](https://e.com)", "<https://e.com|&lt;!here&gt;>"},
		{"link javascript", "[click](javascript:alert(1))", "click (javascript:alert(1))"},
		{"link relative", "[p](/team/pl/abc)", "p (/team/pl/abc)"},
		{"mailto", "[mail me](mailto:a@b.c)", "<mailto:a@b.c|mail me>"},
		{"image", "![alt](https://e.com/i.png)", "<https://e.com/i.png|alt>"},
		{"autolink", "<https://e.com/a>", "<https://e.com/a>"},
		{"bare url", "see https://e.com/a?b=1&c=2 now", "see <https://e.com/a?b=1&amp;c=2> now"},
		{"www", "www.example.com", "<http://www.example.com|www.example.com>"},
		{"email", "a@b.com", "a@b.com"},
		{"heading", "# Title **b** _i_", "*Title b _i_*"},
		{"heading levels", "### Third", "*Third*"},
		{"list", "- a\n- b\n  - c\n* d", "• a\n• b\n  • c\n\n• d"},
		{"ordered", "3. x\n4. y", "3. x\n4. y"},
		{"loose list", "- a\n\n- b", "• a\n• b"},
		{"list paragraphs", "- a\n\n  more", "• a\n  more"},
		{"quote", "> q **b**\n> q2", "> q *b*\n> q2"},
		{"quote paragraphs", "> a\n>\n> b", "> a\n> \n> b"},
		{"nested quote", "> a\n> > b", "> a\n> \n> b"},
		{"quote list", "> - a\n> - b", "> • a\n> • b"},
		{"quote code", "> ```\n> x\n> ```", "> ```\n> x\n> ```"},
		{"thematic break", "a\n\n---\n\nb", "a\n\n---\n\nb"},
		{"paragraphs", "a\n\nb", "a\n\nb"},
		{"line breaks", "a\nb  \nc\\\nd", "a\nb\nc\nd"},
		{"table", "| a | bb |\n|---|:-:|\n| 1 | **2** |\n| 333 | 4 |", "```\na   | bb\n----|---\n1   | 2\n333 | 4\n```"},
		{"table escapes", "| <x> |\n|---|\n| & |", "```\n&lt;x&gt;\n---\n&amp;\n```"},
		{"html", "<b>bold</b>", "&lt;b&gt;bold&lt;/b&gt;"},
		{"html block", "<div>\nx\n</div>", "&lt;div&gt;\nx\n&lt;/div&gt;"},
		{"emoji", ":fu: :+1_light_skin_tone: :smile: :custom:", ":middle_finger: :+1::skin-tone-2: :smile: :custom:"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromMarkdown(tt.in, ids); got != tt.want {
				t.Errorf("FromMarkdown(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// Slack text that both sides can express comes back as it was.
func TestRoundTripFromSlack(t *testing.T) {
	for _, s := range []string{
		"plain text",
		"*bold* _it_ ~strike~ `code`",
		"*bold _it_ ~both~*",
		"a &amp; b &lt;c&gt;",
		"<https://e.com/a?b=1&amp;c=2|docs> and <https://e.com>",
		"<mailto:a@b.c|write>",
		"line one\nline two",
		":smile: :+1::skin-tone-3:",
		"```\ncode *x* &lt;y&gt;\n```",
		"1. a\n2. b",
	} {
		md, _ := ToMarkdown(s, nil)
		if back := FromMarkdown(md, nil); back != s {
			t.Errorf("%q -> %q -> %q", s, md, back)
		}
	}
	// Quotes come back with a literal >, which Slack reads the same.
	md, _ := ToMarkdown("&gt; q *b*", nil)
	if back := FromMarkdown(md, nil); back != "> q *b*" {
		t.Errorf("quote: %q -> %q", md, back)
	}
}

// Markdown that both sides can express comes back as it was.
func TestRoundTripFromMarkdown(t *testing.T) {
	for _, s := range []string{
		"plain text",
		"**bold** _it_ ~~strike~~ `code`",
		"**bold _it_ ~~both~~**",
		"[docs](https://e.com/a) and <https://e.com>",
		"line one\nline two",
		"```\ncode *x* <y>\n```",
		"> quoted",
		"1. a\n2. b",
		"a \\< b & c",
	} {
		sl := FromMarkdown(s, nil)
		if back, _ := ToMarkdown(sl, nil); back != s {
			t.Errorf("%q -> %q -> %q", s, sl, back)
		}
	}
}

// serverBroadcasts returns the channel-wide mentions Mattermost's server
// would find in text, by its rules (StandardMentionParser.ProcessText in
// server/channels/app/mention_parser_standard.go): words of letters,
// digits and ":.-_@", ":.-_" trimmed off both ends; a word not starting
// with @ is split again at ".-:".
func serverBroadcasts(text string) []string {
	isWord := func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsNumber(r) || strings.ContainsRune(":.-_@", r)
	}
	var found []string
	check := func(w string) {
		w = strings.Trim(w, ":.-_")
		switch strings.ToLower(w) {
		case "@here", "@channel", "@all":
			found = append(found, w)
		}
	}
	for _, word := range strings.FieldsFunc(text, func(r rune) bool { return !isWord(r) }) {
		check(word)
		if !strings.HasPrefix(strings.TrimLeft(word, ":.-_"), "@") {
			for _, part := range strings.FieldsFunc(word, func(r rune) bool { return strings.ContainsRune(".-:", r) }) {
				check(part)
			}
		}
	}
	return found
}

func TestBroadcastsAreInert(t *testing.T) {
	if serverBroadcasts("hi @here") == nil || serverBroadcasts("x.@all-y") == nil || serverBroadcasts("@channel.") == nil {
		t.Fatal("the checker misses broadcasts")
	}
	for _, in := range []string{
		"<!here> <!channel> <!everyone> <!here|here>",
		"<!subteam^S1|@here>", "<@U1|here>", "<#C9|here>",
		"@here @channel @all @HERE (@here) _@here_ x.@all-hands @here__",
		"`<!here>` ```<!channel> @all```",
		"<https://e.com|@here> <!date^1^{date}|@channel>",
	} {
		md, _ := ToMarkdown(in, names{"U1": "@all"})
		if b := serverBroadcasts(md); b != nil {
			t.Errorf("ToMarkdown(%q) = %q: the server finds %v", in, md, b)
		}
	}
}

func TestChannelLinksAreInert(t *testing.T) {
	md, _ := ToMarkdown("<#C1|town-square>", nil)
	if strings.Contains(md, "~town-square") {
		t.Errorf("%q would link Mattermost's ~town-square", md)
	}
}

// checkSlack reports markup in FromMarkdown's output that it must never
// write: a < that opens anything but a link with an allowed scheme or a
// mention of one of ids.
func checkSlack(t *testing.T, in, out string, ids map[string]string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("FromMarkdown(%q) is not valid UTF-8: %q", in, out)
	}
	allowed := map[string]bool{}
	for _, id := range ids {
		allowed["<@"+id+">"] = true
	}
	for i := strings.IndexByte(out, '<'); i >= 0; i = nextLT(out, i) {
		rest := out[i:]
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			t.Fatalf("FromMarkdown(%q) = %q: unclosed < at %d", in, out, i)
		}
		tok := rest[:end+1]
		if allowed[tok] && slackID(tok[2:len(tok)-1], "UW") {
			continue
		}
		if !linkable(tok[1:]) || strings.ContainsAny(tok[1:len(tok)-1], "<") {
			t.Fatalf("FromMarkdown(%q) = %q: token %q was not made by the converter", in, out, tok)
		}
	}
}

func nextLT(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '<')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

func TestFromMarkdownHostile(t *testing.T) {
	ids := map[string]string{"alice": "U1"}
	for _, in := range []string{
		"<!channel>", "<!here>", "<@U123>", "<#C1>", "<!subteam^S1>",
		"&lt;!channel&gt;", "&#60;!here&#62;", "\\<!here\\>", "<<!here>>",
		"[<!here>](https://e.com)", "[x](https://e.com/<!here>)", "[x](<https://e.com/a b>)",
		"<https://e.com/<!here>>", "`<!channel>`", "```\n<!channel>\n```",
		"<div><!here></div>", "| <!here> |\n|---|\n| <@U1> |",
		"[x](https://e.com|<!here>)", "![<@U1>](https://e.com)", "@alice<!here>",
		"[a](javascript:alert(1))", "<javascript:alert(1)>", "[a](data:text/html,<script>)",
		"**[x](https://e.com)**", "[[x](https://a.com)](https://b.com)",
		"<mailto:a@b.c>", "<HTTPS://E.COM>", "\x00<!here>", "a\xff<\xfe!here>",
	} {
		out := FromMarkdown(in, ids)
		checkSlack(t, in, out, ids)
		if strings.Contains(in, "javascript:") && strings.Contains(out, "<javascript") {
			t.Errorf("FromMarkdown(%q) = %q links javascript:", in, out)
		}
	}
}

func TestToMarkdownHostile(t *testing.T) {
	for _, in := range []string{
		"[x](javascript:alert(1))", "<javascript:alert(1)|x>", "&lt;javascript:alert(1)|x&gt;",
		"<https://e.com|[y](javascript:alert(1))>", "<https://e.com)[x](javascript:alert(1)|z>",
		"<<<<>>>>", "<|>", "<@>", "<#>", "<!>", "<!date>", "<https://e.com|>", "<|x>",
		"*_~`*_~`", "``` ``` ```", "&gt;&gt;&gt;", "&amp;lt;script&amp;gt;",
	} {
		md, _ := ToMarkdown(in, nil)
		if !utf8.ValidString(md) {
			t.Errorf("ToMarkdown(%q) is not valid UTF-8", in)
		}
		if strings.Contains(strings.ReplaceAll(md, `\]`, ""), "](javascript") {
			t.Errorf("ToMarkdown(%q) = %q makes a javascript: link", in, md)
		}
		if strings.Contains(in, "&lt;") && strings.Contains(md, "](") {
			t.Errorf("ToMarkdown(%q) = %q makes a link of text", in, md)
		}
	}
}

var hostilePatterns = []string{
	"*", "_", "~", "`", "<", ">", "<@U1>", "*a ", "_a ", "~a ", "[", "](", "<x|", "```",
	"&gt; ", "&amp;", ":+1:", ":a", "@here ", "https://e.com/", "\n", "**", "[a](", "<!", "|",
	"*a_b~c`d<e", "> ", "- ", "1. ", "# ", "    ", "<https://e.com|", "\\", "*a", "`a", "![a](",
}

// Input past MaxParsed is not parsed as Markdown (goldmark is superlinear
// on some built inputs) but escaped as plain text, so it stays inert.
func TestLongInputIsEscapedNotParsed(t *testing.T) {
	if out := FromMarkdown(strings.Repeat("<!here> ", MaxParsed), nil); strings.Contains(out, "<!") {
		t.Error("long input is not escaped")
	}
}

// The running time on hostile input is measured by benchmarks, not timed
// tests (the machine is shared and noisy): each pattern at n and 16n, so
// linear growth shows as a ratio near 16 and quadratic near 256 in one run:
//
//	go test -run - -bench Hostile ./server/slackext/mrkdwn/
func BenchmarkToMarkdownHostile(b *testing.B) {
	for _, p := range hostilePatterns {
		for _, n := range []int{40000, 640000} {
			s := strings.Repeat(p, n/len(p)+1)
			b.Run(fmt.Sprintf("%q/%d", p, n), func(b *testing.B) {
				for b.Loop() {
					ToMarkdown(s, resolver)
				}
			})
		}
	}
}

// FromMarkdown at a Mattermost post's size (16,383), and past MaxParsed,
// where it is linear.
func BenchmarkFromMarkdownHostile(b *testing.B) {
	ids := map[string]string{"a": "U1"}
	for _, p := range hostilePatterns {
		for _, n := range []int{16383, 2 * MaxParsed, 32 * MaxParsed} {
			s := strings.Repeat(p, n/len(p)+1)
			b.Run(fmt.Sprintf("%q/%d", p, n), func(b *testing.B) {
				for b.Loop() {
					FromMarkdown(s, ids)
				}
			})
		}
	}
}

func FuzzToMarkdown(f *testing.F) {
	for _, s := range []string{
		"*bold* _it_ ~s~ `c`", "<@U1> <#C1|x> <!here> <!subteam^S|@t>", "<https://e.com|x>",
		"&gt; q\n```pre```", "<!date^1^{date}|d>", ":+1::skin-tone-2:", "a\xffb", "@here",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		md, mentions := ToMarkdown(in, resolver)
		if !utf8.ValidString(md) {
			t.Fatalf("ToMarkdown(%q) = %q is not valid UTF-8", in, md)
		}
		if b := serverBroadcasts(md); b != nil {
			t.Fatalf("ToMarkdown(%q) = %q: the server finds %v", in, md, b)
		}
		for _, id := range mentions {
			if !slackID(id, "UW") {
				t.Fatalf("ToMarkdown(%q): mention %q", in, id)
			}
		}
	})
}

func FuzzFromMarkdown(f *testing.F) {
	for _, s := range []string{
		"**b** *i* ~~s~~ `c`", "[t](https://e.com)", "<!channel> <@U1> @alice", "# h\n- a\n> q",
		"| a |\n|---|\n| b |", "```\n<x>\n```", "&lt;!here&gt;", "a\xffb",
	} {
		f.Add(s)
	}
	ids := map[string]string{"alice": "U1", "bob": "W2"}
	f.Fuzz(func(t *testing.T, in string) {
		checkSlack(t, in, FromMarkdown(in, ids), ids)
	})
}
