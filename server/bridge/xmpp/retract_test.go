package xmpp

import (
	"context"
	"testing"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Issue 10: XEP-0424 up to 0.3 (urn:xmpp:message-retract:0) names the
// retracted message by its origin-id, as slixmpp 1.8 and other clients
// still send; it resolves to the room's stanza-id like a correction does.
// The current form names the stanza-id itself.
func TestRetractionsByOriginIDResolve(t *testing.T) {
	ctx := context.Background()
	b, _, rec := newInProcessBridge(t)
	const from = `from="dev@conference.example.com/Carol" type="groupchat"`
	const carolOcc = `<occupant-id xmlns="urn:xmpp:occupant-id:0" id="carol-occ"/>`
	for _, raw := range []string{
		`<message ` + from + ` id="o1"><body>one</body><origin-id xmlns="urn:xmpp:sid:0" id="o1"/><stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="dev@conference.example.com"/>` + carolOcc + `</message>`,
		`<message ` + from + ` id="o2"><body>two</body><origin-id xmlns="urn:xmpp:sid:0" id="o2"/><stanza-id xmlns="urn:xmpp:sid:0" id="s2" by="dev@conference.example.com"/>` + carolOcc + `</message>`,
		// The old form, by origin-id.
		`<message ` + from + ` id="r1"><apply-to xmlns="urn:xmpp:fasten:0" id="o1"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to><fallback xmlns="urn:xmpp:fallback:0"/><body>/me retracted a previous message</body><stanza-id xmlns="urn:xmpp:sid:0" id="s3" by="dev@conference.example.com"/>` + carolOcc + `</message>`,
		// The current form, by stanza-id.
		`<message ` + from + ` id="r2"><retract xmlns="urn:xmpp:message-retract:1" id="s2"/><body>retracted</body><stanza-id xmlns="urn:xmpp:sid:0" id="s4" by="dev@conference.example.com"/>` + carolOcc + `</message>`,
	} {
		b.handleMessage(ctx, []byte(raw))
	}
	var targets []string
	for _, ev := range rec.take() {
		if ev.Kind == bridge.KindDelete {
			targets = append(targets, ev.Target)
		}
	}
	if len(targets) != 2 || targets[0] != "s1" || targets[1] != "s2" {
		t.Fatalf("retraction targets %q, want [s1 s2]", targets)
	}
}
