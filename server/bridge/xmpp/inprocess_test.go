package xmpp

import (
	"context"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// memStore is the bridge's Store in memory, for tests that drive the
// bridge's inbound path without a server.
type memStore struct {
	mu      sync.Mutex
	links   []store.Link
	cursors map[string]string
	aliases map[string]string
}

func newMemStore() *memStore {
	return &memStore{cursors: map[string]string{}, aliases: map[string]string{}}
}

func (s *memStore) ListLinks() ([]store.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.Link(nil), s.links...), nil
}

func (s *memStore) GetCursor(linkID, name string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.cursors[linkID+"|"+name]
	return v, ok, nil
}

func (s *memStore) SetCursor(linkID, name, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursors[linkID+"|"+name] = value
	return nil
}

func (s *memStore) SetAlias(namespace, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aliases[namespace+"|"+key] = value
	return nil
}

func (s *memStore) Alias(namespace, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.aliases[namespace+"|"+key]
	return v, ok, nil
}

// eventRecorder is a Sink that keeps what the bridge hands to the core, and
// settles it at once, as if every destination had it.
type eventRecorder struct {
	mu     sync.Mutex
	events []bridge.Event
}

func (r *eventRecorder) Receive(_ context.Context, ev bridge.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	if ev.Settled != nil {
		ev.Settled()
	}
	return nil
}

func (r *eventRecorder) take() []bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// testRoom is the room the in-process bridge sits in.
var testRoom = jid.MustParse("dev@conference.example.com")

// newInProcessBridge is a component-mode bridge that is in testRoom (joined,
// caught up) with occupants "Carol" and the bridge's own "Mattermost", and
// never connects: tests feed stanzas to handleMessage and handlePresence.
func newInProcessBridge(tb testing.TB) (*Bridge, *memStore, *eventRecorder) {
	tb.Helper()
	st := newMemStore()
	b, err := New(Config{
		Mode: ModeComponent, ComponentDomain: jid.MustParse("bridge.example.com"), ComponentSecret: "s",
		Address: "127.0.0.1:5347", TLSMode: TLSPlainLoopback,
	}, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	rec := &eventRecorder{}
	b.sink = rec
	b.inlineLanes = true
	r := b.roomState(testRoom)
	r.nick = "Mattermost"
	r.ourNicks["Mattermost"] = true
	r.catchingUp = false
	b.handlePresence([]byte(`<presence from="dev@conference.example.com/Carol"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant"/></x><occupant-id xmlns="urn:xmpp:occupant-id:0" id="carol-occ"/></presence>`))
	b.handlePresence([]byte(`<presence from="dev@conference.example.com/Mattermost"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant"/><status code="110"/></x></presence>`))
	return b, st, rec
}
