package mrkdwn

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/slackext/emoji"
)

// markdown parses Mattermost's Markdown: CommonMark with GFM tables, bare
// URL links and ~~strike~~. goldmark's own strikethrough also takes a
// single ~, which Mattermost does not (and which starts its ~channel
// links), hence strikeParser.
var markdown = goldmark.New(
	goldmark.WithExtensions(extension.Table, extension.Linkify),
	goldmark.WithParserOptions(parser.WithInlineParsers(util.Prioritized(strikeParser{}, 500))),
)

// strikeParser reads ~~ delimiter runs, exactly two tildes, as GFM's
// strikethrough (goldmark's extension/ast.Strikethrough node).
type strikeParser struct{}

type strikeDelimiter struct{}

func (strikeDelimiter) IsDelimiter(b byte) bool { return b == '~' }

func (strikeDelimiter) CanOpenCloser(opener, closer *parser.Delimiter) bool {
	return opener.Char == closer.Char && opener.OriginalLength == closer.OriginalLength
}

func (strikeDelimiter) OnMatch(int) ast.Node { return east.NewStrikethrough() }

func (strikeParser) Trigger() []byte { return []byte{'~'} }

func (strikeParser) Parse(_ ast.Node, block text.Reader, pc parser.Context) ast.Node {
	before := block.PrecendingCharacter()
	line, segment := block.PeekLine()
	d := parser.ScanDelimiter(line, before, 1, strikeDelimiter{})
	if d == nil || d.OriginalLength != 2 || before == '~' {
		return nil
	}
	d.Segment = segment.WithStop(segment.Start + d.OriginalLength)
	block.Advance(d.OriginalLength)
	pc.PushDelimiter(d)
	return d
}

func (strikeParser) CloseBlock(ast.Node, parser.Context) {}

// FromMarkdown converts Mattermost Markdown to Slack mrkdwn: **bold** -> *bold*, *italic*/_italic_ -> _italic_, ~~strike~~ -> ~strike~, [text](url) -> <url|text>, headings -> bold lines, lists kept, code kept verbatim (no conversion inside code), tables as preformatted text, & < > escaped as Slack requires (so "<!channel>" typed by a Mattermost user can never become a Slack broadcast, nor "<@U123>" a Slack mention); mentions are passed separately:
// userIDs maps a Mattermost @username present in the text to a Slack user ID when that person has a Slack identity: those become <@U…>; others stay as plain text.
//
// In detail:
//
//   - Lists become "• item" and "1. item" lines, nested ones indented;
//     quotes become "> " lines (Slack does not nest them); thematic breaks
//     a line of "---"; fenced and indented code a ``` block; raw HTML,
//     which Mattermost shows as text, stays text.
//   - [text](url), ![alt](url), <url> and bare URLs become <url|text> or
//     <url> for http, https, ftp and mailto URLs (www. gets http://); other
//     destinations are written as "text (url)" in plain text.
//   - Tables become a ``` block with the columns padded to line up.
//   - :emoji: names Slack spells differently are renamed.
//   - userIDs keys are usernames without the @, matched without regard to
//     case; values must look like Slack user IDs (U… or W…), others are
//     ignored. Mentions in code and link text stay text.
//
// What Slack cannot show is kept as typed: mrkdwn has no escape for its span
// markers, so a literal * or _ from Markdown (\*) may still style text in
// Slack, and a line starting with > (as &gt;) may show as a quote. The
// caller must post with Slack's link_names and parse options off, which is
// the default, or Slack would turn plain @here back into a broadcast.
func FromMarkdown(md string, userIDs map[string]string) string {
	if md == "" {
		return ""
	}
	md = strings.ToValidUTF8(md, "\uFFFD")
	w := fromWriter{ids: normalizeIDs(userIDs)}
	w.b.Grow(len(md) + 16)
	if len(md) > MaxParsed {
		// Past what a Mattermost post can hold: text, not markup.
		w.b.Grow(len(md) / 4)
		w.emit(md)
		return w.b.String()
	}
	w.src = []byte(flattenQuotes(md))
	doc := markdown.Parser().Parse(text.NewReader(w.src))
	w.container(doc, true)
	w.flush()
	return strings.TrimRight(w.b.String(), " \n")
}

