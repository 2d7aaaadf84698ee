package matrix

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/appservice"
)

// RegistrationID is the application service's id in the registration file.
const RegistrationID = "mattermost-bridge"

// Config is what the Matrix bridge needs from the plugin settings.
type Config struct {
	// HomeserverURL is the client-server API base, e.g. https://matrix.example.com.
	HomeserverURL string
	// ServerName is the part after the colon in user IDs, e.g. example.com.
	ServerName string
	// ASToken is presented by the plugin to the homeserver; HSToken by the
	// homeserver to the plugin.
	ASToken, HSToken string
	// UserPrefix starts the localpart of every puppet (@mm_alice:example.com).
	UserPrefix string
	// BotLocalpart is the application service's own user (sender_localpart).
	BotLocalpart string
	// MaxFileSize bounds files either way; 0 means no limit.
	MaxFileSize int64
	// InviteServers are the servers besides ServerName whose users may
	// invite the bot into a room (MatrixInviteServers).
	InviteServers []string
}

// localpartChars are the characters the spec allows in a user localpart.
var localpartChars = regexp.MustCompile(`^[a-z0-9._=/+-]+$`)

// Validate names every bad setting without echoing any value.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.HomeserverURL); c.HomeserverURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("MatrixHomeserverURL must be an http(s) URL such as https://matrix.example.com"))
	}
	if !ValidServerName(c.ServerName) {
		errs = append(errs, errors.New("MatrixServerName must be the homeserver's server name, e.g. example.com"))
	}
	if len(c.ASToken) < 16 {
		errs = append(errs, errors.New("MatrixASToken must be generated (at least 16 characters)"))
	}
	if len(c.HSToken) < 16 {
		errs = append(errs, errors.New("MatrixHSToken must be generated (at least 16 characters)"))
	}
	if c.ASToken != "" && c.ASToken == c.HSToken {
		errs = append(errs, errors.New("MatrixASToken and MatrixHSToken must differ"))
	}
	if c.UserPrefix == "" || !localpartChars.MatchString(c.UserPrefix) {
		errs = append(errs, errors.New("MatrixUserPrefix must be non-empty lower-case letters, digits or ._=-/+"))
	}
	if c.BotLocalpart == "" || !localpartChars.MatchString(c.BotLocalpart) {
		errs = append(errs, errors.New("MatrixBotLocalpart must be non-empty lower-case letters, digits or ._=-/+"))
	}
	if c.UserPrefix != "" && strings.HasPrefix(c.BotLocalpart, c.UserPrefix) {
		errs = append(errs, errors.New("MatrixBotLocalpart must not start with MatrixUserPrefix"))
	}
	for _, s := range c.InviteServers {
		if !ValidServerName(s) {
			errs = append(errs, errors.New("MatrixInviteServers must list server names such as example.com or matrix.example.org:8448, separated by commas"))
			break
		}
	}
	return errors.Join(errs...)
}

// dnsName is the spec's dns-name: letters, digits, "-" and ".".
var dnsName = regexp.MustCompile(`^[A-Za-z0-9.-]{1,255}$`)

// ValidServerName follows the grammar of server names in the Matrix spec
// (appendix "Server Name"): hostname [":" port], where hostname is an IPv4
// address, a bracketed IPv6 address or a DNS name.
func ValidServerName(s string) bool {
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		host = s[:i]
		port := s[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
		if n, _ := strconv.Atoi(port); n < 1 || n > 65535 {
			return false
		}
	}
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		ip, err := netip.ParseAddr(inner)
		return ok && err == nil && ip.Is6() && ip.Zone() == ""
	}
	return dnsName.MatchString(host)
}

// ParseServerList reads a comma-separated list of server names, as
// MatrixInviteServers holds it. Blanks around names and empty entries are
// ignored; the first name that is not a server name is an error.
func ParseServerList(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !ValidServerName(s) {
			return nil, fmt.Errorf("%q is not a Matrix server name such as example.com or matrix.example.org:8448", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// Registration is the application-service registration a homeserver admin
// installs. pluginURL is where the homeserver reaches the plugin:
// <Mattermost site URL>/plugins/<plugin id>.
func Registration(c Config, pluginURL string) *appservice.Registration {
	f := false
	return &appservice.Registration{
		ID:              RegistrationID,
		URL:             pluginURL,
		AppToken:        c.ASToken,
		ServerToken:     c.HSToken,
		SenderLocalpart: c.BotLocalpart,
		RateLimited:     &f,
		Namespaces: appservice.Namespaces{
			// Anchored: some homeservers (Dendrite) match unanchored. The bot
			// is listed too: Dendrite pushes a room's events only when a
			// user of the namespace is in it, and at first only the bot is.
			UserIDs: appservice.NamespaceList{{
				Regex:     "^@" + regexp.QuoteMeta(c.UserPrefix) + ".*:" + regexp.QuoteMeta(c.ServerName) + "$",
				Exclusive: true,
			}, {
				Regex:     "^@" + regexp.QuoteMeta(c.BotLocalpart) + ":" + regexp.QuoteMeta(c.ServerName) + "$",
				Exclusive: true,
			}},
		},
	}
}

// RegistrationYAML renders Registration as the YAML file homeservers read.
func RegistrationYAML(c Config, pluginURL string) (string, error) {
	y, err := Registration(c, pluginURL).YAML()
	if err != nil {
		return "", fmt.Errorf("render the registration: %w", err)
	}
	return y, nil
}
