package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/slixmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

// Issue 10 item 3: the XMPP checks with a second, independent client
// implementation (slixmpp 1.8, see slixmpptest) beside the project's own,
// for what people's apps really send and what they must understand.

// clientWait bounds each wait of these checks: a failsafe on a loaded
// machine, not a pace; every wait ends as soon as its condition holds.
const clientWait = 60 * time.Second

// slixHarness is an xmppHarness (carol in the room on the Go client) with
// sam in the same room on slixmpp.
type slixHarness struct {
	*xmppHarness
	sam *slixmpptest.Client
}

func newSlixHarness(t *testing.T, kind testservers.Kind) *slixHarness {
	t.Helper()
	h := &slixHarness{xmppHarness: newXMPPHarnessOn(t, kind, "client")}
	h.xmpp.CreateUser(t, "sam", "sam-pw")
	h.sam = slixmpptest.Connect(t, h.xmpp.Endpoints, "sam", "sam-pw")
	h.Must(h.sam.JoinRoom(h.ctx, h.room, "Sam"))
	return h
}

// samSees waits until slixmpp received a groupchat message matching.
func (h *slixHarness) samSees(what string, match func(slixmpptest.Message) bool) slixmpptest.Message {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, clientWait)
	defer cancel()
	m, err := h.sam.WaitMessage(ctx, func(m slixmpptest.Message) bool { return m.Type == "groupchat" && match(m) })
	if err != nil {
		h.t.Fatalf("slixmpp waiting for %s: %v", what, err)
	}
	return m
}

// samSays sends body as sam and returns the id sam gave it and the room's
// stanza-id of it (from the room's echo to sam).
func (h *slixHarness) samSays(body string) (id, stanzaID string) {
	h.t.Helper()
	id, err := h.sam.Say(h.ctx, h.room, body, "")
	h.Must(err)
	echo := h.samSees("sam's own "+body, func(m slixmpptest.Message) bool { return m.OriginID == id || m.ID == id })
	if echo.StanzaID == "" {
		h.t.Fatalf("the room gave %q no stanza-id: %s", body, echo.Raw)
	}
	return id, echo.StanzaID
}

func (h *slixHarness) post(what string, pred func(*model.Post) bool) *model.Post {
	h.t.Helper()
	var found *model.Post
	testhost.WaitFor(h.t, clientWait, func() bool {
		for _, p := range h.s.ChannelPosts(h.ch.Id) {
			if pred(p) {
				found = p
				return true
			}
		}
		return false
	}, "a post: %s", what)
	return found
}

func (h *slixHarness) deleted(what, postID string) {
	h.t.Helper()
	testhost.WaitFor(h.t, clientWait, func() bool { p := h.s.Post(postID); return p == nil || p.DeleteAt > 0 }, "%s", what)
}

