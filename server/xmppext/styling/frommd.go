package styling

import "strings"

// FromMarkdown converts Mattermost markdown to a plain XMPP body styled with
// XEP-0393:
//
//   - **strong** and __strong__ become *strong*; *emphasis* and _emphasis_
//     become _emphasis_; ~~strike~~ becomes ~strike~;
//   - `code` spans and fenced code blocks (``` or ~~~) become XEP-0393 pre
//     spans and blocks; > quotes stay quotes (without indentation before
//     the >, which XEP-0393 does not allow);
//   - [text](url) becomes "text <url>" (just the URL if the text is the URL);
//     ![alt](url) becomes the URL; <url> stays;
//   - "# Heading" (any level) becomes *Heading*;
//   - backslash escapes are resolved, since XEP-0393 has none (so \*x\*
//     arrives as *x*, which XMPP clients show as strong);
//   - everything else (lists, tables, mentions, emoji) is kept as typed.
//
// Emphasis that spans lines, which XEP-0393 cannot express, is left as typed,
// and so is emphasis around bare URLs, which Mattermost links whole. Indented
// code blocks and setext headings are not recognised. CRLF line ends become
// LF.
func FromMarkdown(md string) string {
	var c fromConverter
	c.b.Grow(len(md))
	for rest := md; ; {
		line, tail, more := strings.Cut(rest, "\n")
		c.line(strings.TrimSuffix(line, "\r"))
		if !more {
			break
		}
		c.b.WriteByte('\n')
		rest = tail
	}
	return c.b.String()
}

type fromConverter struct {
	b  strings.Builder
	in inliner
	// The fenced code block we are in, if open.
	fenceOpen   bool
	fenceChar   byte
	fenceLen    int
	fenceIndent int
	fenceDepth  int // quote depth it was opened at
}

func (c *fromConverter) line(line string) {
	if c.fenceOpen {
		// Inside a fence only the quote markers of its container count; more
		// of them are code.
		first, end, depth := quotePrefix(line, c.fenceDepth)
		if depth == c.fenceDepth {
			if depth > 0 {
				c.b.WriteString(line[first:end])
			}
			content := line[end:]
			if closesFence(content, c.fenceChar, c.fenceLen) {
				c.b.WriteString("```")
				c.fenceOpen = false
				return
			}
			c.b.WriteString(trimIndent(content, c.fenceIndent))
			return
		}
		// Its container (a quote) ended, and that ends the block too, in
		// markdown as in XEP-0393.
		c.fenceOpen = false
	}

	first, end, depth := quotePrefix(line, -1)
	content := line[end:]
	if depth > 0 {
		c.b.WriteString(line[first:end])
	}

	if ch, n, indent, info, ok := opensFence(content); ok {
		c.fenceOpen, c.fenceChar, c.fenceLen, c.fenceIndent, c.fenceDepth = true, ch, n, indent, depth
		if ch == '`' {
			// Any line starting with ``` opens an XEP-0393 block; keeping the
			// fence as written lets a body survive a trip through markdown.
			c.b.WriteString(content[indent:])
			return
		}
		c.b.WriteString("```")
		c.b.WriteString(info)
		return
	}
	if text, ok := heading(content); ok {
		c.heading(text)
		return
	}
	c.in.convert(&c.b, content)
}

// heading writes an ATX heading's text as strong, which is as close as
// XEP-0393 gets, unless it already is (# **Title**).
func (c *fromConverter) heading(text string) {
	if text == "" {
		return
	}
	var t strings.Builder
	c.in.convert(&t, text)
	conv := t.String()
	if len(conv) >= 2 && conv[0] == '*' && conv[len(conv)-1] == '*' {
		c.b.WriteString(conv)
		return
	}
	c.b.WriteByte('*')
	c.b.WriteString(conv)
	c.b.WriteByte('*')
}

// quotePrefix finds the block quote markers ("> ", each after up to three
// spaces) at the start of line, at most limit of them if limit >= 0. It
// returns where the first marker starts (the indentation before it is not
// wanted in XEP-0393, where > must start the line), where the markers end,
// and how many there are.
func quotePrefix(line string, limit int) (first, end, depth int) {
	first = -1
	for limit < 0 || depth < limit {
		j := 0
		for j < 3 && end+j < len(line) && line[end+j] == ' ' {
			j++
		}
		if end+j >= len(line) || line[end+j] != '>' {
			break
		}
		if first < 0 {
			first = end + j
		}
		end += j + 1
		if end < len(line) && (line[end] == ' ' || line[end] == '\t') {
			end++
		}
		depth++
	}
	return first, end, depth
}

// opensFence reports whether content opens a fenced code block, and how.
func opensFence(content string) (ch byte, n, indent int, info string, ok bool) {
	for indent < 3 && indent < len(content) && content[indent] == ' ' {
		indent++
	}
	if indent >= len(content) {
		return 0, 0, 0, "", false
	}
	ch = content[indent]
	if ch != '`' && ch != '~' {
		return 0, 0, 0, "", false
	}
	n = runLen(content, indent, ch)
	if n < 3 {
		return 0, 0, 0, "", false
	}
	info = content[indent+n:]
	if ch == '`' && strings.IndexByte(info, '`') >= 0 {
		// Then it is a code span, not a fence.
		return 0, 0, 0, "", false
	}
	return ch, n, indent, info, true
}

// closesFence reports whether content closes a fence of n ch.
func closesFence(content string, ch byte, n int) bool {
	i := 0
	for i < 3 && i < len(content) && content[i] == ' ' {
		i++
	}
	m := runLen(content, i, ch)
	return m >= n && strings.TrimLeft(content[i+m:], " \t") == ""
}

// trimIndent removes up to n leading spaces, as CommonMark does to the lines
// of an indented fence.
func trimIndent(s string, n int) string {
	i := 0
	for i < n && i < len(s) && s[i] == ' ' {
		i++
	}
	return s[i:]
}

// heading returns the text of an ATX heading ("## Title ##").
func heading(content string) (string, bool) {
	i := 0
	for i < 3 && i < len(content) && content[i] == ' ' {
		i++
	}
	n := runLen(content, i, '#')
	if n == 0 || n > 6 {
		return "", false
	}
	rest := content[i+n:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false // #hashtag
	}
	rest = strings.Trim(rest, " \t")
	// An optional closing run of # after white space.
	k := len(rest)
	for k > 0 && rest[k-1] == '#' {
		k--
	}
	switch {
	case k == 0:
		rest = ""
	case k < len(rest) && (rest[k-1] == ' ' || rest[k-1] == '\t'):
		rest = strings.TrimRight(rest[:k], " \t")
	}
	return rest, true
}
