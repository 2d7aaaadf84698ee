package testhost

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const testPluginID = "com.example.api"

// newAPIFixture returns a server without an active plugin and the API a
// plugin with testPluginID would get on node 0.
func newAPIFixture(t *testing.T, opts ...Option) (*fixture, *API) {
	t.Helper()
	f := newFixture(t, append([]Option{WithPluginID(testPluginID)}, opts...)...)
	return f, f.s.Node(0).API(testPluginID)
}

func TestEveryMethodSurvivesZeroArguments(t *testing.T) {
	t.Parallel()
	_, api := newAPIFixture(t)
	safe := reflect.ValueOf(&safeAPI{api: api})
	apiType := reflect.TypeFor[plugin.API]()
	for m := range apiType.Methods() {
		mt := m.Type
		args := make([]reflect.Value, mt.NumIn())
		for i := range args {
			args[i] = reflect.Zero(mt.In(i))
		}
		var out []reflect.Value
		if mt.IsVariadic() {
			out = safe.MethodByName(m.Name).CallSlice(args)
		} else {
			out = safe.MethodByName(m.Name).Call(args)
		}
		if len(out) != mt.NumOut() {
			t.Fatalf("%s returned %d values", m.Name, len(out))
		}
	}
	if p := api.s.Panics(); len(p) > 0 {
		t.Fatalf("methods panicked on zero arguments:\n%s", strings.Join(p, "\n"))
	}
}

func TestPanicBecomesAnError(t *testing.T) {
	t.Parallel()
	s := NewServer(t, WithPluginID(testPluginID))
	// An API without its node panics on any call that needs the node.
	broken := &safeAPI{api: &API{s: s, pluginID: testPluginID}}
	broken.LogInfo("boom")
	_, appErr := broken.CreatePost(&model.Post{})
	if appErr == nil || appErr.Id != "testhost.panic" {
		t.Fatalf("CreatePost on a broken API: %v", appErr)
	}
	if err := broken.RegisterCommand(&model.Command{Trigger: "x"}); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("RegisterCommand on a broken API: %v", err)
	}
	if p := s.Panics(); len(p) != 3 || !strings.HasPrefix(p[0], "LogInfo: ") {
		t.Fatalf("recorded panics = %q", p)
	}
	s.mu.Lock()
	s.st.panics = nil // recorded panics fail the test at cleanup
	s.mu.Unlock()
}

func TestUsersAreValidatedLikeTheServer(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	if _, appErr := api.CreateUser(&model.User{Username: "Not Valid!", Email: "x@example.com", Password: "password1"}); appErr == nil {
		t.Fatal("invalid username accepted")
	}
	if _, appErr := api.CreateUser(&model.User{Username: "bob", Email: "bob@example.com", Password: "short"}); appErr == nil {
		t.Fatal("short password accepted")
	}
	if _, appErr := api.CreateUser(&model.User{Username: "alice", Email: "other@example.com", Password: "password1"}); appErr == nil {
		t.Fatal("duplicate username accepted")
	}
	if _, appErr := api.CreateUser(&model.User{Username: "matrix:bob", Email: "bob@matrix.invalid", Password: "password1"}); appErr == nil {
		t.Fatal("a remote-style username accepted for a local user")
	}
	remote, appErr := api.CreateUser(&model.User{
		Username: "matrix:bob", Email: "bob@matrix.invalid", Password: model.NewId(), RemoteId: model.NewPointer(model.NewId()),
	})
	if appErr != nil {
		t.Fatalf("remote user: %v", appErr)
	}
	if !remote.IsRemote() || remote.Password != "" {
		t.Fatalf("remote user = %+v", remote)
	}
	byName, appErr := api.GetUserByUsername("MATRIX:BOB")
	if appErr != nil || byName.Id != remote.Id {
		t.Fatalf("GetUserByUsername: %v %v", byName, appErr)
	}
	if u, appErr := api.GetUserByEmail("ALICE@example.com"); appErr != nil || u.Id != f.user.Id {
		t.Fatalf("GetUserByEmail: %v %v", u, appErr)
	}
	users, _ := api.GetUsersByUsernames([]string{"alice", "nobody", "matrix:bob"})
	if len(users) != 2 {
		t.Fatalf("GetUsersByUsernames = %d users", len(users))
	}
	remote.Nickname = "Bob"
	remote.Roles = model.SystemAdminRoleId // not updatable through UpdateUser
	updated, appErr := api.UpdateUser(remote)
	if appErr != nil || updated.Nickname != "Bob" || strings.Contains(updated.Roles, model.SystemAdminRoleId) {
		t.Fatalf("UpdateUser: %+v %v", updated, appErr)
	}
	if appErr := api.UpdateUserActive(remote.Id, false); appErr != nil {
		t.Fatal(appErr)
	}
	if u := f.s.User(remote.Id); u.DeleteAt == 0 {
		t.Fatal("user still active")
	}
	inTeam, _ := api.GetUsers(&model.UserGetOptions{InTeamId: f.team.Id, Page: 0, PerPage: 10})
	if len(inTeam) != 1 || inTeam[0].Id != f.user.Id {
		t.Fatalf("GetUsers(InTeamId) = %v", inTeam)
	}
}

