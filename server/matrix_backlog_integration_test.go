package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// slowPosts is a second plugin whose MessageWillBePosted holds up every
// post whose text starts with prefix: a slow Mattermost destination, so
// the bridge's queue towards it backs up. It slows posts down instead of
// failing them: a refusal would be a permanent drop, and a post held past
// the plugin's shutdown would still be created afterwards.
type slowPosts struct {
	plugin.MattermostPlugin
	prefix string
	delay  atomic.Int64 // nanoseconds
}

const slowPostsID = "com.mattermost.bridge.test.slowposts"

func (p *slowPosts) MessageWillBePosted(_ *plugin.Context, post *model.Post) (*model.Post, string) {
	if d := time.Duration(p.delay.Load()); d > 0 && strings.HasPrefix(post.Message, p.prefix) {
		time.Sleep(d)
	}
	return nil, ""
}

// slowDown activates a slowPosts plugin on the harness's node.
func (h *channelHarness) slowDown(prefix string, delay time.Duration) *slowPosts {
	h.t.Helper()
	p := &slowPosts{prefix: prefix}
	p.delay.Store(int64(delay))
	m := &model.Manifest{Id: slowPostsID, Name: "Slow posts", Version: "0.0.1", Server: &model.ManifestServer{}}
	if err := h.n.ActivateInProcess(m, func() any { return p }); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// waitAccepted waits until the plugin has answered 200 to a transaction
// carrying each marker.
func (rec *txnRecorder) waitAccepted(t testing.TB, markers []string) {
	t.Helper()
	testhost.WaitFor(t, 60*time.Second, func() bool {
		for _, m := range markers {
			ok := false
			for _, path := range slices.Compact(rec.pathsOf(m)) {
				ok = ok || slices.Contains(rec.codesOf(path), http.StatusOK)
			}
			if !ok {
				return false
			}
		}
		return true
	}, "the plugin to accept the transactions carrying %v", markers)
}

// pendingRecords are the plugin's pending Matrix records in the KV store,
// as stored.
func (h *matrixHarness) pendingRecords() []string {
	h.t.Helper()
	st := store.New(h.s.KV())
	list, err := st.ListPending(matrixPendingNS)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, p := range list {
		out = append(out, string(p.Value))
	}
	return out
}

// matrixPendingNS is the namespace of the Matrix bridge's pending records.
const matrixPendingNS = "matrix-pending"

// Issue 9: the plugin is deactivated while the Mattermost destination has
// a backlog of Matrix events it accepted (answered 200, so the homeserver
// never sends them again): messages, an edit, a reaction and a redaction.
// After reactivation every one arrives once, in order, before anything
// sent later; and events handed on again after they arrived double
// nothing.
func TestMatrixBacklogSurvivesDeactivation(t *testing.T) {
	eachHomeserver(t, testMatrixBacklogSurvivesDeactivation)
}

func testMatrixBacklogSurvivesDeactivation(t *testing.T, hs homeserver) {
	h := newMatrixHarness(t, hs)
	targets := map[string]id.EventID{}
	posts := map[string]*model.Post{}
	for _, text := range []string{"to edit", "to react to", "to redact"} {
		targets[text] = h.carol.say(h.room, text)
		posts[text] = h.remotePost(text, func(p *model.Post) bool { return p.Message == text })
	}

	rec := h.recordTransactions()
	slow := h.slowDown("backlog ", 3*time.Second)
	var want, markers []string
	say := func(i int) {
		text := fmt.Sprintf("backlog %02d", i)
		want, markers = append(want, text), append(markers, text)
		rec.watch(text, func(http.ResponseWriter, func() *http.Response) bool { return false })
		h.carol.say(h.room, text)
	}
	for i := 1; i <= 6; i++ {
		say(i)
	}
	markers = append(markers, "edited in the backlog", "m.reaction")
	for _, m := range markers[len(markers)-2:] {
		rec.watch(m, func(http.ResponseWriter, func() *http.Response) bool { return false })
	}
	edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "* edited in the backlog"}
	edit.NewContent = &event.MessageEventContent{MsgType: event.MsgText, Body: "edited in the backlog"}
	edit.RelatesTo = (&event.RelatesTo{}).SetReplace(targets["to edit"])
	editID := h.carol.send(h.room, event.EventMessage, edit)
	reactionID := h.carol.send(h.room, event.EventReaction, &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: targets["to react to"], Key: "🎉"},
	})
	redaction, err := h.carol.cli.RedactEvent(h.ctx, h.room, targets["to redact"])
	if err != nil {
		t.Fatal(err)
	}
	for i := 7; i <= 8; i++ {
		say(i)
	}
	rec.waitAccepted(t, markers)
	// Dendrite does not push redactions: the bot's sync reads them.
	testhost.WaitFor(t, 60*time.Second, func() bool {
		p := h.s.Post(posts["to redact"].Id)
		return p == nil || p.DeleteAt > 0 || slices.ContainsFunc(h.pendingRecords(), func(r string) bool { return strings.Contains(r, string(redaction.EventID)) })
	}, "the plugin to accept carol's redaction")
	h.n.DeactivatePlugin(manifest.Id)
	backlog := func() []string { return filterPrefix(remotePosts(h.s, h.ch), "backlog ") }
	if got := backlog(); len(got) == len(want) {
		// Not a failure: only a sign the machine was slow enough for the
		// queue to drain during the shutdown, and this run proved less.
		t.Logf("the whole backlog arrived before the plugin stopped: %q", got)
	}

	slow.delay.Store(0)
	h.activate()
	h.carol.say(h.room, "backlog 09")
	want = append(want, "backlog 09")
	expectExactlyOnceInOrder(t, "the channel", backlog, want)
	h.expectBacklogActions(posts)
	testhost.WaitFor(t, wait, func() bool { return len(h.pendingRecords()) == 0 }, "the pending records to be deleted")

	// The plugin stops after delivering and before deleting the records:
	// the next start hands every kind on again, and nothing doubles.
	h.n.DeactivatePlugin(manifest.Id)
	var events []json.RawMessage
	for _, eventID := range []id.EventID{h.eventID("backlog 01"), editID, reactionID, redaction.EventID} {
		evt, err := h.carol.cli.GetEvent(h.ctx, h.room, eventID)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(evt)
		events = append(events, raw)
	}
	value, _ := json.Marshal(map[string]any{"source": "test", "events": events})
	if err := store.New(h.s.KV()).SavePending(matrixPendingNS, "00000000000000000001-test", value); err != nil {
		t.Fatal(err)
	}
	h.activate()
	testhost.WaitFor(t, wait, func() bool { return len(h.pendingRecords()) == 0 }, "the replayed record to be deleted")
	h.carol.say(h.room, "backlog 10")
	want = append(want, "backlog 10")
	expectExactlyOnceInOrder(t, "the channel after handing on arrived events again", backlog, want)
	h.expectBacklogActions(posts)
}

