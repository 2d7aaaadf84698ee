package mattermost

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func TestDisplayNameShowsTheNetworkWithinTheLimits(t *testing.T) {
	for _, tc := range []struct {
		sender bridge.Sender
		want   string
	}{
		{bridge.Sender{Network: bridge.NetworkXMPP, DisplayName: "Alice Smith"}, "Alice Smith (XMPP)"},
		{bridge.Sender{Network: bridge.NetworkMatrix, Username: "alice"}, "alice (Matrix)"},
		{bridge.Sender{Network: bridge.NetworkSlack, DisplayName: "  ", Username: "al"}, "al (Slack)"},
		// Bidi overrides and line breaks could move the network out of sight.
		{bridge.Sender{Network: bridge.NetworkXMPP, DisplayName: "Alice\u202e Smith\n"}, "Alice Smith (XMPP)"},
		{bridge.Sender{Network: bridge.NetworkXMPP, DisplayName: strings.Repeat("é", 100)}, strings.Repeat("é", 57) + " (XMPP)"},
		{bridge.Sender{Network: bridge.NetworkMatrix}, ""},
	} {
		got := displayName(tc.sender)
		if got != tc.want {
			t.Errorf("displayName(%+v) = %q, want %q", tc.sender, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > model.UserNicknameMaxRunes || n > model.UserFirstNameMaxRunes {
			t.Errorf("displayName(%+v) has %d characters", tc.sender, n)
		}
	}
}
