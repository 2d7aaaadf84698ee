package fallback_test

import (
	"errors"
	"slices"
	"testing"

	"mellium.im/xmlstream"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/fallback"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/internal/xmltest"
)

var (
	_ xmlstream.Marshaler = fallback.Fallback{}
	_ xmlstream.WriterTo  = fallback.Fallback{}
)

const nsReply = "urn:xmpp:reply:0"

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		f    fallback.Fallback
		want string
	}{
		{"whole", fallback.Fallback{For: "urn:x"}, `<fallback xmlns="urn:xmpp:fallback:0" for="urn:x"></fallback>`},
		{
			"ranges",
			fallback.Fallback{For: nsReply, Body: []fallback.Range{{0, 33}}, Subject: []fallback.Range{fallback.Whole}},
			`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0">` +
				`<body xmlns="urn:xmpp:fallback:0" start="0" end="33"></body>` +
				`<subject xmlns="urn:xmpp:fallback:0"></subject></fallback>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := xmltest.Marshal(t, tt.f); got != tt.want {
				t.Errorf("marshal:\n got %s\nwant %s", got, tt.want)
			}
			fbs, found, err := fallback.From(xmltest.Reader("<message>" + tt.want + "</message>"))
			if err != nil || !found || len(fbs) != 1 || fbs[0].For != tt.f.For ||
				!slices.Equal(fbs[0].Body, tt.f.Body) || !slices.Equal(fbs[0].Subject, tt.f.Subject) {
				t.Errorf("From: %+v, %v, %v", fbs, found, err)
			}
		})
	}
}

func TestFromErrors(t *testing.T) {
	for name, in := range map[string]string{
		"not a number":    `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="a" end="3"/></fallback>`,
		"negative":        `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="-1" end="3"/></fallback>`,
		"only start":      `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="1"/></fallback>`,
		"backwards":       `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="5" end="3"/></fallback>`,
		"huge":            `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="0" end="99999999999"/></fallback>`,
		"hex":             `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="0x1" end="3"/></fallback>`,
		"plus sign":       `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="+1" end="3"/></fallback>`,
		"not well formed": `<fallback xmlns="urn:xmpp:fallback:0" for="x"><body start="0" end="3"></fallback>`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := fallback.From(xmltest.Reader("<message>" + in + "</message>")); !errors.Is(err, xmppext.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestStrip(t *testing.T) {
	reply := func(rs ...fallback.Range) []fallback.Fallback {
		return []fallback.Fallback{{For: nsReply, Body: rs}}
	}
	tests := []struct {
		name, body string
		fbs        []fallback.Fallback
		want       string
	}{
		{"no fallbacks", "text", nil, "text"},
		{"other extension", "> q\ntext", []fallback.Fallback{{For: "urn:other", Body: []fallback.Range{{0, 4}}}}, "> q\ntext"},
		{"prefix", "> q\ntext", reply(fallback.Range{Start: 0, End: 4}), "text"},
		{"code points not bytes", "> żółw 🐢\nok", reply(fallback.Range{Start: 0, End: 9}), "ok"},
		{"middle", "abcdef", reply(fallback.Range{Start: 2, End: 4}), "abef"},
		{"two ranges unordered", "abcdef", reply(fallback.Range{Start: 4, End: 5}, fallback.Range{Start: 0, End: 1}), "bcdf"},
		{"overlapping", "abcdef", reply(fallback.Range{Start: 1, End: 4}, fallback.Range{Start: 2, End: 5}), "af"},
		{"nested", "abcdef", reply(fallback.Range{Start: 0, End: 5}, fallback.Range{Start: 1, End: 2}), "f"},
		{"whole by range", "abc", reply(fallback.Whole), ""},
		{"whole by no ranges", "abc", []fallback.Fallback{{For: nsReply}}, ""},
		{"only subject ranges", "abc", []fallback.Fallback{{For: nsReply, Subject: []fallback.Range{fallback.Whole}}}, "abc"},
		{"past the end ignored", "abc", reply(fallback.Range{Start: 1, End: 10}), "abc"},
		{"empty range", "abc", reply(fallback.Range{Start: 1, End: 1}), "abc"},
		{"backwards ignored", "abc", reply(fallback.Range{Start: 2, End: 1}), "abc"},
		{"invalid utf-8 counts bytes", "a\xffbc", reply(fallback.Range{Start: 1, End: 2}), "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fallback.Strip(tt.body, nsReply, tt.fbs); got != tt.want {
				t.Errorf("Strip(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
	subj := []fallback.Fallback{{For: nsReply, Subject: []fallback.Range{{Start: 0, End: 2}}}}
	if got := fallback.StripSubject("RE: x", nsReply, subj); got != ": x" {
		t.Errorf("StripSubject = %q", got)
	}
}

func FuzzStrip(f *testing.F) {
	f.Add("> q\ntext", 0, 4, 1, 2)
	f.Add("żółw", 1, 3, 3, 1)
	f.Fuzz(func(t *testing.T, body string, s1, e1, s2, e2 int) {
		fbs := []fallback.Fallback{{For: nsReply, Body: []fallback.Range{{Start: s1, End: e1}, {Start: s2, End: e2}}}}
		if got := fallback.Strip(body, nsReply, fbs); len(got) > len(body) {
			t.Fatalf("Strip grew %q to %q", body, got)
		}
	})
}
