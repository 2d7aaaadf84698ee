// Package bridgetest provides an in-memory network for tests: a Bridge that
// records what it is asked to deliver and lets a test speak in its rooms as
// a remote person would. It is test-only code; nothing in the plugin imports
// it.
package bridgetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Delivered is one delivery the network received, with the bytes of its
// attachments read.
type Delivered struct {
	bridge.Delivery
	NativeID string
	Files    map[string][]byte // attachment name -> content
}

// Network is an in-memory chat network.
type Network struct {
	name bridge.Network
	caps bridge.Capabilities

	mu        sync.Mutex
	cond      *sync.Cond
	sink      bridge.Sink
	started   bool
	nextID    int
	delivered []Delivered
	members   []MemberChange
	failures  map[string]error         // room -> error every delivery returns
	hangs     map[string]chan struct{} // room -> closed to release hung deliveries
}

var (
	_ bridge.Bridge        = (*Network)(nil)
	_ bridge.MemberWatcher = (*Network)(nil)
)

// New returns a network named name that supports every kind of event.
func New(name bridge.Network) *Network {
	n := &Network{
		name:     name,
		caps:     bridge.Capabilities{Edits: true, Deletes: true, Reactions: true, Threads: true, Files: true},
		failures: map[string]error{},
		hangs:    map[string]chan struct{}{},
	}
	n.cond = sync.NewCond(&n.mu)
	return n
}

func (n *Network) Network() bridge.Network           { return n.name }
func (n *Network) Capabilities() bridge.Capabilities { return n.caps }

func (n *Network) Health() bridge.Health {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return bridge.Health{State: bridge.StateConnected}
	}
	return bridge.Health{State: bridge.StateDisabled}
}

func (n *Network) Start(_ context.Context, sink bridge.Sink) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sink, n.started = sink, true
	n.cond.Broadcast()
	return nil
}

func (n *Network) Stop(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sink, n.started = nil, false
	return nil
}

// Fail makes every delivery to room fail with err (nil clears it). Wrap err
// with bridge.Permanent for a permanent failure.
func (n *Network) Fail(room string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		delete(n.failures, room)
	} else {
		n.failures[room] = err
	}
}

// Hang makes deliveries to room block until the returned release function is
// called or the delivery's context ends.
func (n *Network) Hang(room string) (release func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := make(chan struct{})
	n.hangs[room] = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			delete(n.hangs, room)
			n.mu.Unlock()
			close(ch)
		})
	}
}

func (n *Network) Deliver(ctx context.Context, d *bridge.Delivery) (string, error) {
	n.mu.Lock()
	hang, failure := n.hangs[d.Room], n.failures[d.Room]
	n.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if failure != nil {
		return "", failure
	}
	rec := Delivered{Delivery: *d, Files: map[string][]byte{}}
	for _, a := range d.Attachments {
		r, err := a.Open(ctx)
		if err != nil {
			return "", fmt.Errorf("read attachment %s: %w", a.Name, err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return "", err
		}
		rec.Files[a.Name] = data
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch d.Kind {
	case bridge.KindMessage:
		n.nextID++
		rec.NativeID = fmt.Sprintf("%s-%d", n.name, n.nextID)
	default:
		rec.NativeID = d.TargetID
	}
	n.delivered = append(n.delivered, rec)
	n.cond.Broadcast()
	return rec.NativeID, nil
}

// Delivered returns every delivery so far, in order.
func (n *Network) Delivered() []Delivered {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Delivered(nil), n.delivered...)
}

// WaitFor waits until some delivery matches, and returns it.
func (n *Network) WaitFor(ctx context.Context, match func(Delivered) bool) (Delivered, error) {
	var found Delivered
	err := n.waitUntil(ctx, "delivery", func() bool {
		for _, d := range n.delivered {
			if match(d) {
				found = d
				return true
			}
		}
		return false
	})
	return found, err
}

// waitUntil waits until found, called with n.mu held, reports true.
func (n *Network) waitUntil(ctx context.Context, what string, found func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		n.mu.Lock()
		n.cond.Broadcast()
		n.mu.Unlock()
	})
	defer stop()
	n.mu.Lock()
	defer n.mu.Unlock()
	for !found() {
		if ctx.Err() != nil {
			return fmt.Errorf("no matching %s on %s: %w", what, n.name, ctx.Err())
		}
		n.cond.Wait()
	}
	return nil
}

// MemberChange is one call of MemberJoined (Joined true) or MemberLeft.
type MemberChange struct {
	Room   string
	Member bridge.Sender
	Joined bool
}

