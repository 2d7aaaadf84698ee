// Package store keeps the plugin's persistent state in the Mattermost plugin
// key-value store: channel links, remote users, ghosts, message-ID maps,
// cursors and idempotency markers.
//
// Every read-modify-write is a compare-and-set that retries on conflict, so
// several cluster nodes (or several admins) can use the store at once
// without losing updates. (It remembers the bytes it last wrote to a key
// only as the old value its next compare-and-set of that key tries first;
// nothing is returned to a caller on the strength of that memory alone.)
// Reads go to the KV store, except those of the few records every message
// reads and that rarely change (links, room claims, remote users): those
// are kept for up to two seconds, and dropped at once when this store
// writes them (see readCacheTTL). Records are JSON; the key layout is
// described in keys.go.
//
// On a server with read replicas (SqlSettings.DataSourceReplicas) KVGet and
// KVList may answer with data a little behind the last write, while writes
// and compare-and-set act on the master. So no decision rests on a read
// alone: a read-modify-write ends with a compare-and-set against the bytes
// it read, also when it decides to change nothing (the value is set onto
// itself, or an absence is proven with a placeholder), and a lost
// compare-and-set means reading again, for as long as the replica needs.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// KV is the part of the plugin API the store uses; plugin.API satisfies it.
type KV interface {
	KVSetWithOptions(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError)
	KVGet(key string) ([]byte, *model.AppError)
	KVDelete(key string) *model.AppError
	KVList(page, perPage int) ([]string, *model.AppError)
}

var (
	// ErrNotFound is returned when a record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrRoomTaken is wrapped by the *RoomTakenError AddRemote returns when
	// the remote room is already linked to another channel.
	ErrRoomTaken = errors.New("store: remote room is already linked to another channel")
	// ErrAlreadyLinked is returned by AddRemote when the remote room is
	// already linked to this channel.
	ErrAlreadyLinked = errors.New("store: remote room is already linked to this channel")
	// ErrInvalidInput is wrapped by the error of a call with bad arguments;
	// such a call writes nothing.
	ErrInvalidInput = errors.New("store: invalid input")
	// ErrConflict is returned when a read-modify-write kept losing to
	// concurrent writers and gave up.
	ErrConflict = errors.New("store: too many concurrent updates, giving up")
)

// RoomTakenError says which channel holds a remote room. It wraps ErrRoomTaken.
type RoomTakenError struct {
	Network   bridge.Network
	Room      string
	ChannelID string
}

func (e *RoomTakenError) Error() string {
	return fmt.Sprintf("store: %s room %q is already linked to channel %s", e.Network, e.Room, e.ChannelID)
}

func (e *RoomTakenError) Unwrap() error { return ErrRoomTaken }

const (
	defaultPageSize = 200
	// maxAttempts and conflictWindow bound the compare-and-set retries of
	// one update: it gives up when it has made that many attempts and that
	// much time has passed. A compare-and-set against a value read from a
	// lagging replica keeps failing until the replica catches up, which on
	// a busy server can take seconds.
	maxAttempts    = 100
	conflictWindow = 10 * time.Second
	// maxField bounds any string stored (a JID is at most 3071 bytes).
	maxField = 8192
	// maxHints bounds the keys whose last written bytes the store
	// remembers.
	maxHints = 4096
	// placeholderTTL is how long a placeholder outlives a node that died
	// between writing and removing it.
	placeholderTTL = 60
)

// placeholder is written, and removed again, to prove that a key read as
// absent is absent on the master. JSON never encodes a record as null, so
// readers take it for an absent record.
var placeholder = []byte("null")

func isPlaceholder(raw []byte) bool { return bytes.Equal(raw, placeholder) }

