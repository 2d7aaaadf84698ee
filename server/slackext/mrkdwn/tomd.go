package mrkdwn

import (
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/slackext/emoji"
)

// ToMarkdown converts Slack mrkdwn (as it appears in message events' `text`) into Mattermost Markdown:
// *bold* -> **bold**, _italic_ -> _italic_, ~strike~ -> ~~strike~~, `code`, ```blocks```, > quotes,
// <url|text> -> [text](url), <url> -> url, <mailto:…|…>, <@U…> -> the resolved name as plain text (NOT an @mention that could ping a Mattermost user; return the mentioned IDs separately),
// <#C…|name> -> ~name-like plain text, <!here>/<!channel>/<!everyone>/<!subteam^…> -> inert text such as "@here" rendered so Mattermost does not ping,
// <!date^…^format|fallback> -> fallback; HTML entities &amp; &lt; &gt; unescaped; Markdown special characters in plain text escaped so Slack text cannot become Mattermost markup it did not mean.
//
// In detail:
//
//   - Spans follow Slack's rules: an opening *, _ or ~ at the start of a
//     line or after a character that is not a letter or digit, not followed
//     by white space; it closes at the first same marker on the line that
//     follows no white space and precedes no letter or digit. Spans nest
//     but never cross a line or an <…> token. _italic_ becomes *italic*
//     where an underscore would sit inside a word in the output.
//   - ```pre``` blocks may start and end anywhere, across lines; they
//     become fenced blocks on lines of their own, inside the quote if they
//     start in one. An unclosed ``` is text.
//   - "> " (sent as "&gt; ") quotes its line, ">>>" the rest of the
//     message; a quote followed by an unquoted line gets a blank line
//     between, since Markdown would carry the quote on.
//   - <url|label> becomes [label](url) and <url> an autolink, for http,
//     https, ftp and mailto URLs; others become "label (url)" as text.
//     Mentions become "@name", channels "~name", broadcasts "@here", user
//     groups "@handle", each with a word joiner after the @ or ~ (see the
//     package comment). In code they are written the same way, as text.
//   - Plain text is escaped: \ * _ ~ ` [ ] < > | always, # = - + at the
//     start of a line where Markdown would make a heading or a rule, & where
//     it would start an entity, and indentation of four columns or more
//     (an indented code block in Markdown) becomes no-break spaces. Bare
//     URLs are copied as they are, since Mattermost links them with any
//     backslash in them.
//   - :emoji: names that Mattermost spells differently are renamed, skin
//     tones included (:+1::skin-tone-2: becomes :+1_light_skin_tone:).
//
// Mentions lists the IDs of the <@U…>/<@W…> mentions, each once, in order.
func ToMarkdown(text string, r Resolver) (md string, mentions []string) {
	if text == "" {
		return "", nil
	}
	text = strings.ToValidUTF8(text, "\uFFFD")
	c := toConverter{r: r}
	c.b.Grow(len(text) + len(text)/8 + 16)
	c.convert(text)
	return c.b.String(), c.mentions
}

type toConverter struct {
	b        strings.Builder
	r        Resolver
	mentions []string
	// last is the last rune written, for decisions that depend on what
	// precedes in the output.
	last rune
	// quoteAll: a >>> quotes everything from there on.
	quoteAll bool
	// prevQuoted: the last line written was quoted.
	prevQuoted bool
	// Per line: where block-level escaping applies, and the <…> tokens.
	blockEsc int
	tokens   []span
}

type span struct{ start, end int } // s[start] == '<', s[end] == '>'

func (c *toConverter) write(s string) {
	if s == "" {
		return
	}
	c.b.WriteString(s)
	c.last, _ = utf8.DecodeLastRuneInString(s)
}

func (c *toConverter) writeByte(b byte) {
	c.b.WriteByte(b)
	c.last = rune(b)
}

func (c *toConverter) atLineStart() bool { return c.b.Len() == 0 || c.last == '\n' }

// convert splits text into pre blocks and the text between them.
func (c *toConverter) convert(text string) {
	pos := 0
	afterPre := false
	for pos <= len(text) {
		open, closeAt := nextPre(text, pos)
		if open < 0 {
			c.lines(text[pos:], afterPre, false)
			return
		}
		quoted := c.lines(text[pos:open], afterPre, true)
		c.pre(text[open+3:closeAt], quoted)
		pos = closeAt + 3
		afterPre = true
	}
}

