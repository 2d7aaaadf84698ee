package httpfile

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxRedirects is how many redirects a fetch follows unless told
// otherwise.
const DefaultMaxRedirects = 3

// Fetcher fetches files from URLs that other people chose. Its zero value is
// ready to use: it verifies TLS certificates against the system's roots,
// refuses non-public addresses and follows DefaultMaxRedirects redirects.
//
// Set its fields before its first use, and neither change nor copy it
// afterwards. A Fetcher is safe for concurrent use, and should be reused: it
// keeps connections open.
type Fetcher struct {
	// TLSConfig configures TLS; nil means Go's defaults.
	TLSConfig *tls.Config
	// AllowPrivate allows connections to any address, among them loopback,
	// private (RFC 1918, fc00::/7), link-local (which includes the cloud
	// metadata service at 169.254.169.254), shared (100.64.0.0/10) and
	// unspecified ones, which are refused by default: those reach into the
	// network the Mattermost server runs in.
	AllowPrivate bool
	// AllowedAddrs are "host:port" pairs that may be reached even when the
	// host resolves to non-public addresses, such as the address of the
	// bridge's own XMPP server's upload service on a private network (see
	// Service.Addrs). Each is compared with the host and port a URL, or a
	// redirect's target, connects to (the scheme's default port when the
	// URL names none): the host case-insensitively and exactly as written
	// (not resolved), the port exactly. Other ports of the same host stay
	// refused, for they are other services. An entry without a port allows
	// nothing.
	AllowedAddrs []string
	// MaxRedirects is how many redirects a fetch follows; 0 means
	// DefaultMaxRedirects, and a negative number none.
	MaxRedirects int

	once   sync.Once
	client *http.Client
}

// Client returns the HTTP client the Fetcher uses, built on first use. It
// connects directly, not through the proxy the environment may name (the
// proxy would reach the addresses the Fetcher refuses), and has no timeout
// of its own: bound requests with their context.
func (f *Fetcher) Client() *http.Client {
	f.once.Do(func() {
		// http.DefaultTransport's settings, without its proxy. (It is not
		// cloned, for it may have been replaced by another RoundTripper.)
		t := &http.Transport{
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
		if f.TLSConfig != nil {
			t.TLSClientConfig = f.TLSConfig.Clone()
		}
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		if !f.AllowPrivate {
			guarded := *dialer
			guarded.Control = refuseNonPublic
			allowed := make(map[string]bool, len(f.AllowedAddrs))
			for _, a := range f.AllowedAddrs {
				if key, ok := normalizeAddr(a); ok {
					allowed[key] = true
				}
			}
			// The transport dials the host and port of each request's URL,
			// redirects' included, so every hop is checked here.
			t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if key, ok := normalizeAddr(addr); ok && allowed[key] {
					return dialer.DialContext(ctx, network, addr)
				}
				return guarded.DialContext(ctx, network, addr)
			}
		} else {
			t.DialContext = dialer.DialContext
		}
		f.client = &http.Client{Transport: t}
	})
	return f.client
}

// normalizeAddr returns host:port with the host in lower case and without a
// trailing dot; ok is false unless addr has both a host and a port.
func normalizeAddr(addr string) (key string, ok bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return "", false
	}
	return net.JoinHostPort(strings.ToLower(strings.TrimSuffix(host, ".")), port), true
}

// URLAddr returns the "host:port" a request to u connects to: u's port, or
// the default port of its scheme (80 for http, 443 for https).
func URLAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Fetch fetches the file at rawURL with f's client, following f.MaxRedirects
// redirects. See the package function Fetch.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string, maxBytes int64) (File, error) {
	return fetch(ctx, f.Client(), rawURL, maxBytes, f.redirects())
}

// redirects is how many redirects f follows: MaxRedirects, with 0 meaning
// DefaultMaxRedirects and a negative value none.
func (f *Fetcher) redirects() int {
	switch {
	case f.MaxRedirects == 0:
		return DefaultMaxRedirects
	case f.MaxRedirects < 0:
		return 0
	}
	return f.MaxRedirects
}

// defaultFetcher is the Fetcher of Fetch when given no client.
var defaultFetcher Fetcher

// Fetch fetches the file at rawURL, which must be an absolute http or https
// URL, with a GET bounded by ctx, following at most DefaultMaxRedirects
// redirects (to http or https URLs only). It fails unless the answer is 200
// OK. It reads at most maxBytes+1 bytes of the body, and fails with an error
// wrapping ErrTooLarge when the body is longer than maxBytes, or says it is
// in its Content-Length (then before reading any of it).
//
// The File's Name is the last segment of the URL's path, unescaped and
// sanitized, or if that is empty the name in the Content-Disposition header,
// or else "file". Its ContentType is the Content-Type header, sniffed from
// the data when that is missing, invalid or application/octet-stream.
//
// client sends the request as it is configured, except that redirects are
// limited as above: which addresses it may connect to is up to its
// transport. A nil client means the zero Fetcher's, which refuses non-public
// addresses; use a Fetcher (or its Client) for URLs from untrusted sources.
func Fetch(ctx context.Context, client *http.Client, rawURL string, maxBytes int64) (File, error) {
	if client == nil {
		client = defaultFetcher.Client()
	}
	return fetch(ctx, client, rawURL, maxBytes, DefaultMaxRedirects)
}