// What slixmpp sends arrives in Mattermost as it should: a correction
// edits, a reaction reacts, a reply (plain or with XHTML-IM) joins the
// thread without its quote, a XEP-0201 thread is a Mattermost thread, a
// file is an attachment, and both retraction forms slixmpp 1.8 may send
// (message-retract:0 naming the origin-id, or the room's stanza-id) delete.
func TestXMPPFromSlixmpp(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newSlixHarness(t, kind)

		samID, _ := h.samSays("hello from *slixmpp*")
		hello := h.post("sam's message", func(p *model.Post) bool { return p.Message == "hello from **slixmpp**" })
		sam := h.s.User(hello.UserId)
		if sam == nil || sam.RemoteId == nil || sam.Nickname != "Sam (XMPP)" {
			t.Fatalf("sam's message was posted by %+v", sam)
		}

		// Correction (XEP-0308, by the id sam chose).
		_, err := h.sam.Correct(h.ctx, h.room, samID, "hello, corrected")
		h.Must(err)
		testhost.WaitFor(t, clientWait, func() bool { return h.s.Post(hello.Id).Message == "hello, corrected" }, "sam's correction")

		// Reactions (XEP-0444) to alice's post, set and cleared.
		alicePost := h.xmppHarness.post(h.alice, "alice asks", "")
		aliceMsg := h.samSees("alice's message", func(m slixmpptest.Message) bool { return m.Body == "alice asks" })
		h.Must(h.sam.React(h.ctx, h.room, aliceMsg.StanzaID, "🎉"))
		testhost.WaitFor(t, clientWait, func() bool {
			rs := h.s.Reactions(alicePost.Id)
			return len(rs) == 1 && rs[0].EmojiName == "tada" && rs[0].UserId == sam.Id
		}, "sam's reaction")
		h.Must(h.sam.React(h.ctx, h.room, aliceMsg.StanzaID))
		testhost.WaitFor(t, clientWait, func() bool { return len(h.s.Reactions(alicePost.Id)) == 0 }, "sam's reaction removed")

		// Replies (XEP-0461 with slixmpp 1.8's feature-fallback:0 quote),
		// plain and with XHTML-IM: thread replies, without the quote.
		_, err = h.sam.Reply(h.ctx, h.room, slixmpptest.Reply{
			To: aliceMsg.From, ID: aliceMsg.StanzaID, Quote: "Alice Liddell: alice asks", Body: "plain answer",
		})
		h.Must(err)
		plain := h.post("sam's plain reply", func(p *model.Post) bool { return strings.Contains(p.Message, "plain answer") })
		_, err = h.sam.Reply(h.ctx, h.room, slixmpptest.Reply{
			To: aliceMsg.From, ID: aliceMsg.StanzaID, Quote: "Alice Liddell: alice asks", Body: "html answer",
			QuoteHTML: "Alice Liddell: alice asks", HTML: "html <strong>answer</strong>",
		})
		h.Must(err)
		html := h.post("sam's HTML reply", func(p *model.Post) bool { return strings.Contains(p.Message, "html answer") })
		for _, p := range []*model.Post{plain, html} {
			if p.RootId != alicePost.Id || strings.Contains(p.Message, "alice asks") || strings.Contains(p.Message, ">") {
				t.Fatalf("sam's reply became %q in thread %q (want thread %q, no quote)", p.Message, p.RootId, alicePost.Id)
			}
		}

		// A XEP-0201 thread: its first message is the Mattermost thread's
		// root, the next ones replies to it.
		_, err = h.sam.SayInThread(h.ctx, h.room, "thread starts", "slix-thread-1")
		h.Must(err)
		root := h.post("the thread's first message", func(p *model.Post) bool { return p.Message == "thread starts" })
		_, err = h.sam.SayInThread(h.ctx, h.room, "thread goes on", "slix-thread-1")
		h.Must(err)
		next := h.post("the thread's second message", func(p *model.Post) bool { return p.Message == "thread goes on" })
		if root.RootId != "" || next.RootId != root.Id {
			t.Fatalf("thread: first message in thread %q, second in %q; want \"\" and %q", root.RootId, next.RootId, root.Id)
		}

		// A file (XEP-0363 upload, shared with an out-of-band URL).
		pic := pngImage(t, 4)
		_, _, err = h.sam.Upload(h.ctx, h.room, h.xmpp.UploadDomain, "pic.png", "image/png", pic)
		h.Must(err)
		fp := h.post("sam's picture", func(p *model.Post) bool { return len(p.FileIds) == 1 && p.UserId == sam.Id })
		if !bytes.Equal(h.s.FileData(fp.FileIds[0]), pic) || h.s.FileInfo(fp.FileIds[0]).Name != "pic.png" || strings.Contains(fp.Message, "http") {
			t.Fatalf("sam's file arrived as %q with %q", h.s.FileInfo(fp.FileIds[0]).Name, fp.Message)
		}

		// Retractions as slixmpp 1.8 sends them (message-retract:0), by
		// origin-id and by the room's stanza-id.
		byOrigin, _ := h.samSays("retract me by origin-id")
		p1 := h.post("the first message to retract", func(p *model.Post) bool { return p.Message == "retract me by origin-id" })
		h.Must(h.sam.Retract(h.ctx, h.room, byOrigin))
		h.deleted("the retraction by origin-id", p1.Id)
		_, byStanza := h.samSays("retract me by stanza-id")
		p2 := h.post("the second message to retract", func(p *model.Post) bool { return p.Message == "retract me by stanza-id" })
		h.Must(h.sam.Retract(h.ctx, h.room, byStanza))
		h.deleted("the retraction by stanza-id", p2.Id)

		// No fallback text became a post of its own.
		h.s.WaitHooks(10 * time.Second)
		for _, p := range h.s.ChannelPosts(h.ch.Id) {
			if strings.Contains(p.Message, "attempted to retract") || strings.Contains(p.Message, "> ") {
				t.Fatalf("a fallback became a post: %q", p.Message)
			}
		}
	})
}

