package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// pushesRedactionsLine is what the plugin logs once it knows the
// homeserver pushes redactions to it.
const pushesRedactionsLine = "pushes redactions"

func (h *matrixHarness) logsWith(part string) int {
	n := 0
	for _, line := range h.s.Logs() {
		if strings.Contains(line, part) {
			n++
		}
	}
	return n
}

// Issue 10: the bot's /sync is read for redactions only where the
// homeserver does not push them. Synapse pushes them (and answers 500 to
// an application service's own /sync): the plugin finds out by itself,
// without waiting for someone to redact something, and stops asking.
// Dendrite does not push them: the plugin reads them from the sync.
// Either way a redaction reaches Mattermost.
func TestMatrixRedactionsPushedOrRead(t *testing.T) {
	eachHomeserver(t, testMatrixRedactionsPushedOrRead)
}

func testMatrixRedactionsPushedOrRead(t *testing.T, hs homeserver) {
	h := newMatrixHarness(t, hs)
	pushes := hs.name == "Synapse"
	var refusedSyncs int
	if pushes {
		testhost.WaitFor(t, time.Minute, func() bool { return h.logsWith(pushesRedactionsLine) > 0 }, "the plugin to find out that %s pushes redactions", hs.name)
		refusedSyncs = h.logsWith("Matrix sync failed")
	}

	ev := h.carol.say(h.room, "soon gone")
	p := h.remotePost("soon gone", func(p *model.Post) bool { return p.Message == "soon gone" })
	if _, err := h.carol.cli.RedactEvent(h.ctx, h.room, ev); err != nil {
		t.Fatal(err)
	}
	testhost.WaitFor(t, wait, func() bool { p := h.s.Post(p.Id); return p == nil || p.DeleteAt > 0 }, "carol's redaction to delete the post")

	if pushes {
		// One sync may have been on its way when the plugin found out.
		if n := h.logsWith("Matrix sync failed"); n > refusedSyncs+1 {
			t.Fatalf("the plugin asked %s for the bot's sync %d more times after it knew redactions are pushed", hs.name, n-refusedSyncs)
		}
	} else if h.logsWith(pushesRedactionsLine) > 0 {
		t.Fatalf("the plugin took %s for a homeserver that pushes redactions", hs.name)
	}
}
