package testhost

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// API is the plugin API a node serves to one plugin, in memory, over the
// Server's shared state. Inputs are checked with the server's own model
// validation (IsValid, PreSave, username rules...), and the hooks a real
// server fires for an API call fire on this node's plugins.
//
// Methods the host does not implement return an error (or *model.AppError)
// saying "not implemented by the test host: <Method>", are logged and are
// listed by Server.UnimplementedCalls; the few that cannot return an error
// return zero values. See api_stubs_gen.go (go generate).
type API struct {
	n        *Node
	s        *Server
	pluginID string

	mu       sync.RWMutex
	manifest *model.Manifest
}

var _ plugin.API = (*API)(nil)

func (a *API) setManifest(m *model.Manifest) {
	a.mu.Lock()
	a.manifest = m
	a.mu.Unlock()
}

func (a *API) getManifest() *model.Manifest {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.manifest == nil {
		return &model.Manifest{Id: a.pluginID}
	}
	return a.manifest
}

// NotImplementedID is the AppError ID of the methods the host does not
// implement.
const NotImplementedID = "testhost.not_implemented"

func (a *API) recordNotImplemented(method string) string {
	msg := "not implemented by the test host: " + method
	a.s.mu.Lock()
	a.s.st.unimplemented = append(a.s.st.unimplemented, method)
	a.s.mu.Unlock()
	a.n.logger.Warn(msg, mlog.String("plugin_id", a.pluginID), mlog.String("source", "testhost"))
	return msg
}

func (a *API) notImplementedAppErr(method string) *model.AppError {
	return model.NewAppError(method, NotImplementedID, nil, a.recordNotImplemented(method), http.StatusNotImplemented)
}

func (a *API) notImplementedErr(method string) error {
	return fmt.Errorf("%s", a.recordNotImplemented(method))
}

func (a *API) notImplemented(method string) {
	a.recordNotImplemented(method)
}

// called counts a call of method on the node (see Node.APICalls).
func (a *API) called(method string) {
	if a.n != nil {
		a.n.calls.add(method)
	}
}

// panicked is called by the recovering layer (api_safe_gen.go). It must not
// panic itself.
func (a *API) panicked(method string, r any) string {
	msg := fmt.Sprintf("%s: %v", method, r)
	if a.s != nil {
		a.s.recordPanic(msg)
	}
	if a.n != nil && a.n.logger != nil {
		a.n.logger.Error("testhost: the plugin API panicked; returning an error to the plugin",
			mlog.String("plugin_id", a.pluginID), mlog.String("method", method),
			mlog.String("panic", fmt.Sprint(r)), mlog.String("stack", string(debug.Stack())))
	}
	return msg
}

func (a *API) panicAppErr(method string, r any) *model.AppError {
	return model.NewAppError(method, "testhost.panic", nil, "the test host panicked: "+a.panicked(method, r), http.StatusInternalServerError)
}

func (a *API) panicErr(method string, r any) error {
	return fmt.Errorf("the test host panicked: %s", a.panicked(method, r))
}

func (a *API) sugar() mlog.Sugar {
	return a.n.logger.Sugar(mlog.String("plugin_id", a.pluginID))
}

// --- logging -------------------------------------------------------------------

// LogDebug logs like the server: to the node's logger, with plugin_id.
func (a *API) LogDebug(msg string, keyValuePairs ...any) { a.sugar().Debugw(msg, keyValuePairs...) }

// LogInfo logs like the server: to the node's logger, with plugin_id.
func (a *API) LogInfo(msg string, keyValuePairs ...any) { a.sugar().Infow(msg, keyValuePairs...) }

// LogWarn logs like the server: to the node's logger, with plugin_id.
func (a *API) LogWarn(msg string, keyValuePairs ...any) { a.sugar().Warnw(msg, keyValuePairs...) }

// LogError logs like the server: to the node's logger, with plugin_id.
func (a *API) LogError(msg string, keyValuePairs ...any) { a.sugar().Errorw(msg, keyValuePairs...) }

// --- server info -----------------------------------------------------------------

// GetServerVersion returns the version of the server package the host is
// built with (model.CurrentVersion, e.g. "11.11.0").
func (a *API) GetServerVersion() string { return model.CurrentVersion }

// GetLicense returns nil: the host is an unlicensed server.
func (a *API) GetLicense() *model.License { return nil }

// IsEnterpriseReady returns false.
func (a *API) IsEnterpriseReady() bool { return false }

// GetSystemInstallDate returns when the Server was created.
func (a *API) GetSystemInstallDate() (int64, *model.AppError) { return a.s.installDate, nil }

// GetDiagnosticId returns the server's telemetry ID.
func (a *API) GetDiagnosticId() string { return a.s.telemetryID }

// GetTelemetryId returns the server's telemetry ID.
func (a *API) GetTelemetryId() string { return a.s.telemetryID }

// GetPluginID returns the calling plugin's ID.
func (a *API) GetPluginID() string { return a.pluginID }

// GetCloudLimits returns empty limits, like a self-hosted server.
func (a *API) GetCloudLimits() (*model.ProductLimits, error) { return &model.ProductLimits{}, nil }

// RegisterCollectionAndTopic is a no-op, as on the server.
func (a *API) RegisterCollectionAndTopic(collectionType, topicType string) error { return nil }
