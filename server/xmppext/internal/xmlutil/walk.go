package xmlutil

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"unicode"
)

// ReadStart reads the first start element from r, skipping whitespace before
// it. The bridge gets stanzas from mux handlers whose reader begins with the
// stanza's start element, but a raw decoder over bytes may yield a newline
// or indentation first.
func ReadStart(r *Reader) (xml.StartElement, error) {
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return xml.StartElement{}, fmt.Errorf("%w: no element", ErrMalformed)
		}
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimFunc(t, unicode.IsSpace)) == 0 {
				continue
			}
		}
		return xml.StartElement{}, fmt.Errorf("%w: expected an element, got %T", ErrMalformed, tok)
	}
}

// Skip reads up to and including the end of the innermost open element.
func Skip(r *Reader) error {
	for d := r.Depth(); r.Depth() >= d && d > 0; {
		if _, err := r.Token(); err != nil {
			return eofIsMalformed(err)
		}
	}
	return nil
}

// Children calls fn with each child element of the innermost open element,
// then returns once that element is closed. fn may read as much or as little
// of the child as it likes; whatever it leaves is skipped, so a decoder only
// has to understand the parts it cares about. Text between children is
// ignored.
func Children(r *Reader, fn func(start xml.StartElement) error) error {
	d := r.Depth()
	if d == 0 {
		return nil
	}
	for {
		tok, err := r.Token()
		if err != nil {
			return eofIsMalformed(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := fn(t); err != nil {
				return err
			}
			for r.Depth() > d {
				if _, err := r.Token(); err != nil {
					return eofIsMalformed(err)
				}
			}
		case xml.EndElement:
			if r.Depth() < d {
				return nil
			}
		}
	}
}

// Text reads the character data directly inside the innermost open element,
// up to and including its end, and returns it. Text of child elements is
// dropped. More than limit bytes of text is an error wrapping ErrTooLarge.
func Text(r *Reader, limit int) (string, error) {
	d := r.Depth()
	// The usual case is a single CharData token, which costs exactly one
	// allocation for the string; buf is only used when text comes in pieces
	// (CDATA sections, or a reader that splits it).
	var (
		s   string
		buf []byte
		n   int
	)
	for r.Depth() >= d && d > 0 {
		tok, err := r.Token()
		if err != nil {
			return "", eofIsMalformed(err)
		}
		cd, ok := tok.(xml.CharData)
		if !ok || r.Depth() != d {
			continue
		}
		n += len(cd)
		if n > limit {
			return "", fmt.Errorf("%w: text over %d bytes", ErrTooLarge, limit)
		}
		switch {
		case n == len(cd):
			s = string(cd)
		case buf == nil:
			buf = make([]byte, 0, n)
			buf = append(buf, s...)
			buf = append(buf, cd...)
		default:
			buf = append(buf, cd...)
		}
	}
	if buf != nil {
		return string(buf), nil
	}
	return s, nil
}

// Attr returns the value of the unqualified attribute named local, and
// whether it is present. Qualified attributes are never matched: a payload
// attribute such as id has no namespace, and an attacker-supplied
// foo:id must not stand in for it.
func Attr(start xml.StartElement, local string) (string, bool) {
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// ID returns the unqualified attribute named local, checking that it is
// present, not empty and not over MaxID bytes: every ID in these protocols
// refers to something, so an empty one is as useless as a missing one.
func ID(start xml.StartElement, local string) (string, error) {
	v, ok := Attr(start, local)
	switch {
	case !ok || v == "":
		return "", fmt.Errorf("%w: <%s> without %s", ErrMalformed, start.Name.Local, local)
	case len(v) > MaxID:
		return "", fmt.Errorf("%w: %s of <%s> over %d bytes", ErrTooLarge, local, start.Name.Local, MaxID)
	}
	return v, nil
}

// Uint returns the unqualified attribute named local as a non-negative int,
// or -1 if it is absent.
func Uint(start xml.StartElement, local string) (int, error) {
	v, ok := Attr(start, local)
	if !ok {
		return -1, nil
	}
	// Base 10 and 31 bits: offsets into a message body never need more, and
	// this keeps the value an int on every platform.
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return -1, fmt.Errorf("%w: %s of <%s> is not a small non-negative integer", ErrMalformed, local, start.Name.Local)
	}
	return int(n), nil
}

func eofIsMalformed(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: unexpected end of input", ErrMalformed)
	}
	return err
}

// EachChild reads a whole element (a stanza, in practice) from r with the
// given limits and calls fn with each of its direct children, as Children
// does. It returns the element's start. It is the engine of the packages'
// From functions.
func EachChild(r xml.TokenReader, lim Limits, fn func(start xml.StartElement, r *Reader) error) (xml.StartElement, error) {
	xr := NewReader(r, lim)
	start, err := ReadStart(xr)
	if err != nil {
		return start, err
	}
	return start, Children(xr, func(child xml.StartElement) error {
		return fn(child, xr)
	})
}
