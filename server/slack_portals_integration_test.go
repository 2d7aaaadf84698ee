package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

// portalHarness is a plugin with automatic portals into the default team,
// a Slack person and an unlinked Slack channel the bot is not in yet.
type portalHarness struct {
	*slackHarness
	sam    slacktest.User
	review slacktest.Channel
	team   *model.Team
}

func newPortalHarness(t *testing.T, step func(ctx context.Context, step string) error) *portalHarness {
	t.Helper()
	slack := startSlackForOutages(t)
	h := &portalHarness{}
	h.sam = slack.AddUser(slacktest.User{Name: "sam", RealName: "Sam Slack"})
	h.review = slack.AddChannel(slacktest.Channel{Name: "design-review", Members: []string{h.sam.ID}})
	h.slackHarness = newSlackHarnessWith(t, slack, map[string]any{"SlackPortalTeam": "test"}, func(p *Plugin) { p.portalStep = step })
	h.team = h.s.DefaultTeam()
	return h
}

// expectOnePortal checks that the Slack channel ended with exactly one
// Mattermost channel, linked with it and noted once, with what sam said
// in it once each and in order; no other channel was made for it.
func (h *portalHarness) expectOnePortal(said ...string) {
	h.t.Helper()
	portal := h.waitChannel(h.team.Id, "design-review")
	h.statusIn(portal, "the portal is linked", func(s string) bool {
		return strings.Contains(s, "This channel is linked with") && strings.Contains(s, h.review.ID)
	})
	last := said[len(said)-1]
	waitPost(h.t, h.s, portal, last, func(p *model.Post) bool { return p.Message == last })
	h.s.WaitHooks(wait)
	if got := remotePosts(h.s, portal); strings.Join(got, "|") != strings.Join(said, "|") {
		h.t.Errorf("the portal has %q, want %q", got, said)
	}
	notes := 0
	for _, p := range h.s.ChannelPosts(portal.Id) {
		if strings.HasPrefix(p.Message, "This channel was created for the") {
			notes++
		}
	}
	if notes != 1 {
		h.t.Errorf("the note about the portal is there %d times", notes)
	}
	for _, name := range []string{"design-review-2", "design-review-3"} {
		if ch := h.s.ChannelByName(h.team.Id, name); ch != nil {
			h.t.Errorf("another channel was made for the Slack channel: ~%s", name)
		}
	}
	if list := h.command("/slackbridge list", "Channels linked with Slack"); strings.Count(list, "\n* ") != 1 {
		h.t.Errorf("/slackbridge list = %q, want the portal alone", list)
	}
}

// Opening a portal that failed half-way (after the channel was created,
// before it was linked) is not forgotten: the next event in the Slack
// channel tries again, which finishes with the channel made the first
// time, not a second one beside an orphan. What was said since the
// invitation reaches the portal.
func TestSlackPortalIsResumedAfterAFailedStep(t *testing.T) {
	for _, step := range []string{portalStepCreated, portalStepLinking} {
		t.Run(step, func(t *testing.T) {
			var calls atomic.Int32
			h := newPortalHarness(t, func(_ context.Context, s string) error {
				if s == step && calls.Add(1) == 1 {
					return errors.New("stopped on purpose at " + s)
				}
				return nil
			})
			h.srv.InviteBot(h.sam.ID, h.review.ID)
			h.statusSays("the first attempt failed", func(s string) bool {
				return strings.Contains(s, "automatic portal") && strings.Contains(s, "stopped on purpose")
			})
			h.srv.Post(h.sam.ID, h.review.ID, "said after the failure")
			h.expectOnePortal("said after the failure")
			h.statusSays("the failure no longer shown", func(s string) bool { return !strings.Contains(s, "stopped on purpose") })
		})
	}
}

// A restart between creating the portal's channel and linking it: the
// next instance finishes the portal when it connects, with the channel
// made before, and what was said meanwhile reaches it.
func TestSlackPortalIsResumedAfterARestartMidway(t *testing.T) {
	reached := make(chan struct{})
	var blocked atomic.Bool
	h := newPortalHarness(t, func(ctx context.Context, s string) error {
		if s == portalStepLinking && blocked.CompareAndSwap(false, true) {
			// Held here until the restart stops the bridge.
			close(reached)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	h.srv.InviteBot(h.sam.ID, h.review.ID)
	select {
	case <-reached:
	case <-h.ctx.Done():
		t.Fatal("the portal never reached the linking step")
	}
	h.srv.Post(h.sam.ID, h.review.ID, "said during the restart")
	if err := h.n.Restart(); err != nil {
		t.Fatal(err)
	}
	h.expectOnePortal("said during the restart")
}

// Called again after a call that stopped half-way, OpenPortal finishes
// with the channel that call created: no second channel, no orphan.
func TestOpenPortalTakesUpWhereItStopped(t *testing.T) {
	for _, step := range []string{portalStepCreated, portalStepLinking} {
		t.Run(step, func(t *testing.T) {
			var calls atomic.Int32
			h := newSlackHarnessWith(t, slacktest.Start(t, slacktest.Options{}), nil, func(p *Plugin) {
				p.portalStep = func(_ context.Context, s string) error {
					if s == step && calls.Add(1) == 1 {
						return errors.New("stopped on purpose at " + s)
					}
					return nil
				}
			})
			team := h.s.DefaultTeam()
			portals := h.p.portals()
			req := bridge.PortalRequest{Network: bridge.NetworkSlack, Room: "C0PORTAL01", Name: "resumed", Team: team.Name}
			if _, _, err := portals.OpenPortal(h.ctx, req); err == nil || !strings.Contains(err.Error(), "on purpose") {
				t.Fatalf("the first call: %v", err)
			}
			made := h.s.ChannelByName(team.Id, "resumed")
			if made == nil {
				t.Fatal("the first call made no channel")
			}
			id, created, err := portals.OpenPortal(h.ctx, req)
			if err != nil || !created || id != made.Id {
				t.Fatalf("the second call: %q, created %v, %v; want %q, created", id, created, err, made.Id)
			}
			if ch := h.s.ChannelByName(team.Id, "resumed-2"); ch != nil {
				t.Errorf("a second channel was made: %s", ch.Name)
			}
			if id, created, err := portals.OpenPortal(h.ctx, req); id != made.Id || created || err != nil {
				t.Errorf("once done: %q, created %v, %v", id, created, err)
			}
		})
	}
}
