package styling

import (
	"strings"
	"unicode/utf8"
)

// ToMarkdown converts an XMPP body to Mattermost markdown, so that
// Mattermost shows it as a XEP-0393 client would:
//
//   - the spans XEP-0393 recognises become markdown: *strong* becomes
//     **strong**, _emphasis_ stays _emphasis_ (or becomes *emphasis* where
//     markdown would not see an underscore as emphasis, as in _foo_bar),
//     ~strike~ becomes ~~strike~~, `pre` spans and ```pre``` blocks and >
//     quotes stay as they are;
//   - characters that markdown would take for markup but XEP-0393 does not
//     (2*3*4, __init__, a line "# not a heading", [text](url)) are
//     backslash-escaped, except inside URLs, where Mattermost would keep the
//     backslash;
//   - a quote followed directly by an unquoted line gets a blank line
//     between, since markdown would otherwise continue the quote.
//
// Whatever XEP-0393 does not recognise is left alone: "foo*bar*" stays
// plain.
func ToMarkdown(body string) string {
	if body == "" {
		return ""
	}
	var c toConverter
	return c.emit(body)
}

// ToMarkdown's input is parsed with the rules of XEP-0393 §5 directly rather
// than with mellium.im/xmpp/styling's Decoder, which (as of v0.23.0) lets a
// closing directive follow white space ("*a *b*" comes out as strong "a "
// where the XEP says strong "a *b"), reports block quotes ending where they
// do not, and fails on lines over 64 KiB. XEP-0393 is small enough that a
// direct reading of it is the safer dependency.

// directive maps a span directive to an index into per-directive state, or
// -1.
func directive(c byte) int {
	switch c {
	case '*':
		return 0
	case '_':
		return 1
	case '~':
		return 2
	case '`':
		return 3
	}
	return -1
}

type toConverter struct {
	b strings.Builder
	// preDepth is the quote depth of the pre block we are in, or -1.
	preDepth int
	// preFence is the markdown fence of that block.
	preFence string
}

