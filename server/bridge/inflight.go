package bridge

import "sync"

// inFlight tracks the message deliveries under way into each room: a copy
// appears in the room (and to its members) while Deliver still waits for
// the room's answer, before the router records it. An action on such a copy
// waits for those deliveries instead of being dropped as aimed at nothing.
//
// A wait covers only the deliveries in flight when the action first missed
// its target, so a stream of actions on made-up IDs in a busy room cannot
// keep a queue waiting longer than the slowest of them.
type inFlight struct {
	mu     sync.Mutex
	next   uint64
	active map[string]map[uint64]struct{} // room key -> delivery numbers
}

// begin records a delivery into room; end must be called when its copy is
// recorded or the attempt failed.
func (f *inFlight) begin(room string) (end func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	n := f.next
	if f.active == nil {
		f.active = map[string]map[uint64]struct{}{}
	}
	if f.active[room] == nil {
		f.active[room] = map[uint64]struct{}{}
	}
	f.active[room][n] = struct{}{}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.active[room], n)
		if len(f.active[room]) == 0 {
			delete(f.active, room)
		}
	}
}

// latest is the number of the last delivery begun, into any room.
func (f *inFlight) latest() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// busy reports whether a delivery into room numbered up to upTo is still
// under way.
func (f *inFlight) busy(room string, upTo uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n := range f.active[room] {
		if n <= upTo {
			return true
		}
	}
	return false
}
