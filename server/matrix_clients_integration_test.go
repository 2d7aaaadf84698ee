package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/niotest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Issue 10 item 3, Matrix half: besides the project's own Go client
// (mautrix, which the bridge itself uses, so a shared misreading of the
// spec would pass unnoticed), the Matrix checks run matrix-nio, whose
// driver writes content as Element and nio users send it.

// nioUser registers a Matrix account and logs it in through a matrix-nio
// client that joins the harness's room.
func (h *matrixHarness) nioUser(localpart string) *niotest.Client {
	h.t.Helper()
	password := localpart + "-password"
	h.hs.RegisterUser(h.t, localpart, password)
	c := niotest.Start(h.t, h.hs.BaseURL())
	c.Login(localpart, password)
	c.Join(string(h.room))
	return c
}

// Every kind of thing a nio user sends arrives in Mattermost as it should:
// the text once, edits as edits, reactions as reactions, replies in the
// thread of what they answer without the quote, files with their bytes,
// redactions as deletes.
func TestMatrixWhatNioSends(t *testing.T) { eachHomeserver(t, testMatrixWhatNioSends) }

func testMatrixWhatNioSends(t *testing.T, hs homeserver) {
	h := newMatrixHarness(t, hs)
	nina := h.nioUser("nina")
	room := string(h.room)

	first := nina.Say(room, "hello from nio")
	p := h.remotePost("nina's message", func(p *model.Post) bool { return p.Message == "hello from nio" })
	ninaID := p.UserId
	byNina := func(text string) func(*model.Post) bool {
		return func(p *model.Post) bool { return p.UserId == ninaID && p.Message == text }
	}
	nina.SayHTML(room, "so **bold** and `x`", "so <strong>bold</strong> and <code>x</code>")
	h.remotePost("nina's HTML message", byNina("so **bold** and `x`"))

	// Edits, plain and HTML: the post changes, and no "* ..." fallback
	// becomes a post of its own.
	nina.Edit(room, first, "hello from nio, edited", "")
	testhost.WaitFor(t, wait, func() bool { return h.s.Post(p.Id).Message == "hello from nio, edited" }, "nina's edit")
	nina.Edit(room, first, "now **strong**", "now <strong>strong</strong>")
	testhost.WaitFor(t, wait, func() bool { return h.s.Post(p.Id).Message == "now **strong**" }, "nina's HTML edit")

	// Reactions as Element's quick reactions send them (👍 with U+FE0F),
	// and their redaction.
	thumbs := nina.React(room, first, "👍️")
	testhost.WaitFor(t, wait, func() bool {
		rs := h.s.Reactions(p.Id)
		return len(rs) == 1 && rs[0].EmojiName == "+1" && rs[0].UserId == ninaID
	}, "nina's 👍")
	nina.Redact(room, thumbs, "")
	testhost.WaitFor(t, wait, func() bool { return len(h.s.Reactions(p.Id)) == 0 }, "nina's 👍 taken back")

	// On a Mattermost post, seen through nio's sync.
	question := h.post(h.alice, "question from mattermost\nsecond line", "")
	asked := nina.WaitEvent(room, "alice's question", func(e niotest.Event) bool {
		return strings.HasPrefix(e.Message().Body, "question from mattermost")
	})
	nina.React(room, asked.ID, "❤️")
	testhost.WaitFor(t, wait, func() bool {
		rs := h.s.Reactions(question.Id)
		return len(rs) == 1 && rs[0].EmojiName == "heart" && rs[0].UserId == ninaID
	}, "nina's ❤️ on alice's question")

	// Replies, with the quote fallback in HTML and in the body, or in the
	// body only: in the thread of what they answer, without the quote.
	htmlReply := nina.Reply(room, asked.ID, "html answer", true)
	answer := h.remotePost("nina's HTML reply", func(p *model.Post) bool { return byNina("html answer")(p) && p.RootId == question.Id })
	// Element edits a reply without its fallback: the post changes and
	// stays in the thread.
	nina.Edit(room, htmlReply, "html answer, edited", "html answer, <em>edited</em>")
	testhost.WaitFor(t, wait, func() bool { return strings.HasPrefix(h.s.Post(answer.Id).Message, "html answer, ") }, "nina's edited reply")
	if q := h.s.Post(answer.Id); (q.Message != "html answer, _edited_" && q.Message != "html answer, *edited*") || q.RootId != question.Id {
		t.Errorf("nina's edited reply is %q in thread %q", q.Message, q.RootId)
	}
	// A reply to a reply: Mattermost threads have one root.
	nina.Reply(room, htmlReply, "answering my answer", false)
	h.remotePost("nina's reply to her reply", func(p *model.Post) bool {
		return byNina("answering my answer")(p) && p.RootId == question.Id
	})
	nina.Reply(room, asked.ID, "plain answer", false)
	h.remotePost("nina's plain reply", func(p *model.Post) bool { return byNina("plain answer")(p) && p.RootId == question.Id })
	wave := nina.Emote(room, "waves")
	wavePost := h.remotePost("nina's emote", func(p *model.Post) bool { return p.UserId == ninaID && strings.HasSuffix(p.Message, "waves*") })
	// An edited emote stays an emote.
	nina.EditEmote(room, wave, "waves harder")
	testhost.WaitFor(t, wait, func() bool { return h.s.Post(wavePost.Id).Message != wavePost.Message }, "nina's emote edited")
	if got, want := h.s.Post(wavePost.Id).Message, strings.TrimSuffix(wavePost.Message, "waves*")+"waves harder*"; got != want {
		t.Errorf("nina's edited emote is %q, want %q", got, want)
	}
	nina.Reply(room, wave, "waving back\nwith two lines", true)
	h.remotePost("nina's reply to her emote", func(p *model.Post) bool {
		return byNina("waving back\nwith two lines")(p) && p.RootId == wavePost.Id
	})

	// Threads as Element sends them: the first message's fallback reply
	// points at the root, the next one's at the thread's latest message;
	// a quote inside the thread carries a real reply and its fallback.
	inThread := nina.Thread(room, asked.ID, "", "first in the thread")
	h.remotePost("nina's thread message", func(p *model.Post) bool { return byNina("first in the thread")(p) && p.RootId == question.Id })
	nina.Thread(room, asked.ID, inThread, "second in the thread")
	h.remotePost("nina's second thread message", func(p *model.Post) bool { return byNina("second in the thread")(p) && p.RootId == question.Id })
	nina.ReplyInThread(room, asked.ID, inThread, "quoting in the thread")
	h.remotePost("nina's quote in the thread", func(p *model.Post) bool { return byNina("quoting in the thread")(p) && p.RootId == question.Id })

	// Files: uploaded with nio's upload, sent as m.file and m.image.
	notes := []byte("notes from nio\n")
	nina.SendFile(room, "notes.txt", "text/plain", notes)
	pic := pngImage(t, 5)
	nina.SendFile(room, "nio.png", "image/png", pic)
	for _, f := range []struct {
		name string
		data []byte
	}{{"notes.txt", notes}, {"nio.png", pic}} {
		fp := h.remotePost("nina's "+f.name, func(p *model.Post) bool {
			return p.UserId == ninaID && len(p.FileIds) == 1 && h.s.FileInfo(p.FileIds[0]).Name == f.name
		})
		if got := h.s.FileData(fp.FileIds[0]); !bytes.Equal(got, f.data) {
			t.Fatalf("nina's %s arrived with %d bytes, want %d", f.name, len(got), len(f.data))
		}
	}

	// A captioned file: the caption is the post's text.
	nina.SendCaptionedFile(room, "report.txt", "text/plain", "the report, as promised", notes)
	cp := h.remotePost("nina's captioned file", func(p *model.Post) bool { return p.UserId == ninaID && strings.Contains(p.Message, "as promised") })
	if cp.Message != "the report, as promised" || len(cp.FileIds) != 1 || h.s.FileInfo(cp.FileIds[0]).Name != "report.txt" ||
		!bytes.Equal(h.s.FileData(cp.FileIds[0]), notes) {
		t.Fatalf("nina's captioned file arrived as %q with %d files", cp.Message, len(cp.FileIds))
	}

	// A redaction deletes the post.
	nina.Redact(room, first, "posted too soon")
	testhost.WaitFor(t, wait, func() bool { q := h.s.Post(p.Id); return q == nil || q.DeleteAt > 0 }, "nina's redaction")

	// Nothing else became a post: no edit fallback, no quote.
	h.s.WaitHooks(wait)
	for _, text := range remotePosts(h.s, h.ch) {
		if strings.HasPrefix(text, " * ") || strings.HasPrefix(text, "* ") || strings.Contains(text, "> <@") || strings.Contains(text, "In reply to") {
			t.Errorf("a fallback became a post: %q", text)
		}
	}
}