// nextPre finds the next ```pre``` block at or after pos: the offsets of
// its opening and closing markers, or -1. A ``` with no content before the
// next ``` is not a block.
func nextPre(text string, pos int) (open, closeAt int) {
	for {
		i := strings.Index(text[pos:], "```")
		if i < 0 {
			return -1, -1
		}
		open = pos + i
		j := strings.Index(text[open+3:], "```")
		if j < 0 {
			return -1, -1
		}
		if j > 0 {
			return open, open + 3 + j
		}
		pos = open + 6
	}
}

// lines converts text outside pre blocks. afterPre: it continues the line
// a pre block ended on. beforePre: a pre block follows on its last line;
// lines reports whether that line is quoted, and leaves a line of nothing
// but a quote marker for the block to write.
func (c *toConverter) lines(s string, afterPre, beforePre bool) (quoted bool) {
	for n := 0; ; n++ {
		line, rest, more := strings.Cut(s, "\n")
		line = strings.TrimSuffix(line, "\r")
		last := !more
		switch {
		case n > 0:
			c.writeByte('\n')
		case afterPre && line != "":
			// Text right after a block's closing ``` goes on the next line.
			c.writeByte('\n')
			line = strings.TrimLeft(line, " ")
		}
		quoted = c.line(line, last && beforePre)
		if last {
			return quoted
		}
		s = rest
	}
}

// quoteMarker returns the length of a quote marker at the start of line
// (">" or, as Slack sends it, "&gt;"), or 0.
func quoteMarker(line string) int {
	switch {
	case strings.HasPrefix(line, "&gt;"):
		return 4
	case strings.HasPrefix(line, ">"):
		return 1
	}
	return 0
}

// line converts one line outside pre blocks and reports whether it is
// quoted. holdEmpty: a pre block follows, so a line of only a quote marker
// writes nothing and lets the block carry the quote.
func (c *toConverter) line(line string, holdEmpty bool) bool {
	quoted, content := c.quoteAll, line
	if !quoted {
		if m := quoteMarker(line); m > 0 {
			quoted, content = true, line[m:]
			if m2 := quoteMarker(content); m2 > 0 {
				if m3 := quoteMarker(content[m2:]); m3 > 0 {
					c.quoteAll = true
					content = content[m2+m3:]
				}
			}
			content = strings.TrimPrefix(content, " ")
		}
	}
	blank := strings.TrimSpace(content) == ""
	if holdEmpty && blank {
		return quoted
	}
	if c.prevQuoted && !quoted && !blank && c.atLineStart() {
		// Markdown's lazy continuation would pull this line into the quote.
		c.writeByte('\n')
	}
	if c.atLineStart() {
		c.prevQuoted = quoted
	}
	if quoted && c.atLineStart() {
		if content == "" {
			c.writeByte('>')
			return true
		}
		c.write("> ")
	}
	c.findTokens(content)
	c.blockEsc = blockEscape(content)
	c.inline(content, 0, len(content), 0)
	return quoted
}

// findTokens records the <…> tokens of line: a < with a > after it and no
// < in between. Tokens never nest, and finding them all up front keeps a
// line full of < linear.
func (c *toConverter) findTokens(line string) {
	c.tokens = c.tokens[:0]
	open := -1
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '<':
			open = i
		case '>':
			if open >= 0 {
				c.tokens = append(c.tokens, span{open, i})
				open = -1
			}
		}
	}
}

// tokenAt returns the end of the token starting at i, or -1.
func (c *toConverter) tokenAt(i int) int {
	k := sort.Search(len(c.tokens), func(k int) bool { return c.tokens[k].start >= i })
	if k < len(c.tokens) && c.tokens[k].start == i {
		return c.tokens[k].end
	}
	return -1
}

// Span styles, as bits of the active set.
const (
	styleBold = 1 << iota
	styleItalic
	styleStrike
)

func styleOf(ch byte) int {
	switch ch {
	case '*':
		return styleBold
	case '_':
		return styleItalic
	case '~':
		return styleStrike
	}
	return 0
}

