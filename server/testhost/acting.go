package testhost

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// The methods in this file act as a user making a request to this node's
// REST API: state changes go through the same code as the plugin API (with
// the user's permissions checked), and the hooks a real server fires run on
// this node's plugins.

// CreatePost posts as post.UserId (the post is sanitized like a REST
// request's: no DeleteAt, no RemoteId, no system types); the user needs the
// create_post permission in the channel. MessageWillBePosted runs
// synchronously, MessageHasBeenPosted asynchronously.
func (n *Node) CreatePost(post *model.Post) (*model.Post, *model.AppError) {
	if post == nil {
		return nil, badRequest("CreatePost", "api.context.invalid_body_param.app_error", "post is nil")
	}
	return n.createPost(post, origin{userID: post.UserId})
}

// UpdatePost edits a post as userID (the author, or someone with
// edit_others_posts). MessageWillBeUpdated runs synchronously,
// MessageHasBeenUpdated asynchronously.
func (n *Node) UpdatePost(userID string, post *model.Post) (*model.Post, *model.AppError) {
	return n.updatePost(post, origin{userID: userID})
}

// PatchPost changes the message of a post as userID, keeping everything
// else, like the client's "edit" (a convenience over UpdatePost).
func (n *Node) PatchPost(userID, postID, message string) (*model.Post, *model.AppError) {
	p := n.s.Post(postID)
	if p == nil || p.DeleteAt != 0 {
		return nil, notFound("PatchPost", "app.post.get.app_error", "id="+postID)
	}
	p.Message = message
	return n.updatePost(p, origin{userID: userID})
}

// DeletePost deletes a post as userID (the author, or someone with
// delete_others_posts). MessageHasBeenDeleted runs asynchronously.
func (n *Node) DeletePost(userID, postID string) *model.AppError {
	return n.deletePost(postID, origin{userID: userID})
}

// AddReaction reacts as reaction.UserId. ReactionHasBeenAdded runs
// asynchronously.
func (n *Node) AddReaction(reaction *model.Reaction) (*model.Reaction, *model.AppError) {
	if reaction == nil {
		return nil, badRequest("SaveReactionForPost", "api.context.invalid_body_param.app_error", "reaction is nil")
	}
	return n.addReaction(reaction, origin{userID: reaction.UserId})
}

// RemoveReaction removes reaction.UserId's reaction. ReactionHasBeenRemoved
// runs asynchronously.
func (n *Node) RemoveReaction(reaction *model.Reaction) *model.AppError {
	if reaction == nil {
		return badRequest("DeleteReactionForPost", "api.context.invalid_body_param.app_error", "reaction is nil")
	}
	return n.removeReaction(reaction, origin{userID: reaction.UserId})
}

// React is AddReaction for (userID, postID, emoji).
func (n *Node) React(userID, postID, emoji string) (*model.Reaction, *model.AppError) {
	return n.AddReaction(&model.Reaction{UserId: userID, PostId: postID, EmojiName: emoji})
}

// UploadFile uploads a file as userID into a channel (the user must be able
// to upload there); attach it by listing its ID in a post's FileIds.
func (n *Node) UploadFile(userID, channelID, name string, data []byte) (*model.FileInfo, *model.AppError) {
	n.s.mu.RLock()
	ok := n.s.hasPermissionToChannelLocked(userID, channelID, model.PermissionUploadFile)
	n.s.mu.RUnlock()
	if !ok {
		return nil, forbidden("UploadFile", "user "+userID+" may not upload files to channel "+channelID)
	}
	return n.s.uploadFile(userID, channelID, name, data)
}

// AddChannelMember adds a user to a channel as the server does on a join
// (or, with a non-empty requestorID, on an "add member" by that user):
// system message, UserHasJoinedChannel.
func (n *Node) AddChannelMember(channelID, userID, requestorID string) (*model.ChannelMember, *model.AppError) {
	return n.addChannelMember(channelID, userID, requestorID)
}

// LeaveChannel makes a user leave a channel: system message,
// UserHasLeftChannel.
func (n *Node) LeaveChannel(channelID, userID string) *model.AppError {
	return n.leaveChannel(channelID, userID)
}

// AddTeamMember adds a user to a team: default channels, system message,
// UserHasJoinedTeam.
func (n *Node) AddTeamMember(teamID, userID string) (*model.TeamMember, *model.AppError) {
	return n.addTeamMember(teamID, userID, "")
}

