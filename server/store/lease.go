package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// Lease is a node's hold on a named piece of work across a cluster: the
// KV record under lease:<name>, which expires unless its holder renews it.
// Taking and renewing are atomic on the master, so two nodes never hold
// the same lease at once (short of clock skew past the expiry; holders
// stop before theirs runs out, see server/holder).
type Lease struct {
	Name   string    `json:"name"`
	Holder string    `json:"holder"`
	Since  time.Time `json:"since"`
	raw    []byte
}

const prefixLease = "lease:"

func leaseKey(name string) string { return prefixLease + component(name) }

func checkLease(name, holder string, ttl time.Duration) error {
	if err := checkString("lease name", name); err != nil {
		return err
	}
	if err := checkString("lease holder", holder); err != nil {
		return err
	}
	if ttl < time.Second {
		return invalid("a lease lasts at least a second, not %v", ttl)
	}
	return nil
}

// TakeLease makes holder the lease's holder if nobody holds it (or the
// last holder's lapsed); ok is false when another node holds it.
func (s *Store) TakeLease(name, holder string, ttl time.Duration) (l Lease, ok bool, err error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return Lease{}, false, err
	}
	l = Lease{Name: name, Holder: holder, Since: s.stamp()}
	if l.raw, err = json.Marshal(l); err != nil {
		return Lease{}, false, err
	}
	ok, err = s.insert(leaseKey(name), l.raw, ttlSeconds(ttl))
	if err != nil || !ok {
		return Lease{}, false, err
	}
	return l, true, nil
}

// RenewLease extends a lease taken with TakeLease for ttl from now; ok is
// false when it lapsed and is someone else's, or nobody's.
func (s *Store) RenewLease(name string, l Lease, ttl time.Duration) (bool, error) {
	if err := checkLease(name, l.Holder, ttl); err != nil {
		return false, err
	}
	if l.raw == nil {
		return false, invalid("the lease was not taken with TakeLease")
	}
	return s.set(leaseKey(name), l.raw, model.PluginKVSetOptions{Atomic: true, OldValue: l.raw, ExpireInSeconds: ttlSeconds(ttl)})
}

// ReleaseLease gives the lease up if l still holds it, so another node
// need not wait for it to lapse.
func (s *Store) ReleaseLease(name string, l Lease) error {
	if l.raw == nil {
		return nil
	}
	_, err := s.deleteIf(leaseKey(name), l.raw)
	return err
}

// LeaseHolder reads who holds the lease (Holder is "" when nobody does).
// The read may come from a replica behind the master: it informs (status)
// and never decides.
func (s *Store) LeaseHolder(name string) (Lease, error) {
	if err := checkString("lease name", name); err != nil {
		return Lease{}, err
	}
	raw, err := s.get(leaseKey(name))
	if err != nil || raw == nil {
		return Lease{}, err
	}
	var l Lease
	if err := json.Unmarshal(raw, &l); err != nil {
		return Lease{}, fmt.Errorf("store: lease %q: %w", name, err)
	}
	return l, nil
}