// Store is the plugin's persistent state. It is safe for concurrent use.
type Store struct {
	kv  KV
	now func() time.Time

	// retention is the message-map lifetime in seconds, 0 = forever.
	retention atomic.Int64
	// noReplicas says every read is the master's (see SetReadReplicas).
	noReplicas atomic.Bool

	// Fixed after New; tests adjust them.
	pageSize   int
	schema     int
	migrations []migration
	lockPoll   time.Duration
	staleClaim time.Duration

	// hints holds, per key, the bytes this store last wrote there: what
	// the master held then. update tries them as the old value before
	// reading, so a key it updates often (a cursor, a message's copies) is
	// not read from a replica still behind its own last write.
	hintsMu sync.Mutex
	hints   map[string][]byte

	// cache holds what get read of the records every message reads (see
	// cachedPrefixes); cacheGen counts the writes to them, so that a read
	// that overlapped one is not kept.
	cacheMu  sync.Mutex
	cache    map[string]cachedRead
	cacheGen uint64

	// calls counts the round trips to the KV store per operation (see
	// KVRoundTrips), for the plugin's metrics.
	calls [len(kvOperations)]atomic.Int64
}

// The operations KVRoundTrips counts.
const (
	KVGet           = "get"
	KVSet           = "set"
	KVCompareAndSet = "compare_and_set"
	KVDelete        = "delete"
	KVList          = "list"
)

// Indexes of Store.calls.
const (
	opGet = iota
	opSet
	opCompareAndSet
	opDelete
	opList
)

var kvOperations = [...]string{opGet: KVGet, opSet: KVSet, opCompareAndSet: KVCompareAndSet, opDelete: KVDelete, opList: KVList}

func (s *Store) counted(op int) { s.calls[op].Add(1) }

// KVRoundTrips returns how many calls this store made to the KV store, per
// operation, since it was made.
func (s *Store) KVRoundTrips() map[string]int64 {
	out := make(map[string]int64, len(kvOperations))
	for i, op := range kvOperations {
		out[op] = s.calls[i].Load()
	}
	return out
}

// New returns a Store over kv (usually the plugin API).
func New(kv KV) *Store {
	return &Store{
		kv:         kv,
		now:        time.Now,
		pageSize:   defaultPageSize,
		schema:     SchemaVersion,
		migrations: migrations,
		lockPoll:   100 * time.Millisecond,
		staleClaim: staleClaimAge,
	}
}

// SetReadReplicas says whether the server reads from read replicas
// (SqlSettings.DataSourceReplicas; a change needs a server restart, so the
// plugin reads it at activation). A new store assumes it does. Without
// replicas a read is the master's and needs no proof: an absence read is
// believed and a value read stands without being set onto itself, which
// saves two round trips on every lookup of a message not bridged yet.
func (s *Store) SetReadReplicas(on bool) { s.noReplicas.Store(!on) }

func (s *Store) stamp() time.Time { return s.now().UTC().Round(0) }

// --- KV access with proper error conversion ---

func kvErr(op, key string, e *model.AppError) error {
	if e == nil {
		return nil // never return a typed nil as error
	}
	return fmt.Errorf("store: %s %q: %w", op, key, e)
}

func (s *Store) get(key string) ([]byte, error) {
	cacheable := isCached(key)
	var gen uint64
	if cacheable {
		v, ok, g := s.cachedRead(key)
		if ok {
			return v, nil
		}
		gen = g
	}
	s.counted(opGet)
	v, appErr := s.kv.KVGet(key)
	if err := kvErr("get", key, appErr); err != nil {
		return nil, err
	}
	if cacheable && v != nil && !isPlaceholder(v) {
		s.keepRead(key, v, gen)
	}
	return v, nil
}

// readCacheTTL is how long get answers from the cache. The cached records
// change on the node holding the bridge, which reads them, and its own
// writes replace what is cached at once; the bound covers a change another
// node made (one that held the bridge before), like a replica's lag, which
// every reader here already allows for.
const readCacheTTL = 2 * time.Second

// cachedPrefixes are the records every bridged message reads, which
// change rarely: links, room claims and remote users. Only records are
// cached, never an absence, so a new one is seen at once.
var cachedPrefixes = []string{prefixLink, prefixRoom, prefixRemoteUser}

type cachedRead struct {
	raw   []byte
	until time.Time
}

func isCached(key string) bool {
	return slices.ContainsFunc(cachedPrefixes, func(p string) bool { return strings.HasPrefix(key, p) })
}

