package main

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// statusReport is GET /api/v1/status.
type statusReport struct {
	Networks []networkStatus `json:"networks"`
	Links    int             `json:"links"`
	Node     string          `json:"node"`
}

type networkStatus struct {
	Network           bridge.Network                        `json:"network"`
	Title             string                                `json:"title"`
	Enabled           bool                                  `json:"enabled"`
	State             bridge.State                          `json:"state"`
	Since             time.Time                             `json:"since,omitzero"`
	LastError         string                                `json:"last_error"`
	LastEvent         time.Time                             `json:"last_event,omitzero"`
	ReconnectAttempts int64                                 `json:"reconnect_attempts"`
	Detail            string                                `json:"detail"`
	Queues            []queueStatus                         `json:"queues"`
	QueueDepth        int                                   `json:"queue_depth"`
	Relayed           map[bridge.Direction]int64            `json:"relayed"`
	Dropped           map[bridge.Direction]map[string]int64 `json:"dropped"`
	RemoteUsers       int                                   `json:"remote_users"`
}

type queueStatus struct {
	Link                   string         `json:"link"`
	Destination            bridge.Network `json:"destination"`
	Depth                  int            `json:"depth"`
	OldestQueuedAgeSeconds float64        `json:"oldest_queued_age_seconds"`
}

func (p *Plugin) serveStatus(rt *runtime, w http.ResponseWriter, _ *http.Request) {
	links, err := rt.store.ListLinks()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.writeError(w, http.StatusInternalServerError, "could not list the links: "+err.Error())
		return
	}
	people, err := rt.people.counts(rt.store)
	if err != nil {
		p.writeError(w, http.StatusInternalServerError, "could not count the remote users: "+err.Error())
		return
	}
	now := time.Now()
	counts := rt.manager.Counters().Snapshot().ByNetwork()
	queues := rt.manager.Stats().Queues
	cfg := p.getConfiguration()

	report := statusReport{Links: len(links), Node: rt.node.id}
	add := func(n bridge.Network, title string, enabled bool, remoteUsers int) {
		h := p.health(rt, n)
		ns := networkStatus{
			Network: n, Title: title, Enabled: enabled, State: h.State, Since: h.Since,
			LastError: p.redact(h.LastError), LastEvent: h.LastMessage, ReconnectAttempts: h.ReconnectAttempts,
			Detail: p.redact(h.Detail), Queues: []queueStatus{}, RemoteUsers: remoteUsers,
			Relayed: map[bridge.Direction]int64{bridge.ToMattermost: 0, bridge.FromMattermost: 0},
			Dropped: map[bridge.Direction]map[string]int64{bridge.ToMattermost: {}, bridge.FromMattermost: {}},
		}
		c := counts[n]
		for d, v := range c.Relayed {
			ns.Relayed[d] = v
		}
		for d, reasons := range c.Dropped {
			for r, v := range reasons {
				ns.Dropped[d][r] = v
			}
		}
		for _, q := range queues {
			if q.Key.DestNetwork() != n {
				continue
			}
			qs := queueStatus{Link: q.Key.Link, Destination: n, Depth: q.Depth}
			if q.Depth > 0 && !q.OldestQueuedAt.IsZero() {
				qs.OldestQueuedAgeSeconds = max(now.Sub(q.OldestQueuedAt), 0).Seconds()
			}
			ns.Queues = append(ns.Queues, qs)
			ns.QueueDepth += q.Depth
		}
		report.Networks = append(report.Networks, ns)
	}
	// Mattermost's remote users are every other network's people in it.
	inMattermost := 0
	for _, pc := range people {
		inMattermost += pc.RemoteUsers
	}
	add(bridge.NetworkMattermost, bridge.NetworkMattermost.Label(), true, inMattermost)
	for _, d := range p.allNetworks() {
		n := d.Network()
		nc := cfg.networks[n]
		add(n, d.Command.Title, cfg.EnableBridge && nc != nil && nc.Enabled(), people[n].RemoteUsers+people[n].Ghosts)
	}
	writeJSON(w, http.StatusOK, report)
}

// peopleCount caches the count of remote users and ghosts: counting walks
// every key of the KV store, too much for a status page polled every few
// seconds.
type peopleCount struct {
	mu   sync.Mutex
	at   time.Time
	last map[bridge.Network]store.People
}

const peopleCountAge = 30 * time.Second

func (c *peopleCount) counts(st *store.Store) (map[bridge.Network]store.People, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && time.Since(c.at) < peopleCountAge {
		return c.last, nil
	}
	counts, err := st.CountPeople()
	if err != nil {
		return nil, err
	}
	c.last, c.at = counts, time.Now()
	return counts, nil
}