// MaxParsed is the longest input FromMarkdown parses as Markdown: a
// Mattermost post's 16,383 characters, at four bytes each. goldmark's time
// grows faster than its input on some constructed inputs (long runs of
// "[a](", "*a" or nested list markers in one paragraph), by its design of
// looking ahead for closers; up to this size that stays well under a second
// and needs a Mattermost account to send. Longer input (which Mattermost
// would not accept as a post) is converted as plain text, with & < >
// escaped and mentions converted, in linear time.
const MaxParsed = 4 * 16383

// maxQuoteDepth bounds the quote markers read at the start of a line.
// Slack shows one level of quote, and goldmark's time grows with the square
// of the nesting, so markers past this depth are dropped before parsing.
const maxQuoteDepth = 8

// flattenQuotes drops quote markers past maxQuoteDepth at the start of
// each line.
func flattenQuotes(md string) string {
	if !strings.Contains(md, strings.Repeat(">", maxQuoteDepth)) && !strings.Contains(md, strings.Repeat("> ", maxQuoteDepth)) {
		return md
	}
	var b strings.Builder
	b.Grow(len(md))
	for rest := md; ; {
		line, tail, more := strings.Cut(rest, "\n")
		depth, i := 0, 0
		for {
			j := i
			for j < len(line) && j-i < 3 && line[j] == ' ' {
				j++
			}
			if j >= len(line) || line[j] != '>' {
				break
			}
			depth++
			if depth == maxQuoteDepth {
				b.WriteString(line[:j+1])
			}
			i = j + 1
			if i < len(line) && line[i] == ' ' {
				i++
			}
		}
		if depth >= maxQuoteDepth {
			b.WriteString(" ")
			b.WriteString(line[i:])
		} else {
			b.WriteString(line)
		}
		if !more {
			return b.String()
		}
		b.WriteByte('\n')
		rest = tail
	}
}

// normalizeIDs keys userIDs by lower-case username and drops values that
// are not Slack user IDs, which the output would otherwise carry in <@…>.
func normalizeIDs(userIDs map[string]string) map[string]string {
	if len(userIDs) == 0 {
		return nil
	}
	out := make(map[string]string, len(userIDs))
	for name, id := range userIDs {
		if slackID(id, "UW") {
			out[strings.ToLower(strings.TrimPrefix(name, "@"))] = id
		}
	}
	return out
}

type fromWriter struct {
	b   strings.Builder
	src []byte
	ids map[string]string
	// quoted and indent make the start of every new line: a quote marker
	// (Slack's must start the line) and the indentation of list items.
	quoted bool
	indent string
	// styles active around the current text, so nested ones are not
	// written twice (Slack does not nest a style in itself).
	bold, italic, strike int
	// pending is text not yet written, gathered across goldmark's text
	// nodes so mentions and emoji split over several are still found.
	pending strings.Builder
	last    rune
}

func (w *fromWriter) write(s string) {
	if s == "" {
		return
	}
	w.b.WriteString(s)
	w.last, _ = utf8.DecodeLastRuneInString(s)
}

// nl starts a new line inside the current quote and list item.
func (w *fromWriter) nl() {
	w.flush()
	w.write("\n")
	if w.quoted {
		w.write("> ")
	}
	w.write(w.indent)
}

// container writes the blocks of n, separated by a blank line (loose) or
// a line break.
func (w *fromWriter) container(n ast.Node, loose bool) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if c != n.FirstChild() {
			w.nl()
			if loose {
				w.nl()
			}
		}
		w.block(c)
	}
}

