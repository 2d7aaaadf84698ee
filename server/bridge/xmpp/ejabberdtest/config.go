package ejabberdtest

import (
	"encoding/json"
	"text/template"
)

// configData fills configTemplate.
type configData struct {
	LogLevel, CertFile, UploadDir string

	Domain, MUCDomain, UploadDomain, ComponentDomain string
	ComponentSecret                                  string

	C2SPort, DirectTLSPort, ComponentPort, ComponentTLSPort, HTTPPort int
	UploadURL                                                         string

	StanzaSizeLimit     int
	UploadSizeLimit     int64
	AllowRegistration   bool
	RegistrationTimeout string
	NoComponentUploads  bool
	NoShaper            bool
	RoomArchive         bool
	Extra               string
}

// yamlString quotes s for YAML: a JSON string is a valid YAML
// double-quoted scalar.
func yamlString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// configTemplate follows the configuration Debian installs
// (/etc/ejabberd/ejabberd.yml, upstream's ejabberd.yml.example) with what
// an admin uncomments for a bridge: mod_mam, mod_register (from the trusted
// network only, as upstream suggests) and mod_http_upload. Listeners are on
// loopback ports of their own; network services the tests do not use
// (s2s, BOSH, MQTT, STUN, push) are left out. The limits are ejabberd's own
// defaults unless Options change them: registration_timeout (600 s between
// registrations from one address), the c2s shaper (3000 B/s, bursts of
// 20000), max_stanza_size 262144 on client ports, mod_fail2ban.
var configTemplate = template.Must(template.New("ejabberd.yml").
	Funcs(template.FuncMap{"yaml": yamlString}).
	Parse(`# Written by ejabberdtest for one test run: loopback only, never for production.
loglevel: {{.LogLevel}}
log_rotate_count: 0
hide_sensitive_log_data: false

hosts:
  - {{yaml .Domain}}

certfiles:
  - {{yaml .CertFile}}

define_macro:
  'TLS_CIPHERS': "HIGH:!aNULL:!eNULL:!3DES:@STRENGTH"
  'TLS_OPTIONS':
    - "no_sslv3"
    - "no_tlsv1"
    - "no_tlsv1_1"
    - "cipher_server_preference"
    - "no_compression"

c2s_ciphers: 'TLS_CIPHERS'
c2s_protocol_options: 'TLS_OPTIONS'

listen:
  -
    port: {{.C2SPort}}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: {{.StanzaSizeLimit}}
    shaper: c2s_shaper
    access: c2s
    starttls_required: true
    protocol_options: 'TLS_OPTIONS'
  -
    port: {{.DirectTLSPort}}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: {{.StanzaSizeLimit}}
    shaper: c2s_shaper
    access: c2s
    tls: true
    protocol_options: 'TLS_OPTIONS'
  -
    port: {{.ComponentPort}}
    ip: "127.0.0.1"
    module: ejabberd_service
    hosts:
      {{yaml .ComponentDomain}}:
        password: {{yaml .ComponentSecret}}
  -
    port: {{.ComponentTLSPort}}
    ip: "127.0.0.1"
    module: ejabberd_service
    tls: true
    # A component port takes no certificate from certfiles: without its own
    # certfile it ends every TLS handshake at once.
    certfile: {{yaml .CertFile}}
    protocol_options: 'TLS_OPTIONS'
    hosts:
      {{yaml .ComponentDomain}}:
        password: {{yaml .ComponentSecret}}
  -
    port: {{.HTTPPort}}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
      /upload: mod_http_upload

disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"

auth_password_format: scram
{{- if .RegistrationTimeout}}
registration_timeout: {{.RegistrationTimeout}}
{{- end}}

acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
      - ::1/128
  component:
    server: {{yaml .ComponentDomain}}

access_rules:
  local:
    allow: local
  c2s:
    deny: blocked
    allow: all
  muc_create:
    allow: local
  pubsub_createnode:
    allow: local
  trusted_network:
    allow: loopback
  # mod_http_upload lets only local users upload by default; the bridge's
  # component is let in by name, as an admin would.
  upload:
    - allow: local
{{- if not .NoComponentUploads}}
    - allow: component
{{- end}}
  register:
{{- if .AllowRegistration}}
    allow: all
{{- else}}
    deny: all
{{- end}}

# The tests create accounts through the HTTP API, from loopback only.
api_permissions:
  "loopback admin":
    who:
      ip: 127.0.0.1/8
    what:
      - "*"

shaper:
  normal:
    rate: 3000
    burst_size: 20000
  fast: 200000

shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages:
    100: all
  c2s_shaper:
{{- if .NoShaper}}
    none: all
{{- else}}
    normal: all
{{- end}}

modules:
  mod_adhoc: {}
  mod_admin_extra: {}
  mod_avatar: {}
  mod_blocking: {}
  mod_caps: {}
  mod_carboncopy: {}
  mod_client_state: {}
  mod_disco: {}
  mod_fail2ban: {}
  mod_http_api: {}
  mod_http_upload:
    host: {{yaml .UploadDomain}}
    put_url: {{yaml .UploadURL}}
    docroot: {{yaml .UploadDir}}
    max_size: {{.UploadSizeLimit}}
    access: upload
  mod_last: {}
  mod_mam:
    assume_mam_usage: true
    default: always
  mod_muc:
    host: {{yaml .MUCDomain}}
    access:
      - allow
    access_create: muc_create
    access_persistent: muc_create
    access_mam:
      - allow
    # Rooms are persistent and public, like prosodytest's: a test's room
    # outlives its last occupant and a restart.
    default_room_options:
      mam: {{.RoomArchive}}
      persistent: true
      public: true
  mod_muc_admin: {}
  mod_muc_occupantid: {}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_ping: {}
  mod_privacy: {}
  mod_private: {}
  mod_pubsub:
    access_createnode: pubsub_createnode
    plugins:
      - flat
      - pep
  mod_register:
    # Upstream's suggestion: registration only from the trusted network.
    ip_access: trusted_network
    access: register
  mod_roster:
    versioning: true
  mod_stream_mgmt:
    resend_on_timeout: if_offline
  mod_vcard:
    search: false
  mod_vcard_xupdate: {}
  mod_version: {}
{{- if .Extra}}

# Options.ExtraConfig
{{.Extra}}
{{- end}}
`))
