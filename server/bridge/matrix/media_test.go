package matrix

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// A file from Matrix over MaxFileSize is refused as too_large, never cut at
// the limit and posted, even when the homeserver sends it chunked, without a
// Content-Length; a file of exactly the limit passes.
func TestDownloadOverTheLimitIsRefusedNotTruncated(t *testing.T) {
	const limit = 1000
	files := map[string][]byte{
		"over":  bytes.Repeat([]byte("x"), limit+1),
		"exact": bytes.Repeat([]byte("y"), limit),
		"huge":  bytes.Repeat([]byte("z"), 10*limit),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]]
		if !ok || !strings.Contains(r.URL.Path, "/download/") {
			http.NotFound(w, r)
			return
		}
		// Flushing before the end makes the body chunked.
		_, _ = w.Write(data[:10])
		w.(http.Flusher).Flush()
		_, _ = w.Write(data[10:])
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL)
	cfg.MaxFileSize = limit
	b, err := New(cfg, newMemStore(), nil)
	if err != nil {
		t.Fatal(err)
	}

	read := func(name string) ([]byte, error) {
		t.Helper()
		// No size in the event: only the body tells.
		a, err := b.attachment(&event.MessageEventContent{MsgType: event.MsgFile, Body: name, URL: id.ContentURIString("mxc://example.org/" + name)})
		if err != nil {
			t.Fatal(err)
		}
		return bridge.ReadAttachment(context.Background(), a, limit)
	}
	for _, name := range []string{"over", "huge"} {
		data, err := read(name)
		if code := bridge.DropCode(err); code != bridge.ReasonTooLarge {
			t.Errorf("%s: read %d bytes, error %v (drop code %q); want %s", name, len(data), err, code, bridge.ReasonTooLarge)
		}
	}
	data, err := read("exact")
	if err != nil || !bytes.Equal(data, files["exact"]) {
		t.Fatalf("a file of exactly the limit: %d bytes, %v", len(data), err)
	}
}
