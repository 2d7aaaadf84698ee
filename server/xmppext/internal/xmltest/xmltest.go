// Package xmltest has helpers for the xmppext packages' tests.
package xmltest

import (
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmlstream"
)

// Encode returns the XML text of the tokens of r.
func Encode(t testing.TB, r xml.TokenReader) string {
	t.Helper()
	var b strings.Builder
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, r); err != nil {
		t.Fatalf("encoding: %v", err)
	}
	if err := e.Flush(); err != nil {
		t.Fatalf("flushing: %v", err)
	}
	return b.String()
}

// Marshal returns xml.Marshal(v), failing the test on error.
func Marshal(t testing.TB, v any) string {
	t.Helper()
	out, err := xml.Marshal(v)
	if err != nil {
		t.Fatalf("marshaling %T: %v", v, err)
	}
	return string(out)
}

// WriteXML returns what w writes.
func WriteXML(t testing.TB, w xmlstream.WriterTo) string {
	t.Helper()
	var b strings.Builder
	e := xml.NewEncoder(&b)
	if _, err := w.WriteXML(e); err != nil {
		t.Fatalf("writing: %v", err)
	}
	if err := e.Flush(); err != nil {
		t.Fatalf("flushing: %v", err)
	}
	return b.String()
}

// Reader returns a token reader over the XML text s, as the tokens of a
// stanza would come from a session: namespaces resolved.
func Reader(s string) xml.TokenReader {
	return xml.NewDecoder(strings.NewReader(s))
}