func (s *Store) cachedRead(key string) (raw []byte, ok bool, gen uint64) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	c, ok := s.cache[key]
	if ok && s.now().Before(c.until) {
		return c.raw, true, s.cacheGen
	}
	return nil, false, s.cacheGen
}

func (s *Store) keepRead(key string, raw []byte, gen uint64) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cacheGen != gen {
		return // written meanwhile: what was read may be older
	}
	if s.cache == nil || len(s.cache) >= maxHints {
		s.cache = map[string]cachedRead{}
	}
	s.cache[key] = cachedRead{raw: bytes.Clone(raw), until: s.now().Add(readCacheTTL)}
}

// forgetRead drops key from the cache after a write to it, successful or
// not (a lost compare-and-set means the master holds something else).
func (s *Store) forgetRead(key string) {
	if !isCached(key) {
		return
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	delete(s.cache, key)
	s.cacheGen++
}

// ForgetCachedReads empties the cache: the node that starts holding the
// bridge reads every record afresh.
func (s *Store) ForgetCachedReads() {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	s.cache = nil
	s.cacheGen++
}

func (s *Store) set(key string, value []byte, opts model.PluginKVSetOptions) (bool, error) {
	if opts.Atomic {
		s.counted(opCompareAndSet)
	} else {
		s.counted(opSet)
	}
	defer s.forgetRead(key) // after the write: a read before it is not kept
	ok, appErr := s.kv.KVSetWithOptions(key, value, opts)
	if err := kvErr("set", key, appErr); err != nil {
		s.remember(key, nil)
		return false, err
	}
	if ok {
		s.remember(key, value)
	} else if opts.Atomic {
		s.remember(key, nil) // the master holds something else
	}
	return ok, nil
}

func (s *Store) del(key string) error {
	s.remember(key, nil)
	defer s.forgetRead(key)
	s.counted(opDelete)
	return kvErr("delete", key, s.kv.KVDelete(key))
}

// remember records value as what key holds on the master (nil: forget it;
// placeholders are not kept).
func (s *Store) remember(key string, value []byte) {
	s.hintsMu.Lock()
	defer s.hintsMu.Unlock()
	if value == nil || isPlaceholder(value) {
		delete(s.hints, key)
		return
	}
	if s.hints == nil || len(s.hints) >= maxHints {
		s.hints = map[string][]byte{}
	}
	s.hints[key] = bytes.Clone(value)
}

// hint returns what key held on the master when this store last wrote it.
func (s *Store) hint(key string) ([]byte, bool) {
	s.hintsMu.Lock()
	defer s.hintsMu.Unlock()
	v, ok := s.hints[key]
	return v, ok
}

// behindOwnWrite reports whether raw, read from a replica, is not what
// this store last wrote at key: the replica may be behind that write (or
// another node wrote since; confirm tells which).
func (s *Store) behindOwnWrite(key string, raw []byte) bool {
	h, ok := s.hint(key)
	return ok && !bytes.Equal(h, raw)
}

// confirmKeepingHint is confirm for a reader waiting for a replica to
// show this store's own write: a failed confirm forgets the hint (the
// master holds something else), but the reader still needs it to tell
// the replica caught up.
func (s *Store) confirmKeepingHint(key string, raw []byte) (bool, error) {
	h, hinted := s.hint(key)
	ok, err := s.confirm(key, raw, 0)
	if !ok && hinted {
		s.remember(key, h)
	}
	return ok, err
}

// insert stores value only if key does not exist; ok reports whether it did.
func (s *Store) insert(key string, value []byte, ttl int64) (bool, error) {
	return s.set(key, value, model.PluginKVSetOptions{Atomic: true, ExpireInSeconds: ttl})
}

// deleteIf deletes key only if it still holds old.
func (s *Store) deleteIf(key string, old []byte) (bool, error) {
	return s.set(key, nil, model.PluginKVSetOptions{Atomic: true, OldValue: old})
}

func (s *Store) putJSON(key string, v any, ttl int64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encoding %q: %w", key, err)
	}
	_, err = s.set(key, b, model.PluginKVSetOptions{ExpireInSeconds: ttl})
	return err
}

