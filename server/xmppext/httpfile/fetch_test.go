package httpfile_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

// pngHeader is the start of a PNG file, enough for sniffing.
var pngHeader = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

// fileServer serves test files and redirects:
//
//	/stream/N       N bytes, flushed in 1 KiB chunks with no Content-Length
//	/redirect/N/... N redirects, then the rest of the path
//	/to?url=U       a redirect to U
//	/raw/...        pngHeader with the query's ct as Content-Type (none if
//	                absent) and cd as Content-Disposition
//	/status/N       status N
//	/hang           waits until the request is canceled
//	/...            "hello" as text/plain
func fileServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(serveFile))
	t.Cleanup(srv.Close)
	return srv
}

func serveFile(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/stream/"):
		n, _ := strconv.Atoi(strings.TrimPrefix(p, "/stream/"))
		w.Header().Set("Content-Type", "application/x-stream")
		chunk := bytes.Repeat([]byte("x"), 1024)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			n -= k
		}
	case strings.HasPrefix(p, "/redirect/"):
		rest := strings.TrimPrefix(p, "/redirect/")
		n, tail, _ := strings.Cut(rest, "/")
		k, _ := strconv.Atoi(n)
		next := "/" + tail
		if k > 1 {
			next = fmt.Sprintf("/redirect/%d/%s", k-1, tail)
		}
		http.Redirect(w, r, next, http.StatusFound)
	case p == "/to":
		http.Redirect(w, r, r.URL.Query().Get("url"), http.StatusFound)
	case strings.HasPrefix(p, "/raw/"):
		// Without a Content-Type, net/http would sniff one.
		w.Header()["Content-Type"] = nil
		if ct := r.URL.Query().Get("ct"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if cd := r.URL.Query().Get("cd"); cd != "" {
			w.Header().Set("Content-Disposition", cd)
		}
		_, _ = w.Write(pngHeader)
	case strings.HasPrefix(p, "/status/"):
		n, _ := strconv.Atoi(strings.TrimPrefix(p, "/status/"))
		w.WriteHeader(n)
	case p == "/hang":
		<-r.Context().Done()
	default:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("hello"))
	}
}

func TestFetchTooLargeWithoutContentLength(t *testing.T) {
	t.Parallel()
	srv := fileServer(t)
	ctx := timeout(t, 10*time.Second)
	const limit = 10000

	for _, size := range []int{limit + 1, 20 * limit} {
		ct := &countingTransport{base: loopback().Client().Transport}
		client := &http.Client{Transport: ct}
		u := fmt.Sprintf("%s/stream/%d", srv.URL, size)
		_, err := httpfile.Fetch(ctx, client, u, limit)
		if !errors.Is(err, httpfile.ErrTooLarge) {
			t.Fatalf("Fetch %s with limit %d = %v, want ErrTooLarge", u, limit, err)
		}
		if n := ct.read.Load(); n > limit+1 {
			t.Errorf("Fetch %s read %d bytes, more than limit+1 = %d", u, n, limit+1)
		}
		t.Log(err)
	}
	for _, size := range []int{limit, limit - 1, 0} {
		u := fmt.Sprintf("%s/stream/%d", srv.URL, size)
		f, err := loopback().Fetch(ctx, u, limit)
		if err != nil || len(f.Data) != size {
			t.Fatalf("Fetch %s with limit %d = %d bytes, %v; want %d bytes", u, limit, len(f.Data), err, size)
		}
	}
}

