package main

import (
	"net/http"
	"time"

	"github.com/mattermost/mattermost/server/public/plugin"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/metrics"
)

// ServeMetrics answers the server's metrics listener, which hands it
// /plugins/<id>/metrics (on the metrics port, without a session). Every
// node answers for its own process; see package metrics for what a node
// that does not hold the bridge reports.
func (p *Plugin) ServeMetrics(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	p.metricsOnce.Do(func() { p.metrics = metrics.New(p.metricsSnapshot) })
	p.metrics.ServeHTTP(w, r)
}

func (p *Plugin) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{Now: time.Now(), Networks: []bridge.Network{bridge.NetworkMattermost}}
	for _, d := range p.allNetworks() {
		s.Networks = append(s.Networks, d.Network())
	}
	if n := p.currentNode(); n != nil {
		s.Counters = n.counters.Snapshot()
		s.KV = n.store.KVRoundTrips()
	}
	if rt := p.active(); rt != nil {
		s.Holder = true
		s.Queues = rt.manager.Stats().Queues
		s.Health = map[bridge.Network]bridge.Health{bridge.NetworkMattermost: p.health(rt, bridge.NetworkMattermost)}
		for _, d := range p.allNetworks() {
			s.Health[d.Network()] = p.health(rt, d.Network())
		}
	}
	return s
}
