package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

const (
	// userTTL: names and pictures change rarely, and user_change brings
	// the changes the bot sees; the expiry catches the rest.
	userTTL = time.Hour
	// failedTTL keeps a failing users.info from being asked on every
	// message.
	failedTTL = time.Minute
	// maxAvatar bounds a profile picture fetched for Mattermost.
	maxAvatar = 5 << 20
)

type userEntry struct {
	s  bridge.Sender
	at time.Time
	ok bool
}

type nameEntry struct {
	name string
	at   time.Time
}

// person is a Slack user as a Sender: name, real name and picture from
// users.info, cached.
func (b *Bridge) person(ctx context.Context, id string) bridge.Sender {
	b.mu.Lock()
	e, ok := b.users[id]
	b.mu.Unlock()
	if ok && (time.Since(e.at) < userTTL && e.ok || time.Since(e.at) < failedTTL) {
		return e.s
	}
	u, err := b.api.GetUserInfoContext(ctx, id)
	if err != nil {
		err = b.wrap("users.info", err)
		b.log.Warn("Could not look up a Slack user", "user", cleanCode(strings.ToLower(id)), "error", err.Error())
		s := bridge.Sender{Network: bridge.NetworkSlack, ID: b.remoteID(id), Username: id}
		if ok {
			s = e.s // a stale name beats none
		}
		b.cacheUser(id, userEntry{s: s, at: time.Now()})
		return s
	}
	s := b.senderFromUser(u)
	b.cacheUser(id, userEntry{s: s, at: time.Now(), ok: true})
	return s
}

func (b *Bridge) cacheUser(id string, e userEntry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.users) > 10000 {
		clear(b.users) // a bound, not a policy: entries come back on use
	}
	b.users[id] = e
}

func (b *Bridge) senderFromUser(u *slack.User) bridge.Sender {
	display := u.Profile.DisplayName
	if u.Profile.RealName != "" {
		display = u.Profile.RealName
	} else if u.RealName != "" {
		display = u.RealName
	}
	s := bridge.Sender{
		Network: bridge.NetworkSlack, ID: b.remoteID(u.ID),
		Username: u.Name, DisplayName: display,
	}
	if pic := u.Profile.Image192; pic != "" {
		s.AvatarURL, s.AvatarHash = pic, pic
		s.Avatar = func(ctx context.Context) ([]byte, error) { return b.fetchAvatar(ctx, pic) }
	}
	return s
}

// userChanged takes a user_change's user into the cache.
func (b *Bridge) userChanged(raw json.RawMessage) {
	var u slack.User
	if err := json.Unmarshal(raw, &u); err != nil || u.ID == "" {
		b.malformed.Add(1)
		return
	}
	if u.TeamID != "" && u.TeamID != b.identity().teamID {
		return
	}
	b.cacheUser(u.ID, userEntry{s: b.senderFromUser(&u), at: time.Now(), ok: true})
}

// senderOf is who wrote a message: a person, or a bot under the name it
// posted with.
func (b *Bridge) senderOf(ctx context.Context, m *message) bridge.Sender {
	if m.User != "" && m.Subtype != "bot_message" {
		return b.person(ctx, m.User)
	}
	if m.BotID != "" {
		name := m.Username
		if name == "" && m.BotProfile != nil {
			name = m.BotProfile.Name
		}
		if name == "" {
			name = m.BotID
		}
		return bridge.Sender{Network: bridge.NetworkSlack, ID: b.remoteID(m.BotID), Username: name, DisplayName: name}
	}
	if m.User != "" {
		return b.person(ctx, m.User)
	}
	return bridge.Sender{Network: bridge.NetworkSlack}
}

// channelName is a channel's name from conversations.info, cached.
func (b *Bridge) channelName(ctx context.Context, id string) string {
	b.mu.Lock()
	e, ok := b.chNames[id]
	b.mu.Unlock()
	if ok && time.Since(e.at) < userTTL {
		return e.name
	}
	ch, err := b.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	name := ""
	if err == nil {
		name = ch.Name
	}
	b.mu.Lock()
	if len(b.chNames) > 10000 {
		clear(b.chNames)
	}
	b.chNames[id] = nameEntry{name: name, at: time.Now()}
	b.mu.Unlock()
	return name
}

// slackHost reports whether a URL from an event may be fetched with the
// bot token: only Slack's own hosts (or the configured API's, in tests).
// A URL elsewhere would hand the token to whoever wrote the event.
func (b *Bridge) slackHost(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if b.cfg.APIURL != "" {
		if api, err := url.Parse(b.cfg.APIURL); err == nil && api.Host == u.Host && api.Scheme == u.Scheme {
			return true
		}
	}
	h := u.Hostname()
	return u.Scheme == "https" && (h == "slack.com" || strings.HasSuffix(h, ".slack.com") ||
		strings.HasSuffix(h, ".slack-edge.com") || strings.HasSuffix(h, ".slack-files.com"))
}

// attachments are a message's files, fetched with the bot token when a
// destination reads them.
func (b *Bridge) attachments(files []file) []bridge.Attachment {
	var out []bridge.Attachment
	for _, f := range files {
		link := f.URLPrivateDownload
		if link == "" {
			link = f.URLPrivate
		}
		if link == "" || !b.slackHost(link) {
			b.log.Warn("Skipping a Slack file without a Slack download URL", "file", cleanCode(strings.ToLower(f.ID)))
			continue
		}
		name := f.Name
		if name == "" {
			name = f.Title
		}
		if name == "" {
			name = f.ID
		}
		out = append(out, bridge.Attachment{
			Name: name, MIMEType: f.Mimetype, Size: f.Size,
			Open: func(ctx context.Context) (io.ReadCloser, error) {
				return b.download(ctx, link, b.cfg.MaxFileSize, true)
			},
		})
	}
	return out
}

// download fetches a Slack URL, with the bot token when auth is set, and
// fails once more than limit bytes came (0: no limit).
func (b *Bridge) download(ctx context.Context, link string, limit int64, auth bool) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, http.NoBody)
	if err != nil {
		return nil, errors.New("slack: invalid file URL")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+b.cfg.BotToken)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, b.wrap("file download", err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden {
			return nil, bridge.Permanentf("slack: the file is gone or not visible to the bot (HTTP %d)", resp.StatusCode)
		}
		return nil, fmt.Errorf("slack: file download failed with HTTP status %d", resp.StatusCode)
	}
	if limit > 0 && resp.ContentLength > limit {
		_ = resp.Body.Close()
		return nil, bridge.Dropf(bridge.ReasonTooLarge, "slack: the file is larger than %d bytes", limit)
	}
	return &limitedBody{rc: resp.Body, left: limit, limited: limit > 0}, nil
}

type limitedBody struct {
	rc      io.ReadCloser
	left    int64
	limited bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.limited && l.left < 0 {
		return 0, bridge.Dropf(bridge.ReasonTooLarge, "slack: the file is larger than allowed")
	}
	n, err := l.rc.Read(p)
	if l.limited {
		l.left -= int64(n)
		if l.left < 0 {
			return 0, bridge.Dropf(bridge.ReasonTooLarge, "slack: the file is larger than allowed")
		}
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }

// fetchAvatar reads a profile picture. Slack serves them publicly from
// its CDN, so no token goes with the request; a URL off Slack's hosts is
// not fetched at all.
func (b *Bridge) fetchAvatar(ctx context.Context, link string) ([]byte, error) {
	if !b.slackHost(link) {
		return nil, errors.New("slack: the profile picture is not on a Slack host")
	}
	rc, err := b.download(ctx, link, maxAvatar, false)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
