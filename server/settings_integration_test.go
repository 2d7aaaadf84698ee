package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/bridgetest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Settings apply when saved (issue 8 item 9): a System Console save reaches
// the running plugin without a restart.

// status reads the admin status endpoint.
func (h *harness) status() statusReport {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "/api/v1/status", http.NoBody)
	res := h.n.ServeHTTP(h.admin.Id, req)
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("status: %d", res.StatusCode)
	}
	defer res.Body.Close()
	var r statusReport
	h.must(json.NewDecoder(res.Body).Decode(&r))
	return r
}

// network returns the status of network n; the zero status when the
// report has none.
func (r statusReport) network(n bridge.Network) networkStatus {
	for _, ns := range r.Networks {
		if ns.Network == n {
			return ns
		}
	}
	return networkStatus{}
}

// A smaller QueueSize bounds the queue that already exists at once, and a
// larger one lets it grow again: no restart in between.
func TestQueueSizeAppliesWhenSaved(t *testing.T) {
	h := newHarness(t) // QueueSize 1000
	h.post(h.alice, "queue warm-up", "")
	h.delivered(h.net, bridge.KindMessage, func(d bridgetest.Delivered) bool { return d.Text == "queue warm-up" })

	h.must(h.s.SetPluginSettings(map[string]any{"QueueSize": 10}))
	release := h.net.Hang("lobby")
	defer release()
	var want []string
	for i := range 15 {
		text := fmt.Sprintf("small queue %02d", i)
		h.post(h.alice, text, "")
		want = append(want, text)
	}
	h.s.WaitHooks(wait)
	testhost.WaitFor(t, wait, func() bool {
		return h.status().network("testnet").Dropped[bridge.FromMattermost][bridge.ReasonQueueFull] > 0
	}, "the bus to refuse what goes over QueueSize 10")
	if n := h.status().network("testnet"); n.QueueDepth > 10 {
		t.Fatalf("the queue holds %d items with QueueSize 10", n.QueueDepth)
	}

	h.must(h.s.SetPluginSettings(map[string]any{"QueueSize": 1000}))
	for i := range 15 {
		text := fmt.Sprintf("large queue %02d", i)
		h.post(h.alice, text, "")
		want = append(want, text)
	}
	h.s.WaitHooks(wait)
	testhost.WaitFor(t, wait, func() bool { return h.status().network("testnet").QueueDepth > 10 }, "the same queue to grow past 10 with QueueSize 1000")

	// Nothing refused is lost: the Mattermost side retries it, in order.
	release()
	testhost.WaitFor(t, 30*time.Second, func() bool {
		return countDeliveries(h.net, func(d bridgetest.Delivered) bool { return strings.Contains(d.Text, " queue ") }) >= len(want)
	}, "every message")
	var got []string
	for _, d := range h.net.Delivered() {
		if strings.Contains(d.Text, " queue ") {
			got = append(got, d.Text)
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("delivered:\n%q\nwant\n%q", got, want)
	}
}

// A smaller MaxFileSizeMB keeps a file that was fine a moment ago out of
// Mattermost, without a restart.
func TestMaxFileSizeAppliesWhenSaved(t *testing.T) {
	h := newHarness(t)                                          // MaxFileSizeMB 50
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/2/16) // 1.5 MiB
	_, err := h.net.SendFile(h.ctx, "lobby", carol, "big before", "big.bin", "application/octet-stream", big)
	h.must(err)
	before := h.channelPost("the file under the 50 MB limit", func(p *model.Post) bool { return strings.HasPrefix(p.Message, "big before") })
	if len(before.FileIds) != 1 {
		t.Fatalf("under the limit: %d files, %q", len(before.FileIds), before.Message)
	}

	h.must(h.s.SetPluginSettings(map[string]any{"MaxFileSizeMB": 1}))
	_, err = h.net.SendFile(h.ctx, "lobby", carol, "big after", "big.bin", "application/octet-stream", big)
	h.must(err)
	after := h.channelPost("the file over the new 1 MB limit", func(p *model.Post) bool { return strings.HasPrefix(p.Message, "big after") })
	if len(after.FileIds) != 0 || !strings.Contains(after.Message, "too large") {
		t.Fatalf("over the new limit: %d files, %q", len(after.FileIds), after.Message)
	}
}
