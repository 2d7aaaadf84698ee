package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxUpload bounds what the upload URL reads, so a broken client cannot
// fill the test's memory.
const maxUpload = 64 << 20

// Files follow Slack's external upload flow (files.upload is retired):
// files.getUploadURLExternal reserves a file ID and an upload URL, the
// client POSTs the bytes there (raw or multipart; no token needed, the URL
// is the credential), and files.completeUploadExternal finishes the file
// and shares it into a channel, optionally in a thread with a comment.

// newFileLocked creates a file record; its bytes may come later.
func (s *Server) newFileLocked(user, name string, size int) *File {
	ext := strings.TrimPrefix(path.Ext(name), ".")
	mt := mime.TypeByExtension(path.Ext(name))
	if mt == "" {
		mt = "application/octet-stream"
	}
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	if ext == "" {
		ext = "binary"
	}
	f := &File{
		ID: s.ws.newID('F'), Name: name, Title: name, Mimetype: mt, Filetype: strings.ToLower(ext),
		Size: size, User: user, Created: time.Now().Unix(),
	}
	f.URLPrivate = s.URL + "/files-pri/" + s.ws.team.ID + "-" + f.ID + "/" + url.PathEscape(path.Base(name))
	s.ws.files[f.ID] = f
	return f
}

func (s *Server) filesGetUploadURLExternal(r *request) answer {
	name := r.get("filename")
	size, err := strconv.Atoi(r.get("length"))
	if name == "" || r.get("length") == "" {
		return errAnswer("invalid_arguments")
	}
	if err != nil || size <= 0 {
		// The reference's missing_argument: "Typically only occurs when the
		// length provided is 0."
		return errAnswer("missing_argument")
	}
	f := s.newFileLocked(s.botUser, name, size)
	f.AltText = r.get("alt_txt")
	ticket := randomHex(24)
	s.uploads[ticket] = f.ID
	return okAnswer(answer{"upload_url": s.URL + "/upload/v1/" + ticket, "file_id": f.ID})
}

// serveUpload takes the file's bytes at the upload URL.
func (s *Server) serveUpload(w http.ResponseWriter, hr *http.Request) {
	if hr.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ticket := strings.TrimPrefix(hr.URL.Path, "/upload/v1/")
	content, err := readUpload(hr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.ws.files[s.uploads[ticket]]
	if f == nil {
		http.NotFound(w, hr)
		return
	}
	f.Content = content
	f.Size = len(content)
	f.uploaded = true
	s.notifyLocked()
	_, _ = fmt.Fprintf(w, "OK - %d", len(content))
}

// readUpload reads raw bytes, or the first file part of a multipart form
// (Slack accepts either).
func readUpload(hr *http.Request) ([]byte, error) {
	body := io.LimitReader(hr.Body, maxUpload)
	mt, params, _ := mime.ParseMediaType(hr.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return io.ReadAll(body)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("no file in the multipart upload: %w", err)
		}
		if part.FileName() != "" {
			return io.ReadAll(part)
		}
	}
}

func (s *Server) filesCompleteUploadExternal(r *request) answer {
	var list []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if json.Unmarshal([]byte(r.get("files")), &list) != nil || len(list) == 0 {
		return errAnswer("invalid_arguments")
	}
	var files []*File
	for _, item := range list {
		f := s.ws.files[item.ID]
		if f == nil || f.User != s.botUser || f.completed {
			return errAnswer("file_not_found")
		}
		if !f.uploaded {
			return errAnswer("file_upload_not_complete")
		}
		files = append(files, f)
	}
	channelID := r.get("channel_id")
	if channelID == "" && r.get("channels") != "" {
		channelID, _, _ = strings.Cut(r.get("channels"), ",")
	}
	var c *Channel
	if channelID != "" {
		var code string
		if c, code = s.botChannel(r, channelID, false); code != "" {
			return errAnswer(code)
		}
	}
	var m *Message
	if c != nil {
		m = &Message{Channel: c.ID, Text: r.get("initial_comment"), User: s.botUser, BotID: s.botID, AppID: s.appID, Subtype: "file_share"}
		if ts := r.get("thread_ts"); ts != "" {
			parent := s.ws.message(c.ID, ts)
			if parent == nil {
				return errAnswer("thread_not_found")
			}
			m.ThreadTS = parent.TS
			if parent.isReply() {
				m.ThreadTS = parent.ThreadTS
			}
		}
		if blocks, ok := parseBlocks(r.get("blocks")); ok && m.Text == "" {
			m.Blocks = blocks
		}
	}
	out := make([]map[string]any, 0, len(files))
	for i, f := range files {
		if list[i].Title != "" {
			f.Title = list[i].Title
		}
		f.completed = true
		if c != nil {
			f.Channels = append(f.Channels, c.ID)
			m.fileIDs = append(m.fileIDs, f.ID)
		}
		out = append(out, s.fileJSON(f))
	}
	if m != nil {
		m.TS = s.ws.nextTS()
		s.ws.addMessage(m)
		s.emitNewMessageLocked(m)
	}
	return okAnswer(answer{"files": out})
}

func (s *Server) filesInfo(r *request) answer {
	f := s.ws.files[r.get("file")]
	if f == nil || !f.completed || !s.botMaySeeLocked(f) {
		return errAnswer("file_not_found")
	}
	return okAnswer(answer{"file": s.fileJSON(f), "comments": []any{}, "response_metadata": map[string]any{"next_cursor": ""}})
}

// botMaySeeLocked: the bot sees its own files and those shared where it is.
func (s *Server) botMaySeeLocked(f *File) bool {
	if f.User == s.botUser {
		return true
	}
	return slices.ContainsFunc(f.Channels, func(id string) bool {
		c := s.ws.channels[id]
		return c != nil && (isMember(c, s.botUser) || !c.Private)
	})
}

// serveFile serves url_private. Without a bot token that may read files,
// files.slack.com redirects to the workspace's sign-in page with the file's
// path as redir (slack-go's GetFile recognises that redirect); the test
// server does the same.
func (s *Server) serveFile(w http.ResponseWriter, hr *http.Request) {
	rest := strings.TrimPrefix(hr.URL.Path, "/files-pri/")
	teamFile, _, _ := strings.Cut(rest, "/")
	_, fileID, _ := strings.Cut(teamFile, "-")
	token, _ := strings.CutPrefix(hr.Header.Get("Authorization"), "Bearer ")

	s.mu.Lock()
	tok := s.lookupToken(strings.TrimSpace(token))
	f := s.ws.files[fileID]
	allowed := tok != nil && tok.kind == botToken && tok.failure == "" && slices.Contains(tok.scopes, "files:read") &&
		f != nil && f.completed && s.botMaySeeLocked(f)
	var content []byte
	var mt string
	if allowed {
		content, mt = f.Content, f.Mimetype
	}
	s.mu.Unlock()

	if !allowed {
		http.Redirect(w, hr, s.URL+"/signin?redir="+url.QueryEscape(hr.URL.Path), http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	_, _ = w.Write(content)
}

// serveSignin stands in for the workspace's sign-in page.
func (s *Server) serveSignin(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>Sign in to Slack Test</body></html>")
}
