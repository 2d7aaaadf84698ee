package testhost

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/mattermost/mattermost/server/public/model"
)

// RegisterCommand registers a slash command on this node, like the
// server's RegisterPluginCommand (commands are per node, in memory;
// re-registering a trigger replaces it).
func (a *API) RegisterCommand(command *model.Command) error {
	if command == nil || command.Trigger == "" {
		return errors.New("invalid command")
	}
	if command.AutocompleteData != nil {
		if err := command.AutocompleteData.IsValid(); err != nil {
			return errors.Join(errors.New("invalid autocomplete data in command"), err)
		}
	}
	data := command.AutocompleteData
	if data == nil {
		data = model.NewAutocompleteData(command.Trigger, command.AutoCompleteHint, command.AutoCompleteDesc)
	} else if baseURL, err := url.Parse("/plugins/" + a.pluginID); err == nil {
		if err := data.UpdateRelativeURLsForPluginCommands(baseURL); err != nil {
			return errors.Join(errors.New("invalid autocomplete data in command"), err)
		}
	}
	cmd := &model.Command{
		Trigger:              strings.ToLower(command.Trigger),
		TeamId:               command.TeamId,
		AutoComplete:         command.AutoComplete,
		AutoCompleteDesc:     command.AutoCompleteDesc,
		AutoCompleteHint:     command.AutoCompleteHint,
		DisplayName:          command.DisplayName,
		AutocompleteData:     data,
		AutocompleteIconData: command.AutocompleteIconData,
		PluginId:             a.pluginID,
	}
	n := a.n
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, pc := range n.commands {
		if pc.cmd.Trigger == cmd.Trigger && pc.cmd.TeamId == cmd.TeamId && pc.pluginID == a.pluginID {
			pc.cmd = cmd
			return nil
		}
	}
	n.commands = append(n.commands, &pluginCommand{pluginID: a.pluginID, cmd: cmd})
	return nil
}

// UnregisterCommand removes one of the plugin's commands on this node.
func (a *API) UnregisterCommand(teamID, trigger string) error {
	n := a.n
	trigger = strings.ToLower(trigger)
	n.mu.Lock()
	defer n.mu.Unlock()
	kept := n.commands[:0]
	for _, pc := range n.commands {
		if !(pc.pluginID == a.pluginID && pc.cmd.Trigger == trigger && pc.cmd.TeamId == teamID) {
			kept = append(kept, pc)
		}
	}
	n.commands = kept
	return nil
}

func (n *Node) unregisterCommands(pluginID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	kept := n.commands[:0]
	for _, pc := range n.commands {
		if pc.pluginID != pluginID {
			kept = append(kept, pc)
		}
	}
	n.commands = kept
}

// ListPluginCommands lists the plugin commands registered on this node for
// a team (team-less commands included), one per trigger.
func (a *API) ListPluginCommands(teamID string) ([]*model.Command, error) {
	return a.n.Commands(teamID), nil
}

// ListCommands lists the plugin commands (the host has no built-in or
// custom commands).
func (a *API) ListCommands(teamID string) ([]*model.Command, error) {
	return a.n.Commands(teamID), nil
}

// ListCustomCommands returns no commands: the host has no custom (webhook)
// slash commands.
func (a *API) ListCustomCommands(teamID string) ([]*model.Command, error) {
	return []*model.Command{}, nil
}

// Commands lists the plugin slash commands registered on this node and
// visible in a team ("" lists the team-less ones), one per trigger.
func (n *Node) Commands(teamID string) []*model.Command {
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := map[string]bool{}
	out := []*model.Command{}
	for _, pc := range n.commands {
		if (pc.cmd.TeamId == "" || pc.cmd.TeamId == teamID) && !seen[pc.cmd.Trigger] {
			seen[pc.cmd.Trigger] = true
			c := *pc.cmd
			out = append(out, &c)
		}
	}
	return out
}

// ExecuteSlashCommand runs a plugin slash command registered on this node,
// as the user in commandArgs.
func (a *API) ExecuteSlashCommand(commandArgs *model.CommandArgs) (*model.CommandResponse, error) {
	if commandArgs == nil {
		return nil, badRequest("ExecuteSlashCommand", "api.context.invalid_body_param.app_error", "command args are nil")
	}
	resp, appErr := a.n.ExecuteCommandArgs(commandArgs)
	if appErr != nil {
		return resp, appErr
	}
	return resp, nil
}

