// Package avatarurl makes and checks the public URLs under which the
// plugin shows Mattermost people's profile pictures to networks that fetch
// a picture by URL themselves (Slack's icon_url). Mattermost serves
// pictures to sessions only; these URLs need none, so each one is signed:
// it opens the picture of the one user it names and nothing else, and it
// names the picture's version so a network's cache never keeps an old one.
package avatarurl

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Prefix starts every avatar path under the plugin's URL.
const Prefix = "/public/avatar/"

// sigLen is the signature's length in base64url characters (128 bits).
const sigLen = 22

// Signer signs and checks avatar paths with a key derived from the
// installation's secret, so the secret itself signs nothing else's way.
type Signer struct{ key []byte }

// New derives the signing key from the installation's secret.
func New(instanceSecret string) Signer {
	mac := hmac.New(sha256.New, []byte(instanceSecret))
	mac.Write([]byte("mattermost-plugin-bridge avatar url v1"))
	return Signer{key: mac.Sum(nil)}
}

func (s Signer) sign(userID, version string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(userID + "/" + version))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))[:sigLen]
}

// Path is the path, under the plugin's URL, of userID's picture in the
// given version (Mattermost's LastPictureUpdate); "" when either is not a
// plain token.
func (s Signer) Path(userID, version string) string {
	if !plain(userID) || !plain(version) {
		return ""
	}
	return Prefix + userID + "/" + version + "/" + s.sign(userID, version)
}

// Parse checks a path made by Path and returns the user and version it
// names; ok is false for anything else, including a valid signature moved
// to another user or version.
func (s Signer) Parse(path string) (userID, version string, ok bool) {
	rest, found := strings.CutPrefix(path, Prefix)
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !plain(parts[0]) || !plain(parts[1]) || len(parts[2]) != sigLen {
		return "", "", false
	}
	if !hmac.Equal([]byte(parts[2]), []byte(s.sign(parts[0], parts[1]))) {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// plain is a non-empty run of ASCII letters and digits: what Mattermost IDs
// and picture versions are, and nothing that could change a path's meaning.
func plain(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
