package store

import (
	"context"
	"time"
)

// prefixBarrier keys the markers AwaitReplicas writes.
const prefixBarrier = "rb:"

const (
	// barrierReads is how many reads in a row must see the marker: the
	// server spreads reads over its replicas, and each should have it.
	barrierReads = 4
	// barrierWait bounds how long AwaitReplicas waits.
	barrierWait = 30 * time.Second
)

// AwaitReplicas returns once KVGet, and the other reads the server serves
// from its read replicas, show every write made before the call: it writes
// a marker, reads until the reads show it (replicas apply writes in
// order), then removes it. A start that reads what it must not miss (a
// post made just before it, the pending records of the last run, every
// ghost) calls it first. Without replicas (SetReadReplicas) it returns at
// once.
func (s *Store) AwaitReplicas(ctx context.Context) error {
	if s.noReplicas.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, barrierWait)
	defer cancel()
	key := join(prefixBarrier, string(newToken()))
	if _, err := s.insert(key, []byte("1"), int64(barrierWait/time.Second)*2); err != nil {
		return err
	}
	defer func() { _ = s.del(key) }()
	for attempt, seen := 1, 0; seen < barrierReads; attempt++ {
		v, err := s.get(key)
		if err != nil {
			return err
		}
		if v != nil {
			seen++
			continue
		}
		seen = 0
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
	return nil
}
