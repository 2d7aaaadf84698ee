package testhost

import (
	"net/http"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"
)

// The KV methods are served by the memkv store every node shares, with the
// semantics of the server's SQL plugin store. Each one first takes a fault
// injected with Server.FailKV, if any is pending. With a replica lag
// (WithReplicaLag), KVGet and KVList read the lagging replica; every write,
// compare-and-set included, acts on the primary, as SqlPluginStore's
// SaveOrUpdate, CompareAndSet, CompareAndDelete and Delete run on the master.

// KVFaultID is the AppError ID of the failures injected with Server.FailKV.
const KVFaultID = "testhost.kv_fault"

// kvFaults counts the KV calls still to fail (Server.FailKV).
type kvFaults struct {
	mu   sync.Mutex
	left int
	msg  string
}

// FailKV makes the next n plugin API KV calls (KVGet, KVSet,
// KVSetWithOptions, KVSetWithExpiry, KVCompareAndSet, KVCompareAndDelete,
// KVDelete, KVDeleteAll, KVList), from any plugin on any node, fail with a
// *model.AppError whose Id is KVFaultID, Message is msg and StatusCode is
// 500, without touching the store — like a database outage. Later calls
// behave normally. n <= 0 cancels the pending failures. Server.KV and
// Server.KVStore, the test's own view of the store, never fail.
func (s *Server) FailKV(n int, msg string) {
	s.kvFaults.mu.Lock()
	defer s.kvFaults.mu.Unlock()
	s.kvFaults.left, s.kvFaults.msg = max(n, 0), msg
}

// KVFaultsLeft is how many of the failures FailKV asked for are still to
// come, for waiting until the plugin has run into them.
func (s *Server) KVFaultsLeft() int {
	s.kvFaults.mu.Lock()
	defer s.kvFaults.mu.Unlock()
	return s.kvFaults.left
}

// kvFault consumes one pending failure, if any.
func (s *Server) kvFault(method string) *model.AppError {
	s.kvFaults.mu.Lock()
	defer s.kvFaults.mu.Unlock()
	if s.kvFaults.left == 0 {
		return nil
	}
	s.kvFaults.left--
	appErr := model.NewAppError(method, KVFaultID, nil, "", http.StatusInternalServerError)
	appErr.Message = s.kvFaults.msg // untranslated: the test's own words
	return appErr
}

// KVSet stores a value (nil deletes).
func (a *API) KVSet(key string, value []byte) *model.AppError {
	if appErr := a.s.kvFault("KVSet"); appErr != nil {
		return appErr
	}
	_, err := a.s.kv.SetWithOptions(a.pluginID, key, value, model.PluginKVSetOptions{})
	return err
}

// KVSetWithOptions stores a value with the given options (atomic
// compare-and-set, expiry).
func (a *API) KVSetWithOptions(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError) {
	if appErr := a.s.kvFault("KVSetWithOptions"); appErr != nil {
		return false, appErr
	}
	return a.s.kv.SetWithOptions(a.pluginID, key, value, options)
}

// KVSetWithExpiry stores a value that expires after expireInSeconds.
func (a *API) KVSetWithExpiry(key string, value []byte, expireInSeconds int64) *model.AppError {
	if appErr := a.s.kvFault("KVSetWithExpiry"); appErr != nil {
		return appErr
	}
	_, err := a.s.kv.SetWithOptions(a.pluginID, key, value, model.PluginKVSetOptions{ExpireInSeconds: expireInSeconds})
	return err
}

// KVCompareAndSet sets newValue if the current value is oldValue (nil: the
// key must not exist).
func (a *API) KVCompareAndSet(key string, oldValue, newValue []byte) (bool, *model.AppError) {
	if appErr := a.s.kvFault("KVCompareAndSet"); appErr != nil {
		return false, appErr
	}
	return a.s.kv.SetWithOptions(a.pluginID, key, newValue, model.PluginKVSetOptions{Atomic: true, OldValue: oldValue})
}

// KVCompareAndDelete deletes the key if its value is oldValue.
func (a *API) KVCompareAndDelete(key string, oldValue []byte) (bool, *model.AppError) {
	if appErr := a.s.kvFault("KVCompareAndDelete"); appErr != nil {
		return false, appErr
	}
	return a.s.kv.SetWithOptions(a.pluginID, key, nil, model.PluginKVSetOptions{Atomic: true, OldValue: oldValue})
}

// KVGet returns a value, nil for a missing or expired key. It reads the
// replica: app.GetPluginKey -> SqlPluginStore.Get (GetReplicaX).
func (a *API) KVGet(key string) ([]byte, *model.AppError) {
	if appErr := a.s.kvFault("KVGet"); appErr != nil {
		return nil, appErr
	}
	return a.s.kv.Get(a.pluginID, key)
}

// KVDelete deletes a key.
func (a *API) KVDelete(key string) *model.AppError {
	if appErr := a.s.kvFault("KVDelete"); appErr != nil {
		return appErr
	}
	return a.s.kv.Delete(a.pluginID, key)
}

// KVDeleteAll deletes every key of the plugin.
func (a *API) KVDeleteAll() *model.AppError {
	if appErr := a.s.kvFault("KVDeleteAll"); appErr != nil {
		return appErr
	}
	return a.s.kv.DeleteAll(a.pluginID)
}

// KVList lists keys in order, one page at a time. It reads the replica:
// app.ListPluginKeys -> SqlPluginStore.List (GetReplicaX).
func (a *API) KVList(pageNum, perPage int) ([]string, *model.AppError) {
	if appErr := a.s.kvFault("KVList"); appErr != nil {
		return nil, appErr
	}
	return a.s.kv.List(a.pluginID, pageNum, perPage)
}
