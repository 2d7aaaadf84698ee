// Package hostcheck is the implementation of the test host's test plugin:
// built as a separate process (../main.go) or run in-process, it exercises
// activation, hooks, the API, the KV store, cluster events and
// configuration.
package hostcheck

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// ID is the plugin's ID.
const ID = "com.mattermost.testhost.hostcheck"

// Manifest is the plugin's manifest (without server executables).
func Manifest() *model.Manifest {
	return &model.Manifest{
		Id:               ID,
		Name:             "Test host check",
		Version:          "0.0.1",
		MinServerVersion: "11.0.0",
		SettingsSchema: &model.PluginSettingsSchema{
			Settings: []*model.PluginSetting{
				{Key: "Greeting", Type: "text", Default: "hello"},
				{Key: "Secret", Type: "text", Default: "", Secret: true},
			},
		},
	}
}

type config struct {
	Greeting string
	Secret   string
}

// Plugin is the test plugin.
type Plugin struct {
	plugin.MattermostPlugin

	mu       sync.Mutex
	instance string
	botID    string
	cfg      config
}

// New returns a fresh plugin instance.
func New() *Plugin { return &Plugin{} }

func (p *Plugin) OnActivate() error {
	p.mu.Lock()
	p.instance = model.NewId()
	instance := p.instance
	p.mu.Unlock()
	fmt.Fprintln(os.Stderr, "hostcheck stderr: activating", instance)
	p.API.LogInfo("hostcheck activated", "instance", instance)
	p.mu.Lock()
	fail := p.cfg.Greeting == "fail-activation"
	p.mu.Unlock()
	if fail {
		return fmt.Errorf("hostcheck: activation refused by configuration")
	}

	botID, err := p.API.EnsureBotUser(&model.Bot{Username: "hostcheck", DisplayName: "Host Check"})
	if err != nil {
		return fmt.Errorf("ensuring the bot: %w", err)
	}
	p.mu.Lock()
	p.botID = botID
	p.mu.Unlock()
	if err := p.API.RegisterCommand(&model.Command{Trigger: "hostcheck", AutoComplete: true, DisplayName: "Host check"}); err != nil {
		return err
	}
	if appErr := p.API.KVSet("activated:"+instance, []byte("1")); appErr != nil {
		return appErr
	}
	return nil
}

func (p *Plugin) OnDeactivate() error {
	if appErr := p.API.KVSet("deactivated:"+p.id(), []byte("1")); appErr != nil {
		return appErr
	}
	return nil
}

func (p *Plugin) OnConfigurationChange() error {
	var c config
	if err := p.API.LoadPluginConfiguration(&c); err != nil {
		return err
	}
	if c.Greeting == "fail" {
		return fmt.Errorf("refusing greeting %q", c.Greeting)
	}
	p.mu.Lock()
	p.cfg = c
	p.mu.Unlock()
	return nil
}

func (p *Plugin) id() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.instance
}

func (p *Plugin) bot() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.botID
}

func (p *Plugin) ExecuteCommand(_ *plugin.Context, args *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	fields := strings.Fields(args.Command)
	sub, rest := "", ""
	if len(fields) > 1 {
		sub = fields[1]
		rest = strings.Join(fields[2:], " ")
	}
	reply := func(text string) (*model.CommandResponse, *model.AppError) {
		return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral, Text: text}, nil
	}
	switch sub {
	case "echo":
		return reply(fmt.Sprintf("echo: %s (user=%s channel=%s team=%s root=%s site=%s)",
			rest, args.UserId, args.ChannelId, args.TeamId, args.RootId, args.SiteURL))
	case "whoami":
		return reply(p.id())
	case "bot":
		return reply(p.bot())
	case "config":
		p.mu.Lock()
		defer p.mu.Unlock()
		return reply(p.cfg.Greeting)
	case "kvset":
		kv := strings.SplitN(rest, " ", 2)
		if len(kv) != 2 {
			return reply("usage: kvset key value")
		}
		if appErr := p.API.KVSet(kv[0], []byte(kv[1])); appErr != nil {
			return nil, appErr
		}
		return reply("ok")
	case "kvget":
		v, appErr := p.API.KVGet(rest)
		if appErr != nil {
			return nil, appErr
		}
		return reply(string(v))
	case "unimplemented":
		// GetGroup is one of the methods the host does not implement.
		_, appErr := p.API.GetGroup(model.NewId())
		if appErr == nil {
			return reply("no error")
		}
		return reply(appErr.Error())
	case "post":
		post, appErr := p.API.CreatePost(&model.Post{UserId: p.bot(), ChannelId: args.ChannelId, Message: rest})
		if appErr != nil {
			return nil, appErr
		}
		return reply(post.Id)
	case "cluster":
		if err := p.API.PublishPluginClusterEvent(model.PluginClusterEvent{Id: "hostcheck", Data: []byte(rest)}, model.PluginClusterEventSendOptions{}); err != nil {
			return reply("error: " + err.Error())
		}
		return reply("sent")
	case "log":
		p.API.LogInfo("hostcheck log", "value", rest)
		return reply("logged")
	case "inchannel":
		return &model.CommandResponse{ResponseType: model.CommandResponseTypeInChannel, Text: rest}, nil
	case "nil":
		return nil, nil
	case "crash":
		go func() {
			time.Sleep(100 * time.Millisecond)
			panic("hostcheck: crash requested")
		}()
		return reply("crashing")
	case "race":
		// A deliberate data race, for the race detector in a -race build.
		var x int
		done := make(chan bool)
		go func() { x++; done <- true }()
		x++
		<-done
		return reply(fmt.Sprint("raced ", x))
	default:
		return reply("unknown subcommand " + sub)
	}
}

