// Package httpfile moves files between the bridge and XMPP over HTTP:
// XEP-0363 HTTP File Upload to share a file in a room, and fetching the
// files that people share there, which arrive as URLs (in the body, and in a
// XEP-0066 jabber:x:oob element).
//
// To send a file: Discover the server's upload service once (per session),
// then Service.Upload the bytes, which returns the URL others GET them from,
// and send a message whose body is that URL and which carries OOB(url, "").
//
// To receive one: Fetcher.Fetch the URL. The URLs come from other people, so
// a Fetcher by default refuses to connect to loopback, private, link-local
// and other non-public addresses: the bridge runs inside a Mattermost server,
// and must not be made to fetch from the network behind it (server-side
// request forgery). It bounds the size of what it reads too.
package httpfile

import (
	"encoding/xml"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/oob"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
)

// Errors of this package. They are wrapped with context, so test for them
// with errors.Is.
var (
	// ErrNoUploadService reports that a server offers no XEP-0363 upload
	// service.
	ErrNoUploadService = errors.New("httpfile: the server offers no HTTP file upload service (XEP-0363)")
	// ErrTooLarge reports a file over a size limit: the upload service's, or
	// the one given to Fetch. It wraps xmppext.ErrTooLarge.
	ErrTooLarge error = &wrapped{"httpfile: file too large", xmppext.ErrTooLarge}
	// ErrBadURL reports a URL that is not an absolute http or https one, be
	// it the one given to Fetch, a redirect's target or an upload slot's.
	ErrBadURL = errors.New("httpfile: not an http or https URL")
	// ErrPrivateAddress reports that a Fetcher refused to connect to a
	// loopback, private, link-local or otherwise non-public address.
	ErrPrivateAddress = errors.New("httpfile: refusing to connect to a non-public address")
	// ErrTooManyRedirects reports a fetch that was redirected too often.
	ErrTooManyRedirects = errors.New("httpfile: too many redirects")
)

// wrapped is an error with a message of its own that wraps another.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// File is a fetched file.
type File struct {
	// Name is the file name, taken from the URL's last path segment: never
	// empty, with no path separators or control characters.
	Name string
	// ContentType is the media type the server gave, or one sniffed from the
	// data when it gave none (or only application/octet-stream).
	ContentType string
	// Data is the content (Fetch); FetchTo writes it elsewhere.
	Data []byte
	// Size is the content's length in bytes.
	Size int64
}

// OOB returns a XEP-0066 <x xmlns='jabber:x:oob'><url/><desc/></x> element
// to add to a message that shares the file at url; desc may be empty, and is
// then left out.
//
// The message's <body/> should be exactly the URL as well, and nothing else:
// clients show the body (many know nothing of OOB), and some, such as
// Conversations and Dino, display the file inline only when the body is the
// URL that the OOB element names. Send a caption as a message of its own.
func OOB(url, desc string) xml.TokenReader {
	return oob.Data{URL: url, Desc: desc}.TokenReader()
}

// defaultName is the name of a file whose URL names none.
const defaultName = "file"

// maxNameLen is the longest name, in bytes, that sanitizeName returns: what
// most file systems allow.
const maxNameLen = 255

// sanitizeName makes name safe to use as a file name: it replaces path
// separators, makes all white space plain spaces, drops other control and
// formatting characters (such as the right-to-left override that makes
// "exe.txt" look like "txt.exe") and invalid UTF-8, trims spaces, and
// shortens it to maxNameLen bytes, keeping the extension where it can. It
// returns "" when nothing usable is left.
func sanitizeName(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\':
			return '_'
		case unicode.IsSpace(r): // tabs and line breaks too
			return ' '
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if strings.Trim(name, ".") == "" {
		return "" // "", ".", "..": no name, and a path element besides
	}
	if len(name) > maxNameLen {
		ext := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
			ext = name[i:]
		}
		name = truncateUTF8(name[:len(name)-len(ext)], maxNameLen-len(ext)) + ext
	}
	return name
}

// truncateUTF8 returns the longest prefix of s of at most n bytes that does
// not split a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
