package testhost

import (
	"github.com/mattermost/mattermost/server/public/model"
)

// The KV methods are served by the memkv store every node shares, with the
// semantics of the server's SQL plugin store.

// KVSet stores a value (nil deletes).
func (a *API) KVSet(key string, value []byte) *model.AppError {
	_, err := a.s.kv.SetWithOptions(a.pluginID, key, value, model.PluginKVSetOptions{})
	return err
}

// KVSetWithOptions stores a value with the given options (atomic
// compare-and-set, expiry).
func (a *API) KVSetWithOptions(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError) {
	return a.s.kv.SetWithOptions(a.pluginID, key, value, options)
}

// KVSetWithExpiry stores a value that expires after expireInSeconds.
func (a *API) KVSetWithExpiry(key string, value []byte, expireInSeconds int64) *model.AppError {
	_, err := a.s.kv.SetWithOptions(a.pluginID, key, value, model.PluginKVSetOptions{ExpireInSeconds: expireInSeconds})
	return err
}

// KVCompareAndSet sets newValue if the current value is oldValue (nil: the
// key must not exist).
func (a *API) KVCompareAndSet(key string, oldValue, newValue []byte) (bool, *model.AppError) {
	return a.s.kv.SetWithOptions(a.pluginID, key, newValue, model.PluginKVSetOptions{Atomic: true, OldValue: oldValue})
}

// KVCompareAndDelete deletes the key if its value is oldValue.
func (a *API) KVCompareAndDelete(key string, oldValue []byte) (bool, *model.AppError) {
	return a.s.kv.SetWithOptions(a.pluginID, key, nil, model.PluginKVSetOptions{Atomic: true, OldValue: oldValue})
}

// KVGet returns a value, nil for a missing or expired key.
func (a *API) KVGet(key string) ([]byte, *model.AppError) { return a.s.kv.Get(a.pluginID, key) }

// KVDelete deletes a key.
func (a *API) KVDelete(key string) *model.AppError { return a.s.kv.Delete(a.pluginID, key) }

// KVDeleteAll deletes every key of the plugin.
func (a *API) KVDeleteAll() *model.AppError { return a.s.kv.DeleteAll(a.pluginID) }

// KVList lists keys in order, one page at a time.
func (a *API) KVList(pageNum, perPage int) ([]string, *model.AppError) {
	return a.s.kv.List(a.pluginID, pageNum, perPage)
}
