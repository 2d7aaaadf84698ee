package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/slack/slacktest"
)

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