// SetPluginSettings is Server.SetPluginSettings (OnConfigurationChange
// fires on every node).
func (n *Node) SetPluginSettings(settings map[string]any) error {
	return n.s.SetPluginSettings(settings)
}

// --- HTTP --------------------------------------------------------------------

// ServeHTTP sends a request to the plugin's ServeHTTP hook on this node,
// like a request to /plugins/<id>/...: any Mattermost-User-ID header sent
// by the client is removed, and set to userID when userID is not empty
// (an authenticated request); a "/plugins/<id>" prefix is stripped from
// the path. Like the server, it also removes the Mattermost-Plugin-ID and
// Referer headers, the session cookie and the access_token query
// parameter, and the Authorization header of an authenticated request (an
// unauthenticated request keeps it: the server passes on a token that is
// not a session's, e.g. a homeserver's). It returns the plugin's response
// (404 if the plugin is not active or does not implement ServeHTTP).
func (n *Node) ServeHTTP(userID string, r *http.Request) *http.Response {
	id := n.s.PluginID()
	rec := newRecorder()
	hooks, err := n.env.HooksForPlugin(id)
	if err != nil {
		http.NotFound(rec, r)
		return rec.result()
	}
	req := r.Clone(context.Background())
	req.Header.Del("Mattermost-User-ID")
	req.Header.Del("Mattermost-Plugin-ID")
	req.Header.Del("Referer")
	cookies := req.Cookies()
	req.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != model.SessionCookieToken {
			req.AddCookie(c)
		}
	}
	q := req.URL.Query()
	q.Del("access_token")
	req.URL.RawQuery = q.Encode() // re-encoded, as the server does
	if userID != "" {
		req.Header.Del("Authorization")
		req.Header.Set("Mattermost-User-ID", userID)
	}
	prefix := "/plugins/" + id
	if p := req.URL.Path; p == prefix || strings.HasPrefix(p, prefix+"/") {
		req.URL.Path = strings.TrimPrefix(p, prefix)
		if req.URL.Path == "" {
			req.URL.Path = "/"
		}
		req.URL.RawPath = ""
	}
	req.RequestURI = req.URL.RequestURI()
	c := n.s.userPluginContext(userID)
	c.IPAddress = req.RemoteAddr
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		c.IPAddress = host // the server's utils.GetIPAddress drops the port
	}
	c.AcceptLanguage = req.Header.Get("Accept-Language")
	c.UserAgent = req.UserAgent()
	hooks.ServeHTTP(c, rec, req)
	return rec.result()
}

// ServeMetrics sends a request for /plugins/<id>/metrics[/...] to that
// plugin's ServeMetrics hook on this node, as the server's metrics
// listener does (platform/metrics.go, servePluginMetricsRequest): the
// "/plugins/<id>/metrics" prefix is trimmed from the path, the hook gets
// an empty plugin context, and the headers are passed as they came (that
// listener has no sessions, so it strips nothing). It answers 404 for
// another path or a plugin that is not active.
func (n *Node) ServeMetrics(r *http.Request) *http.Response {
	rec := newRecorder()
	rest, ok := strings.CutPrefix(r.URL.Path, "/plugins/")
	id, sub, _ := strings.Cut(rest, "/")
	if !ok || (sub != "metrics" && !strings.HasPrefix(sub, "metrics/")) {
		http.NotFound(rec, r)
		return rec.result()
	}
	hooks, err := n.env.HooksForPlugin(id)
	if err != nil {
		http.NotFound(rec, r)
		return rec.result()
	}
	req := r.Clone(context.Background())
	req.URL.Path = strings.TrimPrefix(r.URL.Path, "/plugins/"+id+"/metrics")
	req.URL.RawPath = ""
	hooks.ServeMetrics(&plugin.Context{}, rec, req)
	return rec.result()
}

// recorder is a goroutine-safe http.ResponseWriter: the plugin's writes
// arrive on RPC goroutines.
type recorder struct {
	mu     sync.Mutex
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.header
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) WriteHeader(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) result() *http.Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	body := bytes.Clone(r.body.Bytes())
	h := r.header.Clone()
	if h.Get("Content-Type") == "" && len(body) > 0 {
		h.Set("Content-Type", http.DetectContentType(body))
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
	}
}
