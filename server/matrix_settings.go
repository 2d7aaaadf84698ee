package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/matrix"
)

// matrixConfig is the Matrix bridge's view of the plugin settings. The
// bridge and the registration file are built from it alike, so the tokens
// and namespaces the homeserver is given are the ones the bridge uses.
func matrixConfig(c *configuration) matrix.Config {
	// validate refuses a bad list before the bridge is made.
	invite, _ := matrix.ParseServerList(c.MatrixInviteServers)
	return matrix.Config{
		HomeserverURL: c.MatrixHomeserverURL,
		ServerName:    c.MatrixServerName,
		ASToken:       c.MatrixASToken,
		HSToken:       c.MatrixHSToken,
		UserPrefix:    c.MatrixUserPrefix,
		BotLocalpart:  c.MatrixBotLocalpart,
		MaxFileSize:   int64(c.MaxFileSizeMB) << 20,
		InviteServers: invite,
	}
}

// setupError is something the admin must fix in the settings before the
// plugin can do what was asked; its text says what.
type setupError string

func (e setupError) Error() string { return string(e) }

// matrixRegistration renders the application-service registration file for
// the saved settings. Its error is a setupError when the settings or the
// Site URL are not ready; its text never holds a secret.
func (p *Plugin) matrixRegistration() (string, error) {
	var siteURL string
	if cfg := p.API.GetConfig(); cfg != nil && cfg.ServiceSettings.SiteURL != nil {
		siteURL = strings.TrimRight(strings.TrimSpace(*cfg.ServiceSettings.SiteURL), "/")
	}
	if siteURL == "" {
		return "", setupError("Set the Site URL in System Console > Environment > Web Server first: " +
			"the homeserver reaches the bridge at <Site URL>/plugins/" + manifest.Id + ".")
	}
	cfg := matrixConfig(p.getConfiguration())
	if err := cfg.Validate(); err != nil {
		// Validate names settings, never their values.
		return "", setupError("Complete and save the Matrix settings first (generate both tokens in the System Console): " +
			strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	y, err := matrix.RegistrationYAML(cfg, siteURL+"/plugins/"+manifest.Id)
	if err != nil {
		return "", fmt.Errorf("render the Matrix registration: %w", err)
	}
	return y, nil
}

func isSetupError(err error) bool {
	var s setupError
	return errors.As(err, &s)
}
