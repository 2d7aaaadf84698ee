package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost/memkv"
)

// The plugin API is a KV.
var _ KV = plugin.API(nil)

const pluginID = "com.mattermost.bridge"

func newTestStore(t *testing.T) (*Store, *memkv.PluginKV) {
	t.Helper()
	kv := memkv.New(nil).Plugin(pluginID)
	return New(kv), kv
}

// fakeClock is a settable clock shared by memkv and the store.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClockedStore(t *testing.T) (*Store, *memkv.PluginKV, *fakeClock) {
	t.Helper()
	c := newClock()
	kv := memkv.New(c.Now).Plugin(pluginID)
	s := New(kv)
	s.now = c.Now
	return s, kv, c
}

// dump returns every key and value in kv.
func dump(t *testing.T, kv KV) map[string]string {
	t.Helper()
	out := map[string]string{}
	for page := 0; ; page++ {
		keys, err := kv.KVList(page, 50)
		if err != nil {
			t.Fatalf("KVList: %v", err)
		}
		for _, k := range keys {
			v, err := kv.KVGet(k)
			if err != nil {
				t.Fatalf("KVGet(%q): %v", k, err)
			}
			out[k] = string(v)
		}
		if len(keys) < 50 {
			return out
		}
	}
}

func keysOf(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// failingKV returns an AppError from every call.
type failingKV struct{}

func failure() *model.AppError {
	return model.NewAppError("test", "test.kv_down", nil, "database is down", http.StatusInternalServerError)
}

func (failingKV) KVSetWithOptions(string, []byte, model.PluginKVSetOptions) (bool, *model.AppError) {
	return false, failure()
}
func (failingKV) KVGet(string) ([]byte, *model.AppError)      { return nil, failure() }
func (failingKV) KVDelete(string) *model.AppError             { return failure() }
func (failingKV) KVList(int, int) ([]string, *model.AppError) { return nil, failure() }

func TestNilAppErrorIsNoError(t *testing.T) {
	s, _ := newTestStore(t)
	// memkv returns a nil *model.AppError; it must not surface as an error.
	if v, err := s.get("missing"); err != nil || v != nil {
		t.Fatalf("get(missing) = %q, %v; want nil, nil", v, err)
	}
	if err := s.del("missing"); err != nil {
		t.Fatalf("del(missing) = %v", err)
	}
	if ok, err := s.insert("k", []byte("1"), 0); err != nil || !ok {
		t.Fatalf("insert = %v, %v", ok, err)
	}
	if _, err := s.listKeys(""); err != nil {
		t.Fatalf("listKeys = %v", err)
	}
}

func TestAppErrorsPropagate(t *testing.T) {
	s := New(failingKV{})
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["GetLink"] = s.GetLink(model.NewId())
	_, checks["AddRemote"] = s.AddRemote(model.NewId(), model.NewId(), RemoteRoom{Network: "xmpp", Room: "r@conf"})
	_, checks["ListLinks"] = s.ListLinks()
	_, _, checks["LinkedRooms"] = s.LinkedRooms(ctx, roomRef("xmpp", "r@conf"))
	checks["RecordCounterpart"] = s.RecordCounterpart(ctx, msgOf("xmpp", "r", "1"), msgOf("mattermost", model.NewId(), "2"), "")
	_, checks["MarkSeen"] = s.MarkSeen("ns", "1", 0)
	checks["Migrate"] = s.Migrate(ctx)
	for name, err := range checks {
		var appErr *model.AppError
		if !errors.As(err, &appErr) || appErr.Id != "test.kv_down" {
			t.Errorf("%s: error %v does not wrap the AppError", name, err)
		}
	}
}

func TestUpdateConcurrentIncrements(t *testing.T) {
	s, _ := newTestStore(t)
	type counter struct{ N int }
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := update(context.Background(), s, "counter", 0, func(old *counter) (*counter, error) {
					if old == nil {
						old = &counter{}
					}
					old.N++
					return old, nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	c, _, err := getJSON[counter](s, "counter")
	must(t, err)
	if c.N != workers*each {
		t.Fatalf("counter = %d, want %d: updates were lost", c.N, workers*each)
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	s, kv := newTestStore(t)
	must(t, s.putJSON("k", map[string]int{"a": 1}, 0))
	before := dump(t, kv)
	boom := errors.New("boom")
	_, err := update(context.Background(), s, "k", 0, func(old *map[string]int) (*map[string]int, error) {
		(*old)["a"] = 2
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if after := dump(t, kv); !equalMaps(before, after) {
		t.Fatalf("store changed: %v -> %v", before, after)
	}
}

// conflictKV always loses compare-and-set.
type conflictKV struct{ *memkv.PluginKV }

func (c conflictKV) KVSetWithOptions(key string, value []byte, o model.PluginKVSetOptions) (bool, *model.AppError) {
	if o.Atomic {
		return false, nil
	}
	return c.PluginKV.KVSetWithOptions(key, value, o)
}

func TestUpdateGivesUpOnEndlessConflicts(t *testing.T) {
	kv := memkv.New(nil).Plugin(pluginID)
	s := New(conflictKV{kv})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := update(ctx, s, "k", 0, func(*int) (*int, error) { v := 1; return &v, nil })
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want a conflict or the context's error", err)
	}
}

func TestListKeysWalksEveryPage(t *testing.T) {
	s, kv := newTestStore(t)
	s.pageSize = 7
	var want []string
	for i := range 53 {
		k := fmt.Sprintf("x:%03d", i)
		want = append(want, k)
		must(t, s.putJSON(k, i, 0))
		// Interleave other types so pages mix prefixes.
		must(t, s.putJSON(fmt.Sprintf("y:%03d", i), i, 0))
	}
	must(t, s.putJSON("x", 0, 0)) // not under "x:"
	got, err := s.listKeys("x:")
	must(t, err)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("listKeys found %d keys, want %d", len(got), len(want))
	}
	if n := len(dump(t, kv)); n <= 2*s.pageSize {
		t.Fatalf("test needs several pages, has %d keys", n)
	}

	// An exact multiple of the page size ends with an empty page.
	s2, _ := newTestStore(t)
	s2.pageSize = 5
	for i := range 10 {
		must(t, s2.putJSON(fmt.Sprintf("z:%d", i), i, 0))
	}
	got, err = s2.listKeys("z:")
	must(t, err)
	if len(got) != 10 {
		t.Fatalf("listKeys = %d keys, want 10", len(got))
	}
}

func TestTTLSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 0, -time.Second: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, time.Hour: 3600} {
		if got := ttlSeconds(d); got != want {
			t.Errorf("ttlSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func diffKeys(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "-"+k)
		} else if w != v {
			out = append(out, "~"+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "+"+k)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