// MessageWillBePosted rejects posts containing "reject-me" and rewrites
// "rewrite-me" to "rewritten".
func (p *Plugin) MessageWillBePosted(_ *plugin.Context, post *model.Post) (*model.Post, string) {
	if strings.Contains(post.Message, "reject-me") {
		return nil, "rejected by hostcheck"
	}
	if strings.Contains(post.Message, "rewrite-me") {
		post.Message = strings.ReplaceAll(post.Message, "rewrite-me", "rewritten")
		return post, ""
	}
	return nil, ""
}

// MessageHasBeenPosted records every post it sees, its own included.
func (p *Plugin) MessageHasBeenPosted(_ *plugin.Context, post *model.Post) {
	key := "posted:" + post.Id
	if post.UserId == p.bot() {
		key = "posted-own:" + post.Id
	}
	_ = p.API.KVSet(key, []byte(post.Message))
}

func (p *Plugin) MessageHasBeenUpdated(_ *plugin.Context, newPost, oldPost *model.Post) {
	_ = p.API.KVSet("updated:"+newPost.Id, []byte(oldPost.Message+" -> "+newPost.Message))
}

func (p *Plugin) MessageHasBeenDeleted(_ *plugin.Context, post *model.Post) {
	_ = p.API.KVSet("deleted:"+post.Id, []byte(post.Message))
}

func (p *Plugin) ReactionHasBeenAdded(_ *plugin.Context, r *model.Reaction) {
	_ = p.API.KVSet("reacted:"+r.PostId+":"+r.EmojiName, []byte(r.UserId))
}

func (p *Plugin) ReactionHasBeenRemoved(_ *plugin.Context, r *model.Reaction) {
	_ = p.API.KVSet("unreacted:"+r.PostId+":"+r.EmojiName, []byte(r.UserId))
}

func (p *Plugin) OnPluginClusterEvent(_ *plugin.Context, ev model.PluginClusterEvent) {
	_ = p.API.KVSet("cluster:"+p.id(), ev.Data)
}

// ServeMetrics answers with what reached it, for the host's check of the
// metrics listener.
func (p *Plugin) ServeMetrics(c *plugin.Context, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "metrics path=%q user=%q session=%q", r.URL.Path, r.Header.Get("Mattermost-User-ID"), c.SessionId)
}

func (p *Plugin) ServeHTTP(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Hostcheck", "1")
	switch r.URL.Path {
	case "/teapot":
		w.WriteHeader(http.StatusTeapot)
	case "/echo": // what reached the plugin
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s query=%s auth=%s referer=%s cookie=%s body=%s", r.Method, r.URL.RawQuery,
			r.Header.Get("Authorization"), r.Header.Get("Referer"), r.Header.Get("Cookie"), body)
		return
	case "/kv": // stores the body under ?key=, to see that a request got through
		body, _ := io.ReadAll(r.Body)
		if appErr := p.API.KVSet(r.URL.Query().Get("key"), body); appErr != nil {
			http.Error(w, appErr.Message, http.StatusInternalServerError)
			return
		}
	}
	fmt.Fprintf(w, "user=%s path=%s", r.Header.Get("Mattermost-User-ID"), r.URL.Path)
}
