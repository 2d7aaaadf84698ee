package main

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"maunium.net/go/mautrix/event"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// slackSettings points the plugin's Slack bridge at a Slack test server.
func slackSettings(srv *slacktest.Server) map[string]any {
	return map[string]any{
		"SlackEnabled": true, "SlackBotToken": srv.BotToken(), "SlackAppToken": srv.AppToken(), "SlackAPIURL": srv.APIURL(),
	}
}

// Issue 11 check 7: one Mattermost channel linked with a Slack channel, a
// Matrix room and an XMPP room relays among all four, through the real
// plugin: what each network says reaches the three others once, under its
// author's name.
func TestSlackMatrixAndXMPPThroughOneChannel(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)

	h, eve, xroom := newMatrixAndXMPPHarnessOn(t, dendrite, testservers.Prosody, "component", slackSettings(slack))
	waitConnected(t, h.n, h.admin, h.ch, "slackbridge", "Slack")
	h.command("/slackbridge map "+sch.ID, "Linked this channel")
	// Status says which workspace and bot the tokens belong to, never the
	// tokens.
	status := h.command("/slackbridge status", "Slack bridge: connected")
	if !strings.Contains(status, slack.Team().Name) || strings.Contains(status, slack.BotToken()) || strings.Contains(status, slack.AppToken()) {
		t.Errorf("/slackbridge status = %q", status)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 60*time.Second)
	defer cancel()
	inSlack := func(what, text string) slacktest.Message {
		t.Helper()
		m, err := slack.WaitMessage(ctx, sch.ID, func(m slacktest.Message) bool { return strings.Contains(m.Text, text) })
		if err != nil {
			t.Fatalf("%s in Slack: %v", what, err)
		}
		return m
	}

	// Slack -> Mattermost, Matrix and XMPP.
	slack.Post(sam.ID, sch.ID, "hello from *slack*")
	h.remotePost("sam's message", func(p *model.Post) bool { return p.Message == "hello from **slack**" })
	h.dave.waitEvent(h.room, "sam's message", func(e *event.Event) bool {
		c, ok := e.Content.Parsed.(*event.MessageEventContent)
		return ok && c.Body == "hello from **slack**" || ok && strings.Contains(c.FormattedBody, "<strong>slack</strong>")
	})
	if _, err := eve.WaitMessage(ctx, func(m xmpptest.Message) bool { return strings.Contains(m.Body, "hello from *slack*") }); err != nil {
		t.Fatalf("sam's message in XMPP: %v", err)
	}

	// XMPP, Matrix and Mattermost -> Slack, each under its author's name.
	if _, err := eve.Say(ctx, xroom, "hello from xmpp"); err != nil {
		t.Fatal(err)
	}
	if m := inSlack("eve's message", "hello from xmpp"); !namedAfter(m, "eve") {
		t.Errorf("eve's message is in Slack under %q", m.Username)
	}
	h.carol.say(h.room, "hello from matrix")
	if m := inSlack("carol's message", "hello from matrix"); !namedAfter(m, "carol") {
		t.Errorf("carol's message is in Slack under %q", m.Username)
	}
	h.post(h.alice, "hello from mattermost", "")
	if m := inSlack("alice's message", "hello from mattermost"); !namedAfter(m, "alice") {
		t.Errorf("alice's message is in Slack under %q", m.Username)
	}

	// Nothing is doubled: each message is once in Slack, and Slack's own
	// message did not come back to it.
	h.s.WaitHooks(5 * time.Second)
	time.Sleep(time.Second)
	for _, text := range []string{"hello from xmpp", "hello from matrix", "hello from mattermost", "hello from"} {
		n := 0
		for _, m := range slack.Messages(sch.ID) {
			if strings.Contains(m.Text, text) {
				n++
			}
		}
		want := 1
		if text == "hello from" {
			want = 4 // sam's own and the three relayed
		}
		if n != want {
			t.Errorf("%q is in the Slack channel %d times, want %d", text, n, want)
		}
	}
}

// namedAfter reports whether a Slack message shows the name of its author.
func namedAfter(m slacktest.Message, name string) bool {
	return strings.Contains(strings.ToLower(m.Username), name)
}

// slackHarness is the plugin with only Slack enabled, on srv, and the
// channel under test; nothing else (no homeserver, no XMPP server) runs.
type slackHarness struct {
	channelHarness
	srv *slacktest.Server
	p   *Plugin
	ctx context.Context
	// newPlugin makes each activation's plugin (a restart makes another).
	newPlugin func() any
}