func (w *fromWriter) block(n ast.Node) {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		w.inlines(n)
	case *ast.Heading:
		// Slack has no headings; a bold line is what its own apps use.
		w.bold++
		if n.FirstChild() != nil {
			w.write("*")
			w.inlines(n)
			w.flush()
			w.write("*")
		}
		w.bold--
	case *ast.ThematicBreak:
		w.write("---")
	case *ast.FencedCodeBlock, *ast.CodeBlock:
		w.codeBlock(n.Lines())
	case *ast.HTMLBlock:
		lines := n.Lines()
		for i := range lines.Len() {
			if i > 0 {
				w.nl()
			}
			seg := lines.At(i)
			w.text(strings.TrimRight(string(seg.Value(w.src)), "\r\n"))
		}
		if n.HasClosure() {
			if lines.Len() > 0 {
				w.nl()
			}
			w.text(strings.TrimRight(string(n.ClosureLine.Value(w.src)), "\r\n"))
		}
	case *ast.Blockquote:
		if !w.quoted && w.indent == "" {
			w.quoted = true
			w.write("> ")
			w.container(n, true)
			w.flush()
			w.quoted = false
		} else {
			w.container(n, true)
		}
	case *ast.List:
		w.list(n)
	case *east.Table:
		w.table(n)
	default:
		w.container(n, true)
	}
}

// maxIndent bounds the indentation of nested list items, in spaces.
const maxIndent = 24

func (w *fromWriter) list(n *ast.List) {
	num := n.Start
	for item := n.FirstChild(); item != nil; item = item.NextSibling() {
		if item != n.FirstChild() {
			w.nl()
		}
		marker := "• "
		if n.IsOrdered() {
			marker = strconv.Itoa(num) + ". "
			num++
		}
		w.write(marker)
		saved := w.indent
		if len(w.indent) < maxIndent {
			// Deeper lists line up with the deepest shown: Slack's width
			// is gone by then, and unbounded indentation would make the
			// output grow with the square of the nesting.
			w.indent += strings.Repeat(" ", utf8.RuneCountInString(marker))
		}
		w.container(item, false)
		w.flush()
		w.indent = saved
	}
}

// codeBlock writes code lines as a Slack pre block. Slack ends a block at
// the first ``` wherever it is, so a ``` inside gets a zero-width space.
func (w *fromWriter) codeBlock(lines *text.Segments) {
	var code strings.Builder
	for i := range lines.Len() {
		seg := lines.At(i)
		code.Write(seg.Value(w.src))
	}
	w.pre(strings.TrimRight(code.String(), "\n"))
}

func (w *fromWriter) pre(code string) {
	w.flush()
	w.write("```")
	for line := range strings.SplitSeq(code, "\n") {
		w.nl()
		line = strings.TrimSuffix(line, "\r")
		w.write(slackEscape(strings.ReplaceAll(line, "```", "`\u200b``")))
	}
	w.nl()
	w.write("```")
}

// table writes a GFM table as a pre block, columns padded to line up.
func (w *fromWriter) table(n *east.Table) {
	var rows [][]string
	var widths []int
	for row := n.FirstChild(); row != nil; row = row.NextSibling() {
		var cells []string
		for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
			s := oneLine(w.plain(cell))
			if k := len(cells); k >= len(widths) {
				widths = append(widths, 0)
			}
			widths[len(cells)] = max(widths[len(cells)], utf8.RuneCountInString(s))
			cells = append(cells, s)
		}
		rows = append(rows, cells)
	}
	var b strings.Builder
	for r, cells := range rows {
		if r > 0 {
			b.WriteByte('\n')
		}
		for i, s := range cells {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(s)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(s)))
			}
		}
		if r == 0 {
			b.WriteByte('\n')
			for i, wd := range widths {
				if i > 0 {
					b.WriteString("-|-")
				}
				b.WriteString(strings.Repeat("-", max(wd, 1)))
			}
		}
	}
	w.pre(strings.TrimRight(b.String(), " "))
}

// inlines writes the inline content of n.
func (w *fromWriter) inlines(n ast.Node) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		w.inline(c)
	}
}

