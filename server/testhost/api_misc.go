package testhost

import (
	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// PublishPluginClusterEvent delivers OnPluginClusterEvent to the same
// plugin on the other nodes (or on opts.TargetId only), asynchronously and
// in order per receiving node, like the server's cluster service. With a
// single node nothing is delivered, as on a server without a cluster.
func (a *API) PublishPluginClusterEvent(ev model.PluginClusterEvent, opts model.PluginClusterEventSendOptions) error {
	return a.n.publishClusterEvent(a.pluginID, ev, opts)
}

// PublishWebSocketEvent records the event (see Server.WebSocketEvents),
// named "custom_<pluginID>_<event>" as the server names it.
func (a *API) PublishWebSocketEvent(event string, payload map[string]any, broadcast *model.WebsocketBroadcast) {
	var b *model.WebsocketBroadcast
	if broadcast != nil {
		c := *broadcast
		b = &c
	}
	var p map[string]any
	if payload != nil {
		p = copyValue(payload).(map[string]any)
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.s.st.wsEvents = append(a.s.st.wsEvents, WebSocketEvent{
		Node: a.n.id, PluginID: a.pluginID, Event: "custom_" + a.pluginID + "_" + event, Payload: p, Broadcast: b,
	})
}

// OpenInteractiveDialog records the dialog (see Server.Dialogs).
func (a *API) OpenInteractiveDialog(dialog model.OpenDialogRequest) *model.AppError {
	if dialog.URL == "" {
		return badRequest("OpenInteractiveDialog", "app.integration_action.open_dialog.url.app_error", "the dialog URL is empty")
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.s.st.dialogs = append(a.s.st.dialogs, dialog)
	return nil
}

// PublishUserTyping accepts the event and does nothing with it.
func (a *API) PublishUserTyping(userID, channelID, parentID string) *model.AppError { return nil }

// LogAuditRec writes the audit record to the node's log.
func (a *API) LogAuditRec(rec *model.AuditRecord) { a.LogAuditRecWithLevel(rec, mlog.LvlAuditAPI) }

// LogAuditRecWithLevel writes the audit record to the node's log.
func (a *API) LogAuditRecWithLevel(rec *model.AuditRecord, level mlog.Level) {
	if rec == nil {
		return
	}
	a.n.logger.Info("audit record",
		mlog.String("plugin_id", a.pluginID), mlog.String("level", level.Name),
		mlog.String("event", rec.EventName), mlog.String("status", rec.Status))
}

// GetEmojiByName finds no custom emoji: the host has none.
func (a *API) GetEmojiByName(name string) (*model.Emoji, *model.AppError) {
	return nil, notFound("GetEmojiByName", "app.emoji.get_by_name.no_result", "name="+name+" (the test host has no custom emojis)")
}

// GetEmoji finds no custom emoji: the host has none.
func (a *API) GetEmoji(emojiID string) (*model.Emoji, *model.AppError) {
	return nil, notFound("GetEmoji", "app.emoji.get.no_result", "id="+emojiID+" (the test host has no custom emojis)")
}

// GetEmojiList returns no custom emojis: the host has none.
func (a *API) GetEmojiList(sortBy string, pageNum, perPage int) ([]*model.Emoji, *model.AppError) {
	return []*model.Emoji{}, nil
}
