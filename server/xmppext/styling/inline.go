package styling

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// This file converts one line of markdown inline content to XEP-0393. It
// follows CommonMark's inline rules where they matter for the result (code
// spans, backslash escapes, links, and the delimiter-run algorithm for
// emphasis, with GFM's ~~strike~~) and ignores the rest, which passes
// through as text. Emphasis spanning lines is left as typed: XEP-0393 spans
// cannot cross a line.

// maxLinkDepth bounds recursion into link texts, which is all the recursion
// there is. CommonMark forbids links in links anyway; images in links are
// the only legitimate nesting.
const maxLinkDepth = 4

// markdownSpecial are the bytes that can start inline markup. A line without
// any is copied as is, which is most lines.
const markdownSpecial = "\\`[<*_~&"

type nodeKind uint8

const (
	nText  nodeKind = iota // s[start:end], verbatim
	nDelim                 // a run of * or _, or ~~; see delims[delim]
	nCode                  // code span s[start:end] with content s[a:b]
	nLink                  // [s[a:b]](s[c:d])
	nImage                 // ![...](s[c:d])
)

type node struct {
	kind       nodeKind
	start, end int
	a, b, c, d int
	delim      int
}

type delim struct {
	char       byte
	orig, left int // run length as written, and not yet matched
	canOpen    bool
	canClose   bool
	prev, next int // neighbours among the delimiters still in play
	// Matches this run takes part in: as closer in the order they were made
	// (innermost first, which is left to right), as opener most recent first
	// (outermost first, also left to right).
	closeHead, closeTail, openHead int
}

type match struct {
	char                byte
	n                   int
	nextClose, nextOpen int
}

type span struct{ start, end int }

// inliner holds the scratch space for converting lines, reused from one line
// to the next so that a long message costs a handful of allocations, not a
// few per line.
type inliner struct {
	depth    int
	nodes    []node
	delims   []delim
	matches  []match
	codes    []span // code spans, by start
	pairs    []span // matching [ and ], by start
	stack    []int
	failed   []int // backtick run lengths known to have no closer further on
	codeNext int   // cursor into codes
	pairNext int   // cursor into pairs
	// budget is how many more bytes link may scan on this line. Looking for
	// the end of a link destination can run to the end of the line for every
	// [ on it; past a few times the line's length, the rest of its brackets
	// are taken as text, which only changes lines built to be slow.
	budget int
}

// convert writes the XEP-0393 rendering of the markdown line s to b.
func (in *inliner) convert(b *strings.Builder, s string) {
	if !strings.ContainsAny(s, markdownSpecial) {
		b.WriteString(s)
		return
	}
	in.nodes, in.delims, in.matches = in.nodes[:0], in.delims[:0], in.matches[:0]
	in.codes, in.pairs, in.stack, in.failed = in.codes[:0], in.pairs[:0], in.stack[:0], in.failed[:0]
	in.codeNext, in.pairNext = 0, 0
	in.budget = 4*len(s) + 1024
	in.structure(s)
	in.scan(s)
	in.emphasis()
	in.emit(b, s)
}

// structure finds the code spans and the matching brackets of s up front, so
// that scan never has to search ahead more than once per opener: a line full
// of unmatched [ or ` would otherwise take quadratic time.
func (in *inliner) structure(s string) {
	for i := 0; i < len(s); {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && isASCIIPunct(s[i+1]) {
				i += 2
				continue
			}
		case '`':
			n := runLen(s, i, '`')
			if end := in.codeCloser(s, i+n, n); end >= 0 {
				in.codes = append(in.codes, span{i, end + n})
				i = end + n
				continue
			}
			i += n
			continue
		case '[':
			in.stack = append(in.stack, i)
		case ']':
			if k := len(in.stack); k > 0 {
				in.pairs = append(in.pairs, span{in.stack[k-1], i})
				in.stack = in.stack[:k-1]
			}
		}
		i++
	}
	slices.SortFunc(in.pairs, func(x, y span) int { return x.start - y.start })
}

// codeCloser returns where the backtick run of length n closing a code span
// opened before from starts, or -1.
func (in *inliner) codeCloser(s string, from, n int) int {
	if slices.Contains(in.failed, n) {
		return -1
	}
	for j := from; j < len(s); {
		k := strings.IndexByte(s[j:], '`')
		if k < 0 {
			break
		}
		j += k
		m := runLen(s, j, '`')
		if m == n {
			return j
		}
		j += m
	}
	// Nothing further on closes a run of n, for this opener or any later one.
	in.failed = append(in.failed, n)
	return -1
}

