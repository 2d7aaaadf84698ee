package xmpp

import (
	"context"
	"encoding/xml"
	"errors"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/retract"
)

// moderate retracts someone else's message from a room as a moderator
// (XEP-0425): the current form first, then the older <apply-to/> form that
// Prosody 0.12's mod_muc_moderation speaks. A room that refuses, or knows
// neither, ends the delivery as a no_rights drop: retrying cannot help
// until an owner makes the bridge a moderator.
func (b *Bridge) moderate(ctx context.Context, s *xmpp.Session, roomJID jid.JID, stanzaID string) error {
	var err error
	for _, payload := range []xml.TokenReader{
		retract.Moderate{ID: stanzaID}.TokenReader(),
		legacyModerate(stanzaID),
	} {
		err = s.UnmarshalIQElement(ctx, payload, b.iqTo(s, stanza.SetIQ, roomJID), nil)
		var se stanza.Error
		if err == nil || !errors.As(err, &se) || !unsupported(se) {
			break
		}
	}
	var se stanza.Error
	if errors.As(err, &se) {
		return bridge.Dropf(bridge.ReasonNoRights, "%s refused to let the bridge moderate message %s (%s): make the bridge's account a room admin or moderator", roomJID, stanzaID, se.Condition)
	}
	return err
}

// unsupported reports whether a room's error means it does not know the
// request's form (so the other form may work), rather than a refusal.
func unsupported(e stanza.Error) bool {
	switch e.Condition {
	case stanza.FeatureNotImplemented, stanza.ServiceUnavailable, stanza.BadRequest:
		return true
	}
	return false
}

// legacyModerate is XEP-0425 v0.2's request: <apply-to/> (XEP-0422) with
// <moderate><retract/></moderate> in the :0 namespaces.
func legacyModerate(stanzaID string) xml.TokenReader {
	retractEl := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: retract.NSLegacy, Local: "retract"}})
	moderateEl := xmlstream.Wrap(retractEl, xml.StartElement{Name: xml.Name{Space: retract.NSModerateLegacy, Local: "moderate"}})
	return xmlstream.Wrap(moderateEl, xml.StartElement{
		Name: xml.Name{Space: retract.NSFasten, Local: "apply-to"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: stanzaID}},
	})
}
