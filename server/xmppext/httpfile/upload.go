package httpfile

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/upload"
)

// defaultType is the media type of a file of unknown type.
const defaultType = "application/octet-stream"

// Upload uploads a file to the service and returns the URL it may be fetched
// from, to send in a message (see OOB). It asks the service for a slot over
// s, then PUTs size bytes read from body to the slot's URL with client (nil
// means http.DefaultClient), with the headers the slot names (of the ones
// XEP-0363 allows: Authorization, Cookie, Expires) and the Content-Type.
// ctx bounds both.
//
// name is sanitized (no path separators or control characters; "file" if
// nothing is left). An empty or invalid contentType becomes
// application/octet-stream. body must hold exactly size bytes: the upload
// fails if it holds fewer or more. body is not closed.
//
// A file bigger than s.MaxSize is refused before a slot is asked for, and
// one that the service refuses as too big fails too; both errors wrap
// ErrTooLarge.
//
// Once ctx is done, body is read no more and the upload fails, but as with
// net/http a Read of body that is blocked at that moment must return before
// Upload can: a body that may block for long should itself end when ctx is
// done.
func (svc Service) Upload(ctx context.Context, s *xmpp.Session, name, contentType string, size int64, body io.Reader, client *http.Client) (getURL string, err error) {
	if svc.JID.Equal(jid.JID{}) {
		return "", fmt.Errorf("httpfile: upload %q: %w: the Service is the zero value", name, ErrNoUploadService)
	}
	if size < 0 {
		return "", fmt.Errorf("httpfile: upload %q: negative size %d", name, size)
	}
	if svc.MaxSize > 0 && size > svc.MaxSize {
		return "", fmt.Errorf("%w: upload %q: %d bytes, and %s accepts at most %d", ErrTooLarge, name, size, svc.JID, svc.MaxSize)
	}
	if size > math.MaxInt {
		return "", fmt.Errorf("%w: upload %q: %d bytes", ErrTooLarge, name, size)
	}
	if body == nil {
		body = http.NoBody
	}
	if n := sanitizeName(name); n != "" {
		name = n
	} else {
		name = defaultName
	}
	contentType = normalizeType(contentType)

	slot, err := requestSlot(ctx, s, svc.From, svc.JID, upload.File{Name: name, Size: int(size), Type: contentType})
	if err != nil {
		return "", fmt.Errorf("httpfile: upload %q: request a slot of %s: %w", name, svc.JID, err)
	}
	if err := put(ctx, client, slot, contentType, size, body); err != nil {
		return "", fmt.Errorf("httpfile: upload %q: %w", name, err)
	}
	return slot.GetURL.String(), nil
}

// normalizeType returns t if it is a valid media type, else defaultType.
func normalizeType(t string) string {
	mt, params, err := mime.ParseMediaType(t)
	if err != nil {
		return defaultType
	}
	if t := mime.FormatMediaType(mt, params); t != "" {
		return t
	}
	return mt
}

// slotError is a slot request's <error/>: a stanza error, perhaps with
// XEP-0363's <file-too-large/>.
type slotError struct {
	Type     stanza.ErrorType `xml:"type,attr"`
	Children []struct {
		XMLName xml.Name
	} `xml:",any"`
	Text     []string `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text"`
	TooLarge *struct {
		MaxSize string `xml:"max-file-size"`
	} `xml:"urn:xmpp:http:upload:0 file-too-large"`
}

func (e *slotError) err() error {
	se := stanza.Error{Type: e.Type, Condition: stanza.UndefinedCondition}
	for _, c := range e.Children {
		if c.XMLName.Space == stanza.NSError {
			se.Condition = stanza.Condition(c.XMLName.Local)
			break
		}
	}
	if len(e.Text) > 0 && e.Text[0] != "" {
		se.Text = map[string]string{"": e.Text[0]}
	}
	if e.TooLarge == nil {
		return se
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(e.TooLarge.MaxSize), 10, 64); err == nil {
		return fmt.Errorf("%w: the service accepts at most %d bytes (%w)", ErrTooLarge, n, se)
	}
	return fmt.Errorf("%w (%w)", ErrTooLarge, se)
}

