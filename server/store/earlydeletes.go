package store

import (
	"context"
	"encoding/json"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// nsEarlyDelete keeps, among the pending records, the deletes that came
// before their message (bridge.EarlyDeletes); they expire on their own.
const nsEarlyDelete = "early-delete"

var _ bridge.EarlyDeletes = (*Store)(nil)

// RecordEarlyDelete keeps d for bridge.EarlyDeleteTTL.
func (s *Store) RecordEarlyDelete(_ context.Context, d bridge.EarlyDelete) error {
	if err := checkString("message", d.Msg); err != nil {
		return err
	}
	if err := checkString("deleter", d.By); err != nil {
		return err
	}
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	id := d.Msg + "|" + d.By
	return s.putJSON(pendingKey(nsEarlyDelete, id), pendingRecord{Namespace: nsEarlyDelete, ID: id, Value: v}, ttlSeconds(bridge.EarlyDeleteTTL))
}

// EarlyDeletes returns the early deletes that have not expired.
func (s *Store) EarlyDeletes(_ context.Context) ([]bridge.EarlyDelete, error) {
	records, err := s.ListPending(nsEarlyDelete)
	if err != nil {
		return nil, err
	}
	out := make([]bridge.EarlyDelete, 0, len(records))
	for _, r := range records {
		var d bridge.EarlyDelete
		if err := json.Unmarshal(r.Value, &d); err != nil {
			continue // not ours to read: it expires anyway
		}
		out = append(out, d)
	}
	return out, nil
}