// inline converts s[start:end], part of one line.
func (c *toConverter) inline(s string, start, end, active int) {
	// noCloser: styles known to have no closer further on, so a line of
	// unclosed openers stays linear; noCode likewise for backticks.
	var noCloser int
	noCode := false
	plain := start
	for i := start; i < end; i++ {
		ch := s[i]
		switch ch {
		case '<':
			if j := c.tokenAt(i); j >= 0 && j < end {
				c.plain(s, plain, i)
				c.token(s[i+1:j], false)
				i, plain = j, j+1
			}
		case '`':
			if noCode {
				continue
			}
			j := strings.IndexByte(s[i+1:end], '`')
			if j < 0 {
				noCode = true
				continue
			}
			if j > 0 {
				c.plain(s, plain, i)
				c.codeSpan(s[i+1 : i+1+j])
				i += j + 1
				plain = i + 1
			}
		case '*', '_', '~':
			st := styleOf(ch)
			if active&st != 0 || noCloser&st != 0 || !canOpen(s, i, end) {
				continue
			}
			j := c.closer(s, i+2, end, ch)
			if j < 0 {
				noCloser |= st
				continue
			}
			c.plain(s, plain, i)
			mark := c.mark(st, s, j)
			c.write(mark)
			c.inline(s, i+1, j, active|st)
			c.write(mark)
			i, plain = j, j+1
		}
	}
	c.plain(s, plain, end)
}

// canOpen reports whether the marker at s[i] can open a span: at the
// start of the line or after something other than a letter or digit, and
// followed by something other than white space or the same marker.
func canOpen(s string, i, end int) bool {
	if i+1 >= end || s[i+1] == s[i] || isSpace(runeAt(s, i+1)) {
		return false
	}
	return !isAlnum(runeBefore(s, i))
}

// closer returns the index of the first marker ch in s[from:end] that can
// close a span: after something other than white space, before something
// other than a letter or digit. <…> tokens are skipped whole.
func (c *toConverter) closer(s string, from, end int, ch byte) int {
	for j := from; j < end; j++ {
		switch s[j] {
		case '<':
			if k := c.tokenAt(j); k >= 0 && k < end {
				j = k
			}
		case ch:
			if !isSpace(runeBefore(s, j)) && !isAlnum(runeAt(s, j+1)) {
				return j
			}
		}
	}
	return -1
}

// mark returns the Markdown delimiter for a style whose Slack span closes
// at s[closeAt].
func (c *toConverter) mark(st int, s string, closeAt int) string {
	switch st {
	case styleBold:
		return "**"
	case styleStrike:
		return "~~"
	}
	// An underscore only opens and closes emphasis at word boundaries in
	// Markdown; what is written before it (a name from a mention) or comes
	// after (a date's fallback) may not give it one. An asterisk works
	// anywhere.
	next := runeAt(s, closeAt+1)
	if isAlnum(c.last) || s[closeAt+1:] != "" && (next == '<' || next == ':' || next == '&') {
		return "*"
	}
	return "_"
}

// plain writes s[start:end], text that Slack shows as it is.
func (c *toConverter) plain(s string, start, end int) {
	for i := start; i < end; {
		ch := s[i]
		if i == 0 && (ch == ' ' || ch == '\t') {
			if n := indentLen(s); n > 0 {
				// Four columns of indentation make an indented code block
				// in Markdown; no-break spaces look the same and do not.
				for _, r := range s[:n] {
					if r == '\t' {
						c.write("\u00a0\u00a0\u00a0\u00a0")
					} else {
						c.write("\u00a0")
					}
				}
				i = n
				continue
			}
		}
		if n := bareURLLen(s[:end], i); n > 0 {
			c.write(strings.ReplaceAll(s[i:i+n], "&amp;", "&"))
			i += n
			continue
		}
		if ch == ':' {
			if n, name := emojiAt(s[i:end]); n > 0 {
				c.write(":" + name + ":")
				i += n
				continue
			}
		}
		if ch == '&' {
			if lit, n := slackEntity(s[i:end]); n > 0 {
				c.literal(lit, s[i+n:end], i == c.blockEsc)
				i += n
				continue
			}
		}
		if ch == '@' && !isAlnum(runeBefore(s, i)) {
			// After a letter or digit the @ is inside a word (an address)
			// that Mattermost's parser does not read as a mention.
			if n := broadcastAt(s[i+1 : end]); n > 0 {
				c.write("@" + wordJoiner + s[i+1:i+1+n])
				i += 1 + n
				continue
			}
		}
		if ch < utf8.RuneSelf {
			c.literal(ch, s[i+1:end], i == c.blockEsc)
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:end])
		c.write(s[i : i+size])
		i += size
	}
}

