package prosodytest

import (
	"fmt"
	"strings"
	"text/template"
)

// configData fills configTemplate.
type configData struct {
	Dir, DataDir, PIDFile, LogFile, LogLevel, AdminSocket string
	CertDir, CertFile, KeyFile                            string

	Domain, MUCDomain, UploadDomain, ComponentDomain string
	ComponentSecret                                  string

	C2SPort, DirectTLSPort, ComponentPort, ComponentTLSPort, HTTPPort int
	HTTPURL                                                           string

	RequireEncryption bool
	AllowRegistration bool
	PasswordHash      string
	StanzaSizeLimit   int
	UploadSizeLimit   int64
	UploadDailyQuota  int64
	UploadComponent   bool
	RoomArchive       bool
	Extra             string
}

// luaString quotes s as a Lua string literal. Lua strings are byte strings,
// so only the quote, the backslash and control characters need escaping.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var configTemplate = template.Must(template.New("prosody.cfg.lua").
	Funcs(template.FuncMap{"lua": luaString}).
	Parse(`-- Written by prosodytest for one test run: loopback only, never for production.
-- Global section.

run_as_root = true -- CI runs the tests as root; Prosody refuses root without this
pidfile = {{lua .PIDFile}}
data_path = {{lua .DataDir}}
storage = "internal"

log = {
	{ levels = { min = {{lua .LogLevel}} }, to = "file", filename = {{lua .LogFile}} };
}

use_ipv6 = false
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { {{.C2SPort}} }
c2s_direct_tls_ports = { {{.DirectTLSPort}} }
legacy_ssl_ports = { }
s2s_ports = { }
component_ports = { {{.ComponentPort}} }
component_interfaces = { "127.0.0.1" }
-- Direct TLS for components: net_multiplex's TLS port hands each stream to
-- the service whose opening matches (here jabber:component:accept).
ssl_ports = { {{.ComponentTLSPort}} }
ssl_interfaces = { "127.0.0.1" }
http_ports = { {{.HTTPPort}} }
http_interfaces = { "127.0.0.1" }
https_ports = { }
https_interfaces = { "127.0.0.1" }
-- Requests whose Host header is no Prosody host (http://127.0.0.1:port/...)
-- go to the upload component; URLs handed out use the loopback address.
http_default_host = {{lua .UploadDomain}}
http_external_url = {{lua .HTTPURL}}

certificates = {{lua .CertDir}}
ssl = {
	certificate = {{lua .CertFile}};
	key = {{lua .KeyFile}};
}

modules_enabled = {
	"roster";
	"saslauth";
	"tls";
	"disco";
	"carbons";
	"pep";
	"private";
	"blocklist";
	"vcard4";
	"vcard_legacy";
	"version";
	"uptime";
	"time";
	"ping";
	"register"; -- XEP-0077 in-band registration
	"mam"; -- XEP-0313 archives for user accounts
	"net_multiplex"; -- serves ssl_ports (direct TLS components)
	"admin_shell"; -- prosodyctl shell, which prosodyctl deluser uses in Prosody 13
}
admin_socket = {{lua .AdminSocket}}
modules_disabled = {
	"s2s"; -- no federation: nothing listens on 5269
}

authentication = "internal_hashed"
password_hash = {{lua .PasswordHash}}
allow_registration = {{.AllowRegistration}} -- acceptable only because this server is loopback-only and throwaway
c2s_require_encryption = {{.RequireEncryption}}
allow_unencrypted_plain_auth = {{not .RequireEncryption}}
s2s_require_encryption = true
{{- if .StanzaSizeLimit}}
c2s_stanza_size_limit = {{.StanzaSizeLimit}}
component_stanza_size_limit = {{.StanzaSizeLimit}}
{{- end}}

-- Archives: keep everything, answer big queries.
archive_expires_after = "never"
default_archive_policy = true
max_archive_query_results = 1000
storage_archive_item_limit = 1000000
{{- if .Extra}}

-- Options.ExtraConfig
{{.Extra}}
{{- end}}

VirtualHost {{lua .Domain}}

Component {{lua .MUCDomain}} "muc"
	modules_enabled = { {{if .RoomArchive}}"muc_mam", {{end}}"muc_moderation" } -- muc_moderation: XEP-0425 (both versions), from Debian's prosody-modules
	name = "prosodytest rooms"
	restrict_room_creation = false -- anyone may create a room
	muc_room_locking = false -- a new room is usable at once, no configuration step
	muc_room_default_persistent = true
	muc_room_default_public = true
	muc_log_by_default = true
	muc_log_all_rooms = true
	muc_log_expires_after = "never"
	-- XEP-0421 occupant-id is built into Prosody's mod_muc (0.12 and later).
	muc_occupant_id = true

Component {{lua .UploadDomain}} "http_file_share"
	http_file_share_size_limit = {{.UploadSizeLimit}}
	http_file_share_daily_quota = {{.UploadDailyQuota}}
	http_file_share_expires_after = -1
{{- if .UploadComponent}}
	-- Prosody 13 lets only the host's own users upload: the bridge's
	-- component is let in by name, as an admin would. (Prosody 0.12 lets
	-- only the list in once there is one: the host is named too.)
	http_file_share_access = { {{lua .Domain}}, {{lua .ComponentDomain}} }
{{- end}}

Component {{lua .ComponentDomain}}
	component_secret = {{lua .ComponentSecret}}
`))