// requestSlot asks the upload service for a slot for f. It does what
// upload.GetSlot does, and besides reports a <file-too-large/> refusal as
// ErrTooLarge.
func requestSlot(ctx context.Context, s *xmpp.Session, from, to jid.JID, f upload.File) (slot upload.Slot, err error) {
	resp, err := s.SendIQElement(ctx, f.TokenReader(), stanza.IQ{From: from, To: to, Type: stanza.GetIQ})
	if err != nil {
		return slot, err
	}
	defer func() {
		if e := resp.Close(); err == nil {
			err = e
		}
	}()
	d := xml.NewTokenDecoder(resp)
	tok, err := d.Token()
	if err != nil {
		return slot, err
	}
	iq, ok := tok.(xml.StartElement)
	if !ok {
		return slot, fmt.Errorf("expected an IQ, got %T", tok)
	}
	var typ string
	for _, a := range iq.Attr {
		if a.Name.Local == "type" && a.Name.Space == "" {
			typ = a.Value
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return slot, fmt.Errorf("no slot in the %s reply: %w", typ, err)
		}
		var start xml.StartElement
		switch t := tok.(type) {
		case xml.StartElement:
			start = t
		case xml.EndElement:
			return slot, fmt.Errorf("no slot in the %s reply", typ)
		default:
			continue
		}
		switch {
		case typ == string(stanza.ErrorIQ) && start.Name.Local == "error":
			var e slotError
			if err := d.DecodeElement(&e, &start); err != nil {
				return slot, err
			}
			return slot, e.err()
		case typ == string(stanza.ResultIQ) && start.Name == xml.Name{Space: NS, Local: "slot"}:
			if err := d.DecodeElement(&slot, &start); err != nil {
				return slot, err
			}
			if !httpURL(slot.PutURL) || !httpURL(slot.GetURL) {
				return slot, fmt.Errorf("%w: the slot's PUT URL is %q and its GET URL %q", ErrBadURL, slot.PutURL, slot.GetURL)
			}
			return slot, nil
		}
		if err := d.Skip(); err != nil {
			return slot, err
		}
	}
}

// httpURL reports whether u is an absolute http or https URL.
func httpURL(u *url.URL) bool {
	return u != nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// put uploads body to the slot. It builds the request itself because
// upload.Slot.Put neither sets the length (without which Go sends the body
// chunked, and services must then buffer it to know its size) nor the
// Content-Type, and fails on a slot without headers.
func put(ctx context.Context, client *http.Client, slot upload.Slot, contentType string, size int64, body io.Reader) error {
	var reqBody io.Reader = http.NoBody
	if size > 0 {
		reqBody = &exactReader{ctx: ctx, r: body, n: size}
	} else if err := checkEmpty(body); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, slot.PutURL.String(), reqBody)
	if err != nil {
		return err
	}
	req.ContentLength = size
	for name, values := range slot.Header {
		name = http.CanonicalHeaderKey(name)
		if name != "Authorization" && name != "Cookie" && name != "Expires" {
			continue
		}
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	req.Header.Set("Content-Type", contentType)
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read a little of the answer, to reuse the connection and to say what
	// went wrong.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		return nil
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: PUT %s: %s", ErrTooLarge, slot.PutURL, resp.Status)
	}
	msg := strings.Join(strings.Fields(strings.ToValidUTF8(string(answer), "")), " ")
	if len(msg) > 200 {
		msg = truncateUTF8(msg, 200) + "…"
	}
	if msg != "" {
		msg = ": " + msg
	}
	return fmt.Errorf("PUT %s: %s%s", slot.PutURL, resp.Status, msg)
}

var (
	errBodyShort = errors.New("httpfile: the body holds fewer bytes than the size given")
	errBodyLong  = errors.New("httpfile: the body holds more bytes than the size given")
)

// checkEmpty fails unless r is at its end.
func checkEmpty(r io.Reader) error {
	_, err := (&exactReader{ctx: context.Background(), r: r}).Read(nil)
	if err == io.EOF {
		return nil
	}
	return err
}

// exactReader reads exactly n bytes from r, failing if r holds fewer or
// more, and stops reading once ctx is done. It hides whether r is an
// io.Closer, so that the HTTP client does not close the caller's reader.
type exactReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if err := e.ctx.Err(); err != nil {
		return 0, err
	}
	if e.n <= 0 {
		var b [1]byte
		for range 100 {
			k, err := e.r.Read(b[:])
			switch {
			case k > 0:
				return 0, errBodyLong
			case err == io.EOF:
				return 0, io.EOF
			case err != nil:
				return 0, err
			}
		}
		return 0, io.ErrNoProgress
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	k, err := e.r.Read(p)
	e.n -= int64(k)
	if err == io.EOF {
		if e.n > 0 {
			return k, errBodyShort
		}
		err = nil
	}
	if e.n == 0 && err == nil {
		// Look for more before the last bytes go out: a body found too
		// long only after the request is complete races the service's
		// answer, which may accept the cut-off file.
		if _, lerr := e.Read(nil); lerr != io.EOF {
			return 0, lerr
		}
	}
	return k, err
}
