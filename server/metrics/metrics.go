// Package metrics exposes the bridge's counters to Prometheus, through the
// plugin's ServeMetrics hook (the server's metrics listener serves it at
// /plugins/<plugin id>/metrics). It keeps no figures of its own: at each
// scrape it reads a Snapshot of the counters the status API reads too, so
// the two never disagree and relaying a message costs nothing here.
//
// On a cluster every node's plugin answers for its own process: its KV
// round trips, and the relay counters of the time it held the bridge.
// Only the node holding the bridge's connections (holder 1) has the
// connection, queue and reconnect series; the others leave them out
// rather than report a disconnection that is not theirs. Sum the counters
// over the nodes; take the connection series from the holder.
package metrics

import (
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

const namespace = "mattermost_plugin_bridge"

// Snapshot is what one scrape reports.
type Snapshot struct {
	Now time.Time
	// Networks are the networks the plugin bridges, Mattermost included:
	// their relay counters are reported from 0 before anything moves, so
	// that a rate over them starts with the plugin.
	Networks []bridge.Network
	// Holder says whether this node holds the bridge's connections; the
	// fields below it are read only then.
	Holder bool
	// Counters are this node's relay counters.
	Counters bridge.CountersSnapshot
	// Queues are the bus's queues (holder only).
	Queues []bridge.QueueStats
	// Health is every network's health (holder only).
	Health map[bridge.Network]bridge.Health
	// KV counts this node's KV round trips by operation.
	KV map[string]int64
}

// Source takes a Snapshot; it is called once per scrape.
type Source func() Snapshot

// Metrics is the plugin's own registry (not the process-global default
// one) with the bridge's series and the plugin process's Go and process
// series.
type Metrics struct {
	handler http.Handler
}

// New returns the metrics read from src.
func New(src Source) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		&collector{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &Metrics{handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})}
}

// ServeHTTP answers a scrape in the Prometheus exposition format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

var (
	relayedDesc = desc("events_relayed_total",
		"Events (messages, edits, deletes, reactions) delivered, by network and direction: to_mattermost from the network into a channel, from_mattermost from a channel's link into the network.",
		"network", "direction")
	droppedDesc = desc("events_dropped_total",
		"Events that were not delivered, by network, direction and reason (see the README for the reasons).",
		"network", "direction", "reason")
	latencyDesc = desc("delivery_latency_seconds",
		"Time from an event's origin (its time on the source network) to its delivery, by source and destination network.",
		"source", "destination")
	depthDesc = desc("queue_depth",
		"Events queued for delivery to a destination network, the one being delivered included.",
		"destination")
	oldestDesc = desc("queue_oldest_age_seconds",
		"Age of the oldest event queued for a destination network; 0 when nothing waits.",
		"destination")
	reconnectsDesc = desc("reconnect_attempts_total",
		"Connection attempts made after a failed one or a lost connection, since the network's bridge was built.",
		"network")
	stateDesc = desc("connection_state",
		"1 for the network's current connection state, 0 for the others.",
		"network", "state")
	kvDesc = desc("kv_round_trips_total",
		"Calls to the Mattermost KV store made by this node's plugin, by operation.",
		"operation")
	holderDesc = desc("holder",
		"1 on the node that holds the bridge's connections, 0 on the others.")
)

// states are reported for every network, so a change of state moves a
// series from 1 to 0 rather than making it vanish.
var states = []bridge.State{bridge.StateDisabled, bridge.StateConnecting, bridge.StateConnected, bridge.StateDisconnected, bridge.StateError}

type collector struct{ src Source }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{relayedDesc, droppedDesc, latencyDesc, depthDesc, oldestDesc, reconnectsDesc, stateDesc, kvDesc, holderDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src()
	holder := 0.0
	if s.Holder {
		holder = 1
	}
	ch <- prometheus.MustNewConstMetric(holderDesc, prometheus.GaugeValue, holder)
	for op, n := range s.KV {
		ch <- prometheus.MustNewConstMetric(kvDesc, prometheus.CounterValue, float64(n), op)
	}
	byNetwork := s.Counters.ByNetwork()
	for _, n := range s.Networks {
		if _, ok := byNetwork[n]; !ok {
			byNetwork[n] = bridge.NetworkCounts{Relayed: map[bridge.Direction]int64{}}
		}
	}
	for n, counts := range byNetwork {
		for _, dir := range []bridge.Direction{bridge.ToMattermost, bridge.FromMattermost} {
			ch <- prometheus.MustNewConstMetric(relayedDesc, prometheus.CounterValue, float64(counts.Relayed[dir]), string(n), string(dir))
		}
		for dir, reasons := range counts.Dropped {
			for reason, v := range reasons {
				ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(v), string(n), string(dir), reason)
			}
		}
	}
	for _, p := range s.Counters.Paths {
		if p.Destination == "" || p.Relayed == 0 {
			continue // dropped before routing: no delivery, no latency
		}
		buckets := make(map[float64]uint64, len(bridge.LatencyBuckets))
		for i, n := range p.Latency.Buckets {
			buckets[bridge.LatencyBuckets[i]] = n
		}
		ch <- prometheus.MustNewConstHistogram(latencyDesc, p.Latency.Count, p.Latency.Sum, buckets, string(p.Source), string(p.Destination))
	}
	if !s.Holder {
		return
	}
	c.collectQueues(ch, s)
	for n, h := range s.Health {
		ch <- prometheus.MustNewConstMetric(reconnectsDesc, prometheus.CounterValue, float64(h.ReconnectAttempts), string(n))
		all := states
		if !slices.Contains(all, h.State) {
			all = append(slices.Clone(states), h.State)
		}
		for _, st := range all {
			v := 0.0
			if st == h.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, string(n), string(st))
		}
	}
}

// collectQueues sums the queues per destination network: a label per
// link (channel) would make a series per channel.
func (c *collector) collectQueues(ch chan<- prometheus.Metric, s Snapshot) {
	depth := map[bridge.Network]int{}
	oldest := map[bridge.Network]time.Duration{}
	for n := range s.Health {
		depth[n] = 0 // every network has a depth, if only 0
	}
	for _, q := range s.Queues {
		n := q.Key.DestNetwork()
		depth[n] += q.Depth
		age := time.Duration(0)
		if q.Depth > 0 && !q.OldestQueuedAt.IsZero() {
			age = max(s.Now.Sub(q.OldestQueuedAt), 0)
		}
		oldest[n] = max(oldest[n], age)
	}
	for n, d := range depth {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(d), string(n))
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, oldest[n].Seconds(), string(n))
	}
}
