package command

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/bridgetest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

const testNet bridge.Network = "testnet"

// fakeNet is an alias so the embedded field is not called Network, which
// would hide the Network method.
type fakeNet = bridgetest.Network

type checkingNetwork struct {
	*fakeNet
	linked []string
}

func (c *checkingNetwork) CheckRoom(_ context.Context, room string) (string, error) {
	if strings.HasPrefix(room, "missing") {
		return "", errors.New("the room does not exist")
	}
	return room, nil
}

func (c *checkingNetwork) RoomLinked(_ context.Context, room string) error {
	c.linked = append(c.linked, room)
	return nil
}

func (c *checkingNetwork) RoomUnlinked(context.Context, string) error { return nil }

type fixture struct {
	h       *Handler
	st      *store.Store
	kv      *memkv.PluginKV
	net     *checkingNetwork
	running bool
	admin   string
	user    string
	channel string
	team    string
	// override, when set, is the running bridge instead of net.
	override bridge.Bridge
}

func (f *fixture) useBridge(b bridge.Bridge) { f.override = b }

func newFixture(t *testing.T, extra ...Subcommand) *fixture {
	t.Helper()
	f := &fixture{
		kv: memkv.New(nil).Plugin("p"), net: &checkingNetwork{fakeNet: bridgetest.New(testNet)},
		running: true, admin: model.NewId(), user: model.NewId(), channel: model.NewId(), team: model.NewId(),
	}
	f.st = store.New(f.kv)
	spec := Spec{
		Trigger: "testbridge", Network: testNet, Title: "Test", RoomArg: "room", RoomExample: "lobby",
		ParseRoom: func(s string) (string, error) {
			if strings.ContainsAny(s, "!/") {
				return "", errors.New("rooms have no ! or /")
			}
			return s, nil
		},
		Extra: extra,
	}
	f.h = NewHandler(Env{
		Links: f.st,
		Bridge: func(n bridge.Network) (bridge.Bridge, bool) {
			if n == testNet && f.running {
				if f.override != nil {
					return f.override, true
				}
				return f.net, true
			}
			return nil, false
		},
		Health:        func(bridge.Network) bridge.Health { return bridge.Health{State: bridge.StateConnected} },
		IsSystemAdmin: func(id string) bool { return id == f.admin },
		ChannelName:   func(id string) string { return "~" + id[:4] },
		SettingsPath:  "System Console",
		Now:           func() time.Time { return time.Unix(1700000000, 0) },
	}, spec)
	return f
}

func (f *fixture) run(user, cmd string) string {
	return f.h.Execute(context.Background(), &model.CommandArgs{UserId: user, ChannelId: f.channel, TeamId: f.team, Command: cmd}).Text
}

