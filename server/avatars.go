package main

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/avatarurl"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// pluginURL is where the server serves the plugin's HTTP routes, or a
// SetupError when the Site URL is not set.
func (p *Plugin) pluginURL() (string, error) {
	var siteURL string
	if cfg := p.API.GetConfig(); cfg != nil && cfg.ServiceSettings.SiteURL != nil {
		siteURL = strings.TrimRight(strings.TrimSpace(*cfg.ServiceSettings.SiteURL), "/")
	}
	if siteURL == "" {
		return "", connector.SetupError("Set the Site URL in System Console > Environment > Web Server first: " +
			"the remote server reaches the bridge at <Site URL>/plugins/" + manifest.Id + ".")
	}
	return siteURL + "/plugins/" + manifest.Id, nil
}

// avatarSigner holds the signer made from the installation's secret, which
// never changes; it is read again only after a failed read.
type avatarSigner struct {
	mu     sync.Mutex
	signer *avatarurl.Signer
}

func (a *avatarSigner) get(st *store.Store) (avatarurl.Signer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.signer == nil {
		secret, err := st.InstanceSecret()
		if err != nil {
			return avatarurl.Signer{}, err
		}
		s := avatarurl.New(secret)
		a.signer = &s
	}
	return *a.signer, nil
}

// avatarURL is the public URL of a Mattermost author's picture, for
// networks that fetch pictures by URL; "" for other senders, or when the
// Site URL is not set (the network then shows its default picture).
func (p *Plugin) avatarURL(rt *runtime, s bridge.Sender) string {
	if s.Network != bridge.NetworkMattermost || s.AvatarHash == "" {
		return ""
	}
	base, err := p.pluginURL()
	if err != nil {
		return ""
	}
	signer, err := rt.node.avatars.get(rt.store)
	if err != nil {
		return ""
	}
	path := signer.Path(s.ID, s.AvatarHash)
	if path == "" {
		return ""
	}
	return base + path
}

// servedPictureTypes are the image types served; anything else stays
// unserved, so the plugin's origin never hands out a script or an SVG.
var servedPictureTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// serveAvatar answers an avatar URL made by avatarURL, on any node,
// without a session:
// the signature is the permission. Anything else is 404, so a forged path
// learns nothing, not even whether the user exists.
func (p *Plugin) serveAvatar(w http.ResponseWriter, r *http.Request) {
	n := p.currentNode()
	if n == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	signer, err := n.avatars.get(n.store)
	if err != nil {
		http.Error(w, "the picture cannot be served right now", http.StatusServiceUnavailable)
		return
	}
	userID, version, ok := signer.Parse(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	user, appErr := p.API.GetUser(userID)
	if appErr != nil || user.DeleteAt != 0 {
		http.NotFound(w, r)
		return
	}
	data, appErr := p.API.GetProfileImage(userID)
	if appErr != nil {
		http.NotFound(w, r)
		return
	}
	ctype := http.DetectContentType(data)
	if !servedPictureTypes[ctype] {
		http.NotFound(w, r)
		return
	}
	// The URL names the picture's version: the current one never changes
	// under it, an older one is answered with today's picture for a while.
	if version == strconv.FormatInt(user.LastPictureUpdate, 10) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=3600")
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(data)
	}
}
