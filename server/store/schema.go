package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// SchemaVersion is the layout version this code reads and writes.
const SchemaVersion = 2

// migration upgrades the store from version to-1 to version to. Steps should
// be idempotent: the lock makes a step run once, but a node dying mid-step
// leaves it to run again.
type migration struct {
	to   int
	name string
	run  func(ctx context.Context, s *Store) error
}

// migrations lists every step, in order; a layout change appends one and
// bumps SchemaVersion.
var migrations = []migration{
	{to: 2, name: "index the links", run: func(_ context.Context, s *Store) error { return s.buildLinkIndex() }},
}

const (
	// lockTTL lets a lock held by a dead node expire; the holder refreshes
	// it before each step.
	lockTTL = 5 * time.Minute
)

// schemaVersion returns the version recorded in the store and its raw
// value; 0 when none is (a fresh store).
func (s *Store) schemaVersion() (int, []byte, error) {
	raw, err := s.get(keySchemaVersion)
	if err != nil || raw == nil {
		return 0, nil, err
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return 0, nil, fmt.Errorf("store: bad schema version %q", raw)
	}
	return v, raw, nil
}

// Migrate brings the store to the current schema version: a fresh store is
// stamped with it, an older one goes through the registered steps in order.
// Concurrent callers (cluster nodes starting together) are safe: steps run
// under a lock key, each exactly once, and the version key moves by
// compare-and-set after each step. Callers that find the lock taken wait for
// the holder, until ctx ends. A store newer than this code is an error.
func (s *Store) Migrate(ctx context.Context) error {
	for {
		v, _, err := s.schemaVersion()
		if err != nil {
			return err
		}
		switch {
		case v == 0:
			ok, err := s.insert(keySchemaVersion, []byte(strconv.Itoa(s.schema)), 0)
			if err != nil || ok {
				return err
			}
			// Someone else stamped it; look again once the replica has it.
			if err := sleep(ctx, s.lockPoll); err != nil {
				return fmt.Errorf("store: waiting for the schema version: %w", err)
			}
			continue
		case v == s.schema:
			return nil
		case v > s.schema:
			return fmt.Errorf("store: schema version %d is newer than this plugin supports (%d); upgrade the plugin", v, s.schema)
		}

		token := newToken()
		ok, err := s.insert(keyMigrateLock, token, ttlSeconds(lockTTL))
		if err != nil {
			return err
		}
		if !ok {
			if err := sleep(ctx, s.lockPoll); err != nil {
				return fmt.Errorf("store: waiting for the migration lock: %w", err)
			}
			continue
		}
		err = s.runMigrations(ctx, token)
		if _, uErr := s.deleteIf(keyMigrateLock, token); uErr != nil && err == nil {
			err = uErr
		}
		return err
	}
}

// runMigrations runs the missing steps while holding the lock (token).
func (s *Store) runMigrations(ctx context.Context, token []byte) error {
	for {
		v, raw, err := s.schemaVersion()
		if err != nil {
			return err
		}
		if v == s.schema {
			return nil
		}
		var step *migration
		for i := range s.migrations {
			if s.migrations[i].to == v+1 {
				step = &s.migrations[i]
				break
			}
		}
		if step == nil {
			return fmt.Errorf("store: no migration from schema version %d to %d", v, v+1)
		}
		// The version read may be an old one from a lagging replica, the
		// step before having just been recorded: set onto itself, it is
		// proven on the master before its next step runs.
		current, err := s.set(keySchemaVersion, raw, model.PluginKVSetOptions{Atomic: true, OldValue: raw})
		if err != nil {
			return err
		}
		if !current {
			if err := sleep(ctx, s.lockPoll); err != nil {
				return err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// Refresh the lock; losing it means it expired and someone else
		// may be migrating.
		ok, err := s.set(keyMigrateLock, token, model.PluginKVSetOptions{Atomic: true, OldValue: token, ExpireInSeconds: ttlSeconds(lockTTL)})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("store: lost the migration lock before step %d (%s)", step.to, step.name)
		}
		if err := step.run(ctx, s); err != nil {
			return fmt.Errorf("store: migration to version %d (%s): %w", step.to, step.name, err)
		}
		ok, err = s.set(keySchemaVersion, []byte(strconv.Itoa(step.to)), model.PluginKVSetOptions{Atomic: true, OldValue: raw})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("store: schema version changed during migration to %d", step.to)
		}
	}
}

func newToken() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails
	return []byte(hex.EncodeToString(b))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
