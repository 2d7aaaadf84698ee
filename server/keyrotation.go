package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/secret"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Ghost secrets (the passwords of the XMPP accounts the bridge registers for
// Mattermost users) are sealed under the EncryptionKey setting. When an admin
// regenerates the key, keyRotator re-seals every stored secret under the new
// one while the plugin runs:
//
//  1. Before anything else, the earlier keys are recorded in the KV store,
//     sealed under the new key (store.KeyRotation).
//  2. The keyring the bridges use seals under the new key from then on and
//     opens with the new key or, until step 4, the earlier ones.
//  3. Every ghost record not yet under the new key is re-sealed with a
//     compare-and-set.
//  4. The record of step 1 is deleted and the earlier keys are dropped from
//     memory: nothing opens with them again.
//
// A plugin stopped anywhere in between (deactivated, crashed, node restart)
// finds the record on activation and carries on from step 2; every sealed
// value names its key, so nothing depends on how far the work got. If the
// key changed while the plugin was not running, the earlier key is unknown:
// those ghosts register new accounts when they next speak.
//
// In a cluster every node gets the new settings and runs the same rotation
// (the record is merged, the re-sealing is compare-and-set, so they do not
// conflict). A node that has not received the new settings yet still seals
// a newly registered ghost under the old key; its own rotation, when the
// settings arrive, re-seals that record too. Only a registration whose write
// lands after the last rotation finished its pass keeps the old key, and
// that ghost registers a new account when it next speaks.
type keyRotator struct {
	store *store.Store
	keys  *secret.Keyring
	log   bridge.Logger

	mu       sync.Mutex
	current  string   // the key value sealing now
	retiring []string // earlier key values, until the re-sealing is done
	cancel   context.CancelFunc
	done     chan struct{}
}

// errUnreadable marks a ghost secret that no known key opens.
var errUnreadable = errors.New("sealed under a key this plugin does not know")

// effectiveKey is the key ghost secrets are sealed under: the EncryptionKey
// setting, or the installation's own secret until an admin generates one.
func effectiveKey(st *store.Store, cfg *configuration) (string, error) {
	if cfg.EncryptionKey != "" {
		return cfg.EncryptionKey, nil
	}
	key, err := st.InstanceSecret()
	if err != nil {
		return "", fmt.Errorf("read the instance secret: %w", err)
	}
	return key, nil
}

func newKeyRotator(st *store.Store, log bridge.Logger, key string) (*keyRotator, error) {
	box, err := secret.New(key)
	if err != nil {
		return nil, err
	}
	return &keyRotator{store: st, keys: secret.NewKeyring(box), log: log, current: key}, nil
}

// resume carries on a rotation an earlier run of the plugin did not finish.
func (r *keyRotator) resume(ctx context.Context) error {
	rec, err := r.store.GetKeyRotation()
	if err != nil || rec == nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.keys.Current()
	if rec.To != cur.ID() {
		// The key changed again while the plugin was stopped: the recorded
		// keys are sealed under one this plugin never saw.
		r.log.Warn("An unfinished encryption key rotation was for another key; ghosts whose passwords it covered will register new XMPP accounts", "key_id", rec.To)
		return r.store.FinishKeyRotation(rec.To)
	}
	for _, sealed := range rec.Retiring {
		key, oerr := cur.Open(sealed)
		if oerr != nil {
			return fmt.Errorf("read the keys of the unfinished rotation: %w", oerr)
		}
		r.retiring = appendKey(r.retiring, string(key), r.current)
	}
	r.keys.Rotate(cur, boxes(r.retiring)...)
	r.log.Info("Resuming the re-sealing of ghost passwords under the new encryption key", "key_id", cur.ID())
	r.startLocked(ctx, false)
	return nil
}

// rotateTo makes key the sealing key and re-seals the stored secrets under it
// in the background. Nothing is sealed under the earlier key after it
// returns.
func (r *keyRotator) rotateTo(ctx context.Context, key string) error {
	next, err := secret.New(key)
	if err != nil {
		return err
	}
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	if next.ID() == r.keys.Current().ID() {
		return nil
	}
	r.retiring = slices.DeleteFunc(appendKey(r.retiring, r.current, key), func(k string) bool { return k == key })
	r.current = key
	recorded := r.record(next) == nil
	r.keys.Rotate(next, boxes(r.retiring)...)
	r.log.Info("The encryption key changed: re-sealing the ghost passwords under it", "key_id", next.ID())
	r.startLocked(ctx, !recorded)
	return nil
}

