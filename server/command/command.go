// Package command is the slash-command layer shared by every network:
// /xmppbridge, /matrixbridge and /slackbridge are one implementation fed
// with a Spec each.
package command

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Spec describes one network's command.
type Spec struct {
	Trigger string // without the slash, e.g. "xmppbridge"
	Network bridge.Network
	Title   string // how people call the network, e.g. "XMPP"
	// RoomArg names the argument in help and autocomplete, e.g. "room-jid".
	RoomArg string
	// RoomExample is a valid room for help text.
	RoomExample string
	// ParseRoom checks a room's syntax and returns its normalized form. The
	// message of its error is shown to the user.
	ParseRoom func(string) (string, error)
	// Extra are the network's own subcommands, beside the shared ones. They
	// show in help and autocomplete and, like the others, run for system
	// admins only. An Extra named like a shared subcommand ("map", "help"...)
	// or like an earlier Extra is ignored, so a network cannot change what
	// the shared ones do.
	Extra []Subcommand
}

// Subcommand is one network-specific subcommand, such as
// /matrixbridge registration.
type Subcommand struct {
	// Name is what people type after the trigger: one lower-case word.
	Name string
	// Args hints at the arguments in help and autocomplete, e.g. "[room]";
	// empty when there are none.
	Args string
	// Help is one line for help and autocomplete.
	Help string
	// Run answers the command. Its text, or the message of its error, is
	// shown only to the person who ran it.
	Run func(ctx context.Context, call Call) (string, error)
}

// Call is what a Subcommand runs with.
type Call struct {
	Args *model.CommandArgs
	// Fields are the words after the subcommand's name.
	Fields []string
	Spec   Spec
}

// builtins are the shared subcommands and their aliases.
var builtins = map[string]bool{"help": true, "map": true, "link": true, "unmap": true, "unlink": true, "status": true, "list": true}

// extras returns the Extra subcommands of s that can run, in order.
func (s Spec) extras() []Subcommand {
	var out []Subcommand
	seen := map[string]bool{}
	for _, sub := range s.Extra {
		name := sub.Name
		if name == "" || name != strings.ToLower(name) || strings.ContainsFunc(name, unicode.IsSpace) ||
			builtins[name] || seen[name] || sub.Run == nil {
			continue
		}
		seen[name] = true
		out = append(out, sub)
	}
	return out
}

// Links is the part of the store the commands change.
type Links interface {
	GetLink(channelID string) (*store.Link, error)
	AddRemote(channelID, teamID string, r store.RemoteRoom) (*store.Link, error)
	RemoveRemote(channelID string, network bridge.Network, room string) (*store.Link, error)
	ListLinks() ([]store.Link, error)
}

// Env is what the commands need from the plugin.
type Env struct {
	Links Links
	// Bridge returns the running bridge of a network.
	Bridge func(bridge.Network) (bridge.Bridge, bool)
	// Health returns a network's health even when its bridge is not running.
	Health        func(bridge.Network) bridge.Health
	IsSystemAdmin func(userID string) bool
	// ChannelName renders a channel for messages, e.g. "~town-square".
	ChannelName func(channelID string) string
	// SettingsPath tells admins where to configure a network.
	SettingsPath string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Stats returns the bus's counters; nil leaves them out of status.
	Stats func() bridge.BusStats
	// SharedChannels is status's line about shared channels (Connected
	// Workspaces); nil leaves it out.
	SharedChannels func() string
}

// Handler executes the commands of every registered Spec.
type Handler struct {
	env   Env
	specs map[string]Spec
}

// NewHandler returns a handler for the given specs.
func NewHandler(env Env, specs ...Spec) *Handler {
	if env.Now == nil {
		env.Now = time.Now
	}
	h := &Handler{env: env, specs: map[string]Spec{}}
	for _, s := range specs {
		h.specs[s.Trigger] = s
	}
	return h
}