// What Mattermost sends, nio understands: it parses each event into the
// class it models, sees the edit replace the right event, the reaction
// annotate it, the redactions, the thread, and downloads the files.
func TestMatrixWhatNioReads(t *testing.T) { eachHomeserver(t, testMatrixWhatNioReads) }

func testMatrixWhatNioReads(t *testing.T, hs homeserver) {
	h := newMatrixHarness(t, hs)
	nina := h.nioUser("nina")
	room := string(h.room)
	from := func(u *model.User) func(niotest.Event) bool {
		return func(e niotest.Event) bool { return e.Sender == string(h.puppet(u)) }
	}

	hello := h.post(h.alice, "hello **nio**", "")
	out := nina.WaitEvent(room, "alice's message", func(e niotest.Event) bool {
		return from(h.alice)(e) && strings.HasPrefix(e.Message().Body, "hello")
	})
	if m := out.Message(); out.NioClass != "RoomMessageText" || m.Format != "org.matrix.custom.html" || !strings.Contains(m.FormattedBody, "<strong>nio</strong>") {
		t.Fatalf("nio read alice's message as %s: %s", out.NioClass, out)
	}

	// An edit replaces the event it names.
	if _, appErr := h.n.PatchPost(h.alice.Id, hello.Id, "hello, edited"); appErr != nil {
		t.Fatal(appErr)
	}
	nina.WaitEvent(room, "alice's edit", func(e niotest.Event) bool {
		m := e.Message()
		return from(h.alice)(e) && e.NioClass == "RoomMessageText" && m.RelatesTo != nil && m.RelatesTo.RelType == "m.replace" &&
			m.RelatesTo.EventID == out.ID && m.NewContent != nil && m.NewContent.Body == "hello, edited"
	})

	// A reaction annotates it; taking it back redacts the reaction.
	if _, appErr := h.n.React(h.bob.Id, hello.Id, "tada"); appErr != nil {
		t.Fatal(appErr)
	}
	reaction := nina.WaitEvent(room, "bob's reaction", func(e niotest.Event) bool {
		r := e.Message().RelatesTo
		return from(h.bob)(e) && e.Type == "m.reaction" && r != nil && r.RelType == "m.annotation" && r.EventID == out.ID && r.Key == "🎉"
	})
	if appErr := h.n.RemoveReaction(&model.Reaction{UserId: h.bob.Id, PostId: hello.Id, EmojiName: "tada"}); appErr != nil {
		t.Fatal(appErr)
	}
	nina.WaitEvent(room, "bob's reaction taken back", func(e niotest.Event) bool {
		return e.NioClass == "RedactionEvent" && e.RedactedID() == reaction.ID
	})

	// A reply in Mattermost is in the Matrix thread of its root, whether
	// the root came from Mattermost or from nina.
	bobReply := h.post(h.bob, "bob in the thread", hello.Id)
	bobOut := nina.WaitEvent(room, "bob's thread reply", func(e niotest.Event) bool {
		r := e.Message().RelatesTo
		return from(h.bob)(e) && e.NioClass == "RoomMessageText" && e.Message().Body == "bob in the thread" &&
			r != nil && r.RelType == "m.thread" && r.EventID == out.ID
	})
	// Its edit replaces it; the new content carries no relation (the
	// spec: m.new_content never has m.relates_to).
	if _, appErr := h.n.PatchPost(h.bob.Id, bobReply.Id, "bob, edited in the thread"); appErr != nil {
		t.Fatal(appErr)
	}
	nina.WaitEvent(room, "bob's edit in the thread", func(e niotest.Event) bool {
		m := e.Message()
		return from(h.bob)(e) && m.RelatesTo != nil && m.RelatesTo.RelType == "m.replace" && m.RelatesTo.EventID == bobOut.ID &&
			m.NewContent != nil && m.NewContent.Body == "bob, edited in the thread" && m.NewContent.RelatesTo == nil
	})
	asks := nina.Say(room, "nina asks")
	asked := h.remotePost("nina's question", func(p *model.Post) bool { return p.Message == "nina asks" })
	h.post(h.alice, "alice answers nina", asked.Id)
	nina.WaitEvent(room, "alice's answer in nina's thread", func(e niotest.Event) bool {
		r := e.Message().RelatesTo
		return from(h.alice)(e) && e.Message().Body == "alice answers nina" && r != nil && r.RelType == "m.thread" && r.EventID == asks
	})

	// Files: nio parses an m.file and an m.image and downloads both.
	notes := []byte("notes from mattermost\n")
	pic := pngImage(t, 3)
	for _, f := range []struct {
		name, class string
		data        []byte
	}{{"notes.txt", "RoomMessageFile", notes}, {"mm.png", "RoomMessageImage", pic}} {
		info := h.s.UploadFile(h.alice.Id, h.ch.Id, f.name, f.data)
		postAs(t, h.n, h.alice, h.ch, "", "", info.Id)
		e := nina.WaitEvent(room, "alice's "+f.name, func(e niotest.Event) bool { return from(h.alice)(e) && e.Message().Body == f.name })
		if e.NioClass != f.class || !strings.HasPrefix(e.Message().URL, "mxc://") {
			t.Fatalf("nio read alice's %s as %s: %s", f.name, e.NioClass, e)
		}
		got, via, err := nina.Download(e.Message().URL)
		if err != nil || !bytes.Equal(got, f.data) {
			t.Fatalf("nio downloading alice's %s: %d bytes, %v", f.name, len(got), err)
		}
		t.Logf("nio downloaded %s through %s", f.name, via)
	}

	// A deleted post is a redaction of its event.
	if appErr := h.n.DeletePost(h.alice.Id, hello.Id); appErr != nil {
		t.Fatal(appErr)
	}
	nina.WaitEvent(room, "alice's redaction", func(e niotest.Event) bool {
		return e.NioClass == "RedactionEvent" && e.RedactedID() == out.ID
	})

	// nio found nothing the bridge sent it could not read. (nio 0.20
	// predates room version 11, whose m.room.create has no "creator", and
	// reads Synapse's as a BadEvent: not the bridge's.)
	for _, e := range nina.Events() {
		bridged := strings.HasPrefix(e.Sender, "@"+h.cfg.UserPrefix) || e.Sender == "@"+h.cfg.BotLocalpart+":"+h.cfg.ServerName
		if bridged && strings.Contains(e.NioClass, "Bad") {
			t.Errorf("nio could not read an event (%s): %s", e.NioClass, e)
		}
	}
}