// getJSON reads key into a new T; (nil, nil, nil) when it does not exist,
// and a nil T with the raw bytes when it holds a placeholder.
func getJSON[T any](s *Store, key string) (*T, []byte, error) {
	raw, err := s.get(key)
	if err != nil || raw == nil {
		return nil, nil, err
	}
	v, err := decodeJSON[T](key, raw)
	if err != nil {
		return nil, nil, err
	}
	return v, raw, nil
}

// decodeJSON decodes raw, read from key, into a new T; nil for a
// placeholder.
func decodeJSON[T any](key string, raw []byte) (*T, error) {
	if isPlaceholder(raw) {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("store: decoding %q: %w", key, err)
	}
	return v, nil
}

// provenRecord reads the record at key; nil when there is none on the
// master. A read replica may not have a record written just now, so an
// absence is proven (see confirm) before it is believed; a record found is
// returned as read.
func provenRecord[T any](s *Store, key string) (*T, error) {
	for r := newRetry(); ; {
		v, raw, err := getJSON[T](s, key)
		if err != nil || v != nil {
			return v, err
		}
		ok, err := s.confirmAbsent(key, raw)
		if err != nil || ok {
			return nil, err
		}
		if err := r.wait(context.Background(), key); err != nil {
			return nil, err
		}
	}
}

// errNoChange, returned by an update function, ends the update without
// changing the value; update then returns the old value.
var errNoChange = errors.New("no change")

// update is a read-modify-write of the JSON value at key. fn gets the current
// value (nil if absent, a fresh copy on every attempt) and returns the new
// one: nil deletes the key, errNoChange leaves it alone, any other error
// aborts. The write is a compare-and-set against the bytes read, retried on
// conflict, so concurrent updates are never lost. The read may come from a
// lagging replica, so an update that ends without a change (errNoChange, an
// error, nothing to delete, the same bytes) checks what it read against the
// master the same way, and starts over when the master differs. ttl
// (seconds, 0 = none) applies to the value written, the unchanged one
// included. The first attempt takes the bytes this store last wrote to key
// for the current value, when it has them, without reading: right if
// nobody wrote since, and the compare-and-set tells. update returns the
// value now stored.
func update[T any](ctx context.Context, s *Store, key string, ttl int64, fn func(old *T) (*T, error)) (*T, error) {
	r := newRetry()
	raw, hinted := s.hint(key)
	for {
		var old *T
		var err error
		if hinted {
			hinted = false
			old, err = decodeJSON[T](key, raw)
		} else {
			old, raw, err = getJSON[T](s, key)
		}
		if err != nil {
			return nil, err
		}
		next, fnErr := fn(old)
		var ok bool
		switch {
		case errors.Is(fnErr, errNoChange):
			next, fnErr = old, nil
			ok, err = s.confirm(key, raw, ttl)
		case fnErr != nil:
			// A decision taken on what may be an old value.
			ok, err = s.confirm(key, raw, ttl)
		case next == nil:
			ok, err = s.remove(key, raw)
		default:
			ok, err = s.replace(key, raw, next, ttl)
		}
		if err != nil {
			return nil, err
		}
		if ok && fnErr != nil {
			return nil, fnErr
		}
		if ok {
			return next, nil
		}
		if err := r.wait(ctx, key); err != nil {
			return nil, err
		}
	}
}

// replace sets key to next if it still holds raw.
func (s *Store) replace(key string, raw []byte, next any, ttl int64) (bool, error) {
	b, err := json.Marshal(next)
	if err != nil {
		return false, fmt.Errorf("store: encoding %q: %w", key, err)
	}
	return s.set(key, b, model.PluginKVSetOptions{Atomic: true, OldValue: raw, ExpireInSeconds: ttl})
}

// remove deletes key if it still holds raw; for a key read as absent, it
// proves it is.
func (s *Store) remove(key string, raw []byte) (bool, error) {
	if raw == nil || isPlaceholder(raw) {
		return s.confirmAbsent(key, raw)
	}
	return s.deleteIf(key, raw)
}

