package synapsetest

import (
	"bytes"
	"encoding/json"
	"os"
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

func writeTemplate(name string, tmpl *template.Template, data any) error {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return err
	}
	return os.WriteFile(name, b.Bytes(), 0o600)
}

// configData fills configTemplate and logTemplate. Paths are as Synapse
// sees them, inside the chroot.
type configData struct {
	ServerName     string
	Port           int
	Dir            string
	SharedSecret   string
	LogLevel       string
	AppServiceFile string // empty: no application service
}

// configTemplate is a Synapse configuration with its defaults but for
// what a test needs, each said here:
//
//   - one HTTP listener on 127.0.0.1 for the client API (which also serves
//     media and /_synapse/admin), no federation listener, no key servers:
//     nothing leaves the machine;
//   - SQLite in Dir, the media store and the signing key in Dir;
//   - a registration shared secret, for RegisterUser; open registration
//     stays off, as by default;
//   - no usage statistics (report_stats must be set either way).
//
// Rate limits (rc_message, rc_joins, rc_login...) keep Synapse's defaults:
// the bridge's own users are exempt through its registration
// (rate_limited: false), the test people are not.
var configTemplate = template.Must(template.New("homeserver.yaml").Funcs(funcs).Parse(`# Written by synapsetest for a test; do not use elsewhere.
server_name: {{q .ServerName}}
pid_file: {{q (print .Dir "/homeserver.pid")}}
listeners:
  - port: {{.Port}}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {{q (print .Dir "/homeserver.db")}}
log_config: {{q (print .Dir "/log.yaml")}}
media_store_path: {{q (print .Dir "/media")}}
signing_key_path: {{q (print .Dir "/signing.key")}}
registration_shared_secret: {{q .SharedSecret}}
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
app_service_config_files:{{if .AppServiceFile}}
  - {{q .AppServiceFile}}{{else}} []{{end}}
`))

// logTemplate sends Synapse's log to standard error, which the test keeps
// in LogFile.
var logTemplate = template.Must(template.New("log.yaml").Funcs(funcs).Parse(`version: 1
formatters:
  precise:
    format: "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
loggers:
  synapse.storage.SQL:
    level: INFO
root:
  level: {{.LogLevel}}
  handlers: [console]
disable_existing_loggers: false
`))

// appServiceTemplate is an application-service registration file, as
// app_service_config_files lists.
var appServiceTemplate = template.Must(template.New("appservice.yaml").Funcs(funcs).Parse(`# Written by synapsetest for a test.
id: {{q .ID}}
url: {{if .URL}}{{q .URL}}{{else}}null{{end}}
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
