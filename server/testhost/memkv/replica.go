package memkv

import "time"

// SetReplicaLag makes Get and List read a replica that is d behind the
// primary, like a server with SqlSettings.DataSourceReplicas: a read shows
// every key as it was d ago (its expiry checked against now, as the
// replica's query does), so a read just after a write returns the old
// value, or nothing for a new key, and one d later the new value. Writes
// and compare-and-set always act on the primary. 0 (the default) reads the
// primary.
//
// Keys as they are when the lag is turned on count as replicated long
// ago. Versions older than the lag are forgotten, so raising the lag later
// shows at most what was kept.
func (s *Store) SetReplicaLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d = max(d, 0)
	switch {
	case d == 0:
		s.history = nil
	case s.lag == 0:
		s.history = map[string]map[string][]version{}
		for pluginID, keys := range s.data {
			s.history[pluginID] = map[string][]version{}
			for key, e := range keys {
				s.history[pluginID][key] = []version{{e: e, exists: true}}
			}
		}
	}
	s.lag = d
}

// ReplicaLag is the lag SetReplicaLag set.
func (s *Store) ReplicaLag() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lag
}

// recordLocked adds a key's new state to its history, for the replica to
// reach it lag later, and forgets the versions no read can get any more.
func (s *Store) recordLocked(pluginID, key string, v version) {
	if s.lag == 0 {
		return
	}
	now := s.now()
	v.at = now
	if s.history[pluginID] == nil {
		s.history[pluginID] = map[string][]version{}
	}
	vs := s.history[pluginID][key]
	vs = append(vs, v)
	s.history[pluginID][key] = vs[replicatedLocked(vs, now.Add(-s.lag)):]
}

// replicatedLocked is the index of the newest version at or before cutoff
// (0 when there is none: nothing before it is needed).
func replicatedLocked(vs []version, cutoff time.Time) int {
	for i := len(vs) - 1; i > 0; i-- {
		if !vs[i].at.After(cutoff) {
			return i
		}
	}
	return 0
}

// replicaLocked is the key as the replica has it: its newest version at
// least lag old. Without a lag it is the primary's.
func (s *Store) replicaLocked(pluginID, key string) (entry, bool) {
	if s.lag == 0 {
		return s.live(pluginID, key)
	}
	now := s.now()
	vs := s.history[pluginID][key]
	i := replicatedLocked(vs, now.Add(-s.lag))
	if len(vs) == 0 || vs[i].at.After(now.Add(-s.lag)) || !vs[i].exists || vs[i].e.expired(now) {
		return entry{}, false
	}
	return vs[i].e, true
}
