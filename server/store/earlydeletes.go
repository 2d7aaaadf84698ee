package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// nsEarlyDelete keeps, among the pending records, the deletes that came
// before their message (bridge.EarlyDeletes); they expire on their own.
const nsEarlyDelete = "early-delete"

// keyEarlyDeleteMark holds when the latest early delete was recorded.
const keyEarlyDeleteMark = "early_delete_latest"

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
	if err := s.putJSON(pendingKey(nsEarlyDelete, id), pendingRecord{Namespace: nsEarlyDelete, ID: id, Value: v}, ttlSeconds(bridge.EarlyDeleteTTL)); err != nil {
		return err
	}
	// The marker outlives the record it follows by as long: while it is
	// there, the records are worth a walk.
	return s.putJSON(keyEarlyDeleteMark, d.At, ttlSeconds(bridge.EarlyDeleteTTL))
}

// EarlyDeletes returns the early deletes that have not expired. Finding
// them walks every key, so it is done only while the marker of the latest
// one says some may be left.
func (s *Store) EarlyDeletes(_ context.Context) ([]bridge.EarlyDelete, error) {
	if err := s.AwaitReplicas(context.Background()); err != nil {
		return nil, err
	}
	mark, _, err := getJSON[time.Time](s, keyEarlyDeleteMark)
	if err != nil || mark == nil {
		return nil, err
	}
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