// What Mattermost sends is understood by slixmpp: the message, its edit
// as a correction of the id slixmpp knows it by, a reaction to the room's
// id of sam's message, a thread reply as a reply to it, a file as an
// out-of-band URL that serves the bytes, and a delete as a retraction
// slixmpp 1.8 reads.
func TestXMPPToSlixmpp(t *testing.T) {
	forEachXMPPServer(t, func(t *testing.T, kind testservers.Kind) {
		h := newSlixHarness(t, kind)

		hello := h.xmppHarness.post(h.alice, "hello **slixmpp**", "")
		got := h.samSees("alice's message", func(m slixmpptest.Message) bool { return strings.Contains(m.Body, "slixmpp") })
		if got.Body != "hello *slixmpp*" || got.Nick() != "Alice Liddell" || got.OriginID == "" {
			t.Fatalf("slixmpp read %q from %q (origin-id %q)", got.Body, got.From, got.OriginID)
		}

		_, appErr := h.n.PatchPost(h.alice.Id, hello.Id, "hello, edited")
		h.Must(appErrOrNil(appErr))
		h.samSees("alice's correction", func(m slixmpptest.Message) bool {
			return m.ReplaceID == got.OriginID && m.Body == "hello, edited"
		})

		_, samStanzaID := h.samSays("sam speaks")
		samPost := h.post("sam's message", func(p *model.Post) bool { return p.Message == "sam speaks" })
		_, appErr = h.n.React(h.alice.Id, samPost.Id, "thumbsup")
		h.Must(appErrOrNil(appErr))
		h.samSees("alice's reaction", func(m slixmpptest.Message) bool {
			return m.ReactionsTo == samStanzaID && len(m.Reactions) == 1 && m.Reactions[0] == "👍"
		})

		h.xmppHarness.post(h.alice, "answering sam", samPost.Id)
		h.samSees("alice's thread reply", func(m slixmpptest.Message) bool {
			return m.ReplyTo == samStanzaID && strings.Contains(m.Body, "answering sam")
		})

		info := h.s.UploadFile(h.alice.Id, h.ch.Id, "notes.txt", []byte("file for slixmpp"))
		_, appErr = h.n.CreatePost(&model.Post{UserId: h.alice.Id, ChannelId: h.ch.Id, Message: "a file", FileIds: []string{info.Id}})
		h.Must(appErrOrNil(appErr))
		file := h.samSees("alice's file", func(m slixmpptest.Message) bool { return m.OOBURL != "" })
		f, err := (&httpfile.Fetcher{AllowPrivate: true}).Fetch(h.ctx, file.OOBURL, 1<<20)
		if err != nil || string(f.Data) != "file for slixmpp" {
			t.Fatalf("fetching %q: %q, %v", file.OOBURL, f.Data, err)
		}

		h.Must(appErrOrNil(h.n.DeletePost(h.alice.Id, hello.Id)))
		h.samSees("alice's retraction", func(m slixmpptest.Message) bool { return m.RetractID == got.OriginID })
	})
}
