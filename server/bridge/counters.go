package bridge

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Counters count what the router does with events, per path (source
// network -> destination network): deliveries, drops by reason and how
// long deliveries took from the event's origin time. They are the one
// source of the status API's and the metrics' figures. Counting takes one
// short lock and allocates only the first time a path, reason or room is
// seen, since every event of every network goes through it.
type Counters struct {
	mu      sync.Mutex
	paths   map[Path]*pathCounts
	lastIn  map[linkRoom]time.Time // last delivery into Mattermost from a room of a link
	lastOut map[linkRoom]time.Time // last delivery into a room of a link
}

// Path is the way an event went. Destination is "" for an event dropped
// before it was routed (an echo).
type Path struct {
	Source      Network
	Destination Network
}

type linkRoom struct {
	link    string
	network Network
	room    string
}

type pathCounts struct {
	relayed int64
	drops   map[string]int64
	latency histogram
}

// LatencyBuckets are the upper bounds, in seconds, of the delivery latency
// histogram: from a live relay (tens of milliseconds) to the replay of
// what waited out an outage (minutes).
var LatencyBuckets = [...]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}

type histogram struct {
	counts [len(LatencyBuckets)]uint64 // per bucket, not cumulative; above the last bound only in count
	count  uint64
	sum    float64
}

func (h *histogram) observe(seconds float64) {
	h.count++
	h.sum += seconds
	for i, bound := range LatencyBuckets {
		if seconds <= bound {
			h.counts[i]++
			return
		}
	}
}

// NewCounters returns empty counters.
func NewCounters() *Counters {
	return &Counters{paths: map[Path]*pathCounts{}, lastIn: map[linkRoom]time.Time{}, lastOut: map[linkRoom]time.Time{}}
}

func (c *Counters) pathLocked(p Path) *pathCounts {
	pc := c.paths[p]
	if pc == nil {
		pc = &pathCounts{drops: map[string]int64{}}
		c.paths[p] = pc
	}
	return pc
}

// delivered counts an event from origin delivered into dest at now; at is
// the event's origin time (zero when its network did not say).
func (c *Counters) delivered(linkID string, origin, dest Ref, at, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pc := c.pathLocked(Path{origin.Network, dest.Network})
	pc.relayed++
	if !at.IsZero() {
		pc.latency.observe(max(now.Sub(at), 0).Seconds())
	}
	if dest.Network == NetworkMattermost {
		c.lastIn[linkRoom{linkID, origin.Network, origin.Room}] = now
	} else {
		c.lastOut[linkRoom{linkID, dest.Network, dest.Room}] = now
	}
}

// dropped counts an event from source that did not reach dest.
func (c *Counters) dropped(source, dest Network, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pathLocked(Path{source, dest}).drops[reason]++
}

// LastIn is when a message from room last reached the link's channel; zero
// when none did since the counters started.
func (c *Counters) LastIn(linkID string, room Ref) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastIn[linkRoom{linkID, room.Network, room.Room}]
}

// LastOut is when a message of the link last reached room.
func (c *Counters) LastOut(linkID string, room Ref) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastOut[linkRoom{linkID, room.Network, room.Room}]
}

// PathStats are the counts of one path.
type PathStats struct {
	Path
	Relayed int64
	Drops   map[string]int64
	Latency Latency
}

// Latency is a snapshot of a path's delivery latency histogram.
type Latency struct {
	Count uint64
	Sum   float64 // seconds
	// Buckets[i] counts the deliveries that took at most LatencyBuckets[i]
	// (cumulative, as Prometheus wants them).
	Buckets []uint64
}

// CountersSnapshot is a copy of the counters at one moment.
type CountersSnapshot struct {
	// Paths is sorted by source, then destination.
	Paths []PathStats
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() CountersSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := CountersSnapshot{Paths: make([]PathStats, 0, len(c.paths))}
	for p, pc := range c.paths {
		ps := PathStats{Path: p, Relayed: pc.relayed, Drops: make(map[string]int64, len(pc.drops)),
			Latency: Latency{Count: pc.latency.count, Sum: pc.latency.sum, Buckets: make([]uint64, len(LatencyBuckets))}}
		for r, n := range pc.drops {
			ps.Drops[r] = n
		}
		var cum uint64
		for i, n := range pc.latency.counts {
			cum += n
			ps.Latency.Buckets[i] = cum
		}
		s.Paths = append(s.Paths, ps)
	}
	slices.SortFunc(s.Paths, func(a, b PathStats) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Destination, b.Destination))
	})
	return s
}

// Path returns the stats of one path (zero counts when it saw nothing).
func (s CountersSnapshot) Path(source, dest Network) PathStats {
	for _, p := range s.Paths {
		if p.Source == source && p.Destination == dest {
			return p
		}
	}
	return PathStats{Path: Path{source, dest}, Drops: map[string]int64{}, Latency: Latency{Buckets: make([]uint64, len(LatencyBuckets))}}
}

// Direction is which way an event crossed between a network and the
// Mattermost channel of its link.
type Direction string

const (
	// ToMattermost: from the network into the channel.
	ToMattermost Direction = "to_mattermost"
	// FromMattermost: from the channel's side of the link into the
	// network, whichever network the event came from (a message from XMPP
	// reaches a Matrix room linked with the same channel this way).
	FromMattermost Direction = "from_mattermost"
)

// NetworkCounts are a network's counts by direction.
type NetworkCounts struct {
	Relayed map[Direction]int64
	Dropped map[Direction]map[string]int64
}

func (n *NetworkCounts) add(d Direction, p PathStats) {
	if n.Relayed == nil {
		n.Relayed = map[Direction]int64{}
		n.Dropped = map[Direction]map[string]int64{ToMattermost: {}, FromMattermost: {}}
	}
	n.Relayed[d] += p.Relayed
	for r, c := range p.Drops {
		n.Dropped[d][r] += c
	}
}

// ByNetwork sums the paths per network and direction. A path into
// Mattermost counts for its source network, to Mattermost; any other
// path counts for its destination, from Mattermost; an event dropped
// before routing counts for its source, coming in. Mattermost's own
// entry has everything posted into it (to) and everything that left it
// (from).
func (s CountersSnapshot) ByNetwork() map[Network]NetworkCounts {
	out := map[Network]NetworkCounts{}
	count := func(n Network, d Direction, p PathStats) {
		nc := out[n]
		nc.add(d, p)
		out[n] = nc
	}
	for _, p := range s.Paths {
		switch {
		case p.Source == NetworkMattermost:
			count(NetworkMattermost, FromMattermost, p)
			if p.Destination != "" {
				count(p.Destination, FromMattermost, p)
			}
		case p.Destination == NetworkMattermost:
			count(NetworkMattermost, ToMattermost, p)
			count(p.Source, ToMattermost, p)
		case p.Destination == "":
			count(p.Source, ToMattermost, p)
		default:
			count(p.Destination, FromMattermost, p)
		}
	}
	return out
}