// Commands returns the commands to register with the server.
func (h *Handler) Commands() []*model.Command {
	triggers := make([]string, 0, len(h.specs))
	for t := range h.specs {
		triggers = append(triggers, t)
	}
	sort.Strings(triggers)
	out := make([]*model.Command, 0, len(triggers))
	for _, t := range triggers {
		s := h.specs[t]
		ac := model.NewAutocompleteData(s.Trigger, "[command]", fmt.Sprintf("Link this channel with %s rooms", s.Title))
		m := model.NewAutocompleteData("map", "["+s.RoomArg+"]", fmt.Sprintf("Link this channel with a %s room", s.Title))
		m.AddTextArgument(s.RoomArg, "["+s.RoomArg+"]", "")
		u := model.NewAutocompleteData("unmap", "["+s.RoomArg+"]", fmt.Sprintf("Unlink a %s room from this channel", s.Title))
		u.AddTextArgument("Optional when the channel has one "+s.Title+" room", "["+s.RoomArg+"]", "")
		ac.AddCommand(m)
		ac.AddCommand(u)
		ac.AddCommand(model.NewAutocompleteData("status", "", "Show this channel's links and the bridge's health"))
		ac.AddCommand(model.NewAutocompleteData("list", "", fmt.Sprintf("List every channel linked with %s", s.Title)))
		names := []string{"map", "unmap", "status", "list"}
		for _, x := range s.extras() {
			xc := model.NewAutocompleteData(x.Name, x.Args, x.Help)
			if x.Args != "" {
				// Positional arguments must be "required" for the server; Run
				// still checks its own and says what is wrong, as unmap does.
				xc.AddTextArgument("", x.Args, "")
			}
			ac.AddCommand(xc)
			names = append(names, x.Name)
		}
		ac.AddCommand(model.NewAutocompleteData("help", "", "Show help"))
		names = append(names, "help")
		for _, sub := range ac.SubCommands {
			sub.RoleID = model.SystemAdminRoleId
		}
		ac.RoleID = model.SystemAdminRoleId
		out = append(out, &model.Command{
			Trigger:          s.Trigger,
			DisplayName:      s.Title + " Bridge",
			Description:      fmt.Sprintf("Link Mattermost channels with %s rooms", s.Title),
			AutoComplete:     true,
			AutoCompleteDesc: "Available commands: " + strings.Join(names, ", "),
			AutoCompleteHint: "[command]",
			AutocompleteData: ac,
		})
	}
	return out
}

// Execute runs a command. Every answer is ephemeral: links are an admin's
// business, not the channel's.
func (h *Handler) Execute(ctx context.Context, args *model.CommandArgs) *model.CommandResponse {
	fields := strings.Fields(args.Command)
	if len(fields) == 0 {
		return reply("Empty command.")
	}
	trigger := strings.TrimPrefix(fields[0], "/")
	spec, ok := h.specs[trigger]
	if !ok {
		return reply(fmt.Sprintf("Unknown command %q.", fields[0]))
	}
	if !h.env.IsSystemAdmin(args.UserId) {
		return reply(fmt.Sprintf("Only system admins can use /%s.", spec.Trigger))
	}
	sub, rest := "help", fields[1:]
	if len(rest) > 0 {
		sub, rest = strings.ToLower(rest[0]), rest[1:]
	}
	switch sub {
	case "help":
		return reply(h.help(spec))
	case "map", "link":
		return reply(h.mapRoom(ctx, spec, args, rest))
	case "unmap", "unlink":
		return reply(h.unmapRoom(ctx, spec, args, rest))
	case "status":
		return reply(h.status(ctx, spec, args))
	case "list":
		return reply(h.list(ctx, spec))
	}
	for _, x := range spec.extras() {
		if x.Name == sub {
			text, err := x.Run(ctx, Call{Args: args, Fields: rest, Spec: spec})
			if err != nil {
				return reply(err.Error())
			}
			return reply(text)
		}
	}
	return reply(fmt.Sprintf("Unknown subcommand %q.\n\n%s", sub, h.help(spec)))
}

func reply(text string) *model.CommandResponse {
	return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral, Text: text}
}

func (h *Handler) help(s Spec) string {
	var extra strings.Builder
	for _, x := range s.extras() {
		usage := x.Name
		if x.Args != "" {
			usage += " " + x.Args
		}
		fmt.Fprintf(&extra, "* `/%s %s`: %s\n", s.Trigger, usage, x.Help)
	}
	return fmt.Sprintf("#### /%[1]s: link this channel with %[2]s rooms\n"+
		"* `/%[1]s map <%[3]s>`: link this channel with a %[2]s room, e.g. `/%[1]s map %[4]s`\n"+
		"* `/%[1]s unmap [%[3]s]`: unlink a %[2]s room from this channel\n"+
		"* `/%[1]s status`: show this channel's links and the %[2]s bridge's health\n"+
		"* `/%[1]s list`: list every channel linked with %[2]s\n"+
		"%[5]s"+
		"* `/%[1]s help`: show this help\n\n"+
		"A channel can be linked with rooms on several networks at once; messages from any of them reach all the others.",
		s.Trigger, s.Title, s.RoomArg, s.RoomExample, extra.String())
}