func (f *fixture) keys(t *testing.T) []string {
	keys, err := f.kv.KVList(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestOnlySystemAdminsRunCommands(t *testing.T) {
	f := newFixture(t)
	for _, cmd := range []string{"/testbridge help", "/testbridge map lobby", "/testbridge list"} {
		if got := f.run(f.user, cmd); !strings.Contains(got, "Only system admins") {
			t.Errorf("%s by a regular user: %q", cmd, got)
		}
	}
	if len(f.keys(t)) != 0 {
		t.Fatal("a regular user's command changed the store")
	}
}

func TestMapUnmapStatusList(t *testing.T) {
	f := newFixture(t)
	if got := f.run(f.admin, "/testbridge map lobby"); !strings.Contains(got, "Linked this channel with Test room lobby") {
		t.Fatalf("map: %q", got)
	}
	if len(f.net.linked) != 1 {
		t.Fatal("the bridge was not told about the new link")
	}
	link, err := f.st.GetLink(f.channel)
	if err != nil || len(link.Remotes) != 1 || link.Remotes[0].LinkedBy != f.admin {
		t.Fatalf("link = %+v, %v", link, err)
	}
	if got := f.run(f.admin, "/testbridge map lobby"); !strings.Contains(got, "already linked") {
		t.Fatalf("second map: %q", got)
	}
	if got := f.run(f.admin, "/testbridge status"); !strings.Contains(got, "lobby") || !strings.Contains(got, "connected") {
		t.Fatalf("status: %q", got)
	}
	if got := f.run(f.admin, "/testbridge list"); !strings.Contains(got, "lobby") {
		t.Fatalf("list: %q", got)
	}
	if got := f.run(f.admin, "/testbridge unmap"); !strings.Contains(got, "Unlinked") {
		t.Fatalf("unmap: %q", got)
	}
	if _, err = f.st.GetLink(f.channel); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link after unmap: %v", err)
	}
}

func TestRoomLinkedElsewhereIsRefused(t *testing.T) {
	f := newFixture(t)
	f.run(f.admin, "/testbridge map lobby")
	other := model.NewId()
	got := f.h.Execute(context.Background(), &model.CommandArgs{UserId: f.admin, ChannelId: other, TeamId: f.team, Command: "/testbridge map lobby"}).Text
	if !strings.Contains(got, "already linked with ~"+f.channel[:4]) {
		t.Fatalf("map of a taken room: %q", got)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	f := newFixture(t)
	cases := map[string]string{
		"/testbridge map":              "Usage",
		"/testbridge map a b":          "Usage",
		"/testbridge map bad!room":     "not a valid Test room",
		"/testbridge map missing-room": "does not exist",
		"/testbridge frobnicate":       "Unknown subcommand",
		"/testbridge unmap":            "not linked",
		"/testbridge unmap other":      "not linked",
	}
	for cmd, want := range cases {
		if got := f.run(f.admin, cmd); !strings.Contains(got, want) {
			t.Errorf("%s: %q does not say %q", cmd, got, want)
		}
	}
	f.running = false
	if got := f.run(f.admin, "/testbridge map lobby"); !strings.Contains(got, "not configured") {
		t.Errorf("map without a running bridge: %q", got)
	}
	if keys := f.keys(t); len(keys) != 0 {
		t.Fatalf("bad input wrote %v", keys)
	}
}

func TestCommandsHaveAutocomplete(t *testing.T) {
	f := newFixture(t)
	cmds := f.h.Commands()
	if len(cmds) != 1 || cmds[0].Trigger != "testbridge" || cmds[0].AutocompleteData == nil {
		t.Fatalf("commands = %+v", cmds)
	}
	if err := cmds[0].AutocompleteData.IsValid(); err != nil {
		t.Fatalf("autocomplete data invalid: %v", err)
	}
	var subs []string
	for _, s := range cmds[0].AutocompleteData.SubCommands {
		subs = append(subs, s.Trigger)
	}
	if strings.Join(subs, ",") != "map,unmap,status,list,help" {
		t.Fatalf("subcommands = %v", subs)
	}
}

func TestExtraSubcommands(t *testing.T) {
	var calls []Call
	echo := Subcommand{Name: "echo", Args: "[words]", Help: "Repeat the words", Run: func(_ context.Context, c Call) (string, error) {
		calls = append(calls, c)
		return "echo: " + strings.Join(c.Fields, " "), nil
	}}
	fail := Subcommand{Name: "fail", Help: "Always fails", Run: func(context.Context, Call) (string, error) {
		return "", errors.New("the homeserver is not set up: set Site URL first")
	}}
	never := func(context.Context, Call) (string, error) {
		t.Error("an ignored subcommand ran")
		return "", nil
	}
	f := newFixture(t, echo, fail,
		Subcommand{Name: "map", Help: "Shadows map", Run: never},
		Subcommand{Name: "echo", Help: "Second echo", Run: never},
		Subcommand{Name: "Loud", Help: "Not lower case", Run: never},
		Subcommand{Name: "", Help: "No name", Run: never},
		Subcommand{Name: "norun", Help: "No Run"},
	)

	resp := f.h.Execute(context.Background(), &model.CommandArgs{UserId: f.admin, ChannelId: f.channel, TeamId: f.team, Command: "/testbridge Echo  one two"})
	if resp.Text != "echo: one two" || resp.ResponseType != model.CommandResponseTypeEphemeral {
		t.Fatalf("echo answered %+v", resp)
	}
	if len(calls) != 1 || calls[0].Args.ChannelId != f.channel || calls[0].Spec.Trigger != "testbridge" || strings.Join(calls[0].Fields, ",") != "one,two" {
		t.Fatalf("calls = %+v", calls)
	}
	resp = f.h.Execute(context.Background(), &model.CommandArgs{UserId: f.admin, ChannelId: f.channel, TeamId: f.team, Command: "/testbridge fail"})
	if resp.Text != "the homeserver is not set up: set Site URL first" || resp.ResponseType != model.CommandResponseTypeEphemeral {
		t.Fatalf("fail answered %+v", resp)
	}
	if got := f.run(f.user, "/testbridge echo hi"); !strings.Contains(got, "Only system admins") || len(calls) != 1 {
		t.Fatalf("echo by a regular user: %q (%d calls)", got, len(calls))
	}
	// Shared subcommands cannot be replaced, and broken extras do not run.
	if got := f.run(f.admin, "/testbridge map lobby"); !strings.Contains(got, "Linked this channel") {
		t.Fatalf("map: %q", got)
	}
	for _, cmd := range []string{"/testbridge loud", "/testbridge norun"} {
		if got := f.run(f.admin, cmd); !strings.Contains(got, "Unknown subcommand") {
			t.Errorf("%s: %q", cmd, got)
		}
	}

	help := f.run(f.admin, "/testbridge help")
	if !strings.Contains(help, "* `/testbridge echo [words]`: Repeat the words\n* `/testbridge fail`: Always fails\n* `/testbridge help`") {
		t.Fatalf("help does not list the extras before help:\n%s", help)
	}
	for _, ignored := range []string{"Shadows map", "Second echo", "Not lower case", "No name", "No Run"} {
		if strings.Contains(help, ignored) {
			t.Errorf("help lists an ignored subcommand: %q", ignored)
		}
	}

	cmd := f.h.Commands()[0]
	if err := cmd.AutocompleteData.IsValid(); err != nil {
		t.Fatalf("autocomplete data invalid: %v", err)
	}
	var subs []string
	for _, s := range cmd.AutocompleteData.SubCommands {
		subs = append(subs, s.Trigger)
		if s.RoleID != model.SystemAdminRoleId {
			t.Errorf("%s is offered to %q", s.Trigger, s.RoleID)
		}
	}
	if strings.Join(subs, ",") != "map,unmap,status,list,echo,fail,help" {
		t.Fatalf("subcommands = %v", subs)
	}
	if cmd.AutoCompleteDesc != "Available commands: map, unmap, status, list, echo, fail, help" {
		t.Fatalf("AutoCompleteDesc = %q", cmd.AutoCompleteDesc)
	}
	if ac := cmd.AutocompleteData.SubCommands[4]; ac.HelpText != "Repeat the words" || ac.Hint != "[words]" || len(ac.Arguments) != 1 {
		t.Fatalf("echo autocomplete = %+v", ac)
	}
}

// namingNetwork names its rooms, as Slack's bridge does for channel IDs.
type namingNetwork struct{ *checkingNetwork }

func (namingNetwork) DescribeRoom(_ context.Context, room string) bridge.RoomInfo {
	return bridge.RoomInfo{Name: "#" + room + "-name"}
}

// A room whose ID says little is shown with its name beside it, in map's
// answer, status and list.
func TestRoomNamesBesideTheirIDs(t *testing.T) {
	f := newFixture(t)
	f.useBridge(namingNetwork{f.net})
	if got := f.run(f.admin, "/testbridge map lobby"); !strings.Contains(got, "Test room lobby — #lobby-name") {
		t.Fatalf("map: %q", got)
	}
	if got := f.run(f.admin, "/testbridge status"); !strings.Contains(got, "lobby — #lobby-name") {
		t.Fatalf("status: %q", got)
	}
	if got := f.run(f.admin, "/testbridge list"); !strings.Contains(got, "lobby — #lobby-name") {
		t.Fatalf("list: %q", got)
	}
}
