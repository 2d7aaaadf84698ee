// Package fallback implements XEP-0428: Fallback Indication.
//
// A message that uses some extension may also carry body text for clients
// that do not know it: a quote of the message replied to (XEP-0461), or a
// sentence saying a message was retracted (XEP-0424). A <fallback/> element
// names the extension in its for attribute and marks which part of the body
// (or subject) is such text, so that clients that do understand the
// extension can hide it.
//
// Ranges count Unicode code points (XEP-0426), not bytes or UTF-16 units:
// start is the first code point of the fallback text and end the one after
// its last.
package fallback

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"mellium.im/xmlstream"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmlutil"
)

// NS is the namespace of the fallback element, also the service discovery
// feature.
const NS = "urn:xmpp:fallback:0"

// NSLegacy is the namespace XEP-0461's first versions gave the fallback of
// a reply, before XEP-0428 settled on NS; slixmpp 1.8 still sends it. The
// element has the same shape.
const NSLegacy = "urn:xmpp:feature-fallback:0"

// IsFallback reports whether name is a fallback element's, in either
// namespace; Decode decodes both.
func IsFallback(name xml.Name) bool {
	return name.Local == "fallback" && (name.Space == NS || name.Space == NSLegacy)
}

// maxRanges bounds the <body/> and <subject/> children of one fallback;
// real messages have one.
const maxRanges = 32

// Range is a part of a text, in Unicode code points. A negative End means
// "to the end of the text", and Range{0, -1} is the whole text, which is how
// a <body/> without start and end is represented.
type Range struct {
	Start int
	End   int
}

// Whole is the Range covering all of a text.
var Whole = Range{Start: 0, End: -1}

func (r Range) attrs() []xml.Attr {
	if r.End < 0 && r.Start == 0 {
		return nil
	}
	end := r.End
	if end < 0 {
		// An open-ended range that does not start at 0 has no attribute-less
		// spelling; the protocol has no way to say "to the end" with a start,
		// so the caller must give End. Encode what was asked rather than
		// inventing an end.
		return []xml.Attr{xmlutil.A("start", strconv.Itoa(r.Start))}
	}
	return []xml.Attr{xmlutil.A("start", strconv.Itoa(r.Start)), xmlutil.A("end", strconv.Itoa(end))}
}

// Fallback is the <fallback/> element. With neither Body nor Subject ranges
// the whole body and subject are fallback text for For.
type Fallback struct {
	XMLName xml.Name `xml:"urn:xmpp:fallback:0 fallback"`
	For     string   `xml:"for,attr"`
	Body    []Range  `xml:"body"`
	Subject []Range  `xml:"subject"`
}

// TokenReader implements xmlstream.Marshaler.
func (f Fallback) TokenReader() xml.TokenReader {
	var inner []xml.TokenReader
	if n := len(f.Body) + len(f.Subject); n > 0 {
		inner = make([]xml.TokenReader, 0, n)
	}
	for _, r := range f.Body {
		inner = append(inner, xmlutil.Empty(NS, "body", r.attrs()...))
	}
	for _, r := range f.Subject {
		inner = append(inner, xmlutil.Empty(NS, "subject", r.attrs()...))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{
		Name: xml.Name{Space: NS, Local: "fallback"},
		Attr: []xml.Attr{xmlutil.A("for", f.For)},
	})
}

// WriteXML implements xmlstream.WriterTo.
func (f Fallback) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, f.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (f Fallback) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return xmlutil.Marshal(e, f)
}

// Decode decodes a <fallback/> element whose start has just been read from
// r, consuming r up to and including its end. A range whose start and end
// are not numbers, or whose end comes before its start, is an error; one
// that merely runs past the end of the text is kept, and ignored by Strip.
func Decode(start xml.StartElement, r xml.TokenReader) (Fallback, error) {
	f := Fallback{XMLName: start.Name}
	f.For, _ = xmlutil.Attr(start, "for")
	if len(f.For) > xmlutil.MaxShortText {
		return Fallback{}, fmt.Errorf("%w: fallback for over %d bytes", xmlutil.ErrTooLarge, xmlutil.MaxShortText)
	}
	xr := xmlutil.Within(r, start)
	err := xmlutil.Children(xr, func(child xml.StartElement) error {
		if child.Name.Space != start.Name.Space || (child.Name.Local != "body" && child.Name.Local != "subject") {
			return nil
		}
		if len(f.Body)+len(f.Subject) >= maxRanges {
			return fmt.Errorf("%w: more than %d fallback ranges", xmlutil.ErrTooLarge, maxRanges)
		}
		rg, err := decodeRange(child)
		if err != nil {
			return err
		}
		if child.Name.Local == "body" {
			f.Body = append(f.Body, rg)
		} else {
			f.Subject = append(f.Subject, rg)
		}
		return nil
	})
	if err != nil {
		return Fallback{}, err
	}
	return f, nil
}

