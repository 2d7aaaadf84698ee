package main

import (
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// Issue 8 item 3: nobody outside notifies a whole channel. Every post and
// edit by a remote person carries the server's highlight-disabled prop, and
// channel-wide mentions in the text are inert by the server's own rules.
func TestRemotePostsNeverNotifyTheWholeChannel(t *testing.T) {
	h := newHarness(t)
	disabled := func(p *model.Post) bool { return p.GetProp(model.PostPropsMentionHighlightDisabled) == true }

	id, err := h.net.Say(h.ctx, "lobby", carol, "plain words", "")
	h.must(err)
	plain := h.channelPost("carol's plain post", func(p *model.Post) bool { return p.Message == "plain words" })
	if !disabled(plain) {
		t.Errorf("a remote post without mentions has props %v; want %s", plain.GetProps(), model.PostPropsMentionHighlightDisabled)
	}

	// The forms the server's parser trims down to a channel-wide mention.
	loud := "_@channel_ @here__ (@all) **@channel** @channel. @ALL @here: x-@all-hands, and @alice"
	_, err = h.net.Say(h.ctx, "lobby", carol, loud, "")
	h.must(err)
	p := h.channelPost("carol's loud post", func(p *model.Post) bool { return strings.Contains(p.Message, "and @alice") })
	if strings.ReplaceAll(p.Message, "\u2060", "") != loud {
		t.Errorf("the loud post reads %q", p.Message)
	}
	for _, word := range []string{"@channel", "@here", "@all", "@ALL"} {
		if strings.Contains(p.Message, word) {
			t.Errorf("%s is still in %q", word, p.Message)
		}
	}
	if !disabled(p) {
		t.Errorf("the loud post has props %v", p.GetProps())
	}

	// An edit keeps the prop and is defanged the same way.
	h.must(h.net.Edit(h.ctx, "lobby", carol, id, "now @here."))
	testhost.WaitFor(t, wait, func() bool {
		e := h.s.Post(plain.Id)
		return e.Message == "now @\u2060here." && disabled(e)
	}, "the edit, defanged and with the prop")
}