// record writes step 1: the retiring keys, sealed under next. Keys another
// node already recorded for the same rotation are kept.
func (r *keyRotator) record(next *secret.Box) error {
	err := r.store.UpdateKeyRotation(func(old *store.KeyRotation) (*store.KeyRotation, error) {
		keys := slices.Clone(r.retiring)
		if old != nil && old.To == next.ID() {
			for _, sealed := range old.Retiring {
				if k, oerr := next.Open(sealed); oerr == nil {
					keys = appendKey(keys, string(k), r.current)
				}
			}
		}
		rec := &store.KeyRotation{To: next.ID()}
		if old != nil && old.To == next.ID() {
			rec.StartedAt = old.StartedAt
		}
		for _, k := range keys {
			sealed, serr := next.Seal([]byte(k))
			if serr != nil {
				return nil, serr
			}
			rec.Retiring = append(rec.Retiring, sealed)
		}
		return rec, nil
	})
	if err != nil {
		r.log.Error("Cannot record the encryption key rotation; retrying", "error", err.Error())
	}
	return err
}

// startLocked runs the re-sealing in the background; r.mu must be held.
func (r *keyRotator) startLocked(ctx context.Context, recordFirst bool) {
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	next := r.keys.Current()
	go func() {
		defer close(done)
		r.run(pctx, next, recordFirst)
	}()
}

// stop cancels the re-sealing and waits for it to return; a rotation left
// unfinished is resumed on the next activation.
func (r *keyRotator) stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (r *keyRotator) run(ctx context.Context, next *secret.Box, recordFirst bool) {
	for attempt := 1; ; attempt++ {
		err := ctx.Err()
		if err == nil && recordFirst {
			r.mu.Lock()
			err = r.record(next)
			r.mu.Unlock()
			recordFirst = err != nil
		}
		if err == nil {
			err = r.resealAll(ctx, next)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("Re-sealing ghost passwords failed; retrying", "error", err.Error())
		wait := time.Duration(min(attempt, 30)) * time.Second
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait/2 + rand.N(wait/2)):
		}
	}
	if err := r.store.FinishKeyRotation(next.ID()); err != nil {
		r.log.Warn("Cannot delete the finished encryption key rotation; it is finished again on the next activation", "error", err.Error())
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys.Current().ID() == next.ID() {
		r.retiring = nil
		r.keys.Retire()
	}
}

// resealAll re-seals every ghost secret not under next.
func (r *keyRotator) resealAll(ctx context.Context, next *secret.Box) error {
	// A ghost saved just before the rotation may not be on the read
	// replicas yet: the walk would miss it, and its secret would stay
	// under a key that is then retired.
	if err := r.store.AwaitReplicas(ctx); err != nil {
		return err
	}
	ghosts, err := r.store.AllGhosts()
	if err != nil {
		return err
	}
	var resealed, unreadable int
	for _, g := range ghosts {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if len(g.Secret) == 0 || next.Sealed(g.Secret) {
			continue
		}
		_, err = r.store.UpdateGhost(g.Network, g.UserID, func(old *store.Ghost) (*store.Ghost, error) {
			if old == nil || len(old.Secret) == 0 || next.Sealed(old.Secret) {
				return old, nil
			}
			plain, oerr := r.keys.Open(old.Secret)
			if oerr != nil {
				return nil, errUnreadable
			}
			sealed, serr := next.Seal(plain)
			if serr != nil {
				return nil, serr
			}
			g := *old
			g.Secret = sealed
			return &g, nil
		})
		switch {
		case errors.Is(err, errUnreadable):
			unreadable++
		case err != nil:
			return fmt.Errorf("re-seal the %s ghost of %s: %w", g.Network, g.UserID, err)
		default:
			resealed++
		}
	}
	r.log.Info("Ghost passwords re-sealed under the new encryption key", "key_id", next.ID(), "resealed", resealed)
	if unreadable > 0 {
		r.log.Warn("Some ghost passwords are sealed under a key this plugin does not know; those ghosts register new accounts when they next speak", "count", unreadable)
	}
	return nil
}

// appendKey adds key to keys unless it is there already or is except.
func appendKey(keys []string, key, except string) []string {
	if key == "" || key == except || slices.Contains(keys, key) {
		return keys
	}
	return append(keys, key)
}

func boxes(keys []string) []*secret.Box {
	out := make([]*secret.Box, 0, len(keys))
	for _, k := range keys {
		if b, err := secret.New(k); err == nil {
			out = append(out, b)
		}
	}
	return out
}
