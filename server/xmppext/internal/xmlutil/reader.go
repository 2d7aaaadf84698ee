// Package xmlutil holds the token-level plumbing shared by the xmppext
// packages: a reader that bounds the work done on untrusted input and checks
// that it is well formed, and small helpers to walk elements with it.
//
// Everything here reads from an xml.TokenReader, not from bytes, because that
// is what a mellium session hands to its handlers: the stanza has already been
// tokenized once and decoding it again from text would double the work.
package xmlutil

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
)

// The errors of the xmppext packages, under short names.
var (
	ErrMalformed = xmppext.ErrMalformed
	ErrTooLarge  = xmppext.ErrTooLarge
	ErrDuplicate = xmppext.ErrDuplicate
)

// Limits bound the work done on one element tree. A zero field takes its
// value from DefaultLimits.
type Limits struct {
	// MaxDepth is how deep elements may nest, the outermost element being at
	// depth 1.
	MaxDepth int
	// MaxTokens is how many tokens may be read in all.
	MaxTokens int
	// MaxText is how many bytes of character data may be read in all.
	MaxText int
	// MaxAttrs is how many attributes one element may have.
	MaxAttrs int
}

// DefaultLimits are generous for any real message stanza (MAM results nest
// the deepest, at about 6) while keeping hostile input cheap to reject.
var DefaultLimits = Limits{
	MaxDepth:  24,
	MaxTokens: 8192,
	MaxText:   1 << 20,
	MaxAttrs:  64,
}

// Sizes of single values that the decoders accept. IDs end up as keys in the
// plugin's KV store and short texts in posts, so anything beyond these is
// treated as an attack rather than truncated.
const (
	// MaxID is the longest ID (stanza, origin, occupant, archive) accepted.
	MaxID = 1024
	// MaxShortText is the longest short text (reason, URL, description,
	// nickname, reaction) accepted.
	MaxShortText = 8 << 10
)

// WithDefaults returns l with its zero fields set from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultLimits.MaxTokens
	}
	if l.MaxText <= 0 {
		l.MaxText = DefaultLimits.MaxText
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = DefaultLimits.MaxAttrs
	}
	return l
}

// Reader wraps a token reader and refuses input that goes over its limits or
// is not well formed. It checks nesting itself, rather than trusting the
// source, because an xml.TokenReader need not be an *xml.Decoder: it may be
// any transformer chain, and nothing forces those to balance their elements.
//
// Once the element it started in (or the first element it read) is closed it
// returns io.EOF, so reading past the end of a stanza into the rest of the
// stream is impossible.
type Reader struct {
	r      xml.TokenReader
	lim    Limits
	stack  []xml.Name
	tokens int
	text   int
	srcEOF bool // the source returned io.EOF together with its last token
	done   bool // the outermost element has been closed
}

// NewReader returns a Reader that reads a whole element from r, starting
// with its start element.
func NewReader(r xml.TokenReader, lim Limits) *Reader {
	lim = lim.WithDefaults()
	return &Reader{
		r:   r,
		lim: lim,
		// Most stanzas nest 3 or 4 deep; 8 avoids regrowing in all but MAM
		// results without wasting much.
		stack: make([]xml.Name, 0, min(8, lim.MaxDepth)),
	}
}

// NewReaderIn returns a Reader for the content of start, which the caller
// has already read from r; it returns io.EOF once start is closed.
func NewReaderIn(r xml.TokenReader, start xml.StartElement, lim Limits) *Reader {
	xr := NewReader(r, lim)
	xr.stack = append(xr.stack, start.Name)
	return xr
}

// Within returns a Reader for the content of start, which the caller has
// already read from r. If r is itself a *Reader it is returned unchanged, so
// that the limits of a whole stanza apply to every payload decoded from it;
// otherwise r is wrapped with DefaultLimits.
func Within(r xml.TokenReader, start xml.StartElement) *Reader {
	if xr, ok := r.(*Reader); ok {
		return xr
	}
	return NewReaderIn(r, start, DefaultLimits)
}

// Depth is the number of elements currently open.
func (r *Reader) Depth() int { return len(r.stack) }

// Token returns the next token, or an error wrapping ErrMalformed or
// ErrTooLarge. Comments are dropped. Character data is returned as read and,
// as with xml.Decoder, may only be valid until the next call.
func (r *Reader) Token() (xml.Token, error) {
	for {
		if r.done {
			return nil, io.EOF
		}
		if r.srcEOF {
			return nil, r.eof()
		}
		tok, err := r.r.Token()
		switch {
		case err == io.EOF && tok != nil:
			// The xml.TokenReader contract lets the last token come with
			// io.EOF; hand out the token now and the EOF next time.
			r.srcEOF = true
		case err == io.EOF:
			return nil, r.eof()
		case err != nil:
			var syntax *xml.SyntaxError
			if errors.As(err, &syntax) {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			// Anything else is the source's own trouble (a closed
			// connection, say), not the input's, and is passed on as is.
			return nil, err
		}
		r.tokens++
		if r.tokens > r.lim.MaxTokens {
			return nil, fmt.Errorf("%w: more than %d tokens", ErrTooLarge, r.lim.MaxTokens)
		}
		switch t := tok.(type) {
		case nil:
			// Discouraged by the TokenReader contract but possible; the
			// token count above keeps a reader that only does this finite.
			continue
		case xml.StartElement:
			if len(r.stack) >= r.lim.MaxDepth {
				return nil, fmt.Errorf("%w: elements nested deeper than %d", ErrTooLarge, r.lim.MaxDepth)
			}
			if len(t.Attr) > r.lim.MaxAttrs {
				return nil, fmt.Errorf("%w: <%s> has more than %d attributes", ErrTooLarge, t.Name.Local, r.lim.MaxAttrs)
			}
			r.stack = append(r.stack, t.Name)
		case xml.EndElement:
			if len(r.stack) == 0 || r.stack[len(r.stack)-1] != t.Name {
				return nil, fmt.Errorf("%w: unexpected </%s>", ErrMalformed, t.Name.Local)
			}
			r.stack = r.stack[:len(r.stack)-1]
			r.done = len(r.stack) == 0
		case xml.CharData:
			r.text += len(t)
			if r.text > r.lim.MaxText {
				return nil, fmt.Errorf("%w: more than %d bytes of text", ErrTooLarge, r.lim.MaxText)
			}
		case xml.Comment:
			continue
		default:
			// Processing instructions and directives are forbidden inside
			// stanzas (RFC 6120 §11.1), and anything else is not XML.
			return nil, fmt.Errorf("%w: unexpected %T", ErrMalformed, tok)
		}
		return tok, nil
	}
}

func (r *Reader) eof() error {
	if len(r.stack) > 0 {
		return fmt.Errorf("%w: input ends inside <%s>", ErrMalformed, r.stack[len(r.stack)-1].Local)
	}
	return io.EOF
}