func (w *fromWriter) inline(n ast.Node) {
	switch n := n.(type) {
	case *ast.Text:
		w.pending.WriteString(resolve(n.Value(w.src)))
		if n.SoftLineBreak() || n.HardLineBreak() {
			// Mattermost shows a line break where the source has one.
			w.nl()
		}
	case *ast.String:
		w.pending.Write(n.Value)
	case *ast.CodeSpan:
		code := w.codeSpan(n)
		if code != "" {
			w.flush()
			w.write("`" + slackEscape(code) + "`")
		}
	case *ast.Emphasis:
		if n.Level >= 2 {
			w.styled(n, &w.bold, "*")
		} else {
			w.styled(n, &w.italic, "_")
		}
	case *east.Strikethrough:
		w.styled(n, &w.strike, "~")
	case *ast.Link:
		w.link(resolve(n.Destination), w.plain(n))
	case *ast.Image:
		w.link(resolve(n.Destination), w.plain(n))
	case *ast.AutoLink:
		label := string(n.Label(w.src))
		url := string(n.URL(w.src))
		if n.AutoLinkType == ast.AutoLinkEmail {
			w.pending.WriteString(label)
			return
		}
		if strings.HasPrefix(strings.ToLower(url), "www.") {
			url = "http://" + url
		}
		w.link(url, label)
	case *ast.RawHTML:
		// Mattermost shows HTML as the text it is.
		for i := range n.Segments.Len() {
			seg := n.Segments.At(i)
			w.pending.Write(seg.Value(w.src))
		}
	default:
		w.inlines(n)
	}
}

// styled writes n between Slack markers, unless the same style is already
// open around it or it is empty.
func (w *fromWriter) styled(n ast.Node, depth *int, mark string) {
	if *depth > 0 || n.FirstChild() == nil {
		w.inlines(n)
		return
	}
	w.flush()
	*depth++
	w.write(mark)
	w.inlines(n)
	w.flush()
	w.write(mark)
	*depth--
}

// link writes a link with the given destination and label.
func (w *fromWriter) link(dest, label string) {
	label = strings.TrimSpace(oneLine(label))
	if !linkable(dest) {
		// Not something to open from Slack (a relative path, javascript:):
		// show it as text.
		switch {
		case dest == "" || dest == label:
			w.pending.WriteString(label)
		case label == "":
			w.pending.WriteString(dest)
		default:
			w.pending.WriteString(label + " (" + oneLine(dest) + ")")
		}
		return
	}
	w.flush()
	url := slackURL(dest)
	if label == "" || label == dest || "mailto:"+label == dest {
		w.write("<" + url + ">")
		return
	}
	w.write("<" + url + "|" + slackEscape(label) + ">")
}

