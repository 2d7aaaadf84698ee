// Package memkv is an in-memory plugin key-value store with the semantics of
// Mattermost's SQL plugin store: atomic compare-and-set, expiry, nil values as
// deletes, and keys listed in order page by page. The test host serves the KV
// part of the plugin API from it, and store tests use it directly.
//
// Like a server with SqlSettings.DataSourceReplicas, the store can serve its
// reads from a read replica that lags behind (SetReplicaLag): Get and List
// then see the keys as they were the lag ago, while every write and
// compare-and-set acts on the primary. GetPrimary and ListPrimary read the
// primary, for tests checking what was written.
package memkv

import (
	"bytes"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

type entry struct {
	value    []byte
	expireAt time.Time // zero: never
}

func (e entry) expired(now time.Time) bool { return !e.expireAt.IsZero() && !now.Before(e.expireAt) }

// version is a key's state from a moment on, as the replica replays it.
type version struct {
	at     time.Time
	e      entry
	exists bool // false: the key was deleted
}

// Store holds the keys of every plugin, so two plugin instances sharing one
// Store behave like two cluster nodes sharing one database.
type Store struct {
	mu   sync.Mutex
	now  func() time.Time
	data map[string]map[string]entry // plugin ID -> key -> entry: the primary

	// lag is how far the replica is behind the primary; 0: reads go to
	// the primary.
	lag time.Duration
	// history holds, while lag > 0, each key's versions oldest first: the
	// newest one at least lag old (what the replica has now) and every
	// later one (what it will have).
	history map[string]map[string][]version
}

// New returns an empty store. now may be nil (time.Now); tests pass a fake
// clock to exercise expiry.
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, data: map[string]map[string]entry{}}
}

func appErr(where, id string, status int, detail string) *model.AppError {
	return model.NewAppError(where, id, nil, detail, status)
}

func (s *Store) live(pluginID, key string) (entry, bool) {
	e, ok := s.data[pluginID][key]
	if !ok {
		return entry{}, false
	}
	if e.expired(s.now()) {
		delete(s.data[pluginID], key)
		return entry{}, false
	}
	return e, true
}

// SetWithOptions behaves like API.KVSetWithOptions. It acts on the
// primary, compare-and-set included (SqlPluginStore.CompareAndSet and
// CompareAndDelete run on the master).
func (s *Store) SetWithOptions(pluginID, key string, value []byte, opts model.PluginKVSetOptions) (bool, *model.AppError) {
	if err := opts.IsValid(); err != nil {
		return false, err
	}
	kv := &model.PluginKeyValue{PluginId: pluginID, Key: key}
	if err := kv.IsValid(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, exists := s.live(pluginID, key)

	if opts.Atomic {
		if value == nil {
			// Compare-and-delete: only an existing, equal value is removed.
			if opts.OldValue == nil || !exists || !bytes.Equal(cur.value, opts.OldValue) {
				return false, nil
			}
			s.deleteLocked(pluginID, key)
			return true, nil
		}
		if opts.OldValue == nil {
			if exists {
				return false, nil
			}
		} else if !exists || !bytes.Equal(cur.value, opts.OldValue) {
			return false, nil
		}
	}
	if value == nil {
		s.deleteLocked(pluginID, key)
		return true, nil
	}
	e := entry{value: bytes.Clone(value)}
	if opts.ExpireInSeconds > 0 {
		e.expireAt = s.now().Add(time.Duration(opts.ExpireInSeconds) * time.Second)
	}
	if s.data[pluginID] == nil {
		s.data[pluginID] = map[string]entry{}
	}
	s.data[pluginID][key] = e
	s.recordLocked(pluginID, key, version{e: e, exists: true})
	return true, nil
}

func (s *Store) deleteLocked(pluginID, key string) {
	delete(s.data[pluginID], key)
	s.recordLocked(pluginID, key, version{})
}

// Get behaves like API.KVGet: a missing or expired key is (nil, nil). With
// a replica lag it reads the replica, like SqlPluginStore.Get
// (GetReplicaX).
func (s *Store) Get(pluginID, key string) ([]byte, *model.AppError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.replicaLocked(pluginID, key)
	if !ok {
		return nil, nil
	}
	return bytes.Clone(e.value), nil
}

// GetPrimary is Get from the primary, whatever the replica lag.
func (s *Store) GetPrimary(pluginID, key string) ([]byte, *model.AppError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(pluginID, key)
	if !ok {
		return nil, nil
	}
	return bytes.Clone(e.value), nil
}

// Delete behaves like API.KVDelete.
func (s *Store) Delete(pluginID, key string) *model.AppError {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(pluginID, key)
	return nil
}

// DeleteAll behaves like API.KVDeleteAll.
func (s *Store) DeleteAll(pluginID string) *model.AppError {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.data[pluginID] {
		s.recordLocked(pluginID, key, version{})
	}
	delete(s.data, pluginID)
	return nil
}

// List behaves like API.KVList: live keys in key order, one page at a
// time. With a replica lag it lists the replica's keys, like
// SqlPluginStore.List (GetReplicaX).
func (s *Store) List(pluginID string, page, perPage int) ([]string, *model.AppError) {
	return s.list(pluginID, page, perPage, false)
}

// ListPrimary is List from the primary, whatever the replica lag.
func (s *Store) ListPrimary(pluginID string, page, perPage int) ([]string, *model.AppError) {
	return s.list(pluginID, page, perPage, true)
}

func (s *Store) list(pluginID string, page, perPage int, primary bool) ([]string, *model.AppError) {
	if page < 0 || perPage <= 0 {
		return nil, appErr("memkv.List", "app.plugin.kv_list.app_error", http.StatusBadRequest, "page must be >= 0 and perPage > 0")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	if primary || s.lag == 0 {
		for k := range s.data[pluginID] {
			if _, ok := s.live(pluginID, k); ok {
				keys = append(keys, k)
			}
		}
	} else {
		for k := range s.history[pluginID] {
			if _, ok := s.replicaLocked(pluginID, k); ok {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	start := page * perPage
	if start >= len(keys) {
		return []string{}, nil
	}
	end := min(start+perPage, len(keys))
	return keys[start:end], nil
}

// Plugin returns a view of the store bound to one plugin ID with the plugin
// API's KV method names, so it can stand where the plugin API would: its
// reads go to the replica when the store has a lag.
func (s *Store) Plugin(pluginID string) *PluginKV { return &PluginKV{s: s, id: pluginID} }

// Primary is Plugin reading the primary, whatever the replica lag: what a
// test checks is what was written, not what a lagging read shows.
func (s *Store) Primary(pluginID string) *PluginKV {
	return &PluginKV{s: s, id: pluginID, primary: true}
}

// PluginKV is one plugin's view of a Store.
type PluginKV struct {
	s       *Store
	id      string
	primary bool
}

func (p *PluginKV) KVSetWithOptions(key string, value []byte, opts model.PluginKVSetOptions) (bool, *model.AppError) {
	return p.s.SetWithOptions(p.id, key, value, opts)
}

func (p *PluginKV) KVGet(key string) ([]byte, *model.AppError) {
	if p.primary {
		return p.s.GetPrimary(p.id, key)
	}
	return p.s.Get(p.id, key)
}

func (p *PluginKV) KVDelete(key string) *model.AppError { return p.s.Delete(p.id, key) }

func (p *PluginKV) KVList(page, perPage int) ([]string, *model.AppError) {
	return p.s.list(p.id, page, perPage, p.primary)
}