func fetch(ctx context.Context, client *http.Client, rawURL string, maxBytes int64, maxRedirects int) (File, error) {
	resp, u, err := get(ctx, client, rawURL, maxBytes, maxRedirects)
	if err != nil {
		return File{}, err
	}
	defer resp.Body.Close()
	data, err := readAtMost(resp.Body, resp.ContentLength, maxBytes)
	switch {
	case errors.Is(err, errLonger):
		return File{}, fmt.Errorf("%w: %s is longer than %d bytes", ErrTooLarge, rawURL, maxBytes)
	case err != nil:
		return File{}, fmt.Errorf("httpfile: fetch %s: %w", rawURL, err)
	}
	return File{
		Name:        fileName(u, resp.Header.Get("Content-Disposition")),
		ContentType: contentType(resp.Header.Get("Content-Type"), data),
		Data:        data,
		Size:        int64(len(data)),
	}, nil
}

// FetchTo is Fetch writing the body to w as it arrives instead of holding
// it, so memory stays small whatever the file's size; the File it returns
// has no Data. After an error w may hold part of the body.
func (f *Fetcher) FetchTo(ctx context.Context, rawURL string, maxBytes int64, w io.Writer) (File, error) {
	resp, u, err := get(ctx, f.Client(), rawURL, maxBytes, f.redirects())
	if err != nil {
		return File{}, err
	}
	defer resp.Body.Close()
	head := &headBuffer{max: 512} // what content sniffing reads
	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++
	}
	n, err := io.Copy(io.MultiWriter(w, head), io.LimitReader(resp.Body, limit))
	switch {
	case err != nil:
		return File{}, fmt.Errorf("httpfile: fetch %s: %w", rawURL, err)
	case n > maxBytes:
		return File{}, fmt.Errorf("%w: %s is longer than %d bytes", ErrTooLarge, rawURL, maxBytes)
	}
	return File{
		Name:        fileName(u, resp.Header.Get("Content-Disposition")),
		ContentType: contentType(resp.Header.Get("Content-Type"), head.data),
		Size:        n,
	}, nil
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	max  int
	data []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.data); room > 0 {
		h.data = append(h.data, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// get sends the GET of Fetch and checks the answer's status and declared
// size; the caller reads and closes the body.
func get(ctx context.Context, client *http.Client, rawURL string, maxBytes int64, maxRedirects int) (*http.Response, *url.URL, error) {
	if maxBytes <= 0 {
		return nil, nil, fmt.Errorf("httpfile: fetch %s: the size limit %d is not positive", rawURL, maxBytes)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	if !httpURL(u) {
		return nil, nil, fmt.Errorf("%w: %q", ErrBadURL, rawURL)
	}

	c := *client
	check := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, maxRedirects)
		}
		if !httpURL(req.URL) {
			return fmt.Errorf("%w: redirected to %q", ErrBadURL, req.URL)
		}
		if check != nil {
			return check(req, via)
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
	if err != nil {
		return nil, nil, fmt.Errorf("httpfile: fetch %s: %w", rawURL, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("httpfile: fetch: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("httpfile: fetch %s: %s", rawURL, resp.Status)
	}
	if resp.ContentLength > maxBytes {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("%w: %s has %d bytes, more than %d", ErrTooLarge, rawURL, resp.ContentLength, maxBytes)
	}
	return resp, u, nil
}

var errLonger = errors.New("longer than the limit")

// readAtMost reads r to its end, failing with errLonger as soon as it has
// read more than maxBytes: it reads maxBytes+1 bytes at most. size is the
// expected size, or -1.
func readAtMost(r io.Reader, size, maxBytes int64) ([]byte, error) {
	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++
	}
	var buf bytes.Buffer
	if size >= 0 && size <= maxBytes && size < 64<<20 {
		buf.Grow(int(size) + bytes.MinRead) // the MinRead lets ReadFrom see the end without growing
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit))
	if err != nil {
		return nil, err
	}
	if n > maxBytes {
		return nil, errLonger
	}
	return buf.Bytes(), nil
}

// fileName derives a file name from the URL's path, or else from a
// Content-Disposition header.
func fileName(u *url.URL, disposition string) string {
	p := u.EscapedPath()
	seg := p[strings.LastIndexByte(p, '/')+1:]
	if s, err := url.PathUnescape(seg); err == nil {
		seg = s
	}
	if name := sanitizeName(seg); name != "" {
		return name
	}
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		if name := sanitizeName(params["filename"]); name != "" {
			return name
		}
	}
	return defaultName
}

// contentType returns the media type of header, or the one sniffed from
// data when header is none or says nothing (application/octet-stream).
func contentType(header string, data []byte) string {
	if mt, params, err := mime.ParseMediaType(header); err == nil && mt != defaultType {
		if t := mime.FormatMediaType(mt, params); t != "" {
			return t
		}
		return mt
	}
	return http.DetectContentType(data)
}

// nonPublic are the special-purpose ranges (RFC 6890 and its updates) that
// netip.Addr's methods do not cover and that a Fetcher refuses too.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64, which may embed any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo and others)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4, which may embed any IPv4 address
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// isPublic reports whether a is an address a Fetcher may connect to by
// default: a global unicast one that is not private or reserved.
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		// IsGlobalUnicast is false for loopback, link-local, multicast and
		// unspecified addresses.
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// refuseNonPublic is a net.Dialer Control function that refuses to connect
// to non-public addresses. It runs after name resolution, for each address
// tried, so a name that resolves to a private address is refused as well.
func refuseNonPublic(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s %q", ErrPrivateAddress, network, address)
	}
	if !isPublic(ap.Addr()) {
		return fmt.Errorf("%w: %s (Fetcher.AllowPrivate is off)", ErrPrivateAddress, ap.Addr())
	}
	return nil
}