// ExecuteCommand runs a slash command ("/trigger args") typed by a user in
// a channel, like the server: the plugin command registered on this node
// for the trigger gets the ExecuteCommand hook with CommandArgs (UserId,
// ChannelId, TeamId, Command, SiteURL, TriggerId), and its response is
// handled like the server's (an ephemeral response with text is recorded
// as an ephemeral post, an in_channel one is posted). As on the server, a
// nil response from the plugin ends in "command not found".
func (n *Node) ExecuteCommand(userID, channelID, teamID, command string) (*model.CommandResponse, *model.AppError) {
	return n.ExecuteCommandArgs(&model.CommandArgs{UserId: userID, ChannelId: channelID, TeamId: teamID, Command: command})
}

// ExecuteCommandArgs is ExecuteCommand with full CommandArgs (RootId for a
// command typed in a thread, ...).
func (n *Node) ExecuteCommandArgs(in *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	const where = "ExecuteCommand"
	args := *in
	trigger := args.Command
	if i := strings.IndexFunc(args.Command, unicode.IsSpace); i != -1 {
		trigger = args.Command[:i]
	}
	trigger = strings.ToLower(trigger)
	if !strings.HasPrefix(trigger, "/") {
		return nil, badRequest(where, "api.command.execute_command.format.app_error", "trigger="+trigger)
	}
	trigger = strings.TrimPrefix(trigger, "/")

	s := n.s
	s.mu.RLock()
	user := s.st.users[args.UserId]
	s.mu.RUnlock()
	if user == nil {
		return nil, notFound(where, "app.user.missing_account.const", "user_id="+args.UserId)
	}
	args.SiteURL = s.siteURL()
	args.TriggerId = model.NewId()
	if args.ParentId == "" {
		args.ParentId = args.RootId
	}

	var matched *pluginCommand
	n.mu.Lock()
	for _, pc := range n.commands {
		if pc.cmd.Trigger == trigger && (pc.cmd.TeamId == "" || pc.cmd.TeamId == args.TeamId) {
			matched = pc
			break
		}
	}
	n.mu.Unlock()
	if matched == nil {
		return nil, notFound(where, "api.command.execute_command.not_found.app_error", "trigger="+trigger)
	}
	hooks, err := n.env.HooksForPluginWithRPCErr(matched.pluginID)
	if err != nil {
		return nil, appErr("ExecutePluginCommand", "model.plugin_command.error.app_error", http.StatusInternalServerError, "err="+err.Error())
	}
	resp, appError, rpcErr := hooks.ExecuteCommandWithRPCErr(n.s.userPluginContext(args.UserId), &args)
	if rpcErr != nil {
		return nil, appErr("ExecutePluginCommand", "model.plugin_command_crash.error.app_error", http.StatusInternalServerError, "err="+rpcErr.Error())
	}
	if appError != nil {
		return nil, appError
	}
	if resp == nil {
		return nil, notFound(where, "api.command.execute_command.not_found.app_error",
			"trigger="+trigger+" (the plugin's ExecuteCommand returned a nil response, which the server treats as no command)")
	}
	n.handleCommandResponse(&args, resp)
	return resp, nil
}

func (n *Node) handleCommandResponse(args *model.CommandArgs, resp *model.CommandResponse) {
	post := &model.Post{ChannelId: args.ChannelId, RootId: args.RootId, UserId: args.UserId}
	if resp.ChannelId != "" {
		post.ChannelId = resp.ChannelId
	}
	if resp.Props != nil {
		post.SetProps(copyValue(map[string]any(resp.Props)).(map[string]any))
	}
	if resp.SkipSlackParsing {
		post.Message = resp.Text
	} else {
		post.Message = model.ParseSlackLinksToMarkdown(resp.Text)
	}
	if resp.Attachments != nil {
		model.ParseMessageAttachment(post, resp.Attachments)
	}
	switch {
	case resp.ResponseType == model.CommandResponseTypeInChannel:
		if _, err := n.createPost(post, origin{}); err != nil {
			n.logger.Warn("testhost: failed to post an in_channel command response: " + err.Error())
		}
	case (resp.ResponseType == "" || resp.ResponseType == model.CommandResponseTypeEphemeral) && (resp.Text != "" || resp.Attachments != nil):
		n.recordEphemeral(args.UserId, "send", ephemeralOf(post, n.s.now()))
	}
}

func ephemeralOf(p *model.Post, now int64) *model.Post {
	c := copyPost(p)
	c.Id = model.NewId()
	c.Type = model.PostTypeEphemeral
	c.CreateAt = now
	return c
}
