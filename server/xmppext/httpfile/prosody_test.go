package httpfile_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

// uploadLimit is the upload size limit of the test servers.
const uploadLimit = 64 << 10

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// start starts a Prosody with an upload service and logs alice in.
func start(t *testing.T) (*prosodytest.Server, *prosodytest.Client) {
	t.Helper()
	srv := prosodytest.Start(t, prosodytest.Options{UploadSizeLimit: uploadLimit})
	srv.CreateUser(t, "alice", "alice-password")
	alice := srv.Client(t, "alice", "alice-password")
	return srv, alice
}

func discover(ctx context.Context, t *testing.T, srv *prosodytest.Server, s *xmpp.Session) httpfile.Service {
	t.Helper()
	svc, err := httpfile.Discover(ctx, s, srv.JID(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// loopback is a Fetcher that may reach the loopback Prosody.
func loopback() *httpfile.Fetcher {
	return &httpfile.Fetcher{AllowPrivate: true}
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	srv, alice := start(t)
	ctx := timeout(t, 20*time.Second)

	want := httpfile.Service{JID: srv.UploadJID(t), MaxSize: uploadLimit}
	for _, tc := range []struct {
		name string
		j    jid.JID
	}{
		{"Domain", srv.JID(t, "")},
		{"UserJID", alice.JID}, // only the domainpart counts
		{"ServiceItself", srv.UploadJID(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := httpfile.Discover(ctx, alice.Session(), tc.j)
			if err != nil {
				t.Fatal(err)
			}
			if !svc.JID.Equal(want.JID) || svc.MaxSize != want.MaxSize {
				t.Errorf("Discover(%s) = %+v, want %+v", tc.j, svc, want)
			}
		})
	}

	t.Run("None", func(t *testing.T) {
		// The MUC service is no upload service, and has no items that are.
		_, err := httpfile.Discover(ctx, alice.Session(), srv.RoomJID(t, "x").Domain())
		if !errors.Is(err, httpfile.ErrNoUploadService) {
			t.Fatalf("Discover(%s) = %v, want ErrNoUploadService", srv.MUCDomain, err)
		}
		t.Log(err)
	})
}

func TestUploadAndFetch(t *testing.T) {
	t.Parallel()
	srv, alice := start(t)
	ctx := timeout(t, 30*time.Second)
	svc := discover(ctx, t, srv, alice.Session())

	tests := []struct {
		name, sentName, contentType string
		data                        []byte
		wantName, wantType          string
	}{{
		name:     "Binary",
		sentName: "Résumé #1? (final).bin", contentType: "application/x-test",
		data:     randomBytes(t, 40000),
		wantName: "Résumé #1? (final).bin", wantType: "application/x-test",
	}, {
		name:     "AtTheLimit",
		sentName: "limit.png", contentType: "image/png",
		data:     randomBytes(t, uploadLimit),
		wantName: "limit.png", wantType: "image/png",
	}, {
		name:     "SlashesAndNoType",
		sentName: "../etc/passwd", contentType: "",
		// Sniffed, as the service says application/octet-stream.
		data:     []byte("hello, world\n"),
		wantName: ".._etc_passwd", wantType: "text/plain; charset=utf-8",
	}, {
		name:     "Empty",
		sentName: "empty.txt", contentType: "text/plain",
		data:     nil,
		wantName: "empty.txt", wantType: "text/plain",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getURL, err := svc.Upload(ctx, alice.Session(), tc.sentName, tc.contentType, int64(len(tc.data)), bytes.NewReader(tc.data), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("uploaded to %s", getURL)
			if !strings.HasPrefix(getURL, srv.HTTPURL+"/file_share/") {
				t.Errorf("GET URL %s is not under %s/file_share/", getURL, srv.HTTPURL)
			}
			f, err := loopback().Fetch(ctx, getURL, int64(len(tc.data))+1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Data, tc.data) {
				t.Errorf("fetched %d bytes that differ from the %d uploaded", len(f.Data), len(tc.data))
			}
			if f.Name != tc.wantName || f.ContentType != tc.wantType {
				t.Errorf("fetched name %q, type %q; want %q, %q", f.Name, f.ContentType, tc.wantName, tc.wantType)
			}
			// Exactly at the limit is fine too.
			if _, err := loopback().Fetch(ctx, getURL, max(int64(len(tc.data)), 1)); err != nil {
				t.Errorf("fetch with a limit of the exact size: %v", err)
			}
		})
	}

	t.Run("ReaderNotClosed", func(t *testing.T) {
		r := &closeRecorder{Reader: strings.NewReader("abc")}
		if _, err := svc.Upload(ctx, alice.Session(), "a.txt", "text/plain", 3, r, nil); err != nil {
			t.Fatal(err)
		}
		if r.closed {
			t.Error("Upload closed the caller's reader")
		}
	})
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// slotsIssued counts the slots Prosody has logged issuing.
func slotsIssued(srv *prosodytest.Server) int {
	return strings.Count(srv.LogTail(1<<20), "Issuing upload slot")
}

func TestUploadTooLarge(t *testing.T) {
	t.Parallel()
	srv, alice := start(t)
	ctx := timeout(t, 30*time.Second)
	svc := discover(ctx, t, srv, alice.Session())

	t.Run("RefusedBeforeSlot", func(t *testing.T) {
		body := readerFunc(func([]byte) (int, error) {
			t.Error("the body of a file over the limit was read")
			return 0, io.EOF
		})
		_, err := svc.Upload(ctx, alice.Session(), "big.bin", "", uploadLimit+1, body, nil)
		if !errors.Is(err, httpfile.ErrTooLarge) || !errors.Is(err, xmppext.ErrTooLarge) {
			t.Fatalf("Upload of %d bytes = %v, want ErrTooLarge", uploadLimit+1, err)
		}
		t.Log(err)
		// An upload after it shows in the log; the refused one must not.
		if _, err := svc.Upload(ctx, alice.Session(), "small.txt", "text/plain", 2, strings.NewReader("hi"), nil); err != nil {
			t.Fatal(err)
		}
		if n := slotsIssued(srv); n != 1 {
			t.Errorf("Prosody issued %d slots, want 1 (for the small file only)", n)
		}
	})

	t.Run("RefusedByService", func(t *testing.T) {
		// A service that did not say its limit: Prosody refuses the slot
		// with <file-too-large/>.
		unknown := httpfile.Service{JID: svc.JID}
		data := randomBytes(t, uploadLimit+1)
		_, err := unknown.Upload(ctx, alice.Session(), "big.bin", "", int64(len(data)), bytes.NewReader(data), nil)
		if !errors.Is(err, httpfile.ErrTooLarge) {
			t.Fatalf("Upload of %d bytes = %v, want ErrTooLarge", len(data), err)
		}
		if !errors.Is(err, stanza.Error{Condition: stanza.NotAcceptable}) {
			t.Errorf("the error %v does not wrap the stanza error", err)
		}
		t.Log(err)
	})
}

func TestUploadBadBody(t *testing.T) {
	t.Parallel()
	srv, alice := start(t)
	ctx := timeout(t, 30*time.Second)
	svc := discover(ctx, t, srv, alice.Session())

	for _, tc := range []struct {
		name string
		size int64
		body string
	}{
		{"Short", 10, "12345"},
		{"Long", 5, "1234567890"},
		{"NotEmpty", 0, "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getURL, err := svc.Upload(ctx, alice.Session(), "bad.txt", "text/plain", tc.size, strings.NewReader(tc.body), nil)
			if err == nil {
				t.Fatalf("Upload of %d bytes as %d succeeded: %s", len(tc.body), tc.size, getURL)
			}
			t.Log(err)
		})
	}

	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := svc.Upload(ctx, alice.Session(), "a.txt", "text/plain", 1, strings.NewReader("a"), nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Upload with a canceled context = %v", err)
		}
	})

	t.Run("CanceledDuringPut", func(t *testing.T) {
		// The body has more than enough bytes, but the upload is canceled
		// after 1000 of them have been read.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var sent atomic.Int64
		body := readerFunc(func(p []byte) (int, error) {
			if sent.Add(int64(len(p))) > 1000 {
				cancel()
			}
			return len(p), nil
		})
		_, err := svc.Upload(ctx, alice.Session(), "a.bin", "", uploadLimit, body, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Upload canceled while sending = %v", err)
		}
	})
}

// countingTransport counts the response body bytes read through it.
type countingTransport struct {
	base http.RoundTripper
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestFetchTooLargeByContentLength(t *testing.T) {
	t.Parallel()
	srv, alice := start(t)
	ctx := timeout(t, 30*time.Second)
	svc := discover(ctx, t, srv, alice.Session())
	data := randomBytes(t, 1000)
	getURL, err := svc.Upload(ctx, alice.Session(), "f.bin", "", int64(len(data)), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}

	ct := &countingTransport{base: loopback().Client().Transport}
	_, err = httpfile.Fetch(ctx, &http.Client{Transport: ct}, getURL, int64(len(data))-1)
	if !errors.Is(err, httpfile.ErrTooLarge) {
		t.Fatalf("Fetch with a limit below the size = %v, want ErrTooLarge", err)
	}
	t.Log(err)
	if n := ct.read.Load(); n != 0 {
		t.Errorf("read %d bytes of a body whose Content-Length is over the limit", n)
	}
}

func TestFetchDefaultRefusesLoopback(t *testing.T) {
	t.Parallel()
	srv, alice := start(t)
	ctx := timeout(t, 30*time.Second)
	svc := discover(ctx, t, srv, alice.Session())
	getURL, err := svc.Upload(ctx, alice.Session(), "f.txt", "text/plain", 2, strings.NewReader("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(getURL)
	if err != nil {
		t.Fatal(err)
	}
	byName := *u
	byName.Host = "localhost:" + u.Port()

	for _, tc := range []struct {
		name  string
		fetch func(url string) (httpfile.File, error)
	}{
		{"NilClient", func(url string) (httpfile.File, error) { return httpfile.Fetch(ctx, nil, url, 1<<20) }},
		{"ZeroFetcher", func(url string) (httpfile.File, error) { return (&httpfile.Fetcher{}).Fetch(ctx, url, 1<<20) }},
		{"OtherAllowedAddr", func(url string) (httpfile.File, error) {
			f := &httpfile.Fetcher{AllowedAddrs: []string{"upload.example.org:" + u.Port()}}
			return f.Fetch(ctx, url, 1<<20)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []string{getURL, byName.String()} {
				_, err := tc.fetch(target)
				if !errors.Is(err, httpfile.ErrPrivateAddress) {
					t.Fatalf("fetch %s = %v, want ErrPrivateAddress", target, err)
				}
				t.Log(err)
			}
		})
	}

	t.Run("AdvertisedAddr", func(t *testing.T) {
		// The service's address, as a slot of its own says it.
		addrs, err := svc.Addrs(ctx, alice.Session())
		if err != nil || len(addrs) != 1 || addrs[0] != u.Host {
			t.Fatalf("Addrs = %q, %v; want [%s]", addrs, err, u.Host)
		}
		f := &httpfile.Fetcher{AllowedAddrs: addrs}
		file, err := f.Fetch(ctx, getURL, 2)
		if err != nil || string(file.Data) != "hi" {
			t.Fatalf("fetch %s from an allowed host = %q, %v", getURL, file.Data, err)
		}
		// Another name for the same address is not allowed.
		if _, err := f.Fetch(ctx, byName.String(), 2); !errors.Is(err, httpfile.ErrPrivateAddress) {
			t.Fatalf("fetch %s = %v, want ErrPrivateAddress", byName.String(), err)
		}
	})
}

func TestOOBMessage(t *testing.T) {
	t.Parallel()
	srv, alice := start(t)
	srv.CreateUser(t, "bob", "bob-password")
	bob := srv.Client(t, "bob", "bob-password")
	ctx := timeout(t, 30*time.Second)
	svc := discover(ctx, t, srv, alice.Session())
	getURL, err := svc.Upload(ctx, alice.Session(), "cat.txt", "text/plain", 4, strings.NewReader("meow"), nil)
	if err != nil {
		t.Fatal(err)
	}

	body := xmlstream.Wrap(xmlstream.Token(xml.CharData(getURL)), xml.StartElement{Name: xml.Name{Local: "body"}})
	msg := stanza.Message{ID: "oob-1", To: bob.JID, Type: stanza.ChatMessage}
	if err := alice.Session().Send(ctx, msg.Wrap(xmlstream.MultiReader(body, httpfile.OOB(getURL, "a cat")))); err != nil {
		t.Fatal(err)
	}
	got, err := bob.WaitMessage(ctx, func(m prosodytest.Message) bool { return m.ID == "oob-1" })
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Body string `xml:"body"`
		OOB  struct {
			URL  string `xml:"url"`
			Desc string `xml:"desc"`
		} `xml:"jabber:x:oob x"`
	}
	if err := xml.Unmarshal([]byte(got.Raw), &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.Body != getURL || parsed.OOB.URL != getURL || parsed.OOB.Desc != "a cat" {
		t.Fatalf("bob got %s", got.Raw)
	}
	f, err := loopback().Fetch(ctx, parsed.OOB.URL, 1<<20)
	if err != nil || string(f.Data) != "meow" || f.Name != "cat.txt" {
		t.Fatalf("fetch %s = %+v, %v", parsed.OOB.URL, f, err)
	}
}