func TestPostsSinceCoversEditsAndDeletions(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	n := f.s.Node(0)
	p1, appErr := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "one"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	p2, _ := n.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "two"})
	since := f.s.Post(p2.Id).UpdateAt

	reply, appErr := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, RootId: p1.Id, Message: "reply"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	if _, appErr := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, RootId: reply.Id, Message: "nested"}); appErr == nil {
		t.Fatal("a reply to a reply was accepted")
	}
	edited := f.s.Post(p2.Id)
	edited.Message = "two, edited"
	if _, appErr := api.UpdatePost(edited); appErr != nil {
		t.Fatal(appErr)
	}
	if appErr := api.DeletePost(p1.Id); appErr != nil {
		t.Fatal(appErr)
	}

	list, appErr := api.GetPostsSince(f.ch.Id, since)
	if appErr != nil {
		t.Fatal(appErr)
	}
	byID := list.Posts
	if p := byID[p1.Id]; p == nil || p.DeleteAt == 0 || p.GetProp(model.PostPropsDeleteBy) != testPluginID {
		t.Fatalf("deleted root: %+v", p)
	}
	if p := byID[reply.Id]; p == nil || p.DeleteAt == 0 {
		t.Fatalf("the reply of a deleted root is not deleted: %+v", p)
	}
	if p := byID[p2.Id]; p == nil || p.Message != "two, edited" || p.EditAt == 0 {
		t.Fatalf("edited post: %+v", p)
	}
	history := 0
	for _, p := range byID {
		if p.OriginalId == p2.Id && p.DeleteAt != 0 && p.Message == "two" {
			history++
		}
	}
	if history != 1 {
		t.Fatalf("edit history rows = %d", history)
	}
	for i := 1; i < len(list.Order); i++ {
		if byID[list.Order[i-1]].CreateAt < byID[list.Order[i]].CreateAt {
			t.Fatalf("Order is not newest first: %v", list.Order)
		}
	}
	if _, appErr := api.GetPost(p1.Id); appErr == nil || appErr.StatusCode != http.StatusNotFound {
		t.Fatalf("GetPost of a deleted post: %v", appErr)
	}
	thread, appErr := api.GetPostThread(p2.Id)
	if appErr != nil || len(thread.Order) != 1 {
		t.Fatalf("thread: %v %v", thread, appErr)
	}
	page, _ := api.GetPostsForChannel(f.ch.Id, 0, 10)
	if len(page.Order) != 1 || page.Order[0] != p2.Id {
		t.Fatalf("GetPostsForChannel order = %v", page.Order)
	}
	if _, appErr := api.CreatePost(&model.Post{Id: model.NewId(), UserId: f.user.Id, ChannelId: f.ch.Id, Message: "preset id"}); appErr == nil {
		t.Fatal("a local post with a preset ID was accepted")
	}
	remoteID := model.NewId()
	presetID := model.NewId()
	remotePost, appErr := api.CreatePost(&model.Post{Id: presetID, RemoteId: &remoteID, UserId: f.user.Id, ChannelId: f.ch.Id, Message: "from a remote"})
	if appErr != nil || remotePost.Id != presetID {
		t.Fatalf("a remote post with a preset ID: %v %v", remotePost, appErr)
	}
}