// newSlackHarness starts the plugin with the Slack bridge pointed at srv
// (plus extra settings) and waits until it is connected.
func newSlackHarness(t *testing.T, srv *slacktest.Server, extra map[string]any) *slackHarness {
	t.Helper()
	return newSlackHarnessWith(t, srv, extra, nil)
}

// newSlackHarnessWith is newSlackHarness with setup run on each plugin
// instance before it is activated (to set test hooks), on a server with
// hostOpts.
func newSlackHarnessWith(t *testing.T, srv *slacktest.Server, extra map[string]any, setup func(*Plugin), hostOpts ...testhost.Option) *slackHarness {
	t.Helper()
	h := &slackHarness{channelHarness: channelHarness{t: t}, srv: srv}
	h.newPlugin = func() any {
		h.p = &Plugin{}
		if setup != nil {
			setup(h.p)
		}
		return h.p
	}
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithTimeout(context.Background(), 5*time.Minute) // a failsafe
	t.Cleanup(cancel)
	settings := slackSettings(srv)
	maps.Copy(settings, extra)
	h.s = testhost.NewServer(t, append([]testhost.Option{testhost.WithPluginID(manifest.Id), testhost.WithPluginSettings(settings)}, hostOpts...)...)
	h.n = h.s.Node(0)
	if err := h.n.ActivateInProcess(testhost.RepoManifest(t), h.newPlugin); err != nil {
		t.Fatal(err)
	}
	h.admin, h.alice, h.bob = createPeople(h.s)
	h.ch = channelOf(h.s, "slack-dev", h.admin, h.alice, h.bob)
	waitConnected(t, h.n, h.admin, h.ch, "slackbridge", "Slack")
	return h
}

// statusSays waits until /slackbridge status in the channel matches pred.
func (h *slackHarness) statusSays(what string, pred func(string) bool) string {
	h.t.Helper()
	return h.statusIn(h.ch, what, pred)
}

// statusIn waits until /slackbridge status in ch matches pred.
func (h *slackHarness) statusIn(ch *model.Channel, what string, pred func(string) bool) string {
	h.t.Helper()
	var text string
	testhost.WaitFor(h.t, wait, func() bool {
		resp, appErr := h.n.ExecuteCommand(h.admin.Id, ch.Id, ch.TeamId, "/slackbridge status")
		if appErr != nil {
			return false
		}
		text = resp.Text
		return pred(text)
	}, "/slackbridge status to say %s", what)
	return text
}

// Issue 11 check 8 (archive), through the plugin: archiving the linked
// Slack channel shows in /slackbridge status and list; what Mattermost
// says meanwhile is not sent to Slack (status counts it as not relayed);
// unarchiving resumes the link.
func TestSlackArchivedChannelShowsInStatus(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)
	h := newSlackHarness(t, slack, nil)
	h.command("/slackbridge map "+sch.ID, "Linked this channel")
	h.statusSays("the channel's name", func(s string) bool { return strings.Contains(s, sch.ID+" — #bridged") })

	slack.Archive(sam.ID, sch.ID)
	h.statusSays("archived", func(s string) bool { return strings.Contains(s, "#bridged, archived in Slack") })
	h.command("/slackbridge list", "archived in Slack")
	h.post(h.alice, "said while archived", "")
	h.statusSays("the post was not relayed", func(s string) bool { return strings.Contains(s, "1 events while the room was archived") })

	slack.Unarchive(sam.ID, sch.ID)
	h.statusSays("no longer archived", func(s string) bool { return !strings.Contains(s, "archived in Slack") })
	h.post(h.alice, "said after the unarchive", "")
	ctx, cancel := context.WithTimeout(h.ctx, wait)
	defer cancel()
	if _, err := slack.WaitMessage(ctx, sch.ID, func(m slacktest.Message) bool { return m.Text == "said after the unarchive" }); err != nil {
		t.Fatalf("after the unarchive: %v", err)
	}
	for _, m := range slack.Messages(sch.ID) {
		if strings.Contains(m.Text, "while archived") {
			t.Errorf("what was said while archived reached Slack: %q", m.Text)
		}
	}
}

// waitChannel waits for the channel named name in a team.
func (h *slackHarness) waitChannel(teamID, name string) *model.Channel {
	h.t.Helper()
	var ch *model.Channel
	testhost.WaitFor(h.t, wait, func() bool {
		ch = h.s.ChannelByName(teamID, name)
		return ch != nil
	}, "channel %s", name)
	return ch
}

