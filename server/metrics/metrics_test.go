package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", http.NoBody))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %s", res.StatusCode, b)
	}
	return string(b)
}

func expectLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, "\n"+l+"\n") {
			t.Errorf("no line %q in:\n%s", l, text)
		}
	}
}

func TestHolderExposesEverySeries(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	counters := bridge.CountersSnapshot{Paths: []bridge.PathStats{
		{Path: bridge.Path{Source: bridge.NetworkXMPP, Destination: bridge.NetworkMattermost}, Relayed: 12,
			Drops:   map[string]int64{bridge.ReasonTooLarge: 1},
			Latency: bridge.Latency{Count: 12, Sum: 1.5, Buckets: []uint64{0, 0, 2, 10, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12}}},
		{Path: bridge.Path{Source: bridge.NetworkMattermost, Destination: bridge.NetworkXMPP}, Relayed: 30},
	}}
	m := New(func() Snapshot {
		return Snapshot{
			Now: now, Holder: true, Counters: counters,
			Queues: []bridge.QueueStats{
				{Key: bridge.QueueKey{Link: "c1", Dest: "xmpp|room@conf"}, Depth: 3, OldestQueuedAt: now.Add(-90 * time.Second)},
				{Key: bridge.QueueKey{Link: "c2", Dest: "xmpp|other@conf"}, Depth: 1, OldestQueuedAt: now.Add(-10 * time.Second)},
				{Key: bridge.QueueKey{Link: "c1", Dest: "mattermost|c1"}},
			},
			Health: map[bridge.Network]bridge.Health{
				bridge.NetworkXMPP:       {State: bridge.StateConnected, ReconnectAttempts: 4},
				bridge.NetworkMattermost: {State: bridge.StateConnected},
				bridge.NetworkSlack:      {State: bridge.StateDisabled},
			},
			KV: map[string]int64{"get": 7, "compare_and_set": 2},
		}
	})
	text := scrape(t, m)
	expectLines(t, text,
		`mattermost_plugin_bridge_events_relayed_total{direction="to_mattermost",network="xmpp"} 12`,
		`mattermost_plugin_bridge_events_relayed_total{direction="from_mattermost",network="xmpp"} 30`,
		`mattermost_plugin_bridge_events_dropped_total{direction="to_mattermost",network="xmpp",reason="too_large"} 1`,
		`mattermost_plugin_bridge_delivery_latency_seconds_bucket{destination="mattermost",source="xmpp",le="0.05"} 2`,
		`mattermost_plugin_bridge_delivery_latency_seconds_bucket{destination="mattermost",source="xmpp",le="+Inf"} 12`,
		`mattermost_plugin_bridge_delivery_latency_seconds_count{destination="mattermost",source="xmpp"} 12`,
		`mattermost_plugin_bridge_delivery_latency_seconds_sum{destination="mattermost",source="xmpp"} 1.5`,
		`mattermost_plugin_bridge_queue_depth{destination="xmpp"} 4`,
		`mattermost_plugin_bridge_queue_depth{destination="mattermost"} 0`,
		`mattermost_plugin_bridge_queue_depth{destination="slack"} 0`,
		`mattermost_plugin_bridge_queue_oldest_age_seconds{destination="xmpp"} 90`,
		`mattermost_plugin_bridge_reconnect_attempts_total{network="xmpp"} 4`,
		`mattermost_plugin_bridge_connection_state{network="xmpp",state="connected"} 1`,
		`mattermost_plugin_bridge_connection_state{network="xmpp",state="error"} 0`,
		`mattermost_plugin_bridge_kv_round_trips_total{operation="get"} 7`,
		`mattermost_plugin_bridge_kv_round_trips_total{operation="compare_and_set"} 2`,
		`mattermost_plugin_bridge_holder 1`,
	)
}

// A node that does not hold the bridge's connections exposes its own
// process's counters, and no connection series: those come from the holder.
func TestOtherNodesExposeOnlyTheirOwnSeries(t *testing.T) {
	m := New(func() Snapshot {
		return Snapshot{Now: time.Now(), KV: map[string]int64{"get": 1}, Networks: []bridge.Network{bridge.NetworkMattermost, bridge.NetworkXMPP}}
	})
	text := scrape(t, m)
	expectLines(t, text, `mattermost_plugin_bridge_holder 0`, `mattermost_plugin_bridge_kv_round_trips_total{operation="get"} 1`,
		// Counters start at 0 for every network.
		`mattermost_plugin_bridge_events_relayed_total{direction="to_mattermost",network="xmpp"} 0`,
		`mattermost_plugin_bridge_events_relayed_total{direction="from_mattermost",network="mattermost"} 0`)
	for _, series := range []string{"connection_state{", "queue_depth{", "reconnect_attempts_total{"} {
		if strings.Contains(text, "mattermost_plugin_bridge_"+series) {
			t.Errorf("a node without the bridge exposes %s", series)
		}
	}
}

// The Grafana dashboard in the repository queries only series this
// package exposes.
func TestDashboardUsesTheseSeries(t *testing.T) {
	raw, err := os.ReadFile("../../build/grafana/bridge-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	exposed, unused := map[string]bool{}, map[string]bool{}
	for _, d := range []*prometheus.Desc{relayedDesc, droppedDesc, latencyDesc, depthDesc, oldestDesc, reconnectsDesc, stateDesc, kvDesc, holderDesc} {
		name := regexp.MustCompile(`fqName: "([a-z_]+)"`).FindStringSubmatch(d.String())[1]
		if d == latencyDesc {
			exposed[name+"_sum"], exposed[name+"_count"] = true, true
			name += "_bucket" // the one a panel needs
		}
		exposed[name], unused[name] = true, true
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range regexp.MustCompile(namespace+`_[a-z_]+`).FindAllString(tg.Expr, -1) {
				delete(unused, name)
				if !exposed[name] {
					t.Errorf("panel %q queries %s, which the plugin does not expose", p.Title, name)
				}
			}
		}
	}
	if len(unused) > 0 {
		t.Errorf("no panel shows %v", unused)
	}
}
