package xmlutil

import (
	"encoding/xml"

	"mellium.im/xmlstream"
)

// NSHints is the namespace of XEP-0334 Message Processing Hints.
const NSHints = "urn:xmpp:hints"

// Body returns a <body/> element holding text. It has no namespace so that
// it takes the stanza's (jabber:client or jabber:server) when encoded.
func Body(text string) xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Token(xml.CharData(text)),
		xml.StartElement{Name: xml.Name{Local: "body"}},
	)
}

// StoreHint returns a XEP-0334 <store/> hint. Messages without a body, such
// as reactions and retractions, are not archived by most servers unless
// hinted, and then a client catching up from the archive would miss them.
func StoreHint() xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSHints, Local: "store"}})
}

// Empty returns an element with attributes and no content.
func Empty(space, local string, attr ...xml.Attr) xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: space, Local: local}, Attr: attr})
}

// A returns an unqualified attribute.
func A(local, value string) xml.Attr {
	return xml.Attr{Name: xml.Name{Local: local}, Value: value}
}

// Marshal writes the tokens of m to e and flushes it, which is all a
// MarshalXML method needs to do for a type that has a TokenReader.
func Marshal(e *xml.Encoder, m xmlstream.Marshaler) error {
	if _, err := xmlstream.Copy(e, m.TokenReader()); err != nil {
		return err
	}
	return e.Flush()
}
