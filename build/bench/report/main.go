// Command report turns the runs the benchmarks keep in BENCH_OUT (see
// server/bench_test.go) into bench-results: results.json, results.md (a
// table of every path beside its floor, the server alone under the same
// load in the same run) and one latency CDF per path (cdf-<path>.png).
//
//	go run . -in ../../../bench-results/runs -out ../../../bench-results
//
// Figures over several runs (-count) are medians; the curves pool every
// run's latencies.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// run is one benchmark run, as server/bench_test.go writes it.
type run struct {
	Name      string             `json:"name"`
	Floor     string             `json:"floor"`
	N         int                `json:"n"`
	Received  int                `json:"received"`
	Lost      int                `json:"lost"`
	Dup       int                `json:"dup"`
	Reordered int                `json:"reordered"`
	Rate      float64            `json:"msgs_per_s"`
	P50       float64            `json:"p50_ms"`
	P99       float64            `json:"p99_ms"`
	Max       float64            `json:"max_ms"`
	Latencies []float64          `json:"latencies_ms"`
	Extra     map[string]float64 `json:"extra"`
}

// result is one benchmark over its runs.
type result struct {
	Name      string             `json:"name"`
	Path      string             `json:"path"`
	Load      string             `json:"load"`
	Floor     string             `json:"floor,omitempty"`
	Runs      int                `json:"runs"`
	N         int                `json:"n"`
	Rate      float64            `json:"msgs_per_s"`
	P50       float64            `json:"p50_ms"`
	P99       float64            `json:"p99_ms"`
	Max       float64            `json:"max_ms"`
	Lost      int                `json:"lost"`
	Dup       int                `json:"dup"`
	Reordered int                `json:"reordered"`
	Extra     map[string]float64 `json:"extra,omitempty"`
	// Versus the floor: RateRatio = Rate / floor's; the overheads are
	// this minus the floor's, in ms.
	RateRatio   float64 `json:"rate_ratio,omitempty"`
	P50Overhead float64 `json:"p50_overhead_ms,omitempty"`
	P99Overhead float64 `json:"p99_overhead_ms,omitempty"`

	latencies []float64
}

type report struct {
	Generated time.Time `json:"generated"`
	GoVersion string    `json:"go_version"`
	CPUs      int       `json:"cpus"`
	Results   []*result `json:"results"`
}

func main() {
	in := flag.String("in", "bench-results/runs", "folder of the runs (BENCH_OUT)")
	out := flag.String("out", "bench-results", "folder for results.json, results.md and the curves")
	flag.Parse()
	runs, err := readRuns(*in)
	if err != nil {
		log.Fatal(err)
	}
	if len(runs) == 0 {
		log.Fatalf("no runs in %s: run the benchmarks with BENCH_OUT=%s", *in, *in)
	}
	rep := report{Generated: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Results: summarize(runs)}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := writeJSON(filepath.Join(*out, "results.json"), rep); err != nil {
		log.Fatal(err)
	}
	md, err := os.Create(filepath.Join(*out, "results.md"))
	if err != nil {
		log.Fatal(err)
	}
	writeTable(md, rep.Results)
	if err := md.Close(); err != nil {
		log.Fatal(err)
	}
	pictures, err := writeCurves(*out, rep.Results)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s (results.json, results.md, %d curves)\n", *out, pictures)
}

func readRuns(dir string) ([]run, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var runs []run
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r run
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		runs = append(runs, r)
	}
	return runs, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize gives each benchmark the medians of its runs, the sums of what
// must be zero, and its figures against its floor.
func summarize(runs []run) []*result {
	byName := map[string][]run{}
	for _, r := range runs {
		byName[r.Name] = append(byName[r.Name], r)
	}
	results := map[string]*result{}
	for name, rs := range byName {
		res := &result{Name: name, Floor: rs[0].Floor, Runs: len(rs), Extra: map[string]float64{}}
		cut := strings.LastIndex(name, "/")
		res.Path, res.Load = name[:max(cut, 0)], name[cut+1:]
		var rate, p50, p99, maxes []float64
		extra := map[string][]float64{}
		for _, r := range rs {
			res.N = max(res.N, r.N)
			rate, p50, p99, maxes = append(rate, r.Rate), append(p50, r.P50), append(p99, r.P99), append(maxes, r.Max)
			res.Lost += r.Lost
			res.Dup += r.Dup
			res.Reordered += r.Reordered
			res.latencies = append(res.latencies, r.Latencies...)
			for k, v := range r.Extra {
				extra[k] = append(extra[k], v)
			}
		}
		res.Rate, res.P50, res.P99, res.Max = median(rate), median(p50), median(p99), median(maxes)
		for k, v := range extra {
			res.Extra[k] = median(v)
		}
		results[name] = res
	}
	var list []*result
	for _, res := range results {
		if f, ok := results[res.Floor]; ok && f.Rate > 0 {
			res.RateRatio = res.Rate / f.Rate
			res.P50Overhead, res.P99Overhead = res.P50-f.P50, res.P99-f.P99
		}
		list = append(list, res)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

func writeJSON(file string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(data, '\n'), 0o644)
}

// writeTable writes one row per benchmark, in name order. CPU ms/msg is
// the relaying process's; API calls/msg the plugin's calls of the plugin
// API (each a round trip over the RPC boundary); requests/msg are its
// requests to the homeserver or Slack per message.
func writeTable(w io.Writer, results []*result) {
	fmt.Fprintln(w, "| path | load | msgs/s | vs floor | p50 ms | over floor | p99 ms | over floor | max ms | lost | dup | reordered | CPU ms/msg | API calls/msg | requests/msg |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	ratio := func(r *result, v float64, format string) string {
		if r.Floor == "" || r.RateRatio == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	extra := func(r *result, format string, keys ...string) string {
		for _, k := range keys {
			if v, ok := r.Extra[k]; ok {
				return fmt.Sprintf(format, v)
			}
		}
		return "-"
	}
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %s | %.1f | %s | %.2f | %s | %.2f | %s | %.1f | %d | %d | %d | %s | %s | %s |\n",
			strings.TrimPrefix(r.Path, "Benchmark"), r.Load, r.Rate, ratio(r, r.RateRatio, "%.2fx"),
			r.P50, ratio(r, r.P50Overhead, "%+.2f"), r.P99, ratio(r, r.P99Overhead, "%+.2f"), r.Max, r.Lost, r.Dup, r.Reordered,
			extra(r, "%.2f", "cpu-ms/msg"), extra(r, "%.1f", "api/msg"), extra(r, "%.2f", "hs-req/msg", "slack-req/msg"))
	}
}
