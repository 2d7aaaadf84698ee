package store

import (
	"encoding/json"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// Claim takes id in namespace for ttl if nobody holds it: a MarkSeen mark,
// so of callers racing on any number of nodes exactly one gets ok. The
// ttl frees it if its holder stops without a word (a crash); release
// frees it at once, so that a caller that failed does not keep the next
// one waiting for the ttl. release deletes this claim only: once it
// expired and another caller took the ID, that claim stays.
func (s *Store) Claim(namespace, id string, ttl time.Duration) (release func() error, ok bool, err error) {
	mark := seenMark{Namespace: namespace, ID: id, At: s.stamp(), Claim: model.NewId()}
	ok, err = s.markSeen(mark, ttl)
	if err != nil || !ok {
		return nil, ok, err
	}
	b, err := json.Marshal(mark)
	if err != nil {
		return nil, false, err
	}
	key := seenKey(namespace, id)
	return func() error {
		_, err := s.deleteIf(key, b)
		return err
	}, true, nil
}