// slackURL makes a URL safe inside <…|…>: percent-encodes the characters
// that would end the URL or the token (white space, <, >, |) and escapes &.
func slackURL(url string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(url); i++ {
		switch ch := url[i]; {
		case ch <= ' ' || ch == 0x7f || ch == '<' || ch == '>' || ch == '|':
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		case ch == '&':
			b.WriteString("&amp;")
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// codeSpan returns a code span's content, line endings as spaces as
// CommonMark says.
func (w *fromWriter) codeSpan(n *ast.CodeSpan) string {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			v := c.Value(w.src)
			if len(v) > 0 && v[len(v)-1] == '\n' {
				b.Write(v[:len(v)-1])
				b.WriteByte(' ')
			} else {
				b.Write(v)
			}
		case *ast.String:
			b.Write(c.Value)
		}
	}
	return b.String()
}

// plain returns the text of n's inline content without markup, for link
// labels and table cells.
func (w *fromWriter) plain(n ast.Node) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch c := c.(type) {
		case *ast.Text:
			b.WriteString(resolve(c.Value(w.src)))
			if c.SoftLineBreak() || c.HardLineBreak() {
				b.WriteByte(' ')
			}
		case *ast.String:
			b.Write(c.Value)
		case *ast.CodeSpan:
			b.WriteString(w.codeSpan(c))
			return ast.WalkSkipChildren, nil
		case *ast.AutoLink:
			b.Write(c.Label(w.src))
		case *ast.RawHTML:
			for i := range c.Segments.Len() {
				seg := c.Segments.At(i)
				b.Write(seg.Value(w.src))
			}
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// text writes s, plain text, with mentions and emoji converted.
func (w *fromWriter) text(s string) {
	w.pending.WriteString(s)
	w.flush()
}

// flush writes the pending text: escaped for Slack, with @mentions of
// people in userIDs as <@U…> and emoji names in Slack's spelling.
func (w *fromWriter) flush() {
	if w.pending.Len() == 0 {
		return
	}
	s := w.pending.String()
	w.pending.Reset()
	w.emit(s)
}

// emit writes s as flush does, straight into the output.
func (w *fromWriter) emit(s string) {
	plain := 0
	for i := 0; i < len(s); {
		var repl string
		n := 1
		switch s[i] {
		case '@':
			if k, id := w.mention(s[i+1:], runeBefore(s, i), i == 0); k > 0 {
				repl, n = "<@"+id+">", 1+k
			}
		case ':':
			if k, name := slackEmojiAt(s[i:]); k > 0 {
				repl, n = ":"+name+":", k
			}
		case '&':
			repl = "&amp;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		}
		if repl == "" {
			i++
			continue
		}
		w.write(s[plain:i])
		w.write(repl)
		i += n
		plain = i
	}
	w.write(s[plain:])
}

// mention returns the length of the username s starts with (after an @)
// and its Slack ID, when it names someone in userIDs; prev is the
// character before the @. Mattermost reads a mention after anything but a
// word character or @, takes the name's characters, and drops trailing
// ".-_:" until the name is known.
func (w *fromWriter) mention(s string, prev rune, first bool) (int, string) {
	if first {
		// At the start of the pending text, what precedes is in the output.
		prev = w.last
		if w.b.Len() == 0 {
			prev = ' '
		}
	}
	if len(w.ids) == 0 || prev == '@' || prev == '_' || isAlnum(prev) {
		return 0, ""
	}
	n := 0
	for n < len(s) && n < 64 && (isAlnumByte(s[n]) || strings.IndexByte("._:-", s[n]) >= 0) {
		n++
	}
	for ; n > 0; n-- {
		if id, ok := w.ids[strings.ToLower(s[:n])]; ok {
			if n < len(s) && (isAlnumByte(s[n]) || s[n] == '@') {
				return 0, ""
			}
			return n, id
		}
		if strings.IndexByte("._:-", s[n-1]) < 0 {
			return 0, ""
		}
	}
	return 0, ""
}

// slackEmojiAt returns the length of the :emoji: shortcode s starts with
// and its Slack name; 0 if there is none.
func slackEmojiAt(s string) (int, string) {
	n := 1
	for n < len(s) && n <= 100 && emojiByte(s[n]) {
		n++
	}
	if n == 1 || n >= len(s) || s[n] != ':' {
		return 0, ""
	}
	return n + 1, emoji.ToSlack(s[1:n])
}

// slackEscape escapes the three characters Slack reads as control
// characters, as its documentation asks, and nothing else.
func slackEscape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// resolve returns the text a Markdown source fragment shows: backslash
// escapes and entities resolved.
func resolve(v []byte) string {
	if !strings.ContainsAny(string(v), "\\&") {
		return string(v)
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		switch v[i] {
		case '\\':
			if i+1 < len(v) && isASCIIPunct(v[i+1]) {
				b.WriteByte(v[i+1])
				i += 2
				continue
			}
		case '&':
			if s, n := entity(v[i:]); n > 0 {
				b.WriteString(s)
				i += n
				continue
			}
		}
		b.WriteByte(v[i])
		i++
	}
	return b.String()
}

// entity decodes the HTML entity v starts with, as CommonMark does.
func entity(v []byte) (string, int) {
	end := -1
	for i := 1; i < len(v) && i < 40; i++ {
		if v[i] == ';' {
			end = i
			break
		}
	}
	if end < 2 {
		return "", 0
	}
	body := string(v[1:end])
	if body[0] == '#' {
		num, base := body[1:], 10
		if num != "" && (num[0] == 'x' || num[0] == 'X') {
			num, base = num[1:], 16
		}
		if num == "" || len(num) > 7 {
			return "", 0
		}
		cp, err := strconv.ParseUint(num, base, 32)
		if err != nil {
			return "", 0
		}
		r := rune(cp)
		if r == 0 || !utf8.ValidRune(r) {
			r = utf8.RuneError
		}
		return string(r), end + 1
	}
	if e, ok := util.LookUpHTML5EntityByName(body); ok {
		return string(e.Characters), end + 1
	}
	return "", 0
}

func isASCIIPunct(c byte) bool {
	return c >= '!' && c <= '/' || c >= ':' && c <= '@' || c >= '[' && c <= '`' || c >= '{' && c <= '~'
}
