package main

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// soakLedger keeps the soak's books: every message sent, on which side
// and when, and every copy that arrived on another side and when, so that
// each path (from one side to another) can be reported as sent, received,
// lost, duplicated, reordered and delivery latency. Messages are told
// apart by a tag their text carries; the watchers of each side hand every
// tag they see to arrived, which ignores tags it did not send.
type soakLedger struct {
	mu   sync.Mutex
	sent map[string]soakSent
	// first is when each tag was first seen on each side, for latency.
	first map[string]map[string]time.Time
	// copies counts each tag's copies on each side.
	copies map[string]map[string]int
	// order is the order copies stand in per path and channel, as seq
	// numbers, duplicates included.
	order map[soakPathChannel][]int
}

type soakSent struct {
	from    string
	channel int
	seq     int // per side and channel, from 0, in the order sent
	at      time.Time
	to      []string
}

type soakPath struct{ From, To string }

type soakPathChannel struct {
	soakPath
	channel int
}

func newSoakLedger() *soakLedger {
	return &soakLedger{sent: map[string]soakSent{}, first: map[string]map[string]time.Time{},
		copies: map[string]map[string]int{}, order: map[soakPathChannel][]int{}}
}

// send records a message sent from side in channel, expected on each side
// of to.
func (l *soakLedger) send(tag, from string, channel, seq int, at time.Time, to []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[tag] = soakSent{from: from, channel: channel, seq: seq, at: at, to: to}
}

// arrived records that a watcher saw tag arrive on side at at, for its
// latency; only the first sight counts. Echoes on the side that sent it
// and unknown tags are not the ledger's. What is counted comes from the
// sides' records (recount): a watcher can miss what comes during an
// outage, a record cannot.
func (l *soakLedger) arrived(tag, side string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.sent[tag]
	if !ok || side == s.from {
		return
	}
	if l.first[tag] == nil {
		l.first[tag] = map[string]time.Time{}
	}
	if _, seen := l.first[tag][side]; !seen {
		l.first[tag][side] = at
	}
}

// recount takes a side's own record: the tags it keeps, in its order,
// duplicates included. It replaces the side's last record.
func (l *soakLedger) recount(side string, tags []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.copies {
		delete(c, side)
	}
	for k := range l.order {
		if k.To == side {
			delete(l.order, k)
		}
	}
	for _, tag := range tags {
		s, ok := l.sent[tag]
		if !ok || side == s.from {
			continue
		}
		if l.copies[tag] == nil {
			l.copies[tag] = map[string]int{}
		}
		l.copies[tag][side]++
		k := soakPathChannel{soakPath{s.from, side}, s.channel}
		l.order[k] = append(l.order[k], s.seq)
	}
}

// complete reports whether every message sent has reached every side it
// was sent to.
func (l *soakLedger) complete() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for tag, s := range l.sent {
		for _, to := range s.to {
			if l.copies[tag][to] == 0 {
				return false
			}
		}
	}
	return true
}

// soakPathReport is one path's figures, as the soak prints and writes them.
type soakPathReport struct {
	From       string  `json:"from"`
	To         string  `json:"to"`
	Sent       int     `json:"sent"`
	Received   int     `json:"received"`
	Lost       int     `json:"lost"`
	Duplicated int     `json:"duplicated"`
	Reordered  int     `json:"reordered"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
}

// report computes every path's figures. Received counts messages that
// arrived at least once, duplicated the copies beyond the first, and
// reordered the first copies that stand after a later message of the same
// sender, side and channel (the benchmarks' count). Latency is from the
// send to the first sight of a copy, for the copies a watcher saw.
func (l *soakLedger) report() []soakPathReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	byPath := map[soakPath]*soakPathReport{}
	lat := map[soakPath][]time.Duration{}
	for tag, s := range l.sent {
		for _, to := range s.to {
			p := soakPath{s.from, to}
			r := byPath[p]
			if r == nil {
				r = &soakPathReport{From: s.from, To: to}
				byPath[p] = r
			}
			r.Sent++
			n := l.copies[tag][to]
			if n == 0 {
				r.Lost++
				continue
			}
			r.Received++
			r.Duplicated += n - 1
			if at, ok := l.first[tag][to]; ok {
				lat[p] = append(lat[p], at.Sub(s.at))
			}
		}
	}
	for k, seqs := range l.order {
		r := byPath[k.soakPath]
		if r == nil {
			continue
		}
		seen, highest := map[int]bool{}, -1
		for _, seq := range seqs {
			if seen[seq] {
				continue
			}
			seen[seq] = true
			if seq < highest {
				r.Reordered++
			}
			highest = max(highest, seq)
		}
	}
	out := make([]soakPathReport, 0, len(byPath))
	for p, r := range byPath {
		d := lat[p]
		slices.Sort(d)
		r.P50Ms, r.P99Ms = quantileMs(d, 0.50), quantileMs(d, 0.99)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// quantileMs is the q-quantile of sorted durations (nearest rank), in
// milliseconds; 0 when there are none.
func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}