func TestFetchBadURL(t *testing.T) {
	t.Parallel()
	srv := fileServer(t)
	ctx := timeout(t, 10*time.Second)

	for _, u := range []string{
		"",
		"ftp://example.org/file.txt",
		"file:///etc/passwd",
		"gopher://example.org/1",
		"javascript:alert(1)",
		"data:text/plain,hello",
		"xmpp:alice@example.org",
		"http://",
		"http:///path",
		"https:example.org/file",
		"//example.org/file",
		"/relative/file",
		"example.org/file",
		"http://exa mple.org/",
		"%zz",
	} {
		for _, fetch := range []func() error{
			func() error { _, err := httpfile.Fetch(ctx, nil, u, 100); return err },
			func() error { _, err := loopback().Fetch(ctx, u, 100); return err },
		} {
			if err := fetch(); !errors.Is(err, httpfile.ErrBadURL) {
				t.Errorf("Fetch %q = %v, want ErrBadURL", u, err)
			}
		}
	}

	// Nor may a redirect lead elsewhere.
	for _, target := range []string{"file:///etc/passwd", "ftp://example.org/x", "gopher://example.org/"} {
		u := srv.URL + "/to?url=" + target
		if _, err := loopback().Fetch(ctx, u, 100); !errors.Is(err, httpfile.ErrBadURL) {
			t.Errorf("Fetch %s = %v, want ErrBadURL", u, err)
		}
	}

	// Upper case schemes are fine.
	if _, err := loopback().Fetch(ctx, "HTTP"+strings.TrimPrefix(srv.URL, "http"), 100); err != nil {
		t.Errorf("Fetch with an upper case scheme: %v", err)
	}
}

func TestFetchRefusesNonPublic(t *testing.T) {
	t.Parallel()
	ctx := timeout(t, 10*time.Second)
	// The dialer refuses before connecting, so none of these is contacted.
	for _, u := range []string{
		"http://127.0.0.1:1/",
		"http://127.1.2.3:1/",
		"http://localhost:1/",
		"http://[::1]:1/",
		"http://[::ffff:127.0.0.1]:1/",
		"http://0.0.0.0:1/",
		"http://[::]:1/",
		"http://10.0.0.1:1/",
		"http://172.16.5.4:1/",
		"http://192.168.1.1:1/",
		"http://100.64.0.1:1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fe80::1]:1/",
		"http://[fd00::1]:1/",
		"https://10.1.1.1:1/",
	} {
		_, err := httpfile.Fetch(ctx, nil, u, 100)
		if !errors.Is(err, httpfile.ErrPrivateAddress) {
			t.Errorf("Fetch %s = %v, want ErrPrivateAddress", u, err)
		}
	}

	// Nor may a redirect lead there.
	srv := fileServer(t)
	f := &httpfile.Fetcher{AllowedAddrs: []string{srv.Listener.Addr().String()}}
	if _, err := f.Fetch(ctx, srv.URL+"/hello", 100); err != nil {
		t.Fatalf("fetch from an allowed address: %v", err)
	}
	u := srv.URL + "/to?url=" + strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/hello"
	if _, err := f.Fetch(ctx, u, 100); !errors.Is(err, httpfile.ErrPrivateAddress) {
		t.Errorf("Fetch %s = %v, want ErrPrivateAddress", u, err)
	}
}

// An allowed address is one host and one port: the host's other ports are
// other services (the XMPP server's own host may run anything), and stay
// refused, linked directly or reached by a redirect.
func TestFetchAllowsOnlyTheExactAddress(t *testing.T) {
	t.Parallel()
	ctx := timeout(t, 10*time.Second)
	upload, other := fileServer(t), fileServer(t)
	f := &httpfile.Fetcher{AllowedAddrs: []string{upload.Listener.Addr().String()}}
	if file, err := f.Fetch(ctx, upload.URL+"/a.txt", 100); err != nil || string(file.Data) != "hello" {
		t.Fatalf("fetch from the allowed address: %q, %v", file.Data, err)
	}
	for _, u := range []string{
		other.URL + "/secret",
		upload.URL + "/to?url=" + other.URL + "/secret",
	} {
		if _, err := f.Fetch(ctx, u, 100); !errors.Is(err, httpfile.ErrPrivateAddress) {
			t.Errorf("Fetch %s = %v, want ErrPrivateAddress", u, err)
		}
	}
	if _, err := f.Fetch(ctx, upload.URL+"/redirect/2/b.txt", 100); err != nil {
		t.Errorf("a redirect within the allowed address: %v", err)
	}
	// A host without a port allows no port at all.
	bare := &httpfile.Fetcher{AllowedAddrs: []string{"127.0.0.1", "127.0.0.1:"}}
	if _, err := bare.Fetch(ctx, upload.URL+"/a.txt", 100); !errors.Is(err, httpfile.ErrPrivateAddress) {
		t.Errorf("a bare host allowed %s: %v", upload.URL, err)
	}
}

