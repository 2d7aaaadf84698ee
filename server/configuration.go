// Package main is the plugin's server side: the hooks Mattermost calls,
// wired to the bridge core.
package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix"
)

// configuration holds the plugin's settings as the System Console saves them
// (see plugin.json). Field names are the setting keys.
//
// A configuration is never mutated after it is published with
// setConfiguration: readers take a pointer and may keep it.
type configuration struct {
	EnableBridge            bool
	MessageMapRetentionDays flexInt
	MaxFileSizeMB           flexInt
	QueueSize               flexInt
	EncryptionKey           string

	XMPPEnabled            bool
	XMPPMode               string
	XMPPServerAddress      string
	XMPPJID                string
	XMPPPassword           string
	XMPPComponentDomain    string
	XMPPComponentSecret    string
	XMPPTLSMode            string
	XMPPCACertificate      string
	XMPPInsecureSkipVerify bool
	XMPPPostSubjects       bool

	MatrixEnabled       bool
	MatrixHomeserverURL string
	MatrixServerName    string
	MatrixASToken       string
	MatrixHSToken       string
	MatrixUserPrefix    string
	MatrixBotLocalpart  string
	MatrixInviteServers string

	SlackEnabled  bool
	SlackBotToken string
	SlackAppToken string
	SlackAPIURL   string
}

// flexInt accepts both JSON numbers and numeric strings: the System Console
// has saved number settings both ways across server versions.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n != float64(int64(n)) {
		return fmt.Errorf("%s is not a whole number", string(b))
	}
	*f = flexInt(n)
	return nil
}

const (
	defaultRetentionDays = 90
	defaultMaxFileSizeMB = 50
	defaultQueueSize     = 1000
)

// withDefaults fills settings an older configuration never saved. The
// server stores setting keys in lower case, so keys are compared that way.
func (c *configuration) withDefaults(raw map[string]any) *configuration {
	out := *c
	has := func(key string) bool {
		for k := range raw {
			if strings.EqualFold(k, key) {
				return true
			}
		}
		return false
	}
	if !has("MessageMapRetentionDays") {
		out.MessageMapRetentionDays = defaultRetentionDays
	}
	if !has("MaxFileSizeMB") {
		out.MaxFileSizeMB = defaultMaxFileSizeMB
	}
	if !has("QueueSize") {
		out.QueueSize = defaultQueueSize
	}
	if !has("EnableBridge") {
		out.EnableBridge = true
	}
	if out.XMPPMode == "" {
		out.XMPPMode = "client"
	}
	if out.XMPPTLSMode == "" {
		out.XMPPTLSMode = "starttls"
	}
	if out.MatrixUserPrefix == "" {
		out.MatrixUserPrefix = "mm_"
	}
	if out.MatrixBotLocalpart == "" {
		out.MatrixBotLocalpart = "mattermostbridge"
	}
	return &out
}

