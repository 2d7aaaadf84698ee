package main

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// soakLedger keeps the soak's books: every message sent, on which side
// and when, which of them their senders edited or deleted later, and what
// each other side holds of them, so that each path (from one side to
// another) can be reported as sent, received, lost, duplicated,
// reordered, delivery latency, and edits and deletes carried out or not.
// Messages are told apart by a tag their text carries.
//
// What is counted comes from each side's own record (recount): a watcher
// can miss what comes during an outage, a record cannot. Watchers only
// say when a copy was first seen (arrived), for latency.
type soakLedger struct {
	mu   sync.Mutex
	sent map[string]*soakSent
	// first is when each tag was first seen on each side, for latency.
	first map[string]map[string]time.Time
	// held is each side's last record: tag -> its copies there.
	held map[string]map[string][]soakCopy
	// order is each side's last record's order: the tags of its live
	// copies, each once.
	order map[string][]string
}

type soakSent struct {
	from    string
	channel int
	seq     int // per side and channel, from 0, in the order sent
	at      time.Time
	to      []string
	edited  bool   // its sender edited it
	deleted bool   // its sender deleted it
	reacted bool   // its sender reacted to it
	parent  string // the tag of the message it replies to
}

// soakCopy is one copy of a message in a side's record, in the record's
// order.
type soakCopy struct {
	Tag string
	// Edited: the copy shows the edit.
	Edited bool
	// Gone: the copy is there but marked deleted (a retraction in an
	// XMPP archive that keeps the original).
	Gone bool
	// Parent is the tag of the message the copy replies to (is in the
	// thread of), as the side shows it.
	Parent string
	// Reacted: the copy has a reaction.
	Reacted bool
}

type soakPath struct{ From, To string }

func newSoakLedger() *soakLedger {
	return &soakLedger{sent: map[string]*soakSent{}, first: map[string]map[string]time.Time{}, held: map[string]map[string][]soakCopy{}, order: map[string][]string{}}
}

// send records a message sent from side in channel, expected on each side
// of to.
func (l *soakLedger) send(tag, from string, channel, seq int, at time.Time, to []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[tag] = &soakSent{from: from, channel: channel, seq: seq, at: at, to: to}
}

// edit and remove record that the sender edited or deleted a message.
func (l *soakLedger) edit(tag string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sent[tag]; s != nil {
		s.edited = true
	}
}

func (l *soakLedger) react(tag string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sent[tag]; s != nil {
		s.reacted = true
	}
}

// reply records that tag was sent as a reply to parent.
func (l *soakLedger) reply(tag, parent string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sent[tag]; s != nil {
		s.parent = parent
	}
}

func (l *soakLedger) remove(tag string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sent[tag]; s != nil {
		s.deleted = true
	}
}

// arrived records that a watcher saw tag arrive on side at at; only the
// first sight counts. Echoes on the side that sent it and unknown tags
// are not the ledger's.
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

// recount takes a side's record: the copies it holds, in its order. It
// replaces the side's last record.
func (l *soakLedger) recount(side string, copies []soakCopy) {
	l.mu.Lock()
	defer l.mu.Unlock()
	byTag := map[string][]soakCopy{}
	var order []string
	for _, c := range copies {
		s, ok := l.sent[c.Tag]
		if !ok || side == s.from {
			continue
		}
		if !c.Gone && !slices.ContainsFunc(byTag[c.Tag], func(o soakCopy) bool { return !o.Gone }) {
			order = append(order, c.Tag)
		}
		byTag[c.Tag] = append(byTag[c.Tag], c)
	}
	l.held[side], l.order[side] = byTag, order
}

// verdict is what a side's record says of one message sent to it.
type soakVerdict struct {
	copies   int  // live copies
	edited   bool // every live copy shows the edit
	reacted  bool // every live copy has a reaction
	threaded bool // every live copy is in its parent's thread
}

func (l *soakLedger) verdictLocked(tag, side string) soakVerdict {
	v := soakVerdict{edited: true, reacted: true, threaded: true}
	parent := l.sent[tag].parent
	for _, c := range l.held[side][tag] {
		if c.Gone {
			continue
		}
		v.copies++
		v.edited = v.edited && c.Edited
		v.reacted = v.reacted && c.Reacted
		v.threaded = v.threaded && c.Parent == parent
	}
	return v
}

