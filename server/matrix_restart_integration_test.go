package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// transactionIDs records the IDs of the transactions the homeserver pushes
// to the plugin, in the order they arrive.
type transactionIDs struct {
	mu  sync.Mutex
	ids []string
}

func (h *matrixHarness) watchTransactionIDs() *transactionIDs {
	rec := &transactionIDs{}
	h.web.SetIntercept(func(_ http.ResponseWriter, r *http.Request, _ func() *http.Response) bool {
		if _, txnID, ok := strings.Cut(r.URL.Path, "/transactions/"); ok {
			rec.mu.Lock()
			rec.ids = append(rec.ids, txnID)
			rec.mu.Unlock()
		}
		return false
	})
	return rec
}

func (rec *transactionIDs) list() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.ids...)
}

// sayUntilAccepted sends text as u like a person's client does while the
// homeserver is away: again until it is accepted, under one transaction
// ID, so the homeserver keeps one event however often it is sent.
func (u *matrixUser) sayUntilAccepted(ctx context.Context, room id.RoomID, text string) {
	u.t.Helper()
	txnID := "say-" + strings.ReplaceAll(text, " ", "-")
	for {
		_, err := u.cli.SendMessageEvent(ctx, room, event.EventMessage,
			&event.MessageEventContent{MsgType: event.MsgText, Body: text}, mautrix.ReqSendEvent{TransactionID: txnID})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			u.t.Errorf("%s could not send %q: %v", u.ID, text, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Issue 10: the homeserver restarts while both sides send, 10 messages
// each way; everything arrives once, in order (once an error on Dendrite:
// it refused a puppet's message while stopping, and the refusal was taken
// for good). Synapse on SQLite starts
// its transaction IDs again from 1 after a restart (it numbers from the
// transactions still unsent), so the IDs of the transactions after the
// restart are those of transactions the plugin already handled, with new
// events in them.
func TestMatrixHomeserverRestartWhileBothSidesSend(t *testing.T) {
	eachHomeserver(t, testMatrixHomeserverRestartWhileBothSidesSend)
}

func testMatrixHomeserverRestartWhileBothSidesSend(t *testing.T, hs homeserver) {
	h := newMatrixHarness(t, hs)
	txns := h.watchTransactionIDs()
	// Both ways work before the restart; these use transaction IDs too.
	h.carol.say(h.room, "first from matrix")
	h.remotePost("first from matrix", func(p *model.Post) bool { return p.Message == "first from matrix" })
	h.post(h.alice, "first from mattermost", "")
	h.dave.waitEvent(h.room, "first from mattermost", bodyIs("first from mattermost"))
	before := len(txns.list())

	var fromMatrix, fromMattermost []string
	for i := 1; i <= 10; i++ {
		fromMatrix = append(fromMatrix, fmt.Sprintf("mx %02d", i))
		fromMattermost = append(fromMattermost, fmt.Sprintf("mm %02d", i))
	}
	ctx, cancel := context.WithTimeout(h.ctx, 2*time.Minute)
	defer cancel()
	// The first half goes through; the homeserver stops once it delivered
	// them (so Synapse has no transaction left unsent, and numbers the next
	// ones from 1 again), and the second half is sent while it is away and
	// while it starts again.
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i, text := range fromMatrix {
			if i == 5 {
				<-stopped
			}
			h.carol.sayUntilAccepted(ctx, h.room, text)
		}
	}()
	go func() {
		defer wg.Done()
		for i, text := range fromMattermost {
			if i == 5 {
				<-stopped
			}
			h.post(h.bob, text, "")
		}
	}()
	expectExactlyOnceInOrder(t, "the channel, before the restart", func() []string { return filterPrefix(remotePosts(h.s, h.ch), "mx ") }, fromMatrix[:5])
	expectExactlyOnceInOrder(t, "the room, before the restart", func() []string { return h.roomBodies("mm ") }, fromMattermost[:5])
	if err := h.hs.Stop(); err != nil {
		t.Log(err)
	}
	close(stopped)
	time.Sleep(2 * time.Second)
	h.hs.Restart(t)
	wg.Wait()

	expectExactlyOnceInOrder(t, "the channel", func() []string { return filterPrefix(remotePosts(h.s, h.ch), "mx ") }, fromMatrix)
	expectExactlyOnceInOrder(t, "the room", func() []string { return h.roomBodies("mm ") }, fromMattermost)
	t.Logf("%s pushed transactions %v before the restart and %v after", hs.name, txns.list()[:before], txns.list()[before:])
}
