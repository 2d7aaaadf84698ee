package slacktest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Call is one Web API request as the server saw it.
type Call struct {
	Method string
	// Params are the arguments (form or JSON body, or query), the token
	// left out. JSON values that are not strings are kept as JSON text, as
	// Slack reads a form's blocks.
	Params map[string]string
	// Status is the HTTP status: 200, or 429 when rate limited.
	Status int
	// Error is the answer's error ("" when ok).
	Error string
	// Lost: the call was carried out but its answer never reached the
	// client (LoseNextAnswer).
	Lost bool
	At   time.Time
}

// Loss is how LoseNextAnswer loses an answer.
type Loss int

const (
	// LossReset closes the connection instead of answering, as a reset
	// or a timeout on the way back would.
	LossReset Loss = iota + 1
	// Loss500 answers HTTP 500 with an HTML page, as a failing proxy in
	// front of a server that did the work would.
	Loss500
)

// request is a parsed Web API call.
type request struct {
	method string
	params map[string]string
	token  string
	// headerToken tells that the token came in the Authorization header,
	// which apps.connections.open insists on.
	headerToken bool
	tok         *tokenState
}

func (r *request) get(name string) string { return r.params[name] }

func (r *request) flag(name string) bool {
	v := r.params[name]
	return v == "true" || v == "1"
}

// answer is a method's reply: HTTP 200 and a JSON object, ok or not.
type answer map[string]any

func okAnswer(fields answer) answer {
	a := answer{"ok": true}
	maps.Copy(a, fields)
	return a
}

func errAnswer(code string) answer { return answer{"ok": false, "error": code} }

func (a answer) errorCode() string {
	if e, ok := a["error"].(string); ok && a["ok"] == false {
		return e
	}
	return ""
}

// methodSpec says who may call a method and how often, and what it needs.
type methodSpec struct {
	tier  tier
	token tokenKind
	// scopes returns the scopes one of which the call needs, or nil for
	// none (when it depends on the channel's type, it looks the channel up).
	scopes func(s *Server, r *request) []string
	handle func(s *Server, r *request) answer
}

func fixedScope(scope string) func(*Server, *request) []string {
	return func(*Server, *request) []string { return []string{scope} }
}

// channelScope picks the public- or private-channel variant of a scope by
// the channel argument's type; for an unknown channel it lists both, as
// Slack does in "needed" when it cannot tell.
func channelScope(param, public, private string) func(*Server, *request) []string {
	return func(s *Server, r *request) []string {
		if c := s.ws.channel(r.get(param)); c != nil {
			if c.Private {
				return []string{private}
			}
			return []string{public}
		}
		return []string{public, private}
	}
}

var methods map[string]methodSpec

func init() {
	// Tiers and scopes as each method's page in Slack's API reference gives
	// them (bot token scopes).
	methods = map[string]methodSpec{
		"auth.test":                    {tierSpecialAuth, botToken, nil, (*Server).authTest},
		"apps.connections.open":        {tier1, appToken, fixedScope("connections:write"), (*Server).appsConnectionsOpen},
		"chat.postMessage":             {tierPostMessage, botToken, fixedScope("chat:write"), (*Server).chatPostMessage},
		"chat.update":                  {tier3, botToken, fixedScope("chat:write"), (*Server).chatUpdate},
		"chat.delete":                  {tier3, botToken, fixedScope("chat:write"), (*Server).chatDelete},
		"reactions.add":                {tier3, botToken, fixedScope("reactions:write"), (*Server).reactionsAdd},
		"reactions.remove":             {tier2, botToken, fixedScope("reactions:write"), (*Server).reactionsRemove},
		"conversations.info":           {tier3, botToken, channelScope("channel", "channels:read", "groups:read"), (*Server).conversationsInfo},
		"conversations.history":        {tier3, botToken, channelScope("channel", "channels:history", "groups:history"), (*Server).conversationsHistory},
		"conversations.replies":        {tier3, botToken, channelScope("channel", "channels:history", "groups:history"), (*Server).conversationsReplies},
		"conversations.members":        {tier4, botToken, channelScope("channel", "channels:read", "groups:read"), (*Server).conversationsMembers},
		"users.info":                   {tier4, botToken, fixedScope("users:read"), (*Server).usersInfo},
		"bots.info":                    {tier3, botToken, fixedScope("users:read"), (*Server).botsInfo},
		"files.getUploadURLExternal":   {tier4, botToken, fixedScope("files:write"), (*Server).filesGetUploadURLExternal},
		"files.completeUploadExternal": {tier4, botToken, fixedScope("files:write"), (*Server).filesCompleteUploadExternal},
		"files.info":                   {tier4, botToken, fixedScope("files:read"), (*Server).filesInfo},
	}
}

// serveAPI answers https://slack.com/api/<method>.
func (s *Server) serveAPI(w http.ResponseWriter, hr *http.Request) {
	name := strings.TrimPrefix(hr.URL.Path, "/api/")
	r, perr := parseRequest(hr)
	if r == nil {
		r = &request{params: map[string]string{}}
	}
	r.method = name

	s.mu.Lock()
	status, header, a := s.callLocked(r, perr)
	var loss Loss
	if queue := s.losing[name]; len(queue) > 0 {
		loss, s.losing[name] = queue[0], queue[1:]
	}
	s.calls = append(s.calls, Call{Method: name, Params: r.params, Status: status, Error: a.errorCode(), Lost: loss != 0, At: time.Now()})
	s.notifyLocked()
	s.mu.Unlock()

	switch loss {
	case LossReset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // what net/http offers short of hijacking
	case Loss500:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "<html><body>500 Internal Server Error</body></html>")
		return
	}

	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}