// validate reports every problem at once. Messages name the setting, never
// a secret's value.
func (c *configuration) validate() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	if c.MessageMapRetentionDays < 0 || c.MessageMapRetentionDays > 3650 {
		bad("MessageMapRetentionDays", "must be between 0 (keep forever) and 3650, got %d", c.MessageMapRetentionDays)
	}
	if c.MaxFileSizeMB < 1 || c.MaxFileSizeMB > 1024 {
		bad("MaxFileSizeMB", "must be between 1 and 1024, got %d", c.MaxFileSizeMB)
	}
	if c.QueueSize < 10 || c.QueueSize > 100000 {
		bad("QueueSize", "must be between 10 and 100000, got %d", c.QueueSize)
	}

	if c.XMPPEnabled {
		switch c.XMPPMode {
		case "client":
			if _, err := jid.Parse(c.XMPPJID); err != nil || c.XMPPJID == "" || !strings.Contains(c.XMPPJID, "@") {
				bad("XMPPJID", "must be an account JID such as bridge@example.com")
			}
			if c.XMPPPassword == "" {
				bad("XMPPPassword", "is required in client mode")
			}
		case "component":
			if _, err := jid.Parse(c.XMPPComponentDomain); err != nil || c.XMPPComponentDomain == "" || strings.ContainsAny(c.XMPPComponentDomain, "@/") {
				bad("XMPPComponentDomain", "must be a domain such as bridge.example.com")
			}
			if c.XMPPComponentSecret == "" {
				bad("XMPPComponentSecret", "is required in component mode")
			}
		default:
			bad("XMPPMode", `must be "client" or "component", got %q`, c.XMPPMode)
		}
		if c.XMPPServerAddress != "" {
			if host, port, err := net.SplitHostPort(c.XMPPServerAddress); err != nil || host == "" || !validPort(port) {
				bad("XMPPServerAddress", "must be host:port, got %q", c.XMPPServerAddress)
			}
		} else if c.XMPPMode == "component" {
			bad("XMPPServerAddress", "is required in component mode")
		}
		switch c.XMPPTLSMode {
		case "starttls", "tls", "plain-loopback-only":
		default:
			bad("XMPPTLSMode", `must be "starttls", "tls" or "plain-loopback-only", got %q`, c.XMPPTLSMode)
		}
		if c.XMPPCACertificate != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.XMPPCACertificate)) {
			bad("XMPPCACertificate", "contains no PEM certificate")
		}
	}

	if c.MatrixEnabled {
		if u, err := url.Parse(c.MatrixHomeserverURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("MatrixHomeserverURL", "must be an http(s) URL such as https://matrix.example.com")
		}
		if !validServerName(c.MatrixServerName) {
			bad("MatrixServerName", "must be the homeserver's server name such as example.com")
		}
		if len(c.MatrixASToken) < 16 {
			bad("MatrixASToken", "must be at least 16 characters (regenerate it in the System Console)")
		}
		if len(c.MatrixHSToken) < 16 {
			bad("MatrixHSToken", "must be at least 16 characters (regenerate it in the System Console)")
		}
		if c.MatrixASToken != "" && c.MatrixASToken == c.MatrixHSToken {
			bad("MatrixHSToken", "must differ from MatrixASToken")
		}
		if _, err := matrix.ParseServerList(c.MatrixInviteServers); err != nil {
			bad("MatrixInviteServers", "%v", err)
		}
	}

	if c.SlackEnabled {
		if !strings.HasPrefix(c.SlackBotToken, "xoxb-") {
			bad("SlackBotToken", `must be a bot token starting with "xoxb-"`)
		}
		if !strings.HasPrefix(c.SlackAppToken, "xapp-") {
			bad("SlackAppToken", `must be an app-level token starting with "xapp-"`)
		}
		if c.SlackAPIURL != "" {
			if u, err := url.Parse(c.SlackAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				bad("SlackAPIURL", "must be an http(s) URL or empty")
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid plugin configuration: %w", errors.Join(errs...))
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// validServerName accepts host or host:port, as the Matrix spec allows.
func validServerName(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
	}
	if port != "" && !validPort(port) {
		return false
	}
	return host != "" && !strings.ContainsAny(host, "/@ ")
}

// secrets lists the values that must never reach a log line or an error.
func (c *configuration) secrets() []string {
	var out []string
	for _, s := range []string{c.EncryptionKey, c.XMPPPassword, c.XMPPComponentSecret, c.MatrixASToken, c.MatrixHSToken, c.SlackBotToken, c.SlackAppToken} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseConfiguration decodes the raw settings map the server hands out.
func parseConfiguration(raw map[string]any) (*configuration, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid plugin configuration: %w", err)
	}
	var c configuration
	if err := json.Unmarshal(b, &c); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, fmt.Errorf("invalid plugin configuration: %s has the wrong type (want %s)", typeErr.Field, typeErr.Type)
		}
		// Never echo the input: it may hold secrets.
		return nil, fmt.Errorf("invalid plugin configuration: %s", redactJSONError(err))
	}
	return c.withDefaults(raw), nil
}

// redactJSONError keeps only the setting name from a JSON decoding error,
// whose text may quote the offending (possibly secret) value.
func redactJSONError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "Go struct field "); i >= 0 {
		return "cannot decode setting " + strings.Fields(msg[i+len("Go struct field "):])[0]
	}
	return "cannot decode settings"
}

// sameSettings reports whether the settings whose names start with prefix
// are equal, so only the bridges whose settings changed restart.
func (c *configuration) sameSettings(o *configuration, prefix string) bool {
	if c == nil || o == nil {
		return c == o
	}
	a, b := reflect.ValueOf(*c), reflect.ValueOf(*o)
	t := a.Type()
	for i := range t.NumField() {
		if strings.HasPrefix(t.Field(i).Name, prefix) && !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			return false
		}
	}
	return true
}
