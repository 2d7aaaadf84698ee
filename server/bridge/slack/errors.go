package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// APIError is a Web API method's refusal. Its text is built from the
// method and Slack's error code only: slack-go's own errors may quote the
// request, and a request carries a token.
type APIError struct {
	Method string
	Code   string
	// Needed is the scope a missing_scope answer asks for.
	Needed string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("slack %s: %s", e.Method, e.Code)
	if why := explain(e); why != "" {
		msg += " (" + why + ")"
	}
	return msg
}

// tokenErrors are the answers that mean the token itself is no good:
// retrying cannot help until an admin replaces it.
var tokenErrors = map[string]bool{
	"invalid_auth": true, "account_inactive": true, "not_authed": true,
	"token_revoked": true, "token_expired": true, "not_allowed_token_type": true,
	"no_permission": true, "ekm_access_denied": true,
}

func explain(e *APIError) string {
	which := "bot token (xoxb-)"
	if e.Method == "apps.connections.open" {
		which = "app-level token (xapp-)"
	}
	switch e.Code {
	case "not_in_channel":
		return "the bot is not a member of the channel: invite it there with /invite @<bot name>"
	case "channel_not_found":
		return "no such channel, or a private channel the bot was not invited to"
	case "is_archived":
		return "the channel is archived"
	case "missing_scope":
		if e.Needed != "" {
			return "the Slack app lacks the scope " + e.Needed + ": add it in the app's settings and reinstall the app"
		}
		return "the Slack app lacks a scope: add it in the app's settings and reinstall the app"
	case "ratelimited":
		return "rate limited by Slack"
	case "msg_too_long":
		return "the message is longer than Slack accepts"
	}
	if tokenErrors[e.Code] {
		return "Slack refused the " + which + ": replace it in the plugin settings"
	}
	return ""
}

// codeOf returns the Slack error code err carries, "" if none.
func codeOf(err error) string {
	var a *APIError
	if errors.As(err, &a) {
		return a.Code
	}
	return ""
}

// isTokenError reports whether err says a token must be replaced.
func isTokenError(err error) bool { return tokenErrors[codeOf(err)] }

// wrap turns what slack-go returned into an error safe to show: an
// *APIError for Slack's answers, a bridge.RetryAfter for 429s, and for
// transport failures their text with the tokens taken out.
func (b *Bridge) wrap(method string, err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return bridge.RetryAfter(&APIError{Method: method, Code: "ratelimited"}, rl.RetryAfter)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return &APIError{Method: method, Code: cleanCode(se.Err), Needed: cleanCode(se.Needed)}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return fmt.Errorf("slack %s: HTTP status %d", method, sc.Code)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("slack %s: %w", method, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("slack %s: %w", method, context.DeadlineExceeded)
	}
	return fmt.Errorf("slack %s: %s", method, b.redact(err.Error()))
}

// cleanCode keeps an error code from Slack to what codes look like, so a
// hostile or broken answer cannot put arbitrary text in a status page.
func cleanCode(code string) string {
	if len(code) > 64 {
		code = code[:64]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == ':' || r == '.' || r == ',' {
			return r
		}
		return -1
	}, code)
}

// permanentCodes are answers a retry cannot change: the delivery is
// dropped, under the code, with the explanation as its reason.
var permanentCodes = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true,
	"msg_too_long": true, "no_text": true, "invalid_blocks": true, "missing_scope": true,
	"restricted_action": true, "invalid_name": true, "too_many_reactions": true,
	"cant_update_message": true, "edit_window_closed": true, "thread_not_found": true,
	"invalid_arguments": true, "invalid_metadata_format": true, "file_not_found": true,
}

// deliveryError classifies a Web API failure for the bus: permanent
// refusals become drops with a clear reason; rate limits keep Slack's
// Retry-After; the rest (token trouble included: the queue waits for a
// new token rather than dropping) are transient.
func (b *Bridge) deliveryError(err error) error {
	if err == nil {
		return nil
	}
	code := codeOf(err)
	if isTokenError(err) {
		b.health.Set(bridge.StateError, err)
	}
	if permanentCodes[code] {
		return bridge.Drop(code, err)
	}
	return err
}
