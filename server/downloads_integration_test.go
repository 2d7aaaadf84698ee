package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

// Issue 8 item 7: the bridge fetches files linked in XMPP rooms from
// private addresses only at the exact host and port of the upload service
// the XMPP server advertised; another port of the XMPP server's own host
// (here 127.0.0.1, where Prosody listens) is out of bounds, be it linked
// directly or reached by a redirect from a public-looking link.
func TestXMPPDownloadsOnlyFromTheAdvertisedUploadAddress(t *testing.T) {
	for _, mode := range []string{"client", "component"} {
		t.Run(mode, func(t *testing.T) { testDownloadsInBounds(t, mode) })
	}
}

func testDownloadsInBounds(t *testing.T, mode string) {
	h := newXMPPHarness(t, mode)
	var hits atomic.Int32
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("internal secret"))
	}))
	t.Cleanup(inside.Close)

	secretURL := inside.URL + "/secret.txt"
	h.raw(`<message to='%s' type='groupchat' id='inside1'><body>%s</body><x xmlns='jabber:x:oob'><url>%s</url></x></message>`, h.room, secretURL, secretURL)
	p := h.channelPost("the link to another port", func(p *model.Post) bool {
		return strings.Contains(p.Message, secretURL) || len(p.FileIds) > 0
	})
	if len(p.FileIds) != 0 || hits.Load() != 0 || !strings.Contains(p.Message, secretURL) {
		t.Fatalf("the bridge fetched %s (%d requests; post has files %v)", secretURL, hits.Load(), p.FileIds)
	}

	// A file on the advertised upload service still comes through.
	svc, err := httpfile.Discover(h.ctx, h.occupant.Session(), h.xmpp.JID(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	pic := pngImage(t, 3)
	picURL, err := svc.Upload(h.ctx, h.occupant.Session(), "pic.png", "image/png", int64(len(pic)), bytes.NewReader(pic), (&httpfile.Fetcher{AllowPrivate: true}).Client())
	if err != nil {
		t.Fatal(err)
	}
	h.raw(`<message to='%s' type='groupchat' id='upload1'><body>%s</body><x xmlns='jabber:x:oob'><url>%s</url></x></message>`, h.room, picURL, picURL)
	fp := h.channelPost("the uploaded picture", func(p *model.Post) bool { return len(p.FileIds) == 1 })
	if !bytes.Equal(h.s.FileData(fp.FileIds[0]), pic) {
		t.Fatal("the uploaded picture arrived changed")
	}
	if hits.Load() != 0 {
		t.Fatalf("%s was fetched after all", secretURL)
	}
}
