package matrix

import (
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func TestReplyFallbacksAreRemovedInEveryForm(t *testing.T) {
	reply := &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: id.EventID("$root")}}
	for _, c := range []struct {
		name            string
		content         event.MessageEventContent
		wantBody, wantH string
	}{
		{"HTML and body", event.MessageEventContent{Body: "> <@a:x> hi\n\nanswer", Format: event.FormatHTML,
			FormattedBody: "<mx-reply><blockquote>hi</blockquote></mx-reply>answer", RelatesTo: reply}, "answer", "answer"},
		{"plain text only", event.MessageEventContent{Body: "> <@a:x> hi\n> there\n\nanswer", RelatesTo: reply}, "answer", ""},
		{"emote quoted", event.MessageEventContent{Body: "> * <@a:x> waves\n\nhello", RelatesTo: reply}, "hello", ""},
		{"blank quoted line", event.MessageEventContent{Body: "> <@a:x> one\n>\n> two\n\nanswer", RelatesTo: reply}, "answer", ""},
		{"HTML without mx-reply, body with the quote", event.MessageEventContent{Body: "> <@a:x> hi\n\n**answer**", Format: event.FormatHTML,
			FormattedBody: "<strong>answer</strong>", RelatesTo: reply}, "**answer**", "<strong>answer</strong>"},
		{"no fallback (Matrix 1.13)", event.MessageEventContent{Body: "> a quote of my own\n\nanswer", RelatesTo: reply}, "> a quote of my own\n\nanswer", ""},
		{"only a quote", event.MessageEventContent{Body: "> <@a:x> hi", RelatesTo: reply}, "> <@a:x> hi", ""},
		{"not a reply", event.MessageEventContent{Body: "> <@a:x> hi\n\nI quote"}, "> <@a:x> hi\n\nI quote", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			content := c.content
			removeReplyFallback(&content)
			if content.Body != c.wantBody || content.FormattedBody != c.wantH {
				t.Fatalf("body %q, HTML %q; want %q, %q", content.Body, content.FormattedBody, c.wantBody, c.wantH)
			}
		})
	}
}