func (h *Handler) mapRoom(ctx context.Context, s Spec, args *model.CommandArgs, rest []string) string {
	if len(rest) != 1 {
		return fmt.Sprintf("Usage: `/%s map <%s>`, e.g. `/%s map %s`.", s.Trigger, s.RoomArg, s.Trigger, s.RoomExample)
	}
	room, err := s.ParseRoom(rest[0])
	if err != nil {
		return fmt.Sprintf("%q is not a valid %s room: %v. Nothing was changed.", rest[0], s.Title, err)
	}
	return h.Link(ctx, s, args, room)
}

// Link links the command's channel with room, as map does once the room's
// syntax is checked; subcommands that make a room link it through here.
func (h *Handler) Link(ctx context.Context, s Spec, args *model.CommandArgs, room string) string {
	b, running := h.env.Bridge(s.Network)
	if !running {
		return fmt.Sprintf("The %s bridge is not configured or not running. Set it up in %s, then try again. Nothing was changed.", s.Title, h.env.SettingsPath)
	}
	if checker, ok := b.(bridge.RoomChecker); ok {
		canonical, cerr := checker.CheckRoom(ctx, room)
		if cerr != nil {
			return fmt.Sprintf("Cannot link %s room %s: %v. Nothing was changed.", s.Title, room, cerr)
		}
		room = canonical
	}
	_, err := h.env.Links.AddRemote(args.ChannelId, args.TeamId, store.RemoteRoom{
		Network: s.Network, Room: room, LinkedBy: args.UserId, LinkedAt: h.env.Now().UTC(),
	})
	var taken *store.RoomTakenError
	switch {
	case errors.As(err, &taken):
		return fmt.Sprintf("%s room %s is already linked with %s. Unlink it there first. Nothing was changed.", s.Title, room, h.env.ChannelName(taken.ChannelID))
	case errors.Is(err, store.ErrAlreadyLinked):
		return fmt.Sprintf("This channel is already linked with %s room %s.", s.Title, room)
	case err != nil:
		return fmt.Sprintf("Could not link %s room %s: %v.", s.Title, room, err)
	}
	if w, ok := b.(bridge.RoomWatcher); ok {
		if werr := w.RoomLinked(ctx, room); werr != nil {
			return fmt.Sprintf("Linked this channel with %s room %s, but the bridge could not join it yet: %v. It will keep trying.", s.Title, room, werr)
		}
	}
	return fmt.Sprintf("Linked this channel with %s room %s. Messages now flow both ways.", s.Title, room+h.describe(ctx, s.Network, room))
}

func (h *Handler) unmapRoom(ctx context.Context, s Spec, args *model.CommandArgs, rest []string) string {
	if len(rest) > 1 {
		return fmt.Sprintf("Usage: `/%s unmap [%s]`.", s.Trigger, s.RoomArg)
	}
	link, err := h.env.Links.GetLink(args.ChannelId)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Sprintf("Could not read this channel's links: %v.", err)
	}
	var rooms []string
	if link != nil {
		for _, r := range link.Remotes {
			if r.Network == s.Network {
				rooms = append(rooms, r.Room)
			}
		}
	}
	var room string
	switch {
	case len(rest) == 1:
		room, err = s.ParseRoom(rest[0])
		if err != nil {
			return fmt.Sprintf("%q is not a valid %s room: %v. Nothing was changed.", rest[0], s.Title, err)
		}
	case len(rooms) == 1:
		room = rooms[0]
	case len(rooms) == 0:
		return fmt.Sprintf("This channel is not linked with any %s room.", s.Title)
	default:
		return fmt.Sprintf("This channel is linked with several %s rooms (%s). Say which: `/%s unmap <%s>`.", s.Title, strings.Join(rooms, ", "), s.Trigger, s.RoomArg)
	}
	if err = h.Unlink(ctx, args.ChannelId, s.Network, room); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Sprintf("This channel is not linked with %s room %s. Nothing was changed.", s.Title, room)
		}
		return fmt.Sprintf("Could not unlink %s room %s: %v.", s.Title, room, err)
	}
	return fmt.Sprintf("Unlinked %s room %s from this channel.", s.Title, room)
}

// Unlink removes room of network from the channel's link and lets the
// network's bridge leave it, as unmap does once it knows the room; the
// REST API unlinks through here too. The error wraps store.ErrNotFound
// when the channel is not linked with the room.
func (h *Handler) Unlink(ctx context.Context, channelID string, network bridge.Network, room string) error {
	if _, err := h.env.Links.RemoveRemote(channelID, network, room); err != nil {
		return err
	}
	if b, ok := h.env.Bridge(network); ok {
		if w, ok := b.(bridge.RoomWatcher); ok {
			_ = w.RoomUnlinked(ctx, room) // the link is gone either way; leaving is best effort
		}
	}
	return nil
}