// complete reports whether every side holds what it should: one copy or
// more of each message, edits shown, deleted messages gone.
func (l *soakLedger) complete() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for tag, s := range l.sent {
		for _, to := range s.to {
			v := l.verdictLocked(tag, to)
			switch {
			case s.deleted && v.copies > 0,
				!s.deleted && v.copies == 0,
				!s.deleted && s.edited && !v.edited,
				!s.deleted && s.reacted && !v.reacted,
				!s.deleted && !v.threaded:
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
	// Edits and Deletes count the messages their sender edited or
	// deleted; the Missed ones are not edited, or still there, on To.
	Edits         int `json:"edits"`
	EditsMissed   int `json:"edits_missed"`
	Deletes       int `json:"deletes"`
	DeletesMissed int `json:"deletes_missed"`
	// Reactions count the messages their sender reacted to; the Missed
	// ones have no reaction on To. Replies count the messages sent as
	// replies; the Misplaced ones (and any other message) are not in
	// their parent's thread on To.
	Reactions       int `json:"reactions"`
	ReactionsMissed int `json:"reactions_missed"`
	Replies         int `json:"replies"`
	Misplaced       int `json:"misplaced"`
}

// Failures is what must be zero.
func (r soakPathReport) Failures() int {
	return r.Lost + r.Duplicated + r.Reordered + r.EditsMissed + r.DeletesMissed + r.ReactionsMissed + r.Misplaced
}

// report computes every path's figures. A message counts as received when
// the side holds a copy, duplicated for each copy beyond the first, and
// reordered when it stands after a later message of the same sender, side
// and channel (the benchmarks' count). Deleted messages count only as
// deletes. Latency is from the send to the first sight of a copy, for the
// copies a watcher saw.
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
			v := l.verdictLocked(tag, to)
			if s.deleted {
				r.Deletes++
				if v.copies > 0 {
					r.DeletesMissed++
				}
				continue
			}
			r.Sent++
			r.Edits += b2i(s.edited)
			r.Reactions += b2i(s.reacted)
			r.Replies += b2i(s.parent != "")
			if v.copies == 0 {
				r.Lost++
				continue
			}
			r.Received++
			r.Duplicated += v.copies - 1
			r.EditsMissed += b2i(s.edited && !v.edited)
			r.ReactionsMissed += b2i(s.reacted && !v.reacted)
			r.Misplaced += b2i(!v.threaded)
			if at, ok := l.first[tag][to]; ok {
				lat[p] = append(lat[p], at.Sub(s.at))
			}
		}
	}
	// Order: per side, the record's order of each sender's live messages
	// per channel.
	type stream struct {
		soakPath
		channel int
	}
	for side, order := range l.order {
		highest := map[stream]int{}
		for _, tag := range order {
			s := l.sent[tag]
			if s.deleted {
				continue
			}
			k := stream{soakPath{s.from, side}, s.channel}
			h, ok := highest[k]
			if ok && s.seq < h {
				byPath[k.soakPath].Reordered++
			}
			if !ok || s.seq > h {
				highest[k] = s.seq
			}
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

// misses lists, for each path and kind of failure, up to most of the
// messages concerned, to look up in the logs: "mattermost -> matrix: edit
// missed: soak-...".
func (l *soakLedger) misses(most int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	count := map[string]int{}
	var out []string
	add := func(s *soakSent, to, what, tag string) {
		k := s.from + " -> " + to + ": " + what
		count[k]++
		if count[k] <= most {
			out = append(out, k+": "+tag)
		}
	}
	tags := make([]string, 0, len(l.sent))
	for tag := range l.sent {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		s := l.sent[tag]
		for _, to := range s.to {
			v := l.verdictLocked(tag, to)
			switch {
			case s.deleted:
				if v.copies > 0 {
					add(s, to, "delete missed", tag)
				}
				continue
			case v.copies == 0:
				add(s, to, "lost", tag)
				continue
			case v.copies > 1:
				add(s, to, "duplicated", tag)
			}
			if s.edited && !v.edited {
				add(s, to, "edit missed", tag)
			}
			if s.reacted && !v.reacted {
				add(s, to, "reaction missed", tag)
			}
			if !v.threaded {
				add(s, to, "out of its thread", tag)
			}
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
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
