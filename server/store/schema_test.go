package store

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

func TestMigrateFreshStoreIsIdempotent(t *testing.T) {
	s, kv := newTestStore(t)
	ctx := context.Background()
	must(t, s.Migrate(ctx))
	after := dump(t, kv)
	if len(after) != 1 || after[keySchemaVersion] != strconv.Itoa(SchemaVersion) {
		t.Fatalf("after Migrate: %v", after)
	}
	must(t, s.Migrate(ctx))
	must(t, New(kv).Migrate(ctx))
	if again := dump(t, kv); !equalMaps(after, again) {
		t.Fatalf("second Migrate changed the store: %s", diffKeys(after, again))
	}
}

func TestMigrateConcurrentFreshStore(t *testing.T) {
	_, kv := newTestStore(t)
	var wg sync.WaitGroup
	for range 8 {
		node := New(kv)
		wg.Go(func() {
			if err := node.Migrate(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if v, _ := kv.KVGet(keySchemaVersion); string(v) != strconv.Itoa(SchemaVersion) {
		t.Fatalf("schema version = %q", v)
	}
}

func TestMigrateRejectsNewerStore(t *testing.T) {
	s, kv := newTestStore(t)
	_, _ = kv.KVSetWithOptions(keySchemaVersion, []byte("7"), model.PluginKVSetOptions{})
	if err := s.Migrate(context.Background()); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Migrate over a newer store: %v", err)
	}
}

// withSteps makes s believe the schema is at version target with steps.
func withSteps(s *Store, target int, steps []migration) *Store {
	s.schema, s.migrations, s.lockPoll = target, steps, 5*time.Millisecond
	return s
}

func TestMigrateRunsStepsInOrderOnce(t *testing.T) {
	_, kv := newTestStore(t)
	_, _ = kv.KVSetWithOptions(keySchemaVersion, []byte("1"), model.PluginKVSetOptions{})

	var mu sync.Mutex
	var ran []int
	var running atomic.Int32
	step := func(to int) migration {
		return migration{to: to, name: "test", run: func(ctx context.Context, s *Store) error {
			if running.Add(1) != 1 {
				t.Error("two steps ran at once")
			}
			defer running.Add(-1)
			time.Sleep(20 * time.Millisecond) // widen the race window
			mu.Lock()
			ran = append(ran, to)
			mu.Unlock()
			return s.putJSON("migrated:"+string(rune('0'+to)), to, 0)
		}}
	}
	steps := []migration{step(3), step(2)} // registration order does not matter

	var wg sync.WaitGroup
	for range 2 {
		node := withSteps(New(kv), 3, steps)
		wg.Go(func() {
			if err := node.Migrate(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if !slices.Equal(ran, []int{2, 3}) {
		t.Fatalf("steps ran %v, want [2 3] once each", ran)
	}
	if v, _ := kv.KVGet(keySchemaVersion); string(v) != "3" {
		t.Fatalf("schema version = %q, want 3", v)
	}
	if v, _ := kv.KVGet(keyMigrateLock); v != nil {
		t.Fatal("migration lock left behind")
	}
	// And never again.
	must(t, withSteps(New(kv), 3, steps).Migrate(context.Background()))
	if len(ran) != 2 {
		t.Fatalf("steps ran again: %v", ran)
	}
}

func TestMigrateFailedStepKeepsVersion(t *testing.T) {
	_, kv := newTestStore(t)
	_, _ = kv.KVSetWithOptions(keySchemaVersion, []byte("1"), model.PluginKVSetOptions{})
	boom := errors.New("boom")
	calls := 0
	steps := []migration{{to: 2, name: "flaky", run: func(context.Context, *Store) error {
		calls++
		if calls == 1 {
			return boom
		}
		return nil
	}}}
	s := withSteps(New(kv), 2, steps)
	if err := s.Migrate(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Migrate = %v, want boom", err)
	}
	if v, _ := kv.KVGet(keySchemaVersion); string(v) != "1" {
		t.Fatalf("version moved to %q after a failed step", v)
	}
	must(t, s.Migrate(context.Background())) // lock was released
	if v, _ := kv.KVGet(keySchemaVersion); string(v) != "2" {
		t.Fatalf("version = %q, want 2", v)
	}

	// A missing step is an error, not a silent jump.
	s3 := withSteps(New(kv), 4, steps)
	if err := s3.Migrate(context.Background()); err == nil {
		t.Fatal("Migrate with a missing step succeeded")
	}
}

func TestMigrateWaitsForLockHolder(t *testing.T) {
	_, kv := newTestStore(t)
	_, _ = kv.KVSetWithOptions(keySchemaVersion, []byte("1"), model.PluginKVSetOptions{})
	_, _ = kv.KVSetWithOptions(keyMigrateLock, []byte("someone-else"), model.PluginKVSetOptions{})
	s := withSteps(New(kv), 2, []migration{{to: 2, name: "noop", run: func(context.Context, *Store) error { return nil }}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.Migrate(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Migrate with the lock held elsewhere: %v", err)
	}
	_ = kv.KVDelete(keyMigrateLock)
	must(t, s.Migrate(context.Background()))
}
