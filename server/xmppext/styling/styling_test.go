package styling

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFromMarkdown(t *testing.T) {
	tests := []struct {
		name, md, want string
	}{
		{"empty", "", ""},
		{"plain", "just text", "just text"},
		{"strong", "**bold**", "*bold*"},
		{"strong underscores", "__bold__", "*bold*"},
		{"emphasis star", "*it*", "_it_"},
		{"emphasis underscore", "_it_", "_it_"},
		{"strike", "~~gone~~", "~gone~"},
		{"strong and emphasis", "***both***", "_*both*_"},
		{"nested", "**bold _and it_**", "*bold _and it_*"},
		{"mixed line", "**b** and *i* and ~~s~~ and `c`", "*b* and _i_ and ~s~ and `c`"},
		{"code span kept", "run `go test` now", "run `go test` now"},
		{"code span spaces stripped", "`` `x` ``", "`` `x` ``"},
		{"code span padded", "` x `", "`x`"},
		{"code span content untouched", "`**not bold**`", "`**not bold**`"},
		{"double backtick span", "``a`b``", "``a`b``"},
		{"unclosed backticks", "a ` b", "a ` b"},
		{"intraword strong", "foo**bar**baz", "foo*bar*baz"},
		{"snake case", "snake_case_name", "snake_case_name"},
		{"dunder", "__init__", "*init*"},
		{"spaced asterisks", "a * b * c", "a * b * c"},
		{"unclosed", "**not closed", "**not closed"},
		{"across lines left alone", "**a\nb**", "**a\nb**"},
		{"escapes resolved", `\*not\* \_it\_ \# \\`, `*not* _it_ # \`},
		{"backslash before letter kept", `C:\Users`, `C:\Users`},
		{"hard break backslash dropped", "line\\\nnext", "line\nnext"},
		{"single tilde kept", "~town-square and ~~struck~~", "~town-square and ~struck~"},
		{"triple tilde not strike", "x ~~~a~~~", "x ~~~a~~~"},
		{"link", "[docs](https://example.com/d)", "docs <https://example.com/d>"},
		{"link text is url", "[https://example.com](https://example.com)", "https://example.com"},
		{"link with title", `[t](https://e.com "Title")`, "t <https://e.com>"},
		{"link angle destination", "[t](<https://e.com/a b>)", "t <https://e.com/a b>"},
		{"link text styled", "[**bold** link](https://e.com)", "*bold* link <https://e.com>"},
		{"link escaped url", `[t](https://e.com/a\_b)`, "t <https://e.com/a_b>"},
		{"link empty url", "[t]()", "t"},
		{"image", "![alt text](https://e.com/i.png)", "https://e.com/i.png"},
		{"image in link", "[![alt](https://e.com/i.png)](https://e.com)", "https://e.com/i.png <https://e.com>"},
		{"reference link left", "[t][ref]", "[t][ref]"},
		{"not a link", "[t] (x)", "[t] (x)"},
		{"autolink kept", "<https://e.com/*a*>", "<https://e.com/*a*>"},
		{"bare url literal", "see https://e.com/_a_ now", "see https://e.com/_a_ now"},
		{"bare url trailing dot", "at https://e.com/x_y. **Bold**", "at https://e.com/x_y. *Bold*"},
		{"heading", "# Title", "*Title*"},
		{"heading levels", "### Third level", "*Third level*"},
		{"heading closing hashes", "## Title ##", "*Title*"},
		{"heading already strong", "# **Title**", "*Title*"},
		{"heading inline", "## A _b_ c", "*A _b_ c*"},
		{"empty heading", "#", ""},
		{"hashtag not heading", "#hashtag", "#hashtag"},
		{"seven hashes not heading", "####### x", "####### x"},
		{"quote", "> quoted **b**", "> quoted *b*"},
		{"quote indented", "  > quoted", "> quoted"},
		{"nested quote", "> a\n> > b", "> a\n> > b"},
		{"quote blank line", "> a\n> \n>\n> b", "> a\n> \n>\n> b"},
		{"heading in quote", "> # T", "> *T*"},
		{"list", "- one **b**\n- two\n1. three\n* four\n+ five", "- one *b*\n- two\n1. three\n* four\n+ five"},
		{"thematic break", "***\n---\n* * *", "***\n---\n* * *"},
		{"fence", "```go\nx := **y**\n```\nafter **b**", "```go\nx := **y**\n```\nafter *b*"},
		{"tilde fence", "~~~\ncode\n~~~", "```\ncode\n```"},
		{"longer fence", "````\n```\n````", "````\n```\n```"},
		{"fence indented", "  ```\n  a\n   b\n  ```", "```\na\n b\n```"},
		{"unclosed fence", "```\ncode *x*", "```\ncode *x*"},
		{"fence in quote", "> ```\n> **x**\n> ```\n**y**", "> ```\n> **x**\n> ```\n*y*"},
		{"fence ended by quote end", "> ```\n> code\nout **b**", "> ```\n> code\nout *b*"},
		{"fence keeps deeper quote", "> ```\n> > x\n> ```", "> ```\n> > x\n> ```"},
		{"crlf", "**a**\r\nb", "*a*\nb"},
		{"punctuation flanking", `"**quoted**"`, `"*quoted*"`},
		{"rule of three", "*a**b*", "_a**b_"},
		{"emphasis in strong", "***a*b**", "*_a_b*"},
		{"unicode", "**żółw** 🐢 _ü_", "*żółw* 🐢 _ü_"},
		{"entity left", "&amp; &copy;", "&amp; &copy;"},
		{"mention", "@alice: **hi**", "@alice: *hi*"},
		{"table", "| a | **b** |\n|---|---|", "| a | *b* |\n|---|---|"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromMarkdown(tt.md); got != tt.want {
				t.Errorf("FromMarkdown(%q)\n got %q\nwant %q", tt.md, got, tt.want)
			}
		})
	}
}

func TestToMarkdown(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty", "", ""},
		{"plain", "just text", "just text"},
		{"strong", "*bold*", "**bold**"},
		{"emphasis", "_it_", "_it_"},
		{"emphasis before letter", "_foo_bar", "*foo*bar"},
		{"strike", "~gone~", "~~gone~~"},
		{"pre span", "`a*b*c`", "`a*b*c`"},
		{"strong pre", "*`x`*", "**`x`**"},
		{"nested", "*_x_*", "**_x_**"},
		{"nested emphasis before letter", "*_foo_bar*", "***foo*bar**"},
		{"several", "*a* and _b_ and ~c~", "**a** and _b_ and ~~c~~"},
		{"xep example strong then plain", "*strong*plain*", "**strong**plain\\*"},
		{"xep example plain then strong", "* plain *strong*", "* plain **strong**"},
		{"xep not strong", "not strong*", "not strong\\*"},
		{"xep not strong open", "*not strong", "\\*not strong"},
		{"xep not across lines", "*not \n strong*", "\\*not \n strong\\*"},
		{"xep not strong inner space", "*not *strong", "\\*not \\*strong"},
		{"xep empty", "**", "\\*\\*"},
		{"xep four", "****", "\\*\\*\\*\\*"},
		{"closing after space skipped", "*a *b*", "**a \\*b**"},
		{"lazy tilde", "~channel ~strike~", "~~channel ~strike~~"},
		{"opening mid word", "foo*bar*", "foo\\*bar\\*"},
		{"opening after punctuation", "(*x*)", "(\\*x\\*)"},
		{"directive after directive", "*a*_b_", "**a**\\_b\\_"},
		{"arithmetic", "2*3*4", "2\\*3\\*4"},
		{"dunder", "__init__", "\\_\\_init\\_\\_"},
		{"snake case", "snake_case", "snake_case"},
		{"spaced star", "a * b", "a * b"},
		{"double tilde", "~~a~~", "\\~\\~a\\~\\~"},
		{"single tilde", "~town-square", "~town-square"},
		{"backtick", "a ` b ` c", "a \\` b \\` c"},
		{"backslash before punctuation", `\*`, `\\\*`},
		{"backslash before letter", `C:\Users`, `C:\Users`},
		{"trailing backslash", `end\`, `end\\`},
		{"link syntax", "[a](b)", "[a\\](b)"},
		{"link definition", "[1]: https://e.com", "[1\\]: https://e.com"},
		{"entity", "&amp; & b", "\\&amp; & b"},
		{"numeric entity", "&#123; &#x1F600;", "\\&#123; \\&#x1F600;"},
		{"heading", "# not a heading", "\\# not a heading"},
		{"hashtag", "#tag", "#tag"},
		{"setext", "title\n---", "title\n\\---"},
		{"setext equals", "title\n===", "title\n\\==="},
		{"thematic", "* * *", "\\* * *"},
		{"list", "- one\n1. two", "- one\n1. two"},
		{"quote", "> *q*", "> **q**"},
		{"quote no space", ">q", ">q"},
		{"quote then text", "> q\nafter", "> q\n\nafter"},
		{"quote then blank", "> q\n\nafter", "> q\n\nafter"},
		{"nested quote then outer", "> > a\n> b\nc", "> > a\n>\n> b\n\nc"},
		{"quote two spaces not nested", ">  > a", ">  \\> a"},
		{"indented gt", "  > a", "  \\> a"},
		{"pre block", "```go\nx := *y*\n```\n*b*", "```go\nx := *y*\n```\n**b**"},
		{"pre block unclosed", "```\n*x*", "```\n*x*"},
		{"pre block in quote", "> ```\n> *x*\n> ```", "> ```\n> *x*\n> ```"},
		{"pre block ends with quote", "> ```\n> *x*\n*y*", "> ```\n> *x*\n\n**y**"},
		{"pre block quote content", "```\n> *x*\n```", "```\n> *x*\n```"},
		{"pre needs line start", " ```\n*x*", " \\`\\`\\`\n**x**"},
		{"pre content closing markdown fence", "```\n```  \n~~~~\n```", "~~~~~\n```  \n~~~~\n~~~~~"},
		{"pre info with backtick", "```a`b\n*x*\n```\n*y*", "~~~a`b\n*x*\n~~~\n**y**"},
		{"url verbatim", "see https://e.com/_a_*b*/ now", "see https://e.com/_a_*b*/ now"},
		{"url trailing star not url", "see https://e.com/*b* now", "see https://e.com/*b\\* now"},
		{"url trailing punctuation", "(https://e.com/a_b_)", "(https://e.com/a_b\\_)"},
		{"url in span", "*https://e.com/x*", "**https://e.com/x**"},
		{"autolink", "<https://e.com>", "<https://e.com>"},
		{"unicode", "*żółw* 🐢", "**żółw** 🐢"},
		{"unicode space", "*a\u00a0*", "\\*a\u00a0*"},
		{"punctuation closer before letter", "*a(*b", "\\*a(\\*b"},
		{"punctuation closer children", "*a _b_ c(*d", "\\*a _b_ c(\\*d"},
		{"emphasis before combining mark", "_a_\u0301", "*a*\u0301"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ToMarkdown(tt.body); got != tt.want {
				t.Errorf("ToMarkdown(%q)\n got %q\nwant %q", tt.body, got, tt.want)
			}
		})
	}
}

// roundTrips reports whether FromMarkdown(ToMarkdown(body)) == body is
// promised for body: not for a quote followed by an unquoted line (ToMarkdown
// adds a blank line), carriage returns (FromMarkdown normalises line ends),
// or bare URLs (markdown and XEP-0393 disagree on where they end next to
// directives).
func roundTrips(body string) bool {
	if strings.ContainsAny(body, "\r") || strings.Contains(body, "://") ||
		strings.Contains(strings.ToLower(body), "www.") || strings.Contains(strings.ToLower(body), "mailto:") ||
		strings.Contains(strings.ToLower(body), "xmpp:") {
		return false
	}
	return strings.Count(ToMarkdown(body), "\n") == strings.Count(body, "\n")
}

func TestRoundTripBody(t *testing.T) {
	bodies := []string{
		"",
		"plain",
		"*bold* _it_ ~s~ `c`",
		"_foo_bar and *_x_* and *_foo_bar*",
		"2*3*4 __init__ snake_case a * b ~~x~~ ~y",
		"# not a heading\n---\n===\n* * *\n- list\n1. one",
		"[a](b) [1]: x &amp; &#1; \\* \\ C:\\x end\\",
		"```go\n*x* # y\n```\n*after*",
		"```\n```  \n~~~~\n```\n```a`b\n```",
		"````0\nx\n```",
		"> *quoted*\n> > deeper\n>\n> back",
		">  > not nested",
		"  > indented",
		"*a *b* c* and *strong*plain* and foo*bar*",
		"*not \n strong* ** **** *a(*b",
		"`a` b` and ``x`` and ```",
		"żółw *🐢* _ü_",
		"~channel ~strike~",
	}
	for _, b := range bodies {
		if !roundTrips(b) {
			t.Fatalf("test body %q is outside the round-trip promise", b)
		}
		md := ToMarkdown(b)
		if got := FromMarkdown(md); got != b {
			t.Errorf("round trip of %q via %q gave %q", b, md, got)
		}
	}
}

func TestRoundTripMarkdown(t *testing.T) {
	// Markdown in the form FromMarkdown produces it back from survives; other
	// spellings of the same thing are normalised (*it* → _it_, __b__ → **b**).
	for _, md := range []string{
		"**bold** _it_ ~~s~~ `c`",
		"> quoted **b**\n> > nested",
		"```go\nx := *y*\n```",
		"- a **b**\n1. c",
		"**a** and **b**",
		"_**both**_",
	} {
		b := FromMarkdown(md)
		if got := ToMarkdown(b); got != md {
			t.Errorf("round trip of %q via %q gave %q", md, b, got)
		}
	}
}

func TestHugeInputsStayLinear(t *testing.T) {
	// Each of these is quadratic for a naive parser; 200 KB of them must
	// still convert quickly. The test timeout is the assertion.
	for _, s := range []string{
		strings.Repeat("*a ", 70000),
		strings.Repeat("[", 200000),
		strings.Repeat("` ``", 50000),
		strings.Repeat("_a", 100000),
		strings.Repeat(">", 200000),
		strings.Repeat("[a](", 50000),
		strings.Repeat("**a ", 50000),
		"http://x" + strings.Repeat(")", 200000),
		strings.Repeat("*_~`", 50000),
		strings.Repeat("[![[![a](", 20000),
		strings.Repeat("> ```\n", 30000),
	} {
		if out := FromMarkdown(s); !utf8.ValidString(out) {
			t.Errorf("FromMarkdown made invalid UTF-8")
		}
		if out := ToMarkdown(s); !utf8.ValidString(out) {
			t.Errorf("ToMarkdown made invalid UTF-8")
		}
	}
}

func FuzzFromMarkdown(f *testing.F) {
	for _, s := range []string{"**b** _i_ ~~s~~ `c`", "# h\n> q\n```\nx\n```", "[a](b) ![c](d) <e:f>", "***a*b**", "\\*x\\*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, md string) {
		out := FromMarkdown(md)
		if utf8.ValidString(md) && !utf8.ValidString(out) {
			t.Fatalf("FromMarkdown(%q) = %q, not valid UTF-8", md, out)
		}
	})
}

func FuzzToMarkdown(f *testing.F) {
	for _, s := range []string{"*b* _i_ ~s~ `c`", "> q\nx", "```\n*x*\n```", "2*3*4 __a__", "_a_b *a(*b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		md := ToMarkdown(body)
		if utf8.ValidString(body) && !utf8.ValidString(md) {
			t.Fatalf("ToMarkdown(%q) = %q, not valid UTF-8", body, md)
		}
		if !utf8.ValidString(body) || !roundTrips(body) {
			return
		}
		if back := FromMarkdown(md); back != body {
			t.Fatalf("round trip of %q via %q gave %q", body, md, back)
		}
	})
}
