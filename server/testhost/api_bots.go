package testhost

import (
	"errors"
	"fmt"
	"sort"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// createBot follows app.CreateBot: IsValidCreate, the bot user is saved
// (unique username), then the bot. The server's "please add me to a team"
// DM to a human owner is not posted.
func (s *Server) createBot(in *model.Bot) (*model.Bot, *model.AppError) {
	b := in.Clone()
	if err := b.IsValidCreate(); err != nil {
		return nil, err
	}
	u, err := s.createUser(model.UserFromBot(b), true)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b.UserId = u.Id
	b.PreSave()
	b.CreateAt = u.CreateAt
	b.UpdateAt = u.CreateAt
	if err := b.IsValid(); err != nil {
		s.deleteUserLocked(u.Id)
		return nil, err
	}
	s.st.bots[b.UserId] = b
	return b.Clone(), nil
}

func (s *Server) deleteUserLocked(id string) {
	if u := s.st.users[id]; u != nil {
		delete(s.st.usernames, u.Username)
		delete(s.st.emails, u.Email)
		delete(s.st.users, id)
		delete(s.st.passwords, id)
	}
}

// CreateBot creates a bot and its user, owned by the plugin unless OwnerId
// is set (a bot cannot own a bot).
func (a *API) CreateBot(bot *model.Bot) (*model.Bot, *model.AppError) {
	if bot == nil {
		return nil, badRequest("CreateBot", "api.context.invalid_body_param.app_error", "bot is nil")
	}
	b := bot.Clone()
	if b.OwnerId == "" {
		b.OwnerId = a.pluginID
	}
	a.s.mu.RLock()
	ownerIsBot := a.s.st.bots[b.OwnerId] != nil
	a.s.mu.RUnlock()
	if ownerIsBot {
		return nil, badRequest("CreateBot", "plugin_api.bot_cant_create_bot", "")
	}
	return a.s.createBot(b)
}

// GetBot returns a bot.
func (a *API) GetBot(botUserID string, includeDeleted bool) (*model.Bot, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if b := a.s.st.bots[botUserID]; b != nil && (includeDeleted || b.DeleteAt == 0) {
		return b.Clone(), nil
	}
	return nil, model.MakeBotNotFoundError("SqlBotStore.Get", botUserID)
}

// GetBots lists bots by username, filtered by OwnerId, IncludeDeleted and
// OnlyOrphaned (owner gone or deactivated), one page at a time.
func (a *API) GetBots(options *model.BotGetOptions) ([]*model.Bot, *model.AppError) {
	if options == nil {
		return nil, badRequest("GetBots", "api.context.invalid_body_param.app_error", "options is nil")
	}
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var out []*model.Bot
	for _, b := range a.s.st.bots {
		if options.OwnerId != "" && b.OwnerId != options.OwnerId {
			continue
		}
		if !options.IncludeDeleted && b.DeleteAt != 0 {
			continue
		}
		if options.OnlyOrphaned {
			if owner := a.s.st.users[b.OwnerId]; owner != nil && owner.DeleteAt == 0 {
				continue
			}
		}
		out = append(out, b.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return page(out, options.Page, options.PerPage), nil
}

// PatchBot patches a bot and its user.
func (a *API) PatchBot(botUserID string, botPatch *model.BotPatch) (*model.Bot, *model.AppError) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	return a.s.patchBotLocked(botUserID, botPatch)
}

func (s *Server) patchBotLocked(botUserID string, patch *model.BotPatch) (*model.Bot, *model.AppError) {
	b := s.st.bots[botUserID]
	if b == nil {
		return nil, model.MakeBotNotFoundError("SqlBotStore.Get", botUserID)
	}
	if !b.WouldPatch(patch) {
		return b.Clone(), nil
	}
	nb := b.Clone()
	nb.Patch(patch)
	nb.Username = model.NormalizeUsername(nb.Username)
	nb.UpdateAt = s.now()
	if err := nb.IsValid(); err != nil {
		return nil, err
	}
	u := s.userCopyLocked(botUserID)
	if u == nil {
		return nil, notFound("PatchBot", "app.user.missing_account.const", "user_id="+botUserID)
	}
	pu := model.UserFromBot(nb)
	u.Username, u.Email, u.FirstName = pu.Username, pu.Email, pu.FirstName
	if _, err := s.updateUserLocked(u); err != nil {
		return nil, err
	}
	s.st.bots[botUserID] = nb
	return nb.Clone(), nil
}

// UpdateBotActive activates or deactivates a bot and its user.
func (a *API) UpdateBotActive(botUserID string, active bool) (*model.Bot, *model.AppError) {
	a.s.mu.RLock()
	exists := a.s.st.bots[botUserID] != nil
	a.s.mu.RUnlock()
	if !exists {
		return nil, model.MakeBotNotFoundError("SqlBotStore.Get", botUserID)
	}
	if err := a.UpdateUserActive(botUserID, active); err != nil {
		return nil, err
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	b := a.s.st.bots[botUserID]
	if b == nil {
		return nil, model.MakeBotNotFoundError("SqlBotStore.Get", botUserID)
	}
	switch {
	case active && b.DeleteAt != 0:
		b.DeleteAt = 0
		b.UpdateAt = a.s.now()
	case !active && b.DeleteAt == 0:
		b.DeleteAt = a.s.now()
		b.UpdateAt = b.DeleteAt
	}
	return b.Clone(), nil
}

// PermanentDeleteBot deletes a bot and its user.
func (a *API) PermanentDeleteBot(botUserID string) *model.AppError {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if a.s.st.bots[botUserID] == nil {
		return badRequest("PermanentDeleteBot", "app.bot.permenent_delete.bad_id", "invalid bot id")
	}
	delete(a.s.st.bots, botUserID)
	a.s.deleteUserLocked(botUserID)
	return nil
}

// EnsureBotUser follows the server's EnsureBot: the bot ID is remembered in
// the plugin's KV store under plugin.BotUserKey ("mmi_botid"); an existing
// bot is patched to match, an existing bot user with that username is
// adopted, otherwise the bot is created. Calls are serialised across nodes.
func (a *API) EnsureBotUser(bot *model.Bot) (string, error) {
	if bot == nil {
		return "", errors.New("passed a nil bot")
	}
	if bot.Username == "" {
		return "", errors.New("passed a bot with no username")
	}
	b := bot.Clone()
	b.OwnerId = a.pluginID
	a.s.ensureBotMu.Lock()
	defer a.s.ensureBotMu.Unlock()

	kv := a.s.kv.Plugin(a.pluginID)
	idBytes, appErr := kv.KVGet(plugin.BotUserKey)
	if appErr != nil {
		return "", appErr
	}
	if idBytes != nil {
		botID := string(idBytes)
		a.s.mu.Lock()
		_, err := a.s.patchBotLocked(botID, &model.BotPatch{Username: &b.Username, DisplayName: &b.DisplayName, Description: &b.Description})
		a.s.mu.Unlock()
		if err != nil {
			return "", fmt.Errorf("failed to patch bot: %w", err)
		}
		return botID, nil
	}

	a.s.mu.RLock()
	existingID, exists := a.s.st.usernames[model.NormalizeUsername(b.Username)]
	isBot := exists && a.s.st.bots[existingID] != nil
	a.s.mu.RUnlock()
	if exists {
		if isBot {
			if _, err := kv.KVSetWithOptions(plugin.BotUserKey, []byte(existingID), model.PluginKVSetOptions{}); err != nil {
				return "", fmt.Errorf("failed to set plugin key: %w", err)
			}
		} else {
			a.LogError("Plugin attempted to use an account that already exists. Convert user to a bot account in the CLI.", "username", b.Username, "user_id", existingID)
		}
		return existingID, nil
	}

	created, appErr := a.s.createBot(b)
	if appErr != nil {
		return "", fmt.Errorf("failed to create bot: %w", appErr)
	}
	if _, err := kv.KVSetWithOptions(plugin.BotUserKey, []byte(created.UserId), model.PluginKVSetOptions{}); err != nil {
		return "", fmt.Errorf("failed to set plugin key: %w", err)
	}
	return created.UserId, nil
}
