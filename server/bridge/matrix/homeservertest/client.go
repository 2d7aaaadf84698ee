package homeservertest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" // the shared-secret registration MAC is HMAC-SHA1, as Synapse defines it
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// requestTimeout bounds each request the helpers make.
const requestTimeout = 30 * time.Second

// Client makes requests to a test homeserver.
type Client struct {
	// URL is the homeserver's client-server API, without a trailing slash.
	URL string
	// SharedSecret is its registration_shared_secret.
	SharedSecret string
	// Name is how failures name the homeserver, e.g. "synapsetest".
	Name string
}

// API is c itself: a server embedding a Client satisfies Server.API.
func (s *Client) API() *Client { return s }

// RegisterUser creates the account @localpart:server_name through the
// shared-secret registration endpoint (/_synapse/admin/v1/register, which
// Dendrite implements like Synapse) and returns its user ID and an access
// token. It fails the test on any error, such as an existing account or a
// password shorter than 8 characters (Dendrite's minimum). Neither server
// checks application-service namespaces here: it registers a localpart
// inside an exclusive namespace, which /_matrix/client/v3/register refuses.
func (s *Client) RegisterUser(t testing.TB, localpart, password string) (userID, accessToken string) {
	t.Helper()
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	s.Do(t, http.MethodGet, "/_synapse/admin/v1/register", "", nil, &nonce)
	mac := hmac.New(sha1.New, []byte(s.SharedSecret))
	mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00notadmin"))
	var resp struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	s.Do(t, http.MethodPost, "/_synapse/admin/v1/register", "", map[string]any{
		"nonce":    nonce.Nonce,
		"username": localpart,
		"password": password,
		"admin":    false,
		"mac":      hex.EncodeToString(mac.Sum(nil)),
	}, &resp)
	if resp.UserID == "" || resp.AccessToken == "" {
		t.Fatalf("%s: register %s: no user_id or access_token in the answer", s.Name, localpart)
	}
	return resp.UserID, resp.AccessToken
}

// Do sends a request to the homeserver and decodes a JSON answer into out
// (unless out is nil), failing the test unless the status is 2xx. path is
// relative to URL, such as "/_matrix/client/v3/createRoom"; accessToken, if
// not empty, is sent as "Authorization: Bearer"; body, if not nil, is sent
// as JSON.
func (s *Client) Do(t testing.TB, method, path, accessToken string, body, out any) {
	t.Helper()
	status, raw, err := s.Request(method, path, accessToken, body)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", s.Name, method, path, err)
	}
	if status/100 != 2 {
		t.Fatalf("%s: %s %s: status %d: %s", s.Name, method, path, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %s %s: decode %s: %v", s.Name, method, path, raw, err)
		}
	}
}

// Request is Do without the test: it returns the status and the body, for
// tests that expect errors.
func (s *Client) Request(method, path, accessToken string, body any) (status int, respBody []byte, err error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, respBody, fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, respBody, nil
}