// callLocked runs the checks in the order Slack's answers imply (who you
// are, what the token may call, how often, what it is allowed to do) and
// then the method.
func (s *Server) callLocked(r *request, parseErr string) (int, http.Header, answer) {
	header := http.Header{}
	spec, ok := methods[r.method]
	if !ok {
		return http.StatusOK, header, errAnswer("unknown_method")
	}
	if parseErr != "" {
		return http.StatusOK, header, errAnswer(parseErr)
	}
	if r.token == "" {
		return http.StatusOK, header, errAnswer("not_authed")
	}
	tok := s.lookupToken(r.token)
	if tok == nil {
		return http.StatusOK, header, errAnswer("invalid_auth")
	}
	if tok.failure != "" {
		return http.StatusOK, header, errAnswer(tok.failure)
	}
	r.tok = tok
	header.Set("X-OAuth-Scopes", strings.Join(tok.scopes, ","))
	// auth.test answers for either kind of token; every other method takes
	// one kind only.
	if r.method != "auth.test" && tok.kind != spec.token {
		return http.StatusOK, header, errAnswer("not_allowed_token_type")
	}
	// apps.connections.open's reference: the token must come in the
	// Authorization header; as a POST parameter it is an error.
	if r.method == "apps.connections.open" && !r.headerToken {
		return http.StatusOK, header, errAnswer("invalid_auth")
	}
	if retry, limited := s.rateLimitedLocked(r, spec); limited {
		header.Set("Retry-After", strconv.Itoa(retry))
		return http.StatusTooManyRequests, header, errAnswer("ratelimited")
	}
	if spec.scopes != nil {
		needed := spec.scopes(s, r)
		header.Set("X-Accepted-OAuth-Scopes", strings.Join(needed, ","))
		if !slices.ContainsFunc(needed, func(sc string) bool { return slices.Contains(tok.scopes, sc) }) {
			a := errAnswer("missing_scope")
			a["needed"] = strings.Join(needed, ",")
			a["provided"] = strings.Join(tok.scopes, ",")
			return http.StatusOK, header, a
		}
	}
	if queue := s.failing[r.method]; len(queue) > 0 {
		s.failing[r.method] = queue[1:]
		return http.StatusOK, header, errAnswer(queue[0])
	}
	return http.StatusOK, header, spec.handle(s, r)
}

// lookupToken compares in constant time, as a server holding secrets should.
func (s *Server) lookupToken(token string) *tokenState {
	for t, st := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return st
		}
	}
	return nil
}

// parseRequest reads the arguments from a form (urlencoded or multipart),
// a JSON body, or the query string, and the token from the Authorization
// header or the form's token field. A JSON body's token must come in the
// header: Slack does not read it from JSON.
func parseRequest(hr *http.Request) (*request, string) {
	r := &request{params: map[string]string{}}
	if auth := hr.Header.Get("Authorization"); auth != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
			r.token = strings.TrimSpace(tok)
			r.headerToken = true
		}
	}
	for k, v := range hr.URL.Query() {
		r.params[k] = v[0]
	}
	ctype, _, _ := mime.ParseMediaType(hr.Header.Get("Content-Type"))
	if hr.Method == http.MethodPost {
		switch ctype {
		case "application/json":
			body, err := io.ReadAll(io.LimitReader(hr.Body, 1<<20))
			if err != nil {
				return r, "invalid_form_data"
			}
			if len(bytes.TrimSpace(body)) > 0 {
				var obj map[string]json.RawMessage
				if err := json.Unmarshal(body, &obj); err != nil {
					return r, "invalid_json"
				}
				for k, raw := range obj {
					var str string
					if json.Unmarshal(raw, &str) == nil {
						r.params[k] = str
					} else {
						r.params[k] = string(raw)
					}
				}
			}
		case "multipart/form-data":
			if err := hr.ParseMultipartForm(1 << 20); err != nil {
				return r, "invalid_form_data"
			}
			for k, v := range hr.MultipartForm.Value {
				r.params[k] = v[0]
			}
		default:
			if err := hr.ParseForm(); err != nil {
				return r, "invalid_form_data"
			}
			for k, v := range hr.PostForm {
				r.params[k] = v[0]
			}
		}
	}
	if tok, ok := r.params["token"]; ok {
		delete(r.params, "token")
		if ctype != "application/json" && r.token == "" {
			r.token = tok
		}
	}
	return r, ""
}

// Calls returns the Web API call log, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Params = maps.Clone(c.Params)
		out[i] = c
	}
	return out
}

// CallCount counts the requests to a method, rate-limited ones included.
func (s *Server) CallCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

// RateLimited counts the calls of a method answered with 429: a client
// that paces itself under the documented limits gets none.
func (s *Server) RateLimited(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == method && c.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

// LoseNextAnswer makes the next call of a method do its work (store the
// message, send the events) and then lose the answer as how says. HTTP
// gives a client no way to tell such a call from one that never arrived
// (RFC 9110, 9.2.2: a POST is not idempotent, and a client that lost the
// answer cannot know what the server did); Slack's internal_error and
// fatal_error answers say the same ("It's possible some aspect of the
// operation succeeded before the error was raised"). Each call queues one
// loss.
func (s *Server) LoseNextAnswer(method string, how Loss) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.losing[method] = append(s.losing[method], how)
}

// FailNext makes the next calls of a method answer the given errors, one
// call each, after the token, rate and scope checks passed.
func (s *Server) FailNext(method string, errorCodes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing[method] = append(s.failing[method], errorCodes...)
}
