package xmpp

// A room's lane handles its messages one after another, in the order they
// came, on a goroutine of its own: a slow step (fetching a file) holds up
// that room only, and never the stream, whose keepalives and other rooms
// go on. The inbound loop only parses, takes the room's view and queues.

// maxLane bounds the messages waiting in one room's lane. Past it the room
// is held back and read again from the archive once the lane has drained
// to half.
const maxLane = 1000

type lane struct {
	items   []laneItem
	running bool
	// space is closed once a lane that refused an item has drained to
	// half; nil while none was refused.
	space chan struct{}
}

type laneItem struct {
	fn      func()
	control bool // a marker, never refused
}

// inLane queues fn in room's lane; false when the lane is full. Markers
// (control) are always taken: a catch-up waits for them. fn runs at once
// for a room the bridge is not in, and in tests that ask for it.
func (b *Bridge) inLane(room string, fn func()) bool { return b.queueInLane(room, fn, false) }

// inLaneAlways queues a marker in room's lane.
func (b *Bridge) inLaneAlways(room string, fn func()) { b.queueInLane(room, fn, true) }

func (b *Bridge) queueInLane(room string, fn func(), control bool) bool {
	b.mu.Lock()
	r, ok := b.rooms[room]
	if !ok || b.inlineLanes {
		b.mu.Unlock()
		fn()
		return true
	}
	l := &r.lane
	if !control && len(l.items) >= maxLane {
		if l.space == nil {
			l.space = make(chan struct{})
		}
		b.mu.Unlock()
		return false
	}
	l.items = append(l.items, laneItem{fn: fn, control: control})
	if !l.running {
		l.running = true
		go b.runLane(l)
	}
	b.mu.Unlock()
	return true
}

func (b *Bridge) runLane(l *lane) {
	for {
		b.mu.Lock()
		if len(l.items) == 0 {
			l.running = false
			b.mu.Unlock()
			return
		}
		it := l.items[0]
		l.items[0] = laneItem{}
		l.items = l.items[1:]
		if l.space != nil && len(l.items) <= maxLane/2 {
			close(l.space)
			l.space = nil
		}
		b.mu.Unlock()
		it.fn()
	}
}

// laneSpace is closed once room's full lane has drained to half (at once
// when it is not full).
func (b *Bridge) laneSpace(room string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.rooms[room]; ok && r.lane.space != nil {
		return r.lane.space
	}
	c := make(chan struct{})
	close(c)
	return c
}

// queryRoom is the room an open archive query asked, "" if none.
func (b *Bridge) queryRoom(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q, ok := b.archiveQueries[id]; ok {
		return q.archive.String()
	}
	return ""
}