// MemberJoined records the call; the network has no member list to change.
func (n *Network) MemberJoined(_ context.Context, room string, member bridge.Sender) error {
	n.recordMember(MemberChange{Room: room, Member: member, Joined: true})
	return nil
}

// MemberLeft records the call.
func (n *Network) MemberLeft(_ context.Context, room string, member bridge.Sender) error {
	n.recordMember(MemberChange{Room: room, Member: member})
	return nil
}

func (n *Network) recordMember(c MemberChange) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members = append(n.members, c)
	n.cond.Broadcast()
}

// MemberChanges returns every MemberJoined and MemberLeft call so far, in order.
func (n *Network) MemberChanges() []MemberChange {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]MemberChange(nil), n.members...)
}

// WaitForMember waits until some member change matches, and returns it.
func (n *Network) WaitForMember(ctx context.Context, match func(MemberChange) bool) (MemberChange, error) {
	var found MemberChange
	err := n.waitUntil(ctx, "member change", func() bool {
		for _, c := range n.members {
			if match(c) {
				found = c
				return true
			}
		}
		return false
	})
	return found, err
}

// Person is someone speaking on the network. Avatar, when set, is their
// picture; change AvatarHash with it.
type Person struct {
	ID, Username, DisplayName string
	Avatar                    []byte
	AvatarHash                string
}

func (n *Network) sender(p Person) bridge.Sender {
	s := bridge.Sender{Network: n.name, ID: p.ID, Username: p.Username, DisplayName: p.DisplayName}
	if p.Avatar != nil {
		data := p.Avatar
		s.AvatarHash = p.AvatarHash
		s.Avatar = func(context.Context) ([]byte, error) { return data, nil }
	}
	return s
}

// Send hands an event to the bridge core as if it happened on the network.
func (n *Network) Send(ctx context.Context, ev bridge.Event) error {
	n.mu.Lock()
	for n.sink == nil && ctx.Err() == nil {
		n.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
		n.mu.Lock()
	}
	sink := n.sink
	n.mu.Unlock()
	if sink == nil {
		return errors.New("network is not started")
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	return sink.Receive(ctx, ev)
}

func (n *Network) newID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextID++
	return fmt.Sprintf("%s-in-%d", n.name, n.nextID)
}

// Say posts text in room as p and returns the message's native ID. parent,
// when not empty, makes it a reply.
func (n *Network) Say(ctx context.Context, room string, p Person, text, parent string) (string, error) {
	id := n.newID()
	return id, n.Send(ctx, bridge.Event{
		Kind: bridge.KindMessage, Origin: bridge.Ref{Network: n.name, Room: room, ID: id},
		Sender: n.sender(p), Text: text, Parent: parent,
	})
}

// SendFile posts a file in room as p.
func (n *Network) SendFile(ctx context.Context, room string, p Person, text, name, mime string, data []byte) (string, error) {
	id := n.newID()
	return id, n.Send(ctx, bridge.Event{
		Kind: bridge.KindMessage, Origin: bridge.Ref{Network: n.name, Room: room, ID: id},
		Sender: n.sender(p), Text: text,
		Attachments: []bridge.Attachment{{
			Name: name, MIMEType: mime, Size: int64(len(data)),
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		}},
	})
}

// Edit replaces the text of message target in room.
func (n *Network) Edit(ctx context.Context, room string, p Person, target, text string) error {
	return n.Send(ctx, bridge.Event{
		Kind: bridge.KindEdit, Origin: bridge.Ref{Network: n.name, Room: room, ID: n.newID()},
		Target: target, Sender: n.sender(p), Text: text,
	})
}

// Delete removes message target in room.
func (n *Network) Delete(ctx context.Context, room string, p Person, target string) error {
	return n.Send(ctx, bridge.Event{
		Kind: bridge.KindDelete, Origin: bridge.Ref{Network: n.name, Room: room, ID: n.newID()},
		Target: target, Sender: n.sender(p),
	})
}

// React adds (or, with add false, removes) p's reaction to target.
func (n *Network) React(ctx context.Context, room string, p Person, target, emoji string, add bool) error {
	kind := bridge.KindReactionAdd
	if !add {
		kind = bridge.KindReactionRemove
	}
	return n.Send(ctx, bridge.Event{
		Kind: kind, Origin: bridge.Ref{Network: n.name, Room: room, ID: n.newID()},
		Target: target, Sender: n.sender(p), Emoji: emoji,
	})
}