func (c *toConverter) emit(body string) string {
	c.b.Grow(len(body) + len(body)/8 + 8)
	c.preDepth = -1
	prevDepth := 0
	for start := 0; ; {
		end := strings.IndexByte(body[start:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		prevDepth = c.line(body, start, end, prevDepth)
		if end == len(body) {
			break
		}
		c.b.WriteByte('\n')
		start = end + 1
	}
	return c.b.String()
}

// line converts the line body[start:end] and returns its quote depth.
func (c *toConverter) line(body string, start, end, prevDepth int) int {
	if c.preDepth >= 0 {
		depth, content := quoteMarkers(body, start, end, c.preDepth)
		if depth == c.preDepth {
			// Inside a pre block everything is verbatim, and a line of just
			// ``` ends it.
			if body[content:end] == "```" {
				c.b.WriteString(body[start:content])
				c.b.WriteString(c.preFence)
				c.preDepth = -1
				return depth
			}
			c.b.WriteString(body[start:end])
			return depth
		}
		// The quote holding the block ended, and so did the block.
		c.preDepth = -1
	}
	depth, content := quoteMarkers(body, start, end, -1)
	if prevDepth > depth && strings.TrimFunc(body[content:end], isSpace) != "" {
		// Markdown's lazy continuation would pull this line into the quote
		// above; a line of just the outer markers ends that quote.
		c.b.WriteString(strings.Repeat(">", depth))
		c.b.WriteByte('\n')
	}
	c.b.WriteString(body[start:content])
	if strings.HasPrefix(body[content:end], "```") {
		c.preDepth = depth
		c.preFence = preFence(body, end, depth, body[content+3:end])
		c.b.WriteString(c.preFence)
		c.b.WriteString(body[content+3 : end])
		return depth
	}
	c.spans(body, content, end, blockEscape(body[:end], content))
	return depth
}

// preFence chooses the markdown fence for a pre block with the given info
// string, whose first line ends at body[end] and which is at quote depth
// depth. XEP-0393 ends a block only at a line of exactly ```; markdown ends a
// ``` fence at any line of three or more backticks and white space, and
// does not allow backticks in the info string at all. Where either would
// break the block, a tilde fence longer than any run of tildes that could
// close it does the job.
func preFence(body string, end, depth int, info string) string {
	backticks := strings.IndexByte(info, '`') < 0
	tildes := 3
	for start := end + 1; end < len(body); start = end + 1 {
		end = strings.IndexByte(body[start:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		d, content := quoteMarkers(body, start, end, depth)
		line := body[content:end]
		if d < depth || line == "```" {
			break
		}
		if closesFence(line, '`', 3) {
			backticks = false
		}
		if closesFence(line, '~', 3) {
			tildes = max(tildes, 1+runLen(line, strings.IndexByte(line, '~'), '~'))
		}
	}
	if backticks {
		return "```"
	}
	return strings.Repeat("~", tildes)
}

// quoteMarkers finds the block quote markers at the start of body[start:end]:
// each is a > and the one white space character after it, which XEP-0393
// trims before parsing the quote's content. It stops after limit of them if
// limit >= 0, and returns how many it found and where the content starts.
func quoteMarkers(body string, start, end, limit int) (depth, content int) {
	content = start
	for (limit < 0 || depth < limit) && content < end && body[content] == '>' {
		content++
		if r, size := utf8.DecodeRuneInString(body[content:end]); size > 0 && isSpace(r) {
			content += size
		}
		depth++
	}
	return depth, content
}

// spans converts the spans of body[start:end], a line or the inside of a
// span. Spans match lazily from the left: an opening directive at the start
// or after white space, not followed by white space or by itself (so **
// and **** style nothing), closes at the first same directive after some
// text that does not follow white space.
func (c *toConverter) spans(body string, start, end, blockEsc int) {
	// noCloser records directives known to have no valid closer further
	// on, so a line of unclosed openers stays linear.
	var noCloser [4]bool
	plain := start
	for i := start; i < end; {
		ch := body[i]
		if k := directive(ch); k >= 0 && !noCloser[k] && i+1 < end && body[i+1] != ch &&
			(i == start || isSpace(runeBefore(body, i))) && !isSpace(runeAt(body[:end], i+1)) {
			if j := closer(body, i+2, end, ch); j >= 0 {
				escapePlain(&c.b, body, plain, i, blockEsc)
				c.span(body, i, j)
				i = j + 1
				plain = i
				continue
			}
			noCloser[k] = true
		}
		_, size := utf8.DecodeRuneInString(body[i:end])
		i += size
	}
	escapePlain(&c.b, body, plain, end, blockEsc)
}

// closer returns the index of the first valid closing directive ch in
// body[from:end], or -1.
func closer(body string, from, end int, ch byte) int {
	for j := from; j < end; j++ {
		if body[j] == ch && !isSpace(runeBefore(body, j)) {
			return j
		}
	}
	return -1
}

// span writes the span from the directive at body[open] to the one at
// body[closeAt].
func (c *toConverter) span(body string, open, closeAt int) {
	var mark string
	next := runeAt(body, closeAt+1)
	// Markdown only closes emphasis where the closing run is "right
	// flanking": after punctuation it must be followed by white space or
	// punctuation. Underscores must also not be followed by a letter.
	wordAfter := !isSpace(next) && !isPunct(next)
	switch body[open] {
	case '*':
		mark = "**"
	case '_':
		mark = "_"
		if wordAfter {
			// _foo_bar: markdown closes *foo*bar but not _foo_bar.
			mark = "*"
		}
	case '~':
		mark = "~~"
	case '`':
		// A pre span's content is verbatim, and so is a markdown code span's.
		c.b.WriteString(body[open : closeAt+1])
		return
	}
	if wordAfter && isPunct(runeBefore(body, closeAt)) {
		// *a(*b: no markdown spelling closes this span, so show the
		// directives as the characters they are, as a client without
		// styling would, and convert what is inside.
		c.b.WriteByte('\\')
		c.b.WriteByte(body[open])
		c.spans(body, open+1, closeAt, -1)
		c.b.WriteByte('\\')
		c.b.WriteByte(body[closeAt])
		return
	}
	c.b.WriteString(mark)
	c.spans(body, open+1, closeAt, -1)
	c.b.WriteString(mark)
}

// blockEscape returns the offset of a character at the start of the line
// content body[start:] that must be escaped to keep markdown from making the
// line a heading, a rule or a quote, or -1.
func blockEscape(body string, start int) int {
	line := body[start:]
	i := 0
	for i < 3 && i < len(line) && line[i] == ' ' {
		i++
	}
	if i >= len(line) {
		return -1
	}
	switch c := line[i]; c {
	case '>':
		// XEP-0393 only quotes at the very start of a line (or right after
		// a quote marker and one white space); markdown allows indentation.
		return start + i
	case '#':
		if n := runLen(line, i, '#'); n <= 6 && (i+n == len(line) || line[i+n] == ' ' || line[i+n] == '\t') {
			return start + i
		}
	case '=', '-', '*', '_':
		// A setext underline (=== or ---) or a thematic break (--- * * *).
		count := 0
		for j := i; j < len(line); j++ {
			switch line[j] {
			case c:
				count++
			case ' ', '\t':
			default:
				return -1
			}
		}
		if c == '=' || c == '-' || count >= 3 {
			return start + i
		}
	}
	return -1
}

// escapePlain writes body[start:end], text that XEP-0393 shows as it is,
// escaping what markdown would read as markup. It only escapes where
// markdown could act: an asterisk between spaces or an underscore inside a
// word cannot open or close emphasis, and escaping them would only clutter
// the post's source. Bare URLs are copied verbatim, since Mattermost links
// them with any backslash in them.
func escapePlain(b *strings.Builder, body string, start, end, blockEsc int) {
	for i := start; i < end; {
		c := body[i]
		if urlStart(c) {
			if n := urlLen(body[:end], i); n > 0 {
				b.WriteString(body[i : i+n])
				i += n
				continue
			}
		}
		esc := i == blockEsc
		switch c {
		case '\\':
			esc = esc || i+1 >= len(body) || isASCIIPunct(body[i+1]) || body[i+1] == '\n'
		case '*':
			esc = esc || !(isSpace(runeBefore(body, i)) && isSpace(runeAt(body, i+1)))
		case '_':
			before, after := runeBefore(body, i), runeAt(body, i+1)
			esc = esc || !(isSpace(before) && isSpace(after)) && !(isAlnum(before) && isAlnum(after))
		case '~':
			esc = esc || i > 0 && body[i-1] == '~' || i+1 < len(body) && body[i+1] == '~'
		case '`':
			esc = true
		case ']':
			// Breaks [text](url) and [label]: url definitions (which
			// Mattermost would hide) without touching brackets in general.
			esc = esc || i+1 < len(body) && (body[i+1] == '(' || body[i+1] == ':')
		case '&':
			esc = esc || isEntity(body[i+1:])
		}
		if esc {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
		i++
	}
}

// isEntity reports whether s starts with what markdown would decode as an
// HTML entity after an &: a name, or a decimal or hex number, then ;.
func isEntity(s string) bool {
	i, maxLen := 0, 32
	isDigit := isLetterDigit
	switch {
	case strings.HasPrefix(s, "#x"), strings.HasPrefix(s, "#X"):
		i, maxLen = 2, 6
		isDigit = func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f' }
	case strings.HasPrefix(s, "#"):
		i, maxLen = 1, 7
		isDigit = func(c byte) bool { return '0' <= c && c <= '9' }
	}
	for n := 0; i < len(s) && n <= maxLen; i, n = i+1, n+1 {
		switch ch := s[i]; {
		case ch == ';':
			return n > 0
		case !isDigit(ch):
			return false
		}
	}
	return false
}