// literal writes the ASCII character ch, followed in the text by rest, so
// that Markdown shows it as itself. blockStart: it is where Markdown would
// read a heading, rule or quote.
func (c *toConverter) literal(ch byte, rest string, blockStart bool) {
	esc := blockStart
	switch ch {
	case '\\', '*', '_', '~', '`', '[', ']', '<', '>', '|':
		esc = true
	case '&':
		esc = esc || isEntity(rest)
	}
	if esc {
		c.writeByte('\\')
	}
	c.writeByte(ch)
}

// text writes a name or label from Slack as escaped plain text.
func (c *toConverter) text(s string) {
	s = oneLine(s)
	c.blockEsc = -1
	c.plain(s, 0, len(s))
}

// slackEntity decodes the three entities Slack uses (and only those, as
// Slack's documentation says) at the start of s.
func slackEntity(s string) (byte, int) {
	switch {
	case strings.HasPrefix(s, "&amp;"):
		return '&', 5
	case strings.HasPrefix(s, "&lt;"):
		return '<', 4
	case strings.HasPrefix(s, "&gt;"):
		return '>', 4
	}
	return 0, 0
}

// unescape decodes Slack's three entities in s.
func unescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}

// isEntity reports whether s starts with what Markdown would decode as an
// HTML entity after an &: a name, or a decimal or hex number, then ;.
func isEntity(s string) bool {
	i, maxLen := 0, 32
	digit := func(c byte) bool { return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z' }
	switch {
	case strings.HasPrefix(s, "#x"), strings.HasPrefix(s, "#X"):
		i, maxLen = 2, 6
		digit = func(c byte) bool { return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f' }
	case strings.HasPrefix(s, "#"):
		i, maxLen = 1, 7
		digit = func(c byte) bool { return c >= '0' && c <= '9' }
	}
	for n := 0; i < len(s) && n <= maxLen; i, n = i+1, n+1 {
		switch ch := s[i]; {
		case ch == ';':
			return n > 0
		case !digit(ch):
			return false
		}
	}
	return false
}

// indentLen returns the length of the leading white space of line when it
// reaches four columns, or 0.
func indentLen(line string) int {
	cols, i := 0, 0
	for ; i < len(line) && (line[i] == ' ' || line[i] == '\t'); i++ {
		if line[i] == '\t' {
			cols += 4
		} else {
			cols++
		}
	}
	if cols < 4 || i == len(line) {
		return 0
	}
	return i
}

// blockEscape returns the offset of the character at the start of line
// that must be escaped to keep Markdown from making the line a heading, a
// setext underline or a thematic break, or -1. Quote markers are always
// escaped; list markers are left, since Markdown's lists look like the
// text Slack shows.
func blockEscape(line string) int {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i >= len(line) {
		return -1
	}
	switch ch := line[i]; ch {
	case '#':
		n := i
		for n < len(line) && line[n] == '#' {
			n++
		}
		if n-i <= 6 && (n == len(line) || line[n] == ' ' || line[n] == '\t') {
			return i
		}
	case '=', '-', '*', '_', '+':
		// A setext underline (=== or ---) or a thematic break (--- * * *),
		// or a list item whose text is one (- ---).
		count := 0
		for j := i; j < len(line); j++ {
			switch line[j] {
			case ch:
				count++
			case ' ', '\t':
			default:
				return -1
			}
		}
		if ch == '=' || ch == '-' || count >= 3 {
			return i
		}
	}
	return -1
}

// bareURLLen returns the length of the bare URL starting at s[i], or 0.
// Slack sends links in <…>, but bots may send them bare, and Mattermost
// links those whole, escapes included, so they are copied verbatim. The URL
// ends at white space, <, > or their entities, and trailing punctuation is
// left out as GFM's autolinker leaves it out.
func bareURLLen(s string, i int) int {
	if c := s[i] | 0x20; c != 'h' && c != 'f' && c != 'w' {
		return 0
	}
	if i > 0 {
		if r := runeBefore(s, i); isAlnum(r) || r == '/' || r == '\\' {
			return 0
		}
	}
	rest := s[i:]
	n := 0
	for _, p := range [...]string{"https://", "http://", "ftp://", "www."} {
		if len(rest) > len(p) && strings.EqualFold(rest[:len(p)], p) {
			n = len(p)
			break
		}
	}
	if n == 0 {
		return 0
	}
	scheme := n
	for n < len(rest) {
		r, size := utf8.DecodeRuneInString(rest[n:])
		if isSpace(r) || r == '<' || r == '>' || r == '\\' || r == '`' ||
			strings.HasPrefix(rest[n:], "&lt;") || strings.HasPrefix(rest[n:], "&gt;") {
			break
		}
		n += size
	}
	open, closed := strings.Count(rest[:n], "("), strings.Count(rest[:n], ")")
	for n > scheme {
		switch rest[n-1] {
		case '?', '!', '.', ',', ':', ';', '*', '_', '~', '\'', '"', '|':
			n--
			continue
		case ')':
			if closed > open {
				closed--
				n--
				continue
			}
		}
		break
	}
	if n <= scheme {
		return 0
	}
	return n
}

// emojiAt returns the length of the :emoji: shortcode s starts with, skin
// tone included, and its Mattermost name; 0 if there is none. Names are
// letters, digits, + and -, with underscores only inside words, where
// Markdown cannot read them as emphasis; so they are written unescaped.
func emojiAt(s string) (int, string) {
	n := 1
	for n < len(s) && n <= 100 && emojiByte(s[n]) {
		n++
	}
	if n == 1 || n >= len(s) || s[n] != ':' {
		return 0, ""
	}
	name := s[1:n]
	n++
	if rest, ok := strings.CutPrefix(s[n:], ":skin-tone-"); ok {
		k := 0
		for k < len(rest) && k < 4 && (rest[k] >= '0' && rest[k] <= '9' || rest[k] == '-') {
			k++
		}
		if k > 0 && k < len(rest) && rest[k] == ':' {
			name += "::skin-tone-" + rest[:k]
			n += len(":skin-tone-") + k + 1
		}
	}
	mm := emoji.ToMattermost(name)
	if strings.Contains(mm, "::") {
		// A tone Mattermost cannot spell: keep the emoji, drop the tone.
		mm, _, _ = strings.Cut(mm, "::")
	}
	for i := 0; i < len(mm); i++ {
		if mm[i] == '_' && (i == 0 || i == len(mm)-1 || !isAlnumByte(mm[i-1]) || !isAlnumByte(mm[i+1])) {
			return 0, ""
		}
	}
	return n, mm
}

func emojiByte(c byte) bool { return isAlnumByte(c) || c == '_' || c == '+' || c == '-' }

func isAlnumByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// token writes the <…> token whose content is tok. inCode: it is inside a
// code span or block, where it is written as text without Markdown.
func (c *toConverter) token(tok string, inCode bool) {
	out := c.tokenText(tok, inCode)
	if inCode {
		c.write(out)
	}
}

// tokenText converts a token. Outside code it writes the Markdown itself
// and returns ""; inside code it returns the text to show.
func (c *toConverter) tokenText(tok string, inCode bool) string {
	target, label, hasLabel := strings.Cut(tok, "|")
	label = strings.TrimSpace(unescape(label))
	named := func(prefix, name string) string {
		if inCode {
			return prefix + wordJoiner + oneLine(name)
		}
		c.write(prefix + wordJoiner)
		c.text(name)
		return ""
	}
	switch {
	case strings.HasPrefix(target, "@") && slackID(target[1:], "UW"):
		id := target[1:]
		if !slices.Contains(c.mentions, id) {
			c.mentions = append(c.mentions, id)
		}
		name := ""
		if c.r != nil {
			name = c.r.UserName(id)
		}
		if name == "" {
			name = label
		}
		if name == "" {
			name = id
		}
		return named("@", strings.TrimPrefix(name, "@"))
	case strings.HasPrefix(target, "#") && slackID(target[1:], "CGD"):
		name := label
		if name == "" && c.r != nil {
			name = c.r.ChannelName(target[1:])
		}
		if name == "" {
			name = target[1:]
		}
		return named("~", strings.TrimPrefix(name, "#"))
	case strings.HasPrefix(target, "!"):
		cmd := target[1:]
		switch {
		case cmd == "here" || cmd == "channel" || cmd == "everyone":
			return named("@", cmd)
		case strings.HasPrefix(cmd, "subteam^"):
			name := strings.TrimPrefix(label, "@")
			if name == "" {
				name = strings.TrimPrefix(cmd, "subteam^")
			}
			return named("@", name)
		case hasLabel && label != "":
			// <!date^…|fallback> and any other command with a fallback.
			return c.plainText(label, inCode)
		}
		return c.plainText("<"+unescape(tok)+">", inCode)
	}
	url := unescape(target)
	if !linkable(url) || strings.ContainsAny(url, " \t") {
		// Not a link Slack or Mattermost would open: show what Slack shows.
		text := url
		if hasLabel && label != "" && label != url {
			text = label + " (" + url + ")"
		}
		if !linkable(url) && !hasLabel && !strings.Contains(url, ":") {
			text = "<" + url + ">"
		}
		return c.plainText(text, inCode)
	}
	if inCode {
		if hasLabel && label != "" && label != url {
			return oneLine(label) + " (" + url + ")"
		}
		return url
	}
	dest := encodeURL(url)
	if !hasLabel || label == "" {
		// A CommonMark autolink: shown as written, never re-parsed.
		c.write("<" + dest + ">")
		return ""
	}
	c.writeByte('[')
	c.text(label)
	c.write("](" + dest + ")")
	return ""
}

func (c *toConverter) plainText(s string, inCode bool) string {
	if inCode {
		return oneLine(s)
	}
	c.text(s)
	return ""
}

// slackID reports whether id looks like a Slack ID of one of the kinds
// (first letters) given: upper-case letters and digits.
func slackID(id, kinds string) bool {
	if len(id) < 2 || len(id) > 32 || !strings.ContainsRune(kinds, rune(id[0])) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// encodeURL percent-encodes what cannot stand in a Markdown link
// destination or autolink: white space, controls, <, >, parentheses,
// backslashes and backticks.
func encodeURL(url string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(url); i++ {
		ch := url[i]
		// An & that Markdown would read as an entity is encoded too.
		if ch <= ' ' || ch == 0x7f || strings.IndexByte("<>()\\`\"", ch) >= 0 || ch == '&' && isEntity(url[i+1:]) {
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

// codeSpan writes a Slack code span's content as a Markdown code span.
func (c *toConverter) codeSpan(content string) {
	text := c.codeText(content)
	fence := strings.Repeat("`", longestRun(text, '`')+1)
	pad := ""
	if strings.HasPrefix(text, "`") || strings.HasSuffix(text, "`") ||
		strings.HasPrefix(text, " ") && strings.HasSuffix(text, " ") && strings.Trim(text, " ") != "" {
		// Markdown strips one space from each end of a code span.
		pad = " "
	}
	c.write(fence + pad + text + pad + fence)
}

// codeText returns what Slack shows for code content: entities decoded,
// tokens as text.
func (c *toConverter) codeText(content string) string {
	if !strings.ContainsAny(content, "&<@") {
		return content
	}
	var b strings.Builder
	for i := 0; i < len(content); {
		if content[i] == '@' && !isAlnum(runeBefore(content, i)) {
			// Whether or not Mattermost looks for mentions in code, a
			// broadcast there stays inert like anywhere else.
			if n := broadcastAt(content[i+1:]); n > 0 {
				b.WriteString("@" + wordJoiner + content[i+1:i+1+n])
				i += 1 + n
				continue
			}
		}
		if content[i] == '<' {
			if j := strings.IndexAny(content[i+1:], "<>\n"); j >= 0 && content[i+1+j] == '>' {
				b.WriteString(c.tokenText(content[i+1:i+1+j], true))
				i += j + 2
				continue
			}
		}
		if lit, n := slackEntity(content[i:]); n > 0 {
			b.WriteByte(lit)
			i += n
			continue
		}
		b.WriteByte(content[i])
		i++
	}
	return b.String()
}

// pre writes a Slack pre block as a fenced code block on lines of its own.
func (c *toConverter) pre(content string, quoted bool) {
	text := c.codeText(content)
	text = strings.TrimPrefix(text, "\n")
	text = strings.TrimSuffix(text, "\n")
	fence := strings.Repeat("`", max(3, longestRun(text, '`')+1))
	prefix := ""
	if quoted {
		prefix = "> "
	}
	if !c.atLineStart() {
		c.writeByte('\n')
	}
	c.write(prefix + fence + "\n")
	for line := range strings.SplitSeq(text, "\n") {
		c.write(prefix + strings.TrimSuffix(line, "\r") + "\n")
	}
	c.write(prefix + fence)
	c.prevQuoted = quoted
}

func longestRun(s string, ch byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == ch {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}