func runLen(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

func (in *inliner) add(n node) {
	in.nodes = append(in.nodes, n)
}

// scan splits s into nodes.
func (in *inliner) scan(s string) {
	text := 0
	flush := func(end int) {
		if text < end {
			in.add(node{kind: nText, start: text, end: end})
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
			// The escaped character stands for itself and nothing more.
			flush(i)
			in.add(node{kind: nText, start: i + 1, end: i + 2})
			i += 2
			text = i
			continue
		case c == '\\' && i+1 == len(s):
			// A backslash ending a line is a hard line break; the line ends
			// anyway.
			flush(i)
			i++
			text = i
			continue
		case c == '`':
			for in.codeNext < len(in.codes) && in.codes[in.codeNext].start < i {
				in.codeNext++
			}
			n := runLen(s, i, '`')
			if in.codeNext < len(in.codes) && in.codes[in.codeNext].start == i {
				sp := in.codes[in.codeNext]
				flush(i)
				in.add(node{kind: nCode, start: sp.start, end: sp.end, a: i + n, b: sp.end - n})
				i = sp.end
				text = i
				continue
			}
			i += n
			continue
		case c == '!' && i+1 < len(s) && s[i+1] == '[':
			if l, ok := in.link(s, i+1); ok {
				flush(i)
				l.kind, l.start = nImage, i
				in.add(l)
				i = l.end
				text = i
				continue
			}
		case c == '[':
			if l, ok := in.link(s, i); ok {
				flush(i)
				in.add(l)
				i = l.end
				text = i
				continue
			}
		case c == '<':
			if n := autolinkLen(s, i); n > 0 {
				flush(i)
				in.add(node{kind: nText, start: i, end: i + n})
				i += n
				text = i
				continue
			}
		case c == '*' || c == '_' || c == '~':
			n := runLen(s, i, c)
			if c == '~' && n != 2 {
				// Mattermost strikes with ~~ only; a lone ~ starts a channel
				// link.
				i += n
				continue
			}
			flush(i)
			in.addDelim(s, i, n)
			i += n
			text = i
			continue
		case c >= utf8.RuneSelf:
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			continue
		case urlStart(c):
			if n := urlLen(s, i); n > 0 {
				flush(i)
				in.add(node{kind: nText, start: i, end: i + n})
				i += n
				text = i
				continue
			}
		}
		i++
	}
	flush(len(s))
}

// addDelim adds the delimiter run s[i:i+n] with CommonMark's flanking rules.
func (in *inliner) addDelim(s string, i, n int) {
	c := s[i]
	before, after := runeBefore(s, i), runeAt(s, i+n)
	left := !isSpace(after) && (!isPunct(after) || isSpace(before) || isPunct(before))
	right := !isSpace(before) && (!isPunct(before) || isSpace(after) || isPunct(after))
	d := delim{
		char: c, orig: n, left: n,
		canOpen: left, canClose: right,
		prev: len(in.delims) - 1, next: -1,
		closeHead: -1, closeTail: -1, openHead: -1,
	}
	if c == '_' {
		// An underscore inside a word is not emphasis (snake_case).
		d.canOpen = left && (!right || isPunct(before))
		d.canClose = right && (!left || isPunct(after))
	}
	if d.prev >= 0 {
		in.delims[d.prev].next = len(in.delims)
	}
	in.add(node{kind: nDelim, start: i, end: i + n, delim: len(in.delims)})
	in.delims = append(in.delims, d)
}

// link parses an inline link whose text starts with the [ at s[open]:
// [text](destination "title"). Reference links are left as text.
func (in *inliner) link(s string, open int) (node, bool) {
	if in.depth >= maxLinkDepth {
		return node{}, false
	}
	for in.pairNext < len(in.pairs) && in.pairs[in.pairNext].start < open {
		in.pairNext++
	}
	if in.pairNext >= len(in.pairs) || in.pairs[in.pairNext].start != open {
		return node{}, false
	}
	closeAt := in.pairs[in.pairNext].end
	k := closeAt + 1
	if k >= len(s) || s[k] != '(' || in.budget <= 0 {
		return node{}, false
	}
	// Charge the budget for however far this attempt looks, success or not.
	far := k
	defer func() { in.budget -= far - closeAt }()
	k = skipBlanks(s, k+1)
	var urlStart, urlEnd int
	if k < len(s) && s[k] == '<' {
		j := k + 1
		for j < len(s) && s[j] != '>' && s[j] != '<' {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			j++
		}
		far = j
		if j >= len(s) || s[j] != '>' {
			return node{}, false
		}
		urlStart, urlEnd, k = k+1, j, j+1
	} else {
		depth, j := 0, k
	dest:
		for j < len(s) {
			switch ch := s[j]; {
			case ch == '\\' && j+1 < len(s) && isASCIIPunct(s[j+1]):
				j += 2
				continue
			case ch <= ' ':
				break dest
			case ch == '(':
				depth++
			case ch == ')':
				if depth == 0 {
					break dest
				}
				depth--
			}
			j++
		}
		far = j
		if depth != 0 {
			return node{}, false
		}
		urlStart, urlEnd, k = k, j, j
	}
	if t := skipBlanks(s, k); t < len(s) && t > k && (s[t] == '"' || s[t] == '\'' || s[t] == '(') {
		closer := s[t]
		if closer == '(' {
			closer = ')'
		}
		j := t + 1
		for j < len(s) && s[j] != closer {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			j++
		}
		far = max(far, j)
		if j >= len(s) {
			return node{}, false
		}
		k = j + 1
	}
	k = skipBlanks(s, k)
	if k >= len(s) || s[k] != ')' {
		return node{}, false
	}
	return node{kind: nLink, start: open, end: k + 1, a: open + 1, b: closeAt, c: urlStart, d: urlEnd}, true
}

func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// autolinkLen returns the length of the CommonMark autolink (<scheme:...>
// or <user@host>) at s[i], or 0. They are kept as they are: "<url>" is how
// plain text has set URLs apart since RFC 1738, and XMPP clients link them.
func autolinkLen(s string, i int) int {
	j := i + 1
	scheme := 0
	for j < len(s) && (isLetterDigit(s[j]) || s[j] == '+' || s[j] == '.' || s[j] == '-') {
		j++
		scheme++
	}
	isURI := scheme >= 2 && scheme <= 32 && j < len(s) && s[j] == ':' && isLetter(s[i+1])
	at := false
	for ; j < len(s) && s[j] != '>'; j++ {
		switch c := s[j]; {
		case c <= ' ' || c == '<':
			return 0
		case c == '@':
			at = true
		}
	}
	if j >= len(s) || (!isURI && !at) || j == i+1 {
		return 0
	}
	return j + 1 - i
}

func isLetter(c byte) bool      { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isLetterDigit(c byte) bool { return isLetter(c) || '0' <= c && c <= '9' }

// emphasis matches openers with closers, following the "process emphasis"
// procedure of the CommonMark spec, including its rule of three and its
// openers_bottom optimization (without which a line of unmatched * is
// quadratic).
func (in *inliner) emphasis() {
	if len(in.delims) == 0 {
		return
	}
	// Index: delimiter character, whether the closer can also open, closer
	// length mod 3. Openers at or below the recorded index are known not to
	// match such a closer.
	var bottom [3][2][3]int
	for i := range bottom {
		for j := range bottom[i] {
			for k := range bottom[i][j] {
				bottom[i][j][k] = -1
			}
		}
	}
	charIdx := func(c byte) int {
		switch c {
		case '*':
			return 0
		case '_':
			return 1
		}
		return 2
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}

	cur := 0
	for cur >= 0 {
		closer := &in.delims[cur]
		if !closer.canClose || closer.left == 0 {
			cur = closer.next
			continue
		}
		bot := &bottom[charIdx(closer.char)][b2i(closer.canOpen)][closer.orig%3]
		opener := closer.prev
		for ; opener > *bot; opener = in.delims[opener].prev {
			o := &in.delims[opener]
			if o.char != closer.char || !o.canOpen || o.left == 0 {
				continue
			}
			if o.char == '~' {
				break // ~~ runs are all of length 2
			}
			if (o.canClose || closer.canOpen) && (o.orig+closer.orig)%3 == 0 && (o.orig%3 != 0 || closer.orig%3 != 0) {
				continue
			}
			break
		}
		if opener <= *bot || opener < 0 {
			*bot = closer.prev
			next := closer.next
			if !closer.canOpen {
				in.unlink(cur)
			}
			cur = next
			continue
		}
		o := &in.delims[opener]
		n := 1
		if o.left >= 2 && closer.left >= 2 {
			n = 2
		}
		in.record(opener, cur, n)
		// Delimiters between the two can no longer match anything: they are
		// inside this span and XEP-0393, like CommonMark, does not let spans
		// interleave.
		for d := o.next; d != cur && d >= 0; d = in.delims[d].next {
			in.unlink(d)
		}
		o.left -= n
		closer.left -= n
		if o.left == 0 {
			in.unlink(opener)
		}
		if closer.left == 0 {
			next := closer.next
			in.unlink(cur)
			cur = next
		}
	}
}

func (in *inliner) record(opener, closer, n int) {
	m := len(in.matches)
	in.matches = append(in.matches, match{char: in.delims[closer].char, n: n, nextClose: -1, nextOpen: -1})
	c := &in.delims[closer]
	if c.closeTail < 0 {
		c.closeHead = m
	} else {
		in.matches[c.closeTail].nextClose = m
	}
	c.closeTail = m
	o := &in.delims[opener]
	in.matches[m].nextOpen = o.openHead
	o.openHead = m
}

func (in *inliner) unlink(i int) {
	d := &in.delims[i]
	if d.prev >= 0 {
		in.delims[d.prev].next = d.next
	}
	if d.next >= 0 {
		in.delims[d.next].prev = d.prev
	}
}

// emit writes the nodes as XEP-0393.
func (in *inliner) emit(b *strings.Builder, s string) {
	for _, n := range in.nodes {
		switch n.kind {
		case nText:
			b.WriteString(s[n.start:n.end])
		case nCode:
			writeCode(b, s[n.start:n.end], s[n.a:n.b])
		case nDelim:
			d := &in.delims[n.delim]
			for m := d.closeHead; m >= 0; m = in.matches[m].nextClose {
				b.WriteByte(marker(in.matches[m]))
			}
			for range d.left {
				b.WriteByte(d.char)
			}
			for m := d.openHead; m >= 0; m = in.matches[m].nextOpen {
				b.WriteByte(marker(in.matches[m]))
			}
		case nImage:
			if n.c < n.d {
				writeUnescaped(b, s[n.c:n.d])
			} else {
				// No URL: the alt text is all there is.
				in.sub(b, s[n.a:n.b])
			}
		case nLink:
			in.writeLink(b, s[n.a:n.b], s[n.c:n.d])
		}
	}
}

// marker is the XEP-0393 directive for a markdown emphasis match.
func marker(m match) byte {
	switch {
	case m.char == '~':
		return '~'
	case m.n == 2:
		return '*'
	}
	return '_'
}

// writeCode writes a code span. XEP-0393's pre span is a single backtick on
// each side around text that neither starts nor ends with white space and
// holds no backtick; anything else is written as the markdown was, which
// still reads as code.
func writeCode(b *strings.Builder, raw, content string) {
	// CommonMark strips one space from each side when both have one.
	if len(content) >= 2 && content[0] == ' ' && content[len(content)-1] == ' ' && strings.TrimLeft(content, " ") != "" {
		content = content[1 : len(content)-1]
	}
	if content == "" || strings.IndexByte(content, '`') >= 0 ||
		isSpace(runeAt(content, 0)) || isSpace(runeBefore(content, len(content))) {
		b.WriteString(raw)
		return
	}
	b.WriteByte('`')
	b.WriteString(content)
	b.WriteByte('`')
}

// writeLink writes [text](url) as "text <url>", or just the URL when the text
// adds nothing.
func (in *inliner) writeLink(b *strings.Builder, text, url string) {
	var t strings.Builder
	in.sub(&t, text)
	txt := t.String()
	dest := url
	if strings.IndexByte(url, '\\') >= 0 {
		var u strings.Builder
		writeUnescaped(&u, url)
		dest = u.String()
	}
	switch {
	case dest == "":
		b.WriteString(txt)
	case txt == "" || txt == dest:
		b.WriteString(dest)
	default:
		b.WriteString(txt)
		b.WriteString(" <")
		b.WriteString(dest)
		b.WriteByte('>')
	}
}

// sub converts the markdown s (link or alt text) with fresh scratch space,
// since in's is in use.
func (in *inliner) sub(b *strings.Builder, s string) {
	inner := inliner{depth: in.depth + 1}
	inner.convert(b, s)
}

// writeUnescaped writes s with markdown backslash escapes resolved.
func writeUnescaped(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]) {
			i++
		}
		b.WriteByte(s[i])
	}
}