// confirm reports whether key still holds raw on the master, by setting it
// onto itself (compare-and-set runs on the master, KVGet may not); for a key
// read as absent, it proves it is.
func (s *Store) confirm(key string, raw []byte, ttl int64) (bool, error) {
	if raw == nil || isPlaceholder(raw) {
		return s.confirmAbsent(key, raw)
	}
	if ttl == 0 && s.noReplicas.Load() {
		// Setting it onto itself would prove nothing more; with a ttl it
		// also keeps the record alive, which callers count on.
		return true, nil
	}
	return s.set(key, raw, model.PluginKVSetOptions{Atomic: true, OldValue: raw, ExpireInSeconds: ttl})
}

// confirmAbsent reports whether key is absent on the master: a placeholder
// inserted if absent and deleted again proves it. raw is a placeholder
// read, which is deleted the same way.
func (s *Store) confirmAbsent(key string, raw []byte) (bool, error) {
	if s.noReplicas.Load() {
		return true, nil // a placeholder read is left to expire
	}
	if raw == nil {
		ok, err := s.insert(key, placeholder, placeholderTTL)
		if err != nil || !ok {
			return false, err
		}
	}
	return s.deleteIf(key, placeholder)
}

// retry paces a loop that reads again after losing a compare-and-set: it
// sleeps a short random time growing with the attempts and gives up after
// maxAttempts attempts and conflictWindow.
type retry struct {
	start    time.Time
	attempts int
}

func newRetry() *retry { return &retry{start: time.Now()} }

// wait sleeps before the next attempt; it fails with ErrConflict when it is
// time to give up, or with the context's error.
func (r *retry) wait(ctx context.Context, key string) error {
	r.attempts++
	if r.attempts >= maxAttempts && time.Since(r.start) >= conflictWindow {
		return fmt.Errorf("%w (key %q)", ErrConflict, key)
	}
	return backoff(ctx, r.attempts)
}

// backoff sleeps a short random time growing with attempt.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(time.Millisecond)))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// listKeys returns every key starting with prefix. It walks all pages of
// KVList until an empty or short page; the order of KVList depends on the
// database collation, so it never stops early. Keys written or deleted while
// it walks may be missed or seen twice (offset paging), so it deduplicates.
func (s *Store) listKeys(prefix string) ([]string, error) {
	var keys []string
	err := s.walkKeys(func(k string) {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	})
	return keys, err
}

// walkKeys calls fn once with every key, deduplicated (see listKeys).
func (s *Store) walkKeys(fn func(key string)) error {
	seen := map[string]bool{}
	for page := 0; ; page++ {
		s.counted(opList)
		batch, appErr := s.kv.KVList(page, s.pageSize)
		if appErr != nil {
			return fmt.Errorf("store: listing keys (page %d): %w", page, appErr)
		}
		for _, k := range batch {
			if !seen[k] {
				seen[k] = true
				fn(k)
			}
		}
		if len(batch) < s.pageSize {
			return nil
		}
	}
}

// listJSON reads every record under prefix; records deleted meanwhile are
// skipped.
func listJSON[T any](s *Store, prefix string) ([]T, error) {
	keys, err := s.listKeys(prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		v, _, err := getJSON[T](s, k)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, *v)
		}
	}
	return out, nil
}

func ttlSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// --- validation ---

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

func checkNetwork(n bridge.Network) error {
	if !n.Valid() {
		return invalid("invalid network name %q", n)
	}
	return nil
}

// checkRemoteNetwork accepts a known network other than Mattermost.
func checkRemoteNetwork(n bridge.Network) error {
	if err := checkNetwork(n); err != nil {
		return err
	}
	if n == bridge.NetworkMattermost {
		return invalid("network must not be %s", n)
	}
	return nil
}

func checkID(what, id string) error {
	if !model.IsValidId(id) {
		return invalid("%s %q is not a valid Mattermost ID", what, id)
	}
	return nil
}

func checkString(what, v string) error {
	switch {
	case v == "":
		return invalid("%s is empty", what)
	case len(v) > maxField:
		return invalid("%s is longer than %d bytes", what, maxField)
	case !utf8.ValidString(v):
		return invalid("%s is not valid UTF-8", what)
	}
	return nil
}

// checkOptional is checkString for a value that may be empty.
func checkOptional(what, v string) error {
	if v == "" {
		return nil
	}
	return checkString(what, v)
}