func TestFetchRedirects(t *testing.T) {
	t.Parallel()
	srv := fileServer(t)
	ctx := timeout(t, 10*time.Second)

	for _, tc := range []struct {
		fetcher *httpfile.Fetcher
		ok, bad int // redirects that are followed, and too many
	}{
		{loopback(), httpfile.DefaultMaxRedirects, httpfile.DefaultMaxRedirects + 1},
		{&httpfile.Fetcher{AllowPrivate: true, MaxRedirects: 1}, 1, 2},
		{&httpfile.Fetcher{AllowPrivate: true, MaxRedirects: -1}, 0, 1},
	} {
		if tc.ok > 0 {
			u := fmt.Sprintf("%s/redirect/%d/notes.txt", srv.URL, tc.ok)
			f, err := tc.fetcher.Fetch(ctx, u, 100)
			if err != nil || string(f.Data) != "hello" {
				t.Errorf("Fetch %s (MaxRedirects %d) = %q, %v", u, tc.fetcher.MaxRedirects, f.Data, err)
			}
			// The name is the URL's, not the redirect target's.
			if f.Name != "notes.txt" {
				t.Errorf("Fetch %s: name %q", u, f.Name)
			}
		}
		u := fmt.Sprintf("%s/redirect/%d/notes.txt", srv.URL, tc.bad)
		if _, err := tc.fetcher.Fetch(ctx, u, 100); !errors.Is(err, httpfile.ErrTooManyRedirects) {
			t.Errorf("Fetch %s (MaxRedirects %d) = %v, want ErrTooManyRedirects", u, tc.fetcher.MaxRedirects, err)
		}
	}

	// The package function limits the redirects of the client it is given.
	u := fmt.Sprintf("%s/redirect/%d/x", srv.URL, httpfile.DefaultMaxRedirects+1)
	if _, err := httpfile.Fetch(ctx, loopback().Client(), u, 100); !errors.Is(err, httpfile.ErrTooManyRedirects) {
		t.Errorf("Fetch %s = %v, want ErrTooManyRedirects", u, err)
	}
}

func TestFetchNameAndType(t *testing.T) {
	t.Parallel()
	srv := fileServer(t)
	ctx := timeout(t, 10*time.Second)

	for _, tc := range []struct {
		path, name, contentType string
	}{
		{"/raw/report%20final.png?ct=image/png", "report final.png", "image/png"},
		{"/raw/a/b/c.bin?ct=application/x-thing%3B%20v=1", "c.bin", "application/x-thing; v=1"},
		// Sniffed: no type, an invalid one, or application/octet-stream.
		{"/raw/pic", "pic", "image/png"},
		{"/raw/pic?ct=not%20a%20type", "pic", "image/png"},
		{"/raw/pic?ct=application/octet-stream", "pic", "image/png"},
		// Escaped separators stay escaped; dots alone are no name.
		{"/raw/..%2F..%2Fetc%2Fpasswd", ".._.._etc_passwd", "image/png"},
		{"/raw/a%5Cb", "a_b", "image/png"},
		{"/raw/..", "file", "image/png"},
		// A right-to-left override, and other control characters, go.
		{"/raw/%E2%80%AEgnp.exe", "gnp.exe", "image/png"},
		{"/raw/a%00b%0Ac%7F", "ab c", "image/png"},
		{"/raw/%20%20", "file", "image/png"},
		{"/raw/%ff%fe.txt", ".txt", "image/png"},
		// No name in the path: the Content-Disposition's, or "file".
		{"/raw/?cd=attachment%3B%20filename*=UTF-8''caf%25C3%25A9.txt", "café.txt", "image/png"},
		{"/raw/?cd=attachment%3B%20filename=%22..%2Fx.txt%22", ".._x.txt", "image/png"},
		{"/raw/", "file", "image/png"},
	} {
		f, err := loopback().Fetch(ctx, srv.URL+tc.path, 1000)
		if err != nil {
			t.Errorf("Fetch %s: %v", tc.path, err)
			continue
		}
		if f.Name != tc.name || f.ContentType != tc.contentType {
			t.Errorf("Fetch %s: name %q, type %q; want %q, %q", tc.path, f.Name, f.ContentType, tc.name, tc.contentType)
		}
	}

	long := strings.Repeat("ab", 200) + ".jpeg"
	f, err := loopback().Fetch(ctx, srv.URL+"/raw/"+long, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Name) > 255 || !strings.HasSuffix(f.Name, ".jpeg") {
		t.Errorf("a long name became %q (%d bytes)", f.Name, len(f.Name))
	}
}