// Issue 11 check 8 (automatic portals): with SlackPortalTeam set, inviting
// the bot to an unlinked Slack channel creates a Mattermost channel for it
// in that team (public or private like the Slack one, named after it, with
// a unique name when the name is taken), links it and says so there; the
// Slack channel's messages then arrive in it. A person joining a channel
// is no invitation of the bot, and channels the bot is not in get nothing.
func TestSlackAutomaticPortals(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	kim := slack.AddUser(slacktest.User{Name: "kim", RealName: "Kim Slack"})
	// The bot was in #lounge before (never linked): kim joining it is no
	// invitation.
	lounge := slack.AddChannel(slacktest.Channel{Name: "lounge", Members: []string{sam.ID, slack.BotUserID()}})
	review := slack.AddChannel(slacktest.Channel{Name: "design-review", Members: []string{sam.ID}})
	secret := slack.AddChannel(slacktest.Channel{Name: "secret-plans", Private: true, Members: []string{sam.ID}})
	outside := slack.AddChannel(slacktest.Channel{Name: "outside", Members: []string{sam.ID}})

	const teamName = "test" // the test host's default team
	h := newSlackHarness(t, slack, map[string]any{"SlackPortalTeam": teamName})
	team := h.s.DefaultTeam()
	if team.Name != teamName {
		t.Fatalf("the default team is %q", team.Name)
	}
	// Taken already: the portal gets another name.
	h.s.CreateChannel(team.Id, "design-review")

	slack.Join(kim.ID, lounge.ID)
	slack.Post(sam.ID, outside.ID, "the bot is not here")
	slack.InviteBot(sam.ID, review.ID)
	portal := h.waitChannel(team.Id, "design-review-2")
	if portal.Type != model.ChannelTypeOpen || portal.DisplayName != "design-review" {
		t.Errorf("the portal of a public Slack channel is %+v", portal)
	}
	h.statusIn(portal, "the portal is linked", func(s string) bool {
		return strings.Contains(s, "This channel is linked with") && strings.Contains(s, review.ID)
	})
	waitPost(t, h.s, portal, "the note about the portal", func(p *model.Post) bool {
		return p.UserId != "" && strings.Contains(p.Message, `"design-review"`) && strings.Contains(p.Message, review.ID)
	})
	slack.Post(sam.ID, review.ID, "hello portal")
	waitPost(t, h.s, portal, "sam's message in the portal", func(p *model.Post) bool { return p.Message == "hello portal" })

	slack.InviteBot(sam.ID, secret.ID)
	private := h.waitChannel(team.Id, "secret-plans")
	if private.Type != model.ChannelTypePrivate {
		t.Errorf("the portal of a private Slack channel is of type %q", private.Type)
	}
	h.statusIn(private, "the private portal is linked", func(s string) bool { return strings.Contains(s, secret.ID) })

	// Only those two: not #lounge (kim joined it, the bot was not invited),
	// not #outside (the bot is not in it).
	h.s.WaitHooks(5 * time.Second)
	for _, name := range []string{"lounge", "outside"} {
		if ch := h.s.ChannelByName(team.Id, name); ch != nil {
			t.Errorf("a portal was made for #%s", name)
		}
	}
	if list := h.command("/slackbridge list", "Channels linked with Slack"); strings.Count(list, "\n* ") != 2 {
		t.Errorf("/slackbridge list = %q, want the two portals", list)
	}
}