func TestFilesAttachLikeTheFileStore(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	bob := f.s.CreateUser("bob", false)
	f.s.AddToChannel(bob.Id, f.ch.Id)

	fromPlugin, appErr := api.UploadFile([]byte("plugin file"), f.ch.Id, "a.txt")
	if appErr != nil {
		t.Fatal(appErr)
	}
	fromBob := f.s.UploadFile(bob.Id, f.ch.Id, "b.txt", []byte("bob's file"))
	if _, appErr := api.UploadFile([]byte("x"), model.NewId(), "c.txt"); appErr == nil {
		t.Fatal("upload into an unknown channel accepted")
	}

	post, appErr := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, Message: "files", FileIds: []string{fromPlugin.Id, fromBob.Id, model.NewId()}})
	if appErr != nil {
		t.Fatal(appErr)
	}
	if !slices.Equal(post.FileIds, []string{fromPlugin.Id}) {
		t.Fatalf("attached %v, want only the plugin's upload", post.FileIds)
	}
	got, _ := api.GetPost(post.Id)
	if !slices.Equal(got.FileIds, []string{fromPlugin.Id}) || got.Metadata != nil {
		t.Fatalf("GetPost: files %v metadata %v", got.FileIds, got.Metadata)
	}
	fi, appErr := api.GetFileInfo(fromPlugin.Id)
	if appErr != nil || fi.PostId != post.Id || fi.CreatorId != "nouser" || fi.Name != "a.txt" || fi.Size != int64(len("plugin file")) {
		t.Fatalf("file info: %+v %v", fi, appErr)
	}
	data, _ := api.GetFile(fromPlugin.Id)
	if string(data) != "plugin file" {
		t.Fatalf("file data %q", data)
	}
	// An attached file cannot be attached again; a copy can.
	if again, _ := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, FileIds: []string{fromPlugin.Id}}); len(again.FileIds) != 0 {
		t.Fatalf("re-attached %v", again.FileIds)
	}
	copies, appErr := api.CopyFileInfos(f.user.Id, []string{fromPlugin.Id})
	if appErr != nil {
		t.Fatal(appErr)
	}
	withCopy, _ := api.CreatePost(&model.Post{UserId: f.user.Id, ChannelId: f.ch.Id, FileIds: copies})
	if !slices.Equal(withCopy.FileIds, copies) {
		t.Fatalf("copy not attached: %v", withCopy.FileIds)
	}
	infos, _ := api.GetFileInfos(0, 10, &model.GetFileInfosOptions{ChannelIds: []string{f.ch.Id}})
	if len(infos) != 3 {
		t.Fatalf("GetFileInfos = %d", len(infos))
	}
	if files := f.s.PostFiles(post.Id); len(files) != 1 || files[0].Id != fromPlugin.Id {
		t.Fatalf("PostFiles = %v", files)
	}

	var img bytes.Buffer
	_ = png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 2, 3)))
	if appErr := api.SetProfileImage(bob.Id, []byte("not an image")); appErr == nil {
		t.Fatal("a non-image profile picture was accepted")
	}
	if appErr := api.SetProfileImage(bob.Id, img.Bytes()); appErr != nil {
		t.Fatal(appErr)
	}
	if got, _ := api.GetProfileImage(bob.Id); !bytes.Equal(got, img.Bytes()) {
		t.Fatal("profile image not stored")
	}
	if def, appErr := api.GetProfileImage(f.user.Id); appErr != nil || len(def) == 0 {
		t.Fatalf("default profile image: %v", appErr)
	}
}

