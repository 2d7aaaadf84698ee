package niotest_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/dendritetest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/homeservertest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/niotest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix/synapsetest"
)

// The driver sends each kind of event as clients do, on both homeservers:
// checked here on what the homeserver gives back to nio's own sync, so the
// bridge's tests can trust the client and read failures as the bridge's.
func TestNioDriver(t *testing.T) {
	for _, hs := range []struct {
		name  string
		start func(testing.TB) homeservertest.Server
	}{
		{"Dendrite", func(t testing.TB) homeservertest.Server { return dendritetest.Start(t, dendritetest.Options{}) }},
		{"Synapse", func(t testing.TB) homeservertest.Server { return synapsetest.Start(t, synapsetest.Options{}) }},
	} {
		t.Run(hs.name, func(t *testing.T) {
			t.Parallel()
			testNioDriver(t, hs.start(t))
		})
	}
}

func testNioDriver(t *testing.T, s homeservertest.Server) {
	_, token := s.RegisterUser(t, "owner", "owner-password")
	s.RegisterUser(t, "nina", "nina-password")
	var room struct {
		RoomID string `json:"room_id"`
	}
	s.API().Do(t, "POST", "/_matrix/client/v3/createRoom", token, map[string]any{"preset": "public_chat"}, &room)

	c := niotest.Start(t, s.BaseURL())
	c.Login("nina", "nina-password")
	if !strings.HasPrefix(c.UserID, "@nina:") {
		t.Fatalf("logged in as %q", c.UserID)
	}
	c.Join(room.RoomID)

	first := c.SayHTML(room.RoomID, "hello *nio*", "hello <em>nio</em>")
	c.WaitEvent(room.RoomID, "its message", func(e niotest.Event) bool { return e.ID == first })

	edit := c.Edit(room.RoomID, first, "hello again", "")
	m := c.WaitEvent(room.RoomID, "its edit", func(e niotest.Event) bool { return e.ID == edit }).Message()
	if m.Body != " * hello again" || m.NewContent == nil || m.NewContent.Body != "hello again" ||
		m.RelatesTo == nil || m.RelatesTo.RelType != "m.replace" || m.RelatesTo.EventID != first {
		t.Fatalf("the edit: %+v", m)
	}

	reply := c.Reply(room.RoomID, first, "answer", true)
	m = c.WaitEvent(room.RoomID, "its reply", func(e niotest.Event) bool { return e.ID == reply }).Message()
	if m.Body != "> <"+c.UserID+"> hello *nio*\n\nanswer" || !strings.HasPrefix(m.FormattedBody, "<mx-reply><blockquote>") ||
		!strings.HasSuffix(m.FormattedBody, "hello <em>nio</em></blockquote></mx-reply>answer") ||
		m.RelatesTo == nil || m.RelatesTo.InReplyTo == nil || m.RelatesTo.InReplyTo.EventID != first {
		t.Fatalf("the reply: %+v", m)
	}
	// A reply to a reply quotes only the answer, not the quote in it.
	plain := c.Reply(room.RoomID, reply, "plain\nanswer", false)
	m = c.WaitEvent(room.RoomID, "its plain reply", func(e niotest.Event) bool { return e.ID == plain }).Message()
	if m.Body != "> <"+c.UserID+"> answer\n\nplain\nanswer" || m.Format != "" || m.FormattedBody != "" {
		t.Fatalf("the plain reply: %+v", m)
	}

	threaded := c.Thread(room.RoomID, first, "", "in a thread")
	m = c.WaitEvent(room.RoomID, "its thread message", func(e niotest.Event) bool { return e.ID == threaded }).Message()
	if r := m.RelatesTo; r == nil || r.RelType != "m.thread" || r.EventID != first || !r.IsFallingBack || r.InReplyTo == nil || r.InReplyTo.EventID != first {
		t.Fatalf("the thread message: %+v", m)
	}

	reaction := c.React(room.RoomID, first, "👍️")
	c.WaitEvent(room.RoomID, "its reaction", func(e niotest.Event) bool {
		r := e.Message().RelatesTo
		return e.ID == reaction && e.Type == "m.reaction" && r != nil && r.RelType == "m.annotation" && r.Key == "👍️"
	})
	redaction := c.Redact(room.RoomID, reaction, "")
	c.WaitEvent(room.RoomID, "its redaction", func(e niotest.Event) bool {
		return e.ID == redaction && e.Type == "m.room.redaction" && e.RedactedID() == reaction
	})

	data := []byte("some notes\n")
	file, mxc := c.SendFile(room.RoomID, "notes.txt", "text/plain", data)
	m = c.WaitEvent(room.RoomID, "its file", func(e niotest.Event) bool { return e.ID == file }).Message()
	if m.MsgType != "m.file" || m.URL != mxc || m.Body != "notes.txt" || m.Info == nil || m.Info.Size != len(data) {
		t.Fatalf("the file: %+v", m)
	}
	got, via, err := c.Download(mxc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloading the file: %q, %v", got, err)
	}
	t.Logf("downloaded through %s", via)
}
