package xmpp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/testservers"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/xmpptest"
)

// Issue 10: five Mattermost users post for the first time under a limit of
// one registration per address per 600 s: ejabberd's default
// (registration_timeout, refused with resource-constraint), and Prosody's
// min_seconds_between_registrations (off by default, turned on here;
// refused with policy-violation). The first gets an account; the others
// speak through the bridge account instead of holding the room up: every
// message arrives, in order, and status says why. Deliveries run one after
// the other, as the channel's ordered queue runs them. The delay of each
// is logged, not asserted.
func TestFirstPostersUnderTheRegistrationLimit(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			testFirstPostersUnderTheRegistrationLimit(t, kind)
		})
	}
}

func testFirstPostersUnderTheRegistrationLimit(t *testing.T, kind testservers.Kind) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, room, carol := serverWithCarol(ctx, t, kind, testservers.Options{ThrottleRegistration: true})
	b, _ := clientBridge(ctx, t, srv, room, &memGhosts{})

	var people []bridge.Sender
	for i := 1; i <= 5; i++ {
		people = append(people, bridge.Sender{Network: bridge.NetworkMattermost, ID: fmt.Sprintf("user-%d", i), Username: fmt.Sprintf("user%d", i), DisplayName: fmt.Sprintf("User %d", i)})
	}
	var want []string
	for _, who := range people {
		text := "first post of " + who.Username
		want = append(want, text)
		began := time.Now()
		if _, err := say(ctx, b, room, who, text); err != nil {
			t.Fatalf("%s's first post: %v", who.Username, err)
		}
		t.Logf("%s's first post was delivered in %v", who.Username, time.Since(began).Round(time.Millisecond))
	}
	var got []string
	for _, text := range want {
		m := waitRoom(ctx, t, carol, text, func(m xmpptest.Message) bool { return strings.HasSuffix(m.Body, text) })
		got = append(got, m.From.Resourcepart()+": "+m.Body)
	}
	t.Logf("the room got:\n%s", strings.Join(got, "\n"))
	if got[0] != "User 1: first post of user1" {
		t.Errorf("the first poster did not get an account: %q", got[0])
	}
	for i, line := range got[1:] {
		if w := fmt.Sprintf("Mattermost: <User %d> first post of user%d", i+2, i+2); line != w {
			t.Errorf("got %q, want %q", line, w)
		}
	}
	var order []string
	for _, m := range carol.Messages() {
		if _, text, ok := strings.Cut(m.Body, "first post of"); ok && m.Type == "groupchat" {
			order = append(order, "first post of"+text)
		}
	}
	if strings.Join(order, "|") != strings.Join(want, "|") {
		t.Errorf("out of order or doubled: %q", order)
	}
	refusal := map[string]string{"ejabberd": "resource-constraint", "prosody": "policy-violation"}[kind.Name]
	if d := b.Health().Detail; !strings.Contains(d, "refused to register an account ("+refusal) || !strings.Contains(d, "bridge account") {
		t.Errorf("status does not explain: %q", d)
	}

	// The first poster keeps their account while registration is paused.
	if _, err := say(ctx, b, room, people[0], "user1 again"); err != nil {
		t.Fatal(err)
	}
	if m := waitRoom(ctx, t, carol, "user1 again", func(m xmpptest.Message) bool { return strings.HasSuffix(m.Body, "user1 again") }); m.From.Resourcepart() != "User 1" {
		t.Errorf("user1's second post came from %s", m.From)
	}
}

// A ghost whose account the server no longer has (an admin deleted it;
// ejabberd loses registrations made just before it is killed) registers
// again on its next message, and speaks as itself, not through the bridge
// account.
func TestGhostWhoseAccountIsGoneRegistersAgain(t *testing.T) {
	for _, kind := range testservers.All {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// alice registers twice from one address: ejabberd's limit would
			// refuse the second (TestFirstPostersUnderTheRegistrationLimit
			// checks that limit).
			srv, room, carol := serverWithCarol(ctx, t, kind, testservers.Options{UnlimitedRegistration: true})
			ghosts := &memGhosts{}
			b, _ := clientBridge(ctx, t, srv, room, ghosts)
			for i, text := range []string{"alice before", "alice after"} {
				if i == 1 {
					g, err := ghosts.GetGhost(bridge.NetworkXMPP, alice.ID)
					if err != nil {
						t.Fatal(err)
					}
					srv.DeleteUser(t, strings.Split(g.RemoteID, "@")[0])
					b.closeIdleGhosts(0)
				}
				if _, err := say(ctx, b, room, alice, text); err != nil {
					t.Fatalf("%s: %v", text, err)
				}
				m := waitRoom(ctx, t, carol, text, func(m xmpptest.Message) bool { return strings.HasSuffix(m.Body, text) })
				if m.From.Resourcepart() != alice.DisplayName || m.Body != text {
					t.Fatalf("%q reached the room as %q from %s", text, m.Body, m.From)
				}
			}
		})
	}
}
