package dendritetest

import (
	"encoding/json"
	"text/template"
)

// quote renders s as a double-quoted YAML scalar: JSON strings are valid
// YAML flow scalars, with the same escapes.
func quote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b)
}

var funcs = template.FuncMap{"q": quote}

// configData fills configTemplate.
type configData struct {
	ServerName     string
	Dir            string
	PrivateKey     string
	JetStreamDir   string
	MediaDir       string
	SharedSecret   string
	LogLevel       string
	AppServiceFile string // empty: no application service
}

// configTemplate is a Dendrite v0.15.2 configuration (version 2), modelled
// on "generate-config -ci" but written out in full so every choice is
// visible:
//
//   - SQLite, one database file per component in Dir (Dendrite needs either
//     one PostgreSQL database or a file per component);
//   - NATS JetStream embedded (Dendrite never opens a NATS port) and stored
//     on disk in Dir, so Restart keeps unsent application-service
//     transactions and the durable consumers' positions;
//   - federation off, no key perspectives and no third-party identity
//     servers: nothing leaves the machine;
//   - registration_disabled with a shared secret: accounts come from
//     RegisterUser (/_synapse/admin/v1/register) or from the application
//     service (m.login.application_service), both of which Dendrite allows
//     while registration is disabled. Open registration would also need the
//     -really-enable-open-registration flag;
//   - client-API rate limiting off (it is on by default: 5 requests, then
//     500 ms cool-off, per user);
//   - bcrypt cost 4 (the lowest Dendrite accepts) so registering is fast;
//   - search, server notices, presence, metrics, tracing, stats and MSCs
//     off; a 64 MiB cache instead of 1 GiB.
var configTemplate = template.Must(template.New("dendrite.yaml").Funcs(funcs).Parse(`# Written by dendritetest for a test; do not use elsewhere.
version: 2
global:
  server_name: {{q .ServerName}}
  private_key: {{q .PrivateKey}}
  key_validity_period: 168h0m0s
  old_private_keys: []
  database:
    connection_string: ""
  disable_federation: true
  presence:
    enable_inbound: false
    enable_outbound: false
  trusted_third_party_id_servers: []
  jetstream:
    addresses: []
    storage_path: {{q .JetStreamDir}}
    in_memory: false
    topic_prefix: Dendrite
  metrics:
    enabled: false
  sentry:
    enabled: false
  dns_cache:
    enabled: false
  server_notices:
    enabled: false
    local_part: _server
    display_name: Server Alert
    room_name: Server Alert
  report_stats:
    enabled: false
  cache:
    max_size_estimated: 67108864
    max_age: 1h0m0s
app_service_api:
  disable_tls_validation: true
  legacy_auth: false
  legacy_paths: false
  config_files:{{if .AppServiceFile}}
  - {{q .AppServiceFile}}{{else}} []{{end}}
client_api:
  registration_disabled: true
  registration_requires_token: false
  registration_shared_secret: {{q .SharedSecret}}
  guests_disabled: true
  enable_registration_captcha: false
  rate_limiting:
    enabled: false
    threshold: 5
    cooloff_ms: 500
    exempt_user_ids: []
federation_api:
  database:
    connection_string: {{q (print "file:" .Dir "/federationapi.db")}}
  send_max_retries: 16
  key_perspectives: []
key_server:
  database:
    connection_string: {{q (print "file:" .Dir "/keyserver.db")}}
media_api:
  database:
    connection_string: {{q (print "file:" .Dir "/mediaapi.db")}}
  base_path: {{q .MediaDir}}
  max_file_size_bytes: 10485760
  dynamic_thumbnails: false
room_server:
  default_room_version: "10"
  database:
    connection_string: {{q (print "file:" .Dir "/roomserver.db")}}
sync_api:
  database:
    connection_string: {{q (print "file:" .Dir "/syncapi.db")}}
  search:
    enabled: false
user_api:
  bcrypt_cost: 4
  openid_token_lifetime_ms: 3600000
  account_database:
    connection_string: {{q (print "file:" .Dir "/userapi.db")}}
  auto_join_rooms: []
relay_api:
  database:
    connection_string: {{q (print "file:" .Dir "/relayapi.db")}}
mscs:
  mscs: []
  database:
    connection_string: {{q (print "file:" .Dir "/mscs.db")}}
tracing:
  enabled: false
logging:
- type: std
  level: {{q .LogLevel}}
`))

// appServiceTemplate is an application-service registration file, as
// app_service_api.config_files lists.
var appServiceTemplate = template.Must(template.New("appservice.yaml").Funcs(funcs).Parse(`# Written by dendritetest for a test.
id: {{q .ID}}
url: {{q .URL}}
as_token: {{q .ASToken}}
hs_token: {{q .HSToken}}
sender_localpart: {{q .SenderLocalpart}}
rate_limited: false
namespaces:
{{- range $kind, $list := .Namespaces}}
  {{$kind}}:{{if not $list}} []{{end}}
{{- range $list}}
  - exclusive: {{.Exclusive}}
    regex: {{q .Regex}}
{{- end}}
{{- end}}
`))
