package homeservertest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/internal/servertest"
)

// ErrPortInUse marks a start that failed because another process took the
// homeserver's port between choosing it and binding it: the caller tries
// another port.
var ErrPortInUse = errors.New("the port was taken by another process")

// Launch is how to tell that a homeserver just started serves.
type Launch struct {
	// Name is the homeserver's name in errors ("dendrite").
	Name string
	// BaseURL is where it serves the client-server API.
	BaseURL string
	// Timeout bounds the wait.
	Timeout time.Duration
	// Log returns what the homeserver logged since this start.
	Log func() string
	// PortInUse is the log text that says its port was taken.
	PortInUse string
}

// WaitUp polls /_matrix/client/versions until it answers 200, the process
// exits, or Timeout passes. An exit because the port was taken wraps
// ErrPortInUse.
func (l Launch) WaitUp(p *servertest.Process) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(l.Timeout)
	for {
		select {
		case <-p.Done():
			log := l.Log()
			err := fmt.Errorf("%s exited while starting (%v)\n%s", l.Name, p.Err(), servertest.LastLines(log, 30))
			if strings.Contains(log, l.PortInUse) {
				return fmt.Errorf("%w: %w", ErrPortInUse, err)
			}
			return err
		default:
		}
		probeErr := l.probe(client)
		if probeErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v: %v\n%s", l.Name, l.Timeout, probeErr, servertest.LastLines(l.Log(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l Launch) probe(client *http.Client) error {
	resp, err := client.Get(l.BaseURL + "/_matrix/client/versions")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_matrix/client/versions: %s", resp.Status)
	}
	return nil
}