func TestFetchStatus(t *testing.T) {
	t.Parallel()
	srv := fileServer(t)
	ctx := timeout(t, 10*time.Second)
	for _, status := range []int{http.StatusNotFound, http.StatusForbidden, http.StatusNoContent, http.StatusInternalServerError} {
		u := fmt.Sprintf("%s/status/%d", srv.URL, status)
		_, err := loopback().Fetch(ctx, u, 100)
		if err == nil || !strings.Contains(err.Error(), strconv.Itoa(status)) {
			t.Errorf("Fetch %s = %v, want an error naming the status", u, err)
		}
	}
	if _, err := loopback().Fetch(ctx, srv.URL+"/x", 0); err == nil {
		t.Error("Fetch with a limit of 0 succeeded")
	}
}

func TestFetchContext(t *testing.T) {
	t.Parallel()
	srv := fileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := loopback().Fetch(ctx, srv.URL+"/hang", 100)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch of a hanging URL = %v, want DeadlineExceeded", err)
	}
}

func TestFetchTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(serveFile))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx := timeout(t, 10*time.Second)

	// The system's roots do not know the test server's certificate.
	var unknown x509.UnknownAuthorityError
	if _, err := loopback().Fetch(ctx, srv.URL+"/x", 100); !errors.As(err, &unknown) {
		t.Errorf("Fetch from an untrusted server = %v, want an unknown authority error", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	f := &httpfile.Fetcher{AllowPrivate: true, TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	file, err := f.Fetch(ctx, srv.URL+"/x", 100)
	if err != nil || string(file.Data) != "hello" {
		t.Fatalf("Fetch trusting the server = %q, %v", file.Data, err)
	}
}

// FetchTo streams the body to its writer, within the same limits as Fetch.
func TestFetchToStreams(t *testing.T) {
	t.Parallel()
	srv := fileServer(t)
	ctx := timeout(t, 10*time.Second)
	const limit = 100000

	var buf bytes.Buffer
	f, err := loopback().FetchTo(ctx, srv.URL+"/stream/"+strconv.Itoa(limit), limit, &buf)
	if err != nil || f.Size != limit || buf.Len() != limit || f.Data != nil || f.ContentType != "application/x-stream" {
		t.Fatalf("FetchTo = %+v (%d bytes written), %v", f, buf.Len(), err)
	}
	buf.Reset()
	if _, err := loopback().FetchTo(ctx, srv.URL+"/stream/"+strconv.Itoa(limit+1), limit, &buf); !errors.Is(err, httpfile.ErrTooLarge) {
		t.Fatalf("FetchTo over the limit = %v, want ErrTooLarge", err)
	}
	if buf.Len() > limit+1 {
		t.Fatalf("FetchTo over the limit wrote %d bytes", buf.Len())
	}
	buf.Reset()
	f, err = loopback().FetchTo(ctx, srv.URL+"/raw/picture?cd=x", limit, &buf)
	if err != nil || f.ContentType != "image/png" || f.Name != "picture" || !bytes.Equal(buf.Bytes(), pngHeader) {
		t.Fatalf("FetchTo sniffed %+v, %v", f, err)
	}
	if _, err := loopback().FetchTo(ctx, srv.URL+"/status/404", limit, &buf); err == nil {
		t.Fatal("FetchTo of a 404 succeeded")
	}
}