func decodeRange(start xml.StartElement) (Range, error) {
	s, err := xmlutil.Uint(start, "start")
	if err != nil {
		return Range{}, err
	}
	e, err := xmlutil.Uint(start, "end")
	if err != nil {
		return Range{}, err
	}
	switch {
	case s < 0 && e < 0:
		return Whole, nil
	case s < 0 || e < 0:
		// XEP-0428 defines start and end together; half a range has no
		// meaning, and guessing could hide real text.
		return Range{}, fmt.Errorf("%w: fallback <%s> with only one of start and end", xmlutil.ErrMalformed, start.Name.Local)
	case e < s:
		return Range{}, fmt.Errorf("%w: fallback <%s> ends before it starts", xmlutil.ErrMalformed, start.Name.Local)
	}
	return Range{Start: s, End: e}, nil
}

// From reads a whole message stanza from r and returns its fallback
// elements.
func From(r xml.TokenReader) ([]Fallback, bool, error) {
	var fbs []Fallback
	_, err := xmlutil.EachChild(r, xmlutil.Limits{}, func(start xml.StartElement, r *xmlutil.Reader) error {
		if start.Name.Space != NS || start.Name.Local != "fallback" {
			return nil
		}
		if len(fbs) >= maxRanges {
			return fmt.Errorf("%w: more than %d fallback elements", xmlutil.ErrTooLarge, maxRanges)
		}
		f, err := Decode(start, r)
		fbs = append(fbs, f)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return fbs, len(fbs) > 0, nil
}

// Strip returns body without the parts that fbs mark as fallback text for
// the extension with namespace forNS. Ranges that do not fit in body are
// ignored: showing a stray quote is better than cutting real text on the
// word of a confused sender.
func Strip(body, forNS string, fbs []Fallback) string {
	return strip(body, forNS, fbs, func(f Fallback) []Range { return f.Body })
}

// StripSubject is Strip for the subject.
func StripSubject(subject, forNS string, fbs []Fallback) string {
	return strip(subject, forNS, fbs, func(f Fallback) []Range { return f.Subject })
}

func strip(text, forNS string, fbs []Fallback, ranges func(Fallback) []Range) string {
	// Gather the ranges to cut, in code points. A fixed array keeps the
	// common case (one range) off the heap.
	var buf [4]Range
	cut := buf[:0]
	for _, f := range fbs {
		if f.For != forNS {
			continue
		}
		rs := ranges(f)
		if len(f.Body) == 0 && len(f.Subject) == 0 {
			// No ranges at all: the whole body and subject are fallback.
			return ""
		}
		for _, r := range rs {
			if r.Start == 0 && r.End < 0 {
				return ""
			}
			if r.Start < 0 || r.End < r.Start {
				continue
			}
			cut = append(cut, r)
		}
	}
	if len(cut) == 0 {
		return text
	}
	n := utf8.RuneCountInString(text)
	valid := cut[:0]
	for _, r := range cut {
		if r.End <= n && r.Start < r.End {
			valid = append(valid, r)
		}
	}
	if len(valid) == 0 {
		return text
	}
	slices.SortFunc(valid, func(a, b Range) int { return a.Start - b.Start })

	// One pass over the text, copying the code points outside every range.
	// Invalid UTF-8 counts one code point per bad byte, as range and
	// utf8.RuneCountInString count it.
	out := make([]byte, 0, len(text))
	ri, cp := 0, 0
	for i := 0; i < len(text); cp++ {
		_, size := utf8.DecodeRuneInString(text[i:])
		for ri < len(valid) && cp >= valid[ri].End {
			ri++
		}
		if ri >= len(valid) || cp < valid[ri].Start {
			out = append(out, text[i:i+size]...)
		}
		i += size
	}
	return string(out)
}
