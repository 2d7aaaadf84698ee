// Package styling converts between Mattermost's markdown and XMPP message
// bodies styled with XEP-0393: Message Styling.
//
// The two look alike but are not: XEP-0393 has *strong*, _emphasis_,
// ~strike~, `pre` spans, ```pre``` blocks and > quotes and nothing else, its
// spans never cross a line, and its opening directive must start the line or
// follow white space. Markdown has more, and its emphasis rules (CommonMark's
// delimiter runs) are more permissive.
//
// FromMarkdown keeps what XEP-0393 can show and turns the rest into readable
// plain text. ToMarkdown only converts spans that XEP-0393 itself recognises
// (it uses mellium's XEP-0393 decoder to find them) and escapes the few
// characters that markdown would otherwise read as markup the XMPP user did
// not see, so Mattermost shows what the XMPP client showed.
//
// FromMarkdown(ToMarkdown(b)) == b for any body b, except that ToMarkdown
// puts a blank line after a quote followed directly by a line with fewer
// quote markers (markdown would pull that line into the quote), that
// FromMarkdown turns CRLF line ends into LF, and that the two can disagree on
// where a bare URL ends right next to a styling directive. The tests hold
// the package to this.
package styling

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// isSpace reports Unicode white space, as both CommonMark and XEP-0393
// define it (the start and end of a line count as white space too, which
// callers handle by passing ' ').
func isSpace(r rune) bool { return unicode.IsSpace(r) }

// isPunct reports CommonMark's Unicode punctuation: general categories P
// and S.
func isPunct(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// isASCIIPunct reports the characters markdown lets a backslash escape.
func isASCIIPunct(c byte) bool {
	return c >= '!' && c <= '/' || c >= ':' && c <= '@' || c >= '[' && c <= '`' || c >= '{' && c <= '~'
}

// runeBefore returns the rune ending at s[i], or ' ' at the start: for
// flanking rules the edges of a line behave as white space.
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

// urlLen returns the length of the bare URL starting at s[i], or 0. Such
// URLs are linked by Mattermost and by XMPP clients alike, and neither
// side's markup applies inside them, so both directions copy them verbatim.
// Trailing punctuation is left out, as GFM's autolinker leaves it out: in
// "see https://example.com." the dot ends the sentence.
func urlLen(s string, i int) int {
	if i > 0 {
		if r := runeBefore(s, i); isAlnum(r) || r == '/' || r == '\\' {
			return 0
		}
	}
	rest := s[i:]
	var n int
	for _, p := range [...]string{"https://", "http://", "ftp://", "mailto:", "xmpp:", "www."} {
		if len(rest) > len(p) && hasPrefixFold(rest, p) {
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
		// A backslash ends the URL too: it is rare in URLs and is markdown's
		// escape character, so stopping there keeps "\_" after a URL an
		// escape in both directions.
		if isSpace(r) || r == '<' || r == '\\' {
			break
		}
		n += size
	}
	// Trim trailing punctuation, and closing parentheses that do not close
	// one opened inside the URL (Wikipedia links keep theirs).
	open, closed := strings.Count(rest[:n], "("), strings.Count(rest[:n], ")")
	for n > 0 {
		switch rest[n-1] {
		case '?', '!', '.', ',', ':', ';', '*', '_', '~', '\'', '"':
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

// urlStart reports whether c can start a URL that urlLen recognises; it
// keeps urlLen off the hot path of plain text.
func urlStart(c byte) bool {
	switch c | 0x20 { // ASCII lower case
	case 'h', 'f', 'm', 'w', 'x':
		return true
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