// expectBacklogActions checks the edit, reaction and redaction carol made
// in the backlog each arrived, once.
func (h *matrixHarness) expectBacklogActions(posts map[string]*model.Post) {
	h.t.Helper()
	testhost.WaitFor(h.t, wait, func() bool {
		gone := h.s.Post(posts["to redact"].Id)
		return h.s.Post(posts["to edit"].Id).Message == "edited in the backlog" &&
			len(h.s.Reactions(posts["to react to"].Id)) == 1 && (gone == nil || gone.DeleteAt > 0)
	}, "carol's edit, reaction and redaction")
	if rs := h.s.Reactions(posts["to react to"].Id); len(rs) != 1 || rs[0].EmojiName != "tada" {
		h.t.Fatalf("reactions: %+v", rs)
	}
}

// eventID is the ID of carol's message with text, from the room history.
func (h *matrixHarness) eventID(text string) id.EventID {
	h.t.Helper()
	resp, err := h.dave.cli.Messages(h.ctx, h.room, "", "", mautrix.DirectionBackward, nil, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range resp.Chunk {
		_ = e.Content.ParseRaw(e.Type)
		if e.Type == event.EventMessage && message(e).Body == text {
			return e.ID
		}
	}
	h.t.Fatalf("no message %q in the room", text)
	return ""
}
