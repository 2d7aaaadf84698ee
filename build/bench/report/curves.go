package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// curveLoads are the loads whose latencies a path's curve shows, the
// first one it has: paced is the latency of a room the path keeps up with.
var curveLoads = []string{"paced", "serial"}

// peerPrefix starts the names of the peer's benchmarks: matterbridge
// relaying path P is BenchmarkMatterbridgeP.
const peerPrefix = "BenchmarkMatterbridge"

// writeCurves draws, for every path with a floor, the latency CDF of its
// curve load beside the peer's, if it was measured, and the floor's under
// the same load, as cdf-<path>.png; it returns how many it drew.
func writeCurves(dir string, results []*result) (int, error) {
	byName := map[string]*result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	drawn := 0
	seen := map[string]bool{}
	for _, r := range results {
		if r.Floor == "" || seen[r.Path] || strings.HasPrefix(r.Path, peerPrefix) {
			continue
		}
		var pick *result
		for _, load := range curveLoads {
			if c, ok := byName[r.Path+"/"+load]; ok && len(c.latencies) > 0 {
				pick = c
				break
			}
		}
		floor := (*result)(nil)
		if pick != nil {
			floor = byName[pick.Floor]
		}
		if pick == nil || floor == nil || len(floor.latencies) == 0 {
			continue
		}
		seen[r.Path] = true
		name := strings.TrimPrefix(r.Path, "Benchmark")
		file := filepath.Join(dir, "cdf-"+strings.ReplaceAll(name, "/", "-")+".png")
		all := []series{{"bridge", pick.latencies}}
		if peer, ok := byName[peerPrefix+name+"/"+pick.Load]; ok && len(peer.latencies) > 0 {
			all = append(all, series{"matterbridge v1.26.0", peer.latencies})
		}
		all = append(all, series{"floor (" + strings.TrimPrefix(floor.Path, "Benchmark") + ")", floor.latencies})
		if err := drawCDF(file, fmt.Sprintf("%s, %s load", name, pick.Load), all); err != nil {
			return drawn, err
		}
		drawn++
	}
	return drawn, nil
}

type series struct {
	label     string
	latencies []float64
}

// cdf is the empirical distribution of v: the share of values at or
// below each value.
func cdf(v []float64) plotter.XYs {
	s := slices.Clone(v)
	slices.Sort(s)
	pts := make(plotter.XYs, len(s))
	for i, x := range s {
		pts[i].X, pts[i].Y = max(x, 0.01), float64(i+1)/float64(len(s))
	}
	return pts
}

func drawCDF(file, title string, all []series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "share of messages"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	var args []any
	for _, s := range all {
		args = append(args, s.label, cdf(s.latencies))
	}
	if err := plotutil.AddLines(p, args...); err != nil {
		return err
	}
	p.Legend.Top = false
	p.Legend.Left = false
	return p.Save(8*vg.Inch, 5*vg.Inch, file)
}