func TestBotsAndEnsureBotUser(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t, WithNodes(2))
	id1, err := api.EnsureBotUser(&model.Bot{Username: "bridge", DisplayName: "Bridge"})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := f.s.Node(1).API(testPluginID).EnsureBotUser(&model.Bot{Username: "bridge", DisplayName: "Bridge 2"})
	if err != nil || id2 != id1 {
		t.Fatalf("second EnsureBotUser: %q %v", id2, err)
	}
	bot, appErr := api.GetBot(id1, false)
	if appErr != nil || bot.DisplayName != "Bridge 2" || bot.OwnerId != testPluginID {
		t.Fatalf("bot = %+v %v", bot, appErr)
	}
	u := f.s.User(id1)
	if !u.IsBot || u.Username != "bridge" {
		t.Fatalf("bot user = %+v", u)
	}
	if _, appErr := api.UpdateBotActive(id1, false); appErr != nil {
		t.Fatal(appErr)
	}
	if bots, _ := api.GetBots(&model.BotGetOptions{PerPage: 10}); len(bots) != 0 {
		t.Fatalf("deactivated bot listed: %v", bots)
	}
	if bots, _ := api.GetBots(&model.BotGetOptions{PerPage: 10, IncludeDeleted: true}); len(bots) != 1 {
		t.Fatalf("GetBots(IncludeDeleted) = %v", bots)
	}
	if _, appErr := api.CreateBot(&model.Bot{Username: "bridge"}); appErr == nil {
		t.Fatal("duplicate bot username accepted")
	}
}

func TestSharedChannelRegistration(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t, WithSharedChannels())
	creator := f.user.Id
	r1, err := api.RegisterPluginForSharedChannels(model.RegisterPluginOpts{Displayname: "Matrix", CreatorID: creator, SiteURL: "https://matrix.example"})
	if err != nil {
		t.Fatal(err)
	}
	r1again, err := api.RegisterPluginForSharedChannels(model.RegisterPluginOpts{Displayname: "Matrix", CreatorID: creator, SiteURL: "https://matrix.example"})
	if err != nil || r1again != r1 {
		t.Fatalf("re-registration: %q %v", r1again, err)
	}
	r2, err := api.RegisterPluginForSharedChannels(model.RegisterPluginOpts{Displayname: "XMPP", CreatorID: creator, SiteURL: "xmpp://xmpp.example"})
	if err != nil || r2 == r1 {
		t.Fatalf("second network: %q %v", r2, err)
	}
	other := f.s.Node(0).API("com.example.other")
	if _, err := other.RegisterPluginForSharedChannels(model.RegisterPluginOpts{Displayname: "Matrix", CreatorID: creator, SiteURL: "https://matrix.example"}); err == nil {
		t.Fatal("another plugin took a registered SiteURL")
	}

	if err := api.InviteRemoteToChannel(f.ch.Id, r1, creator, true); err != nil {
		t.Fatal(err)
	}
	if sc := f.s.SharedChannel(f.ch.Id); sc == nil || !sc.Home || sc.ShareName != f.ch.Name {
		t.Fatalf("shared channel = %+v", sc)
	}
	if ch := f.s.Channel(f.ch.Id); !ch.IsShared() {
		t.Fatal("channel not flagged shared")
	}
	if remotes := f.s.SharedChannelRemotes(f.ch.Id); len(remotes) != 1 || remotes[0].RemoteId != r1 {
		t.Fatalf("remotes = %+v", remotes)
	}
	if sc, err := api.ShareChannel(&model.SharedChannel{ChannelId: f.ch.Id, ShareName: "x", CreatorId: creator, Home: true}); err != nil || sc.ShareName != f.ch.Name {
		t.Fatalf("sharing a shared channel again: %+v, %v; want its record unchanged", sc, err)
	}
	if err := api.UnregisterPluginRemoteForSharedChannels(r1); err != nil {
		t.Fatal(err)
	}
	if f.s.SharedChannel(f.ch.Id) != nil {
		t.Fatal("channel still shared after its only remote was removed")
	}
	if !slices.ContainsFunc(f.s.ChannelPosts(f.ch.Id), func(p *model.Post) bool {
		return p.Type == model.PostTypeSystemGeneric && p.Message == unshareMessage && p.UserId == creator
	}) {
		t.Fatal("no note in the channel that it is no longer shared")
	}
	unshared, err := api.UnshareChannel(f.ch.Id)
	if err != nil || unshared {
		t.Fatalf("UnshareChannel of an unshared channel: %v %v", unshared, err)
	}
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	admin := f.s.CreateUser("root", true)
	if !api.HasPermissionTo(admin.Id, model.PermissionManageSystem) {
		t.Fatal("admin lacks manage_system")
	}
	if api.HasPermissionTo(f.user.Id, model.PermissionManageSystem) {
		t.Fatal("user has manage_system")
	}
	if !api.HasPermissionToChannel(f.user.Id, f.ch.Id, model.PermissionCreatePost) {
		t.Fatal("member cannot post")
	}
	outsider := f.s.CreateUserWith(&model.User{Username: "outsider", Email: "outsider@example.com", Password: "password1"})
	if api.HasPermissionToChannel(outsider.Id, f.ch.Id, model.PermissionCreatePost) {
		t.Fatal("non-member can post")
	}
	if _, appErr := f.s.Node(0).CreatePost(&model.Post{UserId: outsider.Id, ChannelId: f.ch.Id, Message: "x"}); appErr == nil || appErr.StatusCode != http.StatusForbidden {
		t.Fatalf("outsider post: %v", appErr)
	}
	if _, appErr := api.AddChannelMember(f.ch.Id, outsider.Id); appErr == nil {
		t.Fatal("a user outside the team joined a team channel")
	}
}