func (h *Handler) status(ctx context.Context, s Spec, args *model.CommandArgs) string {
	var b strings.Builder
	health := h.env.Health(s.Network)
	fmt.Fprintf(&b, "#### %s bridge: %s\n", s.Title, health.State)
	if health.Detail != "" {
		fmt.Fprintf(&b, "* %s\n", health.Detail)
	}
	if health.LastError != "" {
		fmt.Fprintf(&b, "* Last error: %s\n", health.LastError)
	}
	if !health.LastMessage.IsZero() {
		fmt.Fprintf(&b, "* Last message: %s\n", health.LastMessage.UTC().Format(time.RFC3339))
	}
	if mm := h.env.Health(bridge.NetworkMattermost); mm.Detail != "" && s.Network != bridge.NetworkMattermost {
		// What holds up the Mattermost side holds up every network.
		fmt.Fprintf(&b, "* Mattermost: %s\n", mm.Detail)
	}
	if h.env.SharedChannels != nil {
		if note := h.env.SharedChannels(); note != "" {
			fmt.Fprintf(&b, "* %s\n", note)
		}
	}
	link, err := h.env.Links.GetLink(args.ChannelId)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && len(link.Remotes) == 0):
		b.WriteString("\nThis channel is not linked with any room.")
	case err != nil:
		fmt.Fprintf(&b, "\nCould not read this channel's links: %v.", err)
	default:
		b.WriteString("\nThis channel is linked with:\n")
		for _, r := range link.Remotes {
			fmt.Fprintf(&b, "* %s room %s%s (%s, linked %s)\n", networkTitle(r.Network, s), r.Room, h.describe(ctx, r.Network, r.Room), h.env.Health(r.Network).State, r.LinkedAt.UTC().Format("2006-01-02"))
		}
		h.queueNotes(&b, args.ChannelId)
	}
	return b.String()
}

// queueNotes tells, for a channel's link, what waits for a destination and
// since when, how many edits and deletes the bridge refused, and where it
// could not moderate.
func (h *Handler) queueNotes(b *strings.Builder, linkID string) {
	if h.env.Stats == nil {
		return
	}
	for _, q := range h.env.Stats().Queues {
		if q.Key.Link != linkID {
			continue
		}
		network, room, _ := strings.Cut(q.Key.Dest, "|")
		if q.Depth > 0 && !q.OldestQueuedAt.IsZero() {
			fmt.Fprintf(b, "* Waiting for %s %s: %d events, the oldest queued %s ago\n", network, room, q.Depth, h.env.Now().Sub(q.OldestQueuedAt).Round(time.Second))
		}
		if n := q.Drops[bridge.ReasonNotAuthor]; n > 0 {
			fmt.Fprintf(b, "* Not relayed to %s %s: %d edits or deletes by someone other than the message's author (not_author)\n", network, room, n)
		}
		if n := q.Drops[bridge.ReasonArchived]; n > 0 {
			fmt.Fprintf(b, "* Not relayed to %s %s: %d events while the room was archived (archived)\n", network, room, n)
		}
		if n := q.Drops[bridge.ReasonNoRights]; n > 0 {
			fmt.Fprintf(b, "* Not applied in %s %s: %d moderation deletes; the bridge is not a moderator there (no_rights)\n", network, room, n)
		}
	}
}

func (h *Handler) list(ctx context.Context, s Spec) string {
	links, err := h.env.Links.ListLinks()
	if err != nil {
		return fmt.Sprintf("Could not list links: %v.", err)
	}
	var lines []string
	for _, l := range links {
		for _, r := range l.Remotes {
			if r.Network == s.Network {
				lines = append(lines, fmt.Sprintf("* %s ↔ %s%s", h.env.ChannelName(l.ChannelID), r.Room, h.describe(ctx, r.Network, r.Room)))
			}
		}
	}
	if len(lines) == 0 {
		return fmt.Sprintf("No channel is linked with %s.", s.Title)
	}
	sort.Strings(lines)
	return fmt.Sprintf("#### Channels linked with %s\n%s", s.Title, strings.Join(lines, "\n"))
}

// describe is what the running bridge says about a room (its name,
// whether it is archived), as " — ..." after its ID; "" when nothing.
func (h *Handler) describe(ctx context.Context, network bridge.Network, room string) string {
	b, ok := h.env.Bridge(network)
	if !ok {
		return ""
	}
	d, ok := b.(bridge.RoomDescriber)
	if !ok {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if note := d.DescribeRoom(ctx, room).Describe(network); note != "" {
		return " — " + note
	}
	return ""
}

func networkTitle(n bridge.Network, s Spec) string {
	if n == s.Network {
		return s.Title
	}
	return n.Label()
}