// Of several calls to open a portal for one room at once (two events, two
// nodes), one creates the channel; the others create nothing, and those
// that came while it was at work say so (bridge.ErrPortalInProgress), for
// the bridge to ask again later. A room linked already gets no portal.
func TestPortalIsOpenedOnce(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	h := newSlackHarness(t, slack, nil)
	portals := h.p.portals()
	req := bridge.PortalRequest{Network: bridge.NetworkSlack, Room: "C0PORTAL01", Name: "racing", Team: h.s.DefaultTeam().Name}
	type result struct {
		channelID string
		created   bool
		err       error
	}
	results := make(chan result, 5)
	for range 5 {
		go func() {
			id, created, err := portals.OpenPortal(h.ctx, req)
			results <- result{id, created, err}
		}()
	}
	created := 0
	for range 5 {
		r := <-results
		if r.err != nil && !errors.Is(r.err, bridge.ErrPortalInProgress) {
			t.Errorf("OpenPortal: %v", r.err)
		}
		if r.created {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d calls created a portal, want 1", created)
	}
	if ch := h.s.ChannelByName(h.s.DefaultTeam().Id, "racing-2"); ch != nil {
		t.Errorf("a second channel was made: %s", ch.Name)
	}
	if _, created, err := portals.OpenPortal(h.ctx, req); created || err != nil {
		t.Errorf("again after it was made: created=%v, %v", created, err)
	}
}

// A SlackPortalTeam that names no team: nothing is created, the log and
// /slackbridge status say why.
func TestSlackPortalTeamNotFound(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam"})
	review := slack.AddChannel(slacktest.Channel{Name: "design-review", Members: []string{sam.ID}})
	h := newSlackHarness(t, slack, map[string]any{"SlackPortalTeam": "no-such-team"})
	slack.InviteBot(sam.ID, review.ID)
	h.statusSays("the portal failed", func(s string) bool {
		return strings.Contains(s, "automatic portal") && strings.Contains(s, review.ID) && strings.Contains(s, `no team named "no-such-team"`)
	})
	if ch := h.s.ChannelByName(h.s.DefaultTeam().Id, "design-review"); ch != nil {
		t.Errorf("a channel was made: %+v", ch)
	}
}

// A Mattermost author's picture reaches Slack as the message's icon_url:
// a URL under the plugin that Slack can fetch without a Mattermost session,
// that names one user's picture only (a changed ID or signature is
// refused), and that changes when the picture does, so Slack's cache never
// shows an old one.
func TestSlackShowsMattermostAuthorsPicture(t *testing.T) {
	slack := slacktest.Start(t, slacktest.Options{})
	sam := slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	sch := slack.AddChannel(slacktest.Channel{Name: "bridged", Members: []string{sam.ID}})
	slack.InviteBot(sam.ID, sch.ID)
	h := newSlackHarness(t, slack, nil)
	web, err := h.s.ListenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.UpdateConfig(func(c *model.Config) { c.ServiceSettings.SiteURL = model.NewPointer(web.URL()) }); err != nil {
		t.Fatal(err)
	}
	h.command("/slackbridge map "+sch.ID, "Linked this channel")

	picture := func(c color.RGBA) []byte {
		img := image.NewRGBA(image.Rect(0, 0, 16, 16))
		for x := range 16 {
			for y := range 16 {
				img.Set(x, y, c)
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	fetch := func(u string) (int, string, []byte) {
		t.Helper()
		resp, err := http.Get(u) //nolint:gosec,noctx // the test's own listener
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), body
	}
	posted := func(text string) slacktest.Message {
		t.Helper()
		h.post(h.alice, text, "")
		ctx, cancel := context.WithTimeout(h.ctx, wait)
		defer cancel()
		m, err := slack.WaitMessage(ctx, sch.ID, func(m slacktest.Message) bool { return m.Text == text })
		if err != nil {
			t.Fatalf("%q in Slack: %v", text, err)
		}
		return m
	}

	red := picture(color.RGBA{R: 255, A: 255})
	if appErr := h.n.API(manifest.Id).SetProfileImage(h.alice.Id, red); appErr != nil {
		t.Fatal(appErr)
	}
	first := posted("with a red picture")
	if !strings.HasPrefix(first.IconURL, web.PluginURL()+"/") {
		t.Fatalf("icon_url = %q, want a URL under %s", first.IconURL, web.PluginURL())
	}
	if code, ctype, body := fetch(first.IconURL); code != http.StatusOK || ctype != "image/png" || !bytes.Equal(body, red) {
		t.Fatalf("GET icon_url: %d %q, %d bytes; want 200 image/png and alice's picture", code, ctype, len(body))
	}

	// Anyone can fetch the URL, so it must open one picture only.
	forged := []string{
		strings.Replace(first.IconURL, h.alice.Id, h.bob.Id, 1),
		first.IconURL[:len(first.IconURL)-4] + "AAAA",
		first.IconURL + "x",
		web.PluginURL() + "/public/avatar/" + h.bob.Id,
	}
	for _, u := range forged {
		if code, _, body := fetch(u); code != http.StatusNotFound || bytes.Equal(body, red) {
			t.Errorf("GET %s = %d, want 404", u, code)
		}
	}

	blue := picture(color.RGBA{B: 255, A: 255})
	if appErr := h.n.API(manifest.Id).SetProfileImage(h.alice.Id, blue); appErr != nil {
		t.Fatal(appErr)
	}
	second := posted("with a blue picture")
	if second.IconURL == first.IconURL {
		t.Fatalf("the icon_url stayed %q after the picture changed", first.IconURL)
	}
	if code, _, body := fetch(second.IconURL); code != http.StatusOK || !bytes.Equal(body, blue) {
		t.Fatalf("GET the new icon_url: %d, want 200 and the new picture", code)
	}
}