func TestMembershipPostsSystemMessages(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	bob := f.s.CreateUser("bob", false)
	if _, appErr := api.AddChannelMember(f.ch.Id, bob.Id); appErr != nil {
		t.Fatal(appErr)
	}
	if _, appErr := api.AddChannelMember(f.ch.Id, bob.Id); appErr != nil {
		t.Fatal(appErr)
	}
	if appErr := api.DeleteChannelMember(f.ch.Id, bob.Id); appErr != nil {
		t.Fatal(appErr)
	}
	var types []string
	for _, p := range f.s.ChannelPosts(f.ch.Id) {
		types = append(types, p.Type)
	}
	if !slices.Equal(types, []string{model.PostTypeJoinChannel, model.PostTypeLeaveChannel}) {
		t.Fatalf("system messages = %v", types)
	}

	quiet, qapi := newAPIFixture(t, WithoutSystemMessages())
	carol := quiet.s.CreateUser("carol", false)
	if _, appErr := qapi.AddChannelMember(quiet.ch.Id, carol.Id); appErr != nil {
		t.Fatal(appErr)
	}
	if n := len(quiet.s.ChannelPosts(quiet.ch.Id)); n != 0 {
		t.Fatalf("%d system messages with WithoutSystemMessages", n)
	}
}

func TestKVAndConfigThroughTheAPI(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	if ok, appErr := api.KVCompareAndSet("k", nil, []byte("v1")); !ok || appErr != nil {
		t.Fatalf("insert: %v %v", ok, appErr)
	}
	if ok, _ := api.KVCompareAndSet("k", []byte("stale"), []byte("v2")); ok {
		t.Fatal("CAS with a stale value succeeded")
	}
	if keys, _ := api.KVList(0, 10); !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("keys = %v", keys)
	}
	if v, _ := f.s.Node(0).API(testPluginID).KVGet("k"); string(v) != "v1" {
		t.Fatalf("KVGet = %q", v)
	}
	var cfg struct{ Setting string }
	if err := f.s.SetPluginSettings(map[string]any{"setting": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := api.LoadPluginConfiguration(&cfg); err != nil || cfg.Setting != "x" {
		t.Fatalf("LoadPluginConfiguration = %+v %v", cfg, err)
	}
	if api.GetServerVersion() != model.CurrentVersion || api.GetLicense() != nil {
		t.Fatal("server version or license")
	}
	if p, err := api.GetBundlePath(); err != nil || !strings.HasSuffix(p, testPluginID) {
		t.Fatalf("GetBundlePath = %q %v", p, err)
	}
	if site := api.GetConfig().ServiceSettings.SiteURL; site == nil || *site != DefaultSiteURL {
		t.Fatalf("SiteURL = %v", site)
	}
}

func TestFailKV(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	if appErr := api.KVSet("k", []byte("v")); appErr != nil {
		t.Fatal(appErr)
	}
	f.s.FailKV(4, "disk full")
	failed := func(method string, appErr *model.AppError) {
		t.Helper()
		if appErr == nil || appErr.Id != KVFaultID || appErr.Message != "disk full" || appErr.Where != method ||
			appErr.StatusCode != http.StatusInternalServerError {
			t.Fatalf("%s: %#v", method, appErr)
		}
	}
	failed("KVSet", api.KVSet("k", []byte("changed")))
	_, appErr := api.KVGet("k")
	failed("KVGet", appErr)
	// The test's own view of the store neither fails nor uses up failures.
	if v, appErr := f.s.KVStore().Get(testPluginID, "k"); appErr != nil || string(v) != "v" {
		t.Fatalf("the store changed: %q %v", v, appErr)
	}
	if left := f.s.KVFaultsLeft(); left != 2 {
		t.Fatalf("%d failures left, want 2", left)
	}
	_, appErr = api.KVList(0, 10)
	failed("KVList", appErr)
	ok, appErr := api.KVCompareAndSet("k", []byte("v"), []byte("w"))
	failed("KVCompareAndSet", appErr)
	if ok || f.s.KVFaultsLeft() != 0 {
		t.Fatalf("CAS reported success, or failures left: %d", f.s.KVFaultsLeft())
	}
	if v, appErr := api.KVGet("k"); appErr != nil || string(v) != "v" {
		t.Fatalf("after the failures: %q %v", v, appErr)
	}

	f.s.FailKV(5, "gone")
	f.s.FailKV(0, "")
	if appErr := api.KVDelete("k"); appErr != nil {
		t.Fatalf("after cancelling: %v", appErr)
	}

	// Concurrent calls: exactly n fail.
	f.s.FailKV(25, "busy")
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for range 100 {
		wg.Go(func() {
			if _, appErr := api.KVSetWithOptions("c", []byte("x"), model.PluginKVSetOptions{}); appErr != nil {
				mu.Lock()
				failures++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failures != 25 {
		t.Fatalf("%d concurrent calls failed, want 25", failures)
	}
}

// Email-domain limits, as the server applies them: CreateUser refuses a
// user outside TeamSettings.RestrictCreationToDomains
// (users.UserService.CreateUser), and a team member must match both the
// team's AllowedDomains and RestrictCreationToDomains
// (teams.TeamService.IsTeamEmailAllowed; bots are exempt).
func TestEmailDomainLimitsLikeTheServer(t *testing.T) {
	t.Parallel()
	f, api := newAPIFixture(t)
	if err := f.s.UpdateConfig(func(c *model.Config) {
		c.TeamSettings.RestrictCreationToDomains = model.NewPointer("example.com, @corp.example")
	}); err != nil {
		t.Fatal(err)
	}
	_, appErr := api.CreateUser(&model.User{Username: "eve", Email: "eve@elsewhere.invalid", Password: "password1"})
	if appErr == nil || appErr.Id != "api.user.create_user.accepted_domain.app_error" || appErr.StatusCode != http.StatusBadRequest {
		t.Fatalf("CreateUser outside the domains = %v", appErr)
	}
	if _, appErr = api.CreateUser(&model.User{Username: "carl", Email: "carl@corp.example", Password: "password1"}); appErr != nil {
		t.Fatalf("CreateUser inside the domains: %v", appErr)
	}
	// A user made before the restriction cannot join a team under it.
	if err := f.s.UpdateConfig(func(c *model.Config) { c.TeamSettings.RestrictCreationToDomains = model.NewPointer("") }); err != nil {
		t.Fatal(err)
	}
	outsider, appErr := api.CreateUser(&model.User{Username: "olga", Email: "olga@elsewhere.invalid", Password: "password1"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	team := f.s.CreateTeam("walled")
	f.s.UpdateTeamAllowedDomains(team.Id, "example.com")
	_, appErr = api.CreateTeamMember(team.Id, outsider.Id)
	if appErr == nil || appErr.Id != "api.team.join_user_to_team.allowed_domains.app_error" || appErr.StatusCode != http.StatusBadRequest {
		t.Fatalf("CreateTeamMember outside the team's domains = %v", appErr)
	}
	if _, appErr = api.CreateTeamMember(team.Id, f.user.Id); appErr != nil {
		t.Fatalf("CreateTeamMember inside the team's domains: %v", appErr)
	}
}
