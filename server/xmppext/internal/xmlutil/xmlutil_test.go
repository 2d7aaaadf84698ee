package xmlutil

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"mellium.im/xmlstream"
)

func read(t *testing.T, r xml.TokenReader) error {
	t.Helper()
	for {
		_, err := r.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func TestReaderLimits(t *testing.T) {
	deep := strings.Repeat("<a>", 30) + strings.Repeat("</a>", 30)
	tests := []struct {
		name string
		in   string
		lim  Limits
		err  error
	}{
		{"fine", "<a><b>text</b><c/></a>", Limits{}, nil},
		{"too deep", deep, Limits{}, ErrTooLarge},
		{"deep enough", deep, Limits{MaxDepth: 30}, nil},
		{"too many tokens", "<a>" + strings.Repeat("<b/>", 100) + "</a>", Limits{MaxTokens: 50}, ErrTooLarge},
		{"too much text", "<a>" + strings.Repeat("x", 100) + "</a>", Limits{MaxText: 50}, ErrTooLarge},
		{"too many attributes", `<a x="1" y="2" z="3"/>`, Limits{MaxAttrs: 2}, ErrTooLarge},
		{"processing instruction", "<a><?pi x?></a>", Limits{}, ErrMalformed},
		{"directive", "<a><!DOCTYPE x></a>", Limits{}, ErrMalformed},
		{"comment dropped", "<a><!-- c --></a>", Limits{}, nil},
		{"truncated", "<a><b>", Limits{}, ErrMalformed},
		{"syntax error", "<a><b></a>", Limits{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := read(t, NewReader(xml.NewDecoder(strings.NewReader(tt.in)), tt.lim))
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Errorf("got %v, want %v", err, tt.err)
			}
		})
	}
}

// tokens returns a reader of toks, which need not be well formed, ending
// with the last token and io.EOF together as the TokenReader contract
// allows.
func tokens(toks ...xml.Token) xml.TokenReader {
	i := 0
	return xmlstream.ReaderFunc(func() (xml.Token, error) {
		if i >= len(toks) {
			return nil, io.EOF
		}
		i++
		if i == len(toks) {
			return toks[i-1], io.EOF
		}
		return toks[i-1], nil
	})
}

func TestReaderChecksNesting(t *testing.T) {
	a, b := xml.Name{Local: "a"}, xml.Name{Local: "b"}
	tests := []struct {
		name string
		toks []xml.Token
		err  error
	}{
		{"balanced, EOF with last token", []xml.Token{xml.StartElement{Name: a}, xml.EndElement{Name: a}}, nil},
		{"wrong end", []xml.Token{xml.StartElement{Name: a}, xml.EndElement{Name: b}}, ErrMalformed},
		{"end without start", []xml.Token{xml.EndElement{Name: a}}, ErrMalformed},
		{"unclosed", []xml.Token{xml.StartElement{Name: a}, xml.CharData("x")}, ErrMalformed},
		{"same local, other space", []xml.Token{xml.StartElement{Name: a}, xml.EndElement{Name: xml.Name{Space: "x", Local: "a"}}}, ErrMalformed},
		{"nil tokens skipped", []xml.Token{nil, xml.StartElement{Name: a}, nil, xml.EndElement{Name: a}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := read(t, NewReader(tokens(tt.toks...), Limits{}))
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Errorf("got %v, want %v", err, tt.err)
			}
		})
	}
}

func TestReaderStopsAtEndOfElement(t *testing.T) {
	r := NewReader(xml.NewDecoder(strings.NewReader("<a/><b/>")), Limits{})
	if err := read(t, r); err != nil {
		t.Fatal(err)
	}
	if tok, err := r.Token(); tok != nil || err != io.EOF {
		t.Errorf("read past the element: %v, %v", tok, err)
	}
}

func TestReaderPassesSourceErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r := NewReader(xmlstream.ReaderFunc(func() (xml.Token, error) { return nil, boom }), Limits{})
	if _, err := r.Token(); err != boom {
		t.Errorf("got %v, want the source's error as is", err)
	}
}

func TestNilTokensAreBounded(t *testing.T) {
	r := NewReader(xmlstream.ReaderFunc(func() (xml.Token, error) { return nil, nil }), Limits{MaxTokens: 10})
	if _, err := r.Token(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
}

func TestText(t *testing.T) {
	r := NewReader(xml.NewDecoder(strings.NewReader("<a>one<![CDATA[two]]><b>skipped</b>three</a>")), Limits{})
	if _, err := ReadStart(r); err != nil {
		t.Fatal(err)
	}
	got, err := Text(r, 100)
	if err != nil || got != "onetwothree" {
		t.Errorf("got %q, %v", got, err)
	}
	r = NewReader(xml.NewDecoder(strings.NewReader("<a>"+strings.Repeat("x", 11)+"</a>")), Limits{})
	if _, err := ReadStart(r); err != nil {
		t.Fatal(err)
	}
	if _, err := Text(r, 10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
}

func TestChildrenAndReadStart(t *testing.T) {
	var names []string
	start, err := EachChild(xml.NewDecoder(strings.NewReader("\n  <m>text<a><x/></a>more<b/></m>")), Limits{},
		func(child xml.StartElement, r *Reader) error {
			names = append(names, child.Name.Local)
			return nil // leave the child for Children to skip
		})
	if err != nil || start.Name.Local != "m" || strings.Join(names, ",") != "a,b" {
		t.Errorf("got %v, %v, %v", start.Name, names, err)
	}
	if _, err := EachChild(xml.NewDecoder(strings.NewReader("text")), Limits{}, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("text before any element: %v", err)
	}
}

func TestAttrs(t *testing.T) {
	start := xml.StartElement{Attr: []xml.Attr{
		{Name: xml.Name{Space: "urn:x", Local: "id"}, Value: "qualified"},
		{Name: xml.Name{Local: "id"}, Value: "plain"},
		{Name: xml.Name{Local: "n"}, Value: "42"},
		{Name: xml.Name{Local: "bad"}, Value: "4x"},
	}}
	if v, ok := Attr(start, "id"); !ok || v != "plain" {
		t.Errorf("Attr: %q, %v", v, ok)
	}
	if n, err := Uint(start, "n"); n != 42 || err != nil {
		t.Errorf("Uint: %d, %v", n, err)
	}
	if n, err := Uint(start, "missing"); n != -1 || err != nil {
		t.Errorf("Uint of missing: %d, %v", n, err)
	}
	if _, err := Uint(start, "bad"); !errors.Is(err, ErrMalformed) {
		t.Errorf("Uint of bad: %v", err)
	}
}
