package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var (
	mmRoom     = Ref{Network: NetworkMattermost, Room: "chan1"}
	xmppRoom   = Ref{Network: NetworkXMPP, Room: "room@conf"}
	matrixRoom = Ref{Network: NetworkMatrix, Room: "!r:hs"}
)

func msgIn(room Ref, id string) Ref { room.ID = id; return room }

type routed struct {
	dest     Ref
	ev       Event
	reason   string // "" when delivered
	nativeID string
	err      error
}

type routerEnv struct {
	dir     *fakeDirectory
	bridges map[Network]*fakeBridge
	bus     *Bus
	r       *Router
	out     chan routed
}

func newRouterEnv(t *testing.T, opts BusOptions, bridges ...*fakeBridge) *routerEnv {
	t.Helper()
	e := &routerEnv{
		dir:     newFakeDirectory(),
		bridges: map[Network]*fakeBridge{},
		bus:     fastBus(t, opts),
		out:     make(chan routed, 100),
	}
	e.dir.link("chan1", mmRoom, xmppRoom, matrixRoom)
	for _, b := range bridges {
		e.bridges[b.network] = b
	}
	lookup := BridgeSourceFunc(func(n Network) (Bridge, bool) {
		b, ok := e.bridges[n]
		return b, ok
	})
	e.r = NewRouter(e.dir, lookup, e.bus, RouterOptions{
		OnDelivered: func(linkID string, dest Ref, ev Event, id string) {
			if linkID != "chan1" {
				t.Errorf("link %q", linkID)
			}
			e.out <- routed{dest: dest, ev: ev, nativeID: id}
		},
		OnDropped: func(linkID string, dest Ref, ev Event, reason string, err error) {
			e.out <- routed{dest: dest, ev: ev, reason: reason, err: err}
		},
	})
	return e
}

// standard is Mattermost, XMPP and Matrix, all able to do everything.
func standard(t *testing.T) (*routerEnv, *fakeBridge, *fakeBridge, *fakeBridge) {
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	mx := newFakeBridge(NetworkMatrix, allCaps())
	return newRouterEnv(t, BusOptions{}, mm, x, mx), mm, x, mx
}

// outcomes waits for n outcomes and indexes them by destination network.
func (e *routerEnv) outcomes(t *testing.T, n int) map[Network][]routed {
	t.Helper()
	m := map[Network][]routed{}
	for range n {
		o := recv(t, e.out, "routing outcome")
		m[o.dest.Network] = append(m[o.dest.Network], o)
	}
	return m
}

func (e *routerEnv) receive(t *testing.T, ev Event) {
	t.Helper()
	if err := e.r.Receive(context.Background(), ev); err != nil {
		t.Fatalf("Receive(%+v): %v", ev, err)
	}
}

func message(room Ref, id, text string) Event {
	return Event{Kind: KindMessage, Origin: msgIn(room, id), Text: text,
		Sender: Sender{Network: room.Network, ID: "u1", Username: "alice"}}
}

func TestRouterFansOutAndRecords(t *testing.T) {
	e, mm, x, mx := standard(t)
	e.receive(t, message(mmRoom, "p1", "hello"))
	got := e.outcomes(t, 2)
	if o := got[NetworkXMPP]; len(o) != 1 || o[0].reason != "" || o[0].nativeID != "xmpp-1" || o[0].dest != xmppRoom {
		t.Fatalf("xmpp outcome = %+v", o)
	}
	if o := got[NetworkMatrix]; len(o) != 1 || o[0].reason != "" || o[0].nativeID != "matrix-1" {
		t.Fatalf("matrix outcome = %+v", o)
	}
	d := x.got()[0]
	if d.Room != "room@conf" || d.Text != "hello" || d.Sender.Username != "alice" || d.Origin.ID != "p1" {
		t.Fatalf("delivery = %+v", d)
	}
	if len(mm.got()) != 0 || len(mx.got()) != 1 {
		t.Fatal("wrong recipients")
	}
	id, ok, _ := e.dir.Counterpart(context.Background(), msgIn(mmRoom, "p1"), xmppRoom)
	if !ok || id != "xmpp-1" {
		t.Fatalf("counterpart = %q %v", id, ok)
	}
	// The copies map to each other too.
	id, ok, _ = e.dir.Counterpart(context.Background(), msgIn(xmppRoom, "xmpp-1"), matrixRoom)
	if !ok || id != "matrix-1" {
		t.Fatalf("copy counterpart = %q %v", id, ok)
	}
	s := e.bus.Stats()
	if s.Delivered != 2 || len(s.Queues) != 2 || s.Queues[0].Key != (QueueKey{"chan1", "matrix|!r:hs"}) {
		t.Fatalf("stats = %+v", s)
	}
}

func TestRouterDeduplicatesReplays(t *testing.T) {
	e, _, x, mx := standard(t)
	ev := message(mmRoom, "p1", "hello")
	e.receive(t, ev)
	e.receive(t, ev) // e.g. replayed after a restart
	got := e.outcomes(t, 4)
	for _, n := range []Network{NetworkXMPP, NetworkMatrix} {
		o := got[n]
		if len(o) != 2 || o[0].reason != "" || o[1].reason != ReasonDuplicate {
			t.Fatalf("%s outcomes = %+v", n, o)
		}
	}
	if len(x.got()) != 1 || len(mx.got()) != 1 {
		t.Fatalf("delivered %d and %d times", len(x.got()), len(mx.got()))
	}
	if s := e.bus.Stats(); s.Drops[ReasonDuplicate] != 2 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestRouterTranslatesTargets(t *testing.T) {
	e, mm, x, mx := standard(t)
	e.receive(t, message(mmRoom, "p1", "hello"))
	e.outcomes(t, 2)

	alice := message(mmRoom, "p1", "").Sender
	e.receive(t, Event{Kind: KindEdit, Origin: msgIn(mmRoom, "p1"), Target: "p1", Text: "hello!", Sender: alice})
	e.outcomes(t, 2)
	if d := x.got()[1]; d.Kind != KindEdit || d.TargetID != "xmpp-1" || d.Text != "hello!" {
		t.Fatalf("xmpp edit = %+v", d)
	}
	if d := mx.got()[1]; d.TargetID != "matrix-1" {
		t.Fatalf("matrix edit = %+v", d)
	}

	// A reaction on the XMPP copy reaches the Mattermost original and the Matrix copy.
	e.receive(t, Event{Kind: KindReactionAdd, Origin: xmppRoom, Target: "xmpp-1", Emoji: "thumbsup"})
	got := e.outcomes(t, 2)
	if got[NetworkMattermost][0].nativeID != "p1" {
		t.Fatalf("outcomes = %+v", got)
	}
	if d := mm.got()[0]; d.Kind != KindReactionAdd || d.TargetID != "p1" || d.Emoji != "thumbsup" || d.Room != "chan1" {
		t.Fatalf("mattermost reaction = %+v", d)
	}
	if d := mx.got()[2]; d.TargetID != "matrix-1" || d.Emoji != "thumbsup" {
		t.Fatalf("matrix reaction = %+v", d)
	}

	e.receive(t, Event{Kind: KindDelete, Origin: mmRoom, Target: "p1", Sender: alice})
	e.outcomes(t, 2)
	if d := x.got()[2]; d.Kind != KindDelete || d.TargetID != "xmpp-1" {
		t.Fatalf("xmpp delete = %+v", d)
	}
}

// Only a message's author edits or deletes it; a delete by someone else
// passes only as a moderation its origin network vouched for, and a remote
// room's moderators reach only messages written in their own room.
func TestRouterOnlyAuthorEditsOrDeletes(t *testing.T) {
	e, mm, x, mx := newRouterEnvHome(t)
	eve := Sender{Network: NetworkXMPP, ID: "jid:eve@example.com", Username: "eve"}
	bob := Sender{Network: NetworkXMPP, ID: "jid:bob@example.com", Username: "bob"}
	carol := Sender{Network: NetworkMatrix, ID: "@carol:hs", Username: "carol"}
	alice := Sender{Network: NetworkMattermost, ID: "alice-id", Username: "alice"}
	admin := Sender{Network: NetworkMattermost, ID: "admin-id", Username: "admin"}

	fromEve := message(xmppRoom, "x1", "eve's")
	fromEve.Sender = eve
	e.receive(t, fromEve)
	fromAlice := message(mmRoom, "p1", "alice's")
	fromAlice.Sender = alice
	e.receive(t, fromAlice)
	e.outcomes(t, 4)
	xmppCopyOfAlice, _, _ := e.dir.Counterpart(context.Background(), msgIn(mmRoom, "p1"), xmppRoom)
	mmCopyOfEve, _, _ := e.dir.Counterpart(context.Background(), msgIn(xmppRoom, "x1"), mmRoom)
	before := func() (int, int, int) { return len(mm.got()), len(x.got()), len(mx.got()) }
	m0, x0, mx0 := before()

	refused := []Event{
		// Another occupant of the same room edits or retracts eve's message.
		{Kind: KindEdit, Origin: xmppRoom, Target: "x1", Text: "forged", Sender: bob},
		{Kind: KindDelete, Origin: xmppRoom, Target: "x1", Sender: bob},
		// A Matrix user edits the copy of eve's message.
		{Kind: KindEdit, Origin: matrixRoom, Target: "matrix-1", Text: "forged", Sender: carol},
		// A remote person edits or deletes a Mattermost user's post.
		{Kind: KindEdit, Origin: xmppRoom, Target: xmppCopyOfAlice, Text: "forged", Sender: eve},
		{Kind: KindDelete, Origin: xmppRoom, Target: xmppCopyOfAlice, Sender: eve},
		// ...even as a moderator of their own room: alice wrote it elsewhere.
		{Kind: KindDelete, Origin: xmppRoom, Target: xmppCopyOfAlice, Sender: bob, Moderated: true},
		// A Mattermost admin edits eve's message: edits are never moderation.
		{Kind: KindEdit, Origin: mmRoom, Target: mmCopyOfEve, Text: "forged", Sender: admin, Moderated: true},
		// A delete by someone else that nobody vouched for.
		{Kind: KindDelete, Origin: mmRoom, Target: mmCopyOfEve, Sender: admin},
	}
	for _, ev := range refused {
		e.receive(t, ev)
		for n, o := range e.outcomes(t, 2) {
			if len(o) != 1 || o[0].reason != ReasonNotAuthor {
				t.Errorf("%s by %s of %s: %s outcome %+v, want %s", ev.Kind, ev.Sender.Username, ev.Target, n, o, ReasonNotAuthor)
			}
		}
	}
	if m, xx, mxx := before(); m != m0 || xx != x0 || mxx != mx0 {
		t.Fatalf("refused actions were delivered: %d/%d/%d deliveries, had %d/%d/%d", m, xx, mxx, m0, x0, mx0)
	}
	if qs, _ := e.bus.QueueStats(QueueKey{"chan1", mmRoom.RoomKey()}); qs.Drops[ReasonNotAuthor] == 0 {
		t.Fatalf("not_author drops are not counted: %+v", qs)
	}

	// The author edits; the room's moderator removes eve's message: both
	// reach every copy, and none needs moderation rights there.
	e.receive(t, Event{Kind: KindEdit, Origin: xmppRoom, Target: "x1", Text: "eve's, edited", Sender: eve})
	e.outcomes(t, 2)
	if d := mm.got()[len(mm.got())-1]; d.Kind != KindEdit || d.TargetID != mmCopyOfEve || d.Text != "eve's, edited" {
		t.Fatalf("eve's edit = %+v", d)
	}

	// A Mattermost admin's delete of eve's message reaches the XMPP room as
	// a moderation (the target there is eve's own message) and Matrix as
	// the removal of the bridge's copy.
	e.receive(t, Event{Kind: KindDelete, Origin: mmRoom, Target: mmCopyOfEve, Sender: admin, Moderated: true})
	e.outcomes(t, 2)
	if d := x.got()[len(x.got())-1]; d.Kind != KindDelete || d.TargetID != "x1" || !d.Moderate {
		t.Fatalf("xmpp delivery of the admin's delete = %+v, want a moderation of x1", d)
	}
	if d := mx.got()[len(mx.got())-1]; d.Kind != KindDelete || d.Moderate {
		t.Fatalf("matrix delivery of the admin's delete = %+v, want a plain removal of the copy", d)
	}

	// An XMPP moderator removes a message written in their room.
	fromBob := message(xmppRoom, "x2", "bob's")
	fromBob.Sender = bob
	e.receive(t, fromBob)
	e.outcomes(t, 2)
	e.receive(t, Event{Kind: KindDelete, Origin: xmppRoom, Target: "x2", Sender: eve, Moderated: true})
	for n, o := range e.outcomes(t, 2) {
		if len(o) != 1 || o[0].reason != "" {
			t.Fatalf("moderator's delete to %s: %+v", n, o)
		}
	}
	if d := mm.got()[len(mm.got())-1]; d.Kind != KindDelete || d.Moderate {
		t.Fatalf("mattermost delivery of the moderator's delete = %+v", d)
	}
}

// newRouterEnvHome is standard with Mattermost as the home network.
func newRouterEnvHome(t *testing.T) (*routerEnv, *fakeBridge, *fakeBridge, *fakeBridge) {
	e, mm, x, mx := standard(t)
	e.r.opts.Home = NetworkMattermost
	return e, mm, x, mx
}

// A Mattermost person's action on a post the bridge has just made waits a
// moment for the post's map, written right after the post appears; an
// unknown target from outside is dropped at once.
func TestRouterHomeActionWaitsForAFreshTarget(t *testing.T) {
	e, _, x, _ := newRouterEnvHome(t)
	admin := Sender{Network: NetworkMattermost, ID: "admin-id"}
	e.receive(t, Event{Kind: KindReactionAdd, Origin: xmppRoom, Target: "made-up", Emoji: "x", Sender: Sender{Network: NetworkXMPP, ID: "mallory"}, Time: time.Now()})
	for n, o := range e.outcomes(t, 2) {
		if len(o) != 1 || o[0].reason != ReasonUnknownTarget {
			t.Fatalf("a remote action on a made-up ID, to %s: %+v", n, o)
		}
	}

	// A Mattermost person's action on a post the bridge did not make (one
	// from before the link, say) has nothing to wait for.
	e.receive(t, Event{Kind: KindReactionAdd, Origin: mmRoom, Target: "p-old", Emoji: "thumbsup", Sender: admin, Time: time.Now()})
	for n, o := range e.outcomes(t, 2) {
		if len(o) != 1 || o[0].reason != ReasonUnknownTarget {
			t.Fatalf("an action on a post never bridged, to %s: %+v", n, o)
		}
	}

	e.receive(t, Event{Kind: KindReactionAdd, Origin: mmRoom, Target: "p-new", Emoji: "thumbsup", Sender: admin, Time: time.Now(), AwaitTarget: true})
	time.Sleep(50 * time.Millisecond)
	if err := e.dir.RecordCounterpart(context.Background(), msgIn(xmppRoom, "x-new"), msgIn(mmRoom, "p-new"), "xmpp|eve"); err != nil {
		t.Fatal(err)
	}
	got := e.outcomes(t, 2)
	if o := got[NetworkXMPP]; len(o) != 1 || o[0].reason != "" || x.got()[len(x.got())-1].TargetID != "x-new" {
		t.Fatalf("the reaction to the fresh copy, to XMPP: %+v", o)
	}
}

func TestRouterUnknownTarget(t *testing.T) {
	e, _, x, _ := standard(t)
	e.receive(t, Event{Kind: KindEdit, Origin: mmRoom, Target: "never-bridged", Text: "x"})
	got := e.outcomes(t, 2)
	for _, n := range []Network{NetworkXMPP, NetworkMatrix} {
		if o := got[n]; len(o) != 1 || o[0].reason != ReasonUnknownTarget {
			t.Fatalf("%s outcome = %+v", n, o)
		}
	}
	if len(x.got()) != 0 {
		t.Fatal("delivered an edit of an unknown message")
	}
	if qs, _ := e.bus.QueueStats(QueueKey{"chan1", xmppRoom.RoomKey()}); qs.Drops[ReasonUnknownTarget] != 1 {
		t.Fatalf("stats = %+v", qs)
	}
}

func TestRouterDropsEchoes(t *testing.T) {
	e, mm, x, mx := standard(t)
	e.receive(t, message(mmRoom, "p1", "hello"))
	e.outcomes(t, 2)

	// The XMPP room reflects our copy back.
	e.receive(t, message(xmppRoom, "xmpp-1", "hello"))
	o := recv(t, e.out, "echo outcome")
	if o.reason != ReasonEcho || o.dest != (Ref{}) || o.ev.Origin.ID != "xmpp-1" {
		t.Fatalf("outcome = %+v", o)
	}
	if len(mm.got()) != 0 || len(x.got()) != 1 || len(mx.got()) != 1 {
		t.Fatal("echo was delivered")
	}
	if qs, _ := e.bus.QueueStats(QueueKey{Link: "chan1"}); qs.Drops[ReasonEcho] != 1 {
		t.Fatalf("stats = %+v", qs)
	}
}

// An echo can come back before the copy it reflects is recorded; the check
// made when the delivery runs still catches it.
func TestRouterDropsEchoArrivingBeforeRecord(t *testing.T) {
	e, mm, x, mx := standard(t)
	// Hold the Mattermost and Matrix queues so the echo's deliveries run after
	// the XMPP copy has been recorded.
	mmGate, mxGate := make(chan struct{}), make(chan struct{})
	mmHeld, mxHeld := make(chan struct{}), make(chan struct{})
	mm.setHook(func(ctx context.Context, d *Delivery) error {
		if d.Text == "blocker" {
			close(mmHeld)
			<-mmGate
		}
		return nil
	})
	mx.setHook(func(ctx context.Context, d *Delivery) error {
		if d.Text == "blocker" {
			close(mxHeld)
			<-mxGate
		}
		return nil
	})
	e.receive(t, message(xmppRoom, "x0", "blocker"))
	recv(t, mmHeld, "mattermost queue held")
	recv(t, mxHeld, "matrix queue held")

	x.setHook(func(ctx context.Context, d *Delivery) error {
		// The echo arrives while our copy is still being posted.
		return e.r.Receive(ctx, message(xmppRoom, "xmpp-1", d.Text))
	})
	e.receive(t, message(mmRoom, "p1", "hello"))
	if o := recv(t, e.out, "xmpp delivery"); o.reason != "" || o.nativeID != "xmpp-1" {
		t.Fatalf("outcome = %+v", o)
	}
	close(mmGate)
	close(mxGate)
	// blocker x2, hello to matrix, echo x2
	got := e.outcomes(t, 5)
	var echoes int
	for _, os := range got {
		for _, o := range os {
			if o.reason == ReasonEcho {
				echoes++
			} else if o.reason != "" {
				t.Fatalf("outcome = %+v", o)
			}
		}
	}
	if echoes != 2 {
		t.Fatalf("outcomes = %+v", got)
	}
	// Caught when the deliveries ran, not by Receive.
	if _, ok := e.bus.QueueStats(QueueKey{Link: "chan1"}); ok {
		t.Fatal("echo was caught by Receive; the test did not exercise the race")
	}
	if qs, _ := e.bus.QueueStats(QueueKey{"chan1", mmRoom.RoomKey()}); qs.Drops[ReasonEcho] != 1 {
		t.Fatalf("stats = %+v", qs)
	}
	if texts := mm.texts(); !slices.Equal(texts, []string{"blocker"}) {
		t.Fatalf("mattermost got %q", texts)
	}
	if texts := mx.texts(); !slices.Equal(texts, []string{"blocker", "hello"}) {
		t.Fatalf("matrix got %q", texts)
	}
}

func TestRouterUnsupportedKind(t *testing.T) {
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	noEdits := allCaps()
	noEdits.Edits = false
	mx := newFakeBridge(NetworkMatrix, noEdits)
	e := newRouterEnv(t, BusOptions{}, mm, x, mx)
	e.receive(t, message(mmRoom, "p1", "hello"))
	e.outcomes(t, 2)

	e.receive(t, Event{Kind: KindEdit, Origin: mmRoom, Target: "p1", Text: "hello!", Sender: message(mmRoom, "", "").Sender})
	got := e.outcomes(t, 2)
	if o := got[NetworkMatrix]; len(o) != 1 || o[0].reason != ReasonUnsupported {
		t.Fatalf("matrix outcome = %+v", o)
	}
	if o := got[NetworkXMPP]; len(o) != 1 || o[0].reason != "" {
		t.Fatalf("xmpp outcome = %+v", o)
	}
	if len(mx.got()) != 1 {
		t.Fatal("matrix got the edit")
	}
	qs, _ := e.bus.QueueStats(QueueKey{"chan1", matrixRoom.RoomKey()})
	if qs.Drops[ReasonUnsupported] != 1 || qs.Delivered != 1 {
		t.Fatalf("stats = %+v", qs)
	}
}

func TestRouterNoBridge(t *testing.T) {
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	e := newRouterEnv(t, BusOptions{}, mm, x) // no Matrix bridge running
	e.receive(t, message(mmRoom, "p1", "hello"))
	got := e.outcomes(t, 2)
	if o := got[NetworkMatrix]; len(o) != 1 || o[0].reason != ReasonNoBridge {
		t.Fatalf("matrix outcome = %+v", got)
	}
	if o := got[NetworkXMPP]; len(o) != 1 || o[0].reason != "" {
		t.Fatalf("xmpp outcome = %+v", got)
	}
}

func TestRouterSplitsLongText(t *testing.T) {
	mm := newFakeBridge(NetworkMattermost, allCaps())
	short := allCaps()
	short.MaxTextLength = 12
	x := newFakeBridge(NetworkXMPP, short)
	mx := newFakeBridge(NetworkMatrix, allCaps())
	e := newRouterEnv(t, BusOptions{}, mm, x, mx)

	e.receive(t, Event{Kind: KindMessage, Origin: msgIn(mmRoom, "root"), Text: "root"})
	e.outcomes(t, 2)
	text := "first line\nsecond line is longer\nend"
	ev := message(mmRoom, "p1", text)
	ev.Parent = "root"
	e.receive(t, ev)
	got := e.outcomes(t, 2)
	if o := got[NetworkXMPP][0]; o.reason != "" || o.nativeID != "xmpp-2" {
		t.Fatalf("xmpp outcome = %+v", o)
	}
	want := []string{"root", "first line", "second line", "is longer", "end"}
	if texts := x.texts(); !slices.Equal(texts, want) {
		t.Fatalf("xmpp got %q, want %q", texts, want)
	}
	for _, d := range x.got()[1:] {
		if d.ParentID != "xmpp-1" {
			t.Fatalf("part without parent: %+v", d)
		}
	}
	if texts := mx.texts(); !slices.Equal(texts, []string{"root", text}) {
		t.Fatalf("matrix got %q", texts)
	}
	// The first part stands for the message: edits go to it.
	e.receive(t, Event{Kind: KindEdit, Origin: mmRoom, Target: "p1", Text: "short now", Sender: message(mmRoom, "", "").Sender})
	e.outcomes(t, 2)
	if d := x.got()[5]; d.TargetID != "xmpp-2" || d.Text != "short now" {
		t.Fatalf("edit = %+v", d)
	}
}

func TestRouterTranslatesParent(t *testing.T) {
	e, _, x, _ := standard(t)
	e.receive(t, message(mmRoom, "root", "question"))
	e.outcomes(t, 2)

	reply := message(mmRoom, "r1", "answer")
	reply.Parent = "root"
	e.receive(t, reply)
	orphan := message(mmRoom, "r2", "answer to something older")
	orphan.Parent = "not-bridged"
	e.receive(t, orphan)
	e.outcomes(t, 4)

	d := x.got()
	if d[1].ParentID != "xmpp-1" || d[1].Parent != "root" {
		t.Fatalf("reply = %+v", d[1])
	}
	if d[2].ParentID != "" || d[2].Text != "answer to something older" {
		t.Fatalf("orphan reply = %+v", d[2])
	}
}

func TestRouterAdaptsFiles(t *testing.T) {
	mm := newFakeBridge(NetworkMattermost, allCaps())
	noFiles := allCaps()
	noFiles.Files = false
	x := newFakeBridge(NetworkXMPP, noFiles)
	limited := allCaps()
	limited.MaxFileSize = 1_000_000
	mx := newFakeBridge(NetworkMatrix, limited)
	e := newRouterEnv(t, BusOptions{}, mm, x, mx)

	ev := message(mmRoom, "p1", "see attached")
	ev.Attachments = []Attachment{{Name: "small.png", Size: 10}, {Name: "big.bin", Size: 5_000_000}}
	e.receive(t, ev)
	e.outcomes(t, 2)

	dx := x.got()[0]
	wantX := "see attached\n(file small.png not bridged: files are not supported here)\n(file big.bin not bridged: files are not supported here)"
	if dx.Text != wantX || len(dx.Attachments) != 0 {
		t.Fatalf("xmpp delivery = %q %v", dx.Text, dx.Attachments)
	}
	dm := mx.got()[0]
	if dm.Text != "see attached\n(file big.bin too large to bridge: 5.0 MB)" ||
		len(dm.Attachments) != 1 || dm.Attachments[0].Name != "small.png" {
		t.Fatalf("matrix delivery = %q %v", dm.Text, dm.Attachments)
	}

	// A files-only message still says something where files cannot go.
	only := message(mmRoom, "p2", "")
	only.Attachments = []Attachment{{Name: "a.txt", Size: 1}}
	e.receive(t, only)
	e.outcomes(t, 2)
	if d := x.got()[1]; d.Text != "(file a.txt not bridged: files are not supported here)" {
		t.Fatalf("xmpp delivery = %q", d.Text)
	}
	if len(ev.Attachments) != 2 {
		t.Fatal("the event's attachments were modified")
	}
}

func TestRouterRetriesKeepOrderAndNeverRepost(t *testing.T) {
	e, _, x, mx := standard(t)
	fails := 2
	x.setHook(func(ctx context.Context, d *Delivery) error {
		if d.Text == "one" && fails > 0 { // only the xmpp queue goroutine runs this
			fails--
			return errors.New("not connected")
		}
		return nil
	})
	records := 0
	e.dir.recordErr = func(origin, dest Ref) error {
		if dest.Network == NetworkMatrix && origin.ID == "p2" {
			records++
			if records == 1 {
				return errors.New("kv store busy")
			}
		}
		return nil
	}
	for i, text := range []string{"one", "two", "three"} {
		e.receive(t, message(mmRoom, fmt.Sprint("p", i+1), text))
	}
	e.outcomes(t, 6)
	if texts := x.texts(); !slices.Equal(texts, []string{"one", "two", "three"}) {
		t.Fatalf("xmpp got %q", texts)
	}
	if texts := mx.texts(); !slices.Equal(texts, []string{"one", "two", "three"}) {
		t.Fatalf("matrix got %q (reposted after a failed record?)", texts)
	}
	if id, ok, _ := e.dir.Counterpart(context.Background(), msgIn(mmRoom, "p2"), matrixRoom); !ok || id != "matrix-2" {
		t.Fatalf("counterpart = %q %v", id, ok)
	}
	if _, _, attempts := x.counts(); attempts != 5 {
		t.Fatalf("xmpp attempts = %d", attempts)
	}
	if s := e.bus.Stats(); s.Retries != 3 || s.Delivered != 6 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestRouterPermanentDeliveryErrorDropsAndContinues(t *testing.T) {
	e, _, x, _ := standard(t)
	x.setHook(func(ctx context.Context, d *Delivery) error {
		switch d.Text {
		case "forbidden":
			return Permanentf("403 forbidden")
		case "huge":
			return Dropf("too_large", "stanza too large")
		}
		return nil
	})
	for i, text := range []string{"forbidden", "huge", "fine"} {
		e.receive(t, message(mmRoom, fmt.Sprint("p", i), text))
	}
	got := e.outcomes(t, 6)[NetworkXMPP]
	if got[0].reason != ReasonPermanent || got[0].err.Error() != "403 forbidden" ||
		got[1].reason != "too_large" || got[2].reason != "" {
		t.Fatalf("xmpp outcomes = %+v", got)
	}
	if texts := x.texts(); !slices.Equal(texts, []string{"fine"}) {
		t.Fatalf("xmpp got %q", texts)
	}
}

func TestRouterHangingDestinationDoesNotDelayOthers(t *testing.T) {
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	mx := newFakeBridge(NetworkMatrix, allCaps())
	e := newRouterEnv(t, BusOptions{AttemptTimeout: -1}, mm, x, mx)
	hanging := make(chan struct{})
	released := make(chan struct{})
	x.setHook(func(ctx context.Context, d *Delivery) error {
		close(hanging)
		<-ctx.Done()
		close(released)
		return ctx.Err()
	})
	for i := range 3 {
		e.receive(t, message(mmRoom, fmt.Sprint("p", i), fmt.Sprint("m", i)))
	}
	recv(t, hanging, "xmpp delivery to hang")
	got := e.outcomes(t, 3)
	if len(got[NetworkMatrix]) != 3 {
		t.Fatalf("outcomes = %+v", got)
	}
	if texts := mx.texts(); !slices.Equal(texts, []string{"m0", "m1", "m2"}) {
		t.Fatalf("matrix got %q", texts)
	}
	select {
	case <-released:
		t.Fatal("xmpp delivery stopped hanging")
	default:
	}
	if qs, _ := e.bus.QueueStats(QueueKey{"chan1", xmppRoom.RoomKey()}); qs.Depth != 3 {
		t.Fatalf("xmpp queue = %+v", qs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := e.bus.Close(ctx); n != 3 {
		t.Fatalf("abandoned %d", n)
	}
	for _, o := range e.outcomes(t, 3)[NetworkXMPP] {
		if o.reason != ReasonShutdown {
			t.Fatalf("outcome = %+v", o)
		}
	}
}

func TestRouterQueueFullStillServesOtherDestinations(t *testing.T) {
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	mx := newFakeBridge(NetworkMatrix, allCaps())
	e := newRouterEnv(t, BusOptions{QueueCapacity: 1}, mm, x, mx)
	entered, gate := make(chan struct{}), make(chan struct{})
	x.setHook(func(ctx context.Context, d *Delivery) error {
		if d.Text == "m0" {
			close(entered)
			<-gate
		}
		return nil
	})
	e.receive(t, message(mmRoom, "p0", "m0"))
	recv(t, entered, "xmpp busy")
	if o := recv(t, e.out, "matrix m0"); o.dest != matrixRoom || o.reason != "" {
		t.Fatalf("outcome = %+v", o)
	}
	err := e.r.Receive(context.Background(), message(mmRoom, "p1", "m1"))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Receive = %v, want ErrQueueFull", err)
	}
	got := e.outcomes(t, 2)
	if o := got[NetworkXMPP]; len(o) != 1 || o[0].reason != ReasonQueueFull || o[0].ev.Origin.ID != "p1" {
		t.Fatalf("xmpp outcome = %+v", o)
	}
	if o := got[NetworkMatrix]; len(o) != 1 || o[0].reason != "" {
		t.Fatalf("matrix outcome = %+v", o)
	}
	close(gate)
	e.outcomes(t, 1)
	if s := e.bus.Stats(); s.Drops[ReasonQueueFull] != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestRouterRejectsInvalidEvents(t *testing.T) {
	e, _, _, _ := standard(t)
	cases := map[string]Event{
		"unknown kind":        {Kind: "poke", Origin: msgIn(mmRoom, "p")},
		"no origin":           {Kind: KindMessage, Text: "x"},
		"no origin room":      {Kind: KindMessage, Origin: Ref{Network: NetworkMattermost, ID: "p"}, Text: "x"},
		"message without id":  {Kind: KindMessage, Origin: mmRoom, Text: "x"},
		"empty message":       {Kind: KindMessage, Origin: msgIn(mmRoom, "p")},
		"edit without target": {Kind: KindEdit, Origin: mmRoom, Text: "x"},
		"delete no target":    {Kind: KindDelete, Origin: mmRoom},
		"reaction no emoji":   {Kind: KindReactionAdd, Origin: mmRoom, Target: "p"},
		"reaction no target":  {Kind: KindReactionRemove, Origin: mmRoom, Emoji: "smile"},
	}
	for name, ev := range cases {
		if err := e.r.Receive(context.Background(), ev); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if s := e.bus.Stats(); len(s.Queues) != 0 {
		t.Fatalf("something was queued: %+v", s)
	}
	err := e.r.Receive(context.Background(), message(Ref{Network: NetworkSlack, Room: "C1"}, "1", "x"))
	if !errors.Is(err, ErrNotLinked) {
		t.Fatalf("unlinked room: %v", err)
	}
}

func TestSplitText(t *testing.T) {
	cases := []struct {
		text string
		max  int
		want []string
	}{
		{"short", 0, []string{"short"}},
		{"short", 5, []string{"short"}},
		{"", 3, []string{""}},
		{"abc def ghi", 7, []string{"abc def", "ghi"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"line one\nline two", 12, []string{"line one", "line two"}},
		{"a b\ncd ef", 8, []string{"a b", "cd ef"}},
		{"abc\n", 3, []string{"abc"}},
		{"héllo wörld", 6, []string{"héllo", "wörld"}},
		{"ééé", 3, []string{"é", "é", "é"}},
		{"日本語", 2, []string{"日", "本", "語"}},
	}
	for _, c := range cases {
		got := SplitText(c.text, c.max)
		if !slices.Equal(got, c.want) {
			t.Errorf("SplitText(%q, %d) = %q, want %q", c.text, c.max, got, c.want)
		}
	}
	long := strings.Repeat("word ", 1000) + strings.Repeat("ü", 500)
	for _, max := range []int{1, 3, 7, 64, 4000} {
		for _, p := range SplitText(long, max) {
			if len(p) > max && len([]rune(p)) != 1 {
				t.Fatalf("part of %d bytes for max %d", len(p), max)
			}
			if p == "" {
				t.Fatal("empty part")
			}
			if strings.ToValidUTF8(p, "?") != p {
				t.Fatalf("part %q is not valid UTF-8", p)
			}
		}
	}
}

// settledCounter counts Settled calls of events.
type settledCounter struct{ n atomic.Int32 }

func (s *settledCounter) event(ev Event) Event {
	ev.Settled = func() { s.n.Add(1) }
	return ev
}

func TestRouterSettlesOnceEveryDestinationIsDone(t *testing.T) {
	e, _, x, mx := standard(t)
	entered, gate := make(chan struct{}), make(chan struct{})
	x.setHook(func(ctx context.Context, d *Delivery) error {
		if d.Text == "slow" {
			close(entered)
			<-gate
		}
		return nil
	})
	mx.setHook(func(ctx context.Context, d *Delivery) error {
		if d.Text == "slow" {
			return Permanentf("matrix refuses it")
		}
		return nil
	})
	var s settledCounter
	e.receive(t, s.event(message(mmRoom, "p1", "slow")))
	recv(t, entered, "xmpp delivery")
	if o := recv(t, e.out, "matrix outcome"); o.reason != ReasonPermanent {
		t.Fatalf("matrix outcome = %+v", o)
	}
	if n := s.n.Load(); n != 0 {
		t.Fatalf("settled %d times while XMPP still had it", n)
	}
	close(gate)
	recv(t, e.out, "xmpp outcome")
	waitFor(t, "settled", func() bool { return s.n.Load() == 1 })

	// A replay the destinations already have settles too: nothing is left
	// to read again.
	var replay settledCounter
	e.receive(t, replay.event(message(mmRoom, "p1", "slow")))
	e.outcomes(t, 2)
	waitFor(t, "replay settled", func() bool { return replay.n.Load() == 1 })
}

func TestRouterNeverSettlesWhatMustBeReadAgain(t *testing.T) {
	mm := newFakeBridge(NetworkMattermost, allCaps())
	x := newFakeBridge(NetworkXMPP, allCaps())
	mx := newFakeBridge(NetworkMatrix, allCaps())
	e := newRouterEnv(t, BusOptions{QueueCapacity: 1}, mm, x, mx)
	entered, gate := make(chan struct{}), make(chan struct{})
	x.setHook(func(ctx context.Context, d *Delivery) error {
		if d.Text == "m0" {
			close(entered)
			select {
			case <-gate:
			case <-ctx.Done():
			}
			return ctx.Err()
		}
		return nil
	})
	var first, refused settledCounter
	e.receive(t, first.event(message(mmRoom, "p0", "m0")))
	recv(t, entered, "xmpp busy")
	recv(t, e.out, "matrix m0")
	if err := e.r.Receive(context.Background(), refused.event(message(mmRoom, "p1", "m1"))); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Receive = %v", err)
	}
	e.outcomes(t, 2) // delivered to Matrix, refused by XMPP's full queue
	// Shutdown cuts m0 off at XMPP: it must be read again, not settled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.bus.Close(ctx)
	if o := recv(t, e.out, "xmpp m0"); o.reason != ReasonShutdown {
		t.Fatalf("outcome = %+v", o)
	}
	if f, r := first.n.Load(), refused.n.Load(); f != 0 || r != 0 {
		t.Fatalf("settled: cut off by shutdown %d, refused by a full queue %d; want 0 and 0", f, r)
	}
	close(gate)
}

func TestRouterSettlesEventsWithNowhereToGo(t *testing.T) {
	e, _, _, _ := standard(t)
	e.dir.link("chan2", Ref{Network: NetworkMattermost, Room: "chan2"}, Ref{Network: NetworkSlack, Room: "C1"})
	var s settledCounter
	e.receive(t, s.event(message(Ref{Network: NetworkMattermost, Room: "chan2"}, "p9", "no slack bridge")))
	if o := recv(t, e.out, "no bridge"); o.reason != ReasonNoBridge {
		t.Fatalf("outcome = %+v", o)
	}
	waitFor(t, "settled", func() bool { return s.n.Load() == 1 })
}

func TestRouterTellsWhatIsBridgedEverywhere(t *testing.T) {
	e, _, x, _ := standard(t)
	ctx := context.Background()
	entered, gate := make(chan struct{}), make(chan struct{})
	x.setHook(func(ctx context.Context, d *Delivery) error {
		close(entered)
		<-gate
		return nil
	})
	e.receive(t, message(mmRoom, "p1", "hello"))
	recv(t, entered, "xmpp delivery")
	recv(t, e.out, "matrix outcome")
	if done, err := e.r.BridgedEverywhere(ctx, msgIn(mmRoom, "p1")); done || err != nil {
		t.Fatalf("bridged everywhere = %v, %v with XMPP still waiting", done, err)
	}
	close(gate)
	recv(t, e.out, "xmpp outcome")
	if done, err := e.r.BridgedEverywhere(ctx, msgIn(mmRoom, "p1")); !done || err != nil {
		t.Fatalf("bridged everywhere = %v, %v", done, err)
	}
}

// Someone on a remote network can act on a copy the bridge has just
// posted there before the bridge recorded it: the copy appears in the room
// (and to its members) while Deliver is still waiting for the room's
// answer. The action waits for the deliveries into its room that are in
// flight, then finds its target; with nothing in flight it is dropped at
// once, so made-up IDs hold nothing up.
func TestRouterRemoteActionWaitsForADeliveryInFlight(t *testing.T) {
	e, _, x, _ := standard(t)
	posted := make(chan struct{})
	release := make(chan struct{})
	x.mu.Lock()
	x.hook = func(_ context.Context, d *Delivery) error {
		if d.Kind == KindMessage {
			close(posted) // the copy is in the room now
			<-release     // the room's answer is slow
		}
		return nil
	}
	x.mu.Unlock()
	e.receive(t, message(mmRoom, "p1", "hello"))
	recv(t, posted, "the copy in the XMPP room")
	// eve reacts to the copy she sees ("xmpp-1", the ID the room gave it)
	// before Deliver returned it.
	eve := Sender{Network: NetworkXMPP, ID: "eve"}
	e.receive(t, Event{Kind: KindReactionAdd, Origin: xmppRoom, Target: "xmpp-1", Emoji: "thumbsup", Sender: eve, Time: time.Now()})
	time.Sleep(50 * time.Millisecond) // let the reaction's jobs meet the missing map
	close(release)
	var reactions []routed
	for len(reactions) < 2 {
		o := recv(t, e.out, "outcomes")
		if o.ev.Kind == KindReactionAdd {
			reactions = append(reactions, o)
		}
	}
	for _, o := range reactions {
		if o.reason != "" {
			t.Fatalf("the reaction to the fresh copy, to %s: dropped (%s: %v)", o.dest.Network, o.reason, o.err)
		}
	}

	// Nothing in flight: a made-up target is dropped at once.
	e.receive(t, Event{Kind: KindReactionAdd, Origin: xmppRoom, Target: "made-up", Emoji: "x", Sender: eve, Time: time.Now()})
	for n, o := range e.outcomes(t, 2) {
		if len(o) != 1 || o[0].reason != ReasonUnknownTarget {
			t.Fatalf("a made-up target, to %s: %+v", n, o)
		}
	}
}

// A delete can overtake its message: the homeserver pushes the message in
// a transaction the dying holder never answered and resends it later,
// while the redaction comes by another way (the soak saw it). The delete
// of a message not bridged yet is remembered, and the message, when it
// comes from the same sender, is bridged nowhere; a delete by anyone else
// keeps nothing away.
func TestDeleteBeforeItsMessageKeepsTheMessageAway(t *testing.T) {
	e, _, _, _ := standard(t)
	carol := Sender{Network: NetworkMatrix, ID: "@carol:hs", Username: "carol"}
	e.receive(t, Event{Kind: KindDelete, Origin: matrixRoom, Target: "$early", Sender: carol, Time: time.Now()})
	for n, o := range e.outcomes(t, 2) {
		if len(o) != 1 || o[0].reason != ReasonUnknownTarget {
			t.Fatalf("the early delete, to %s: %+v", n, o)
		}
	}
	msg := message(matrixRoom, "$early", "said and taken back")
	msg.Sender = carol
	e.receive(t, msg)
	for n, o := range e.outcomes(t, 2) {
		if len(o) != 1 || o[0].reason != ReasonDeletedBeforeDelivery {
			t.Fatalf("the message deleted before it came, to %s: %+v", n, o)
		}
	}

	// mallory's delete of a message she did not write keeps nothing away.
	mallory := Sender{Network: NetworkMatrix, ID: "@mallory:hs", Username: "mallory"}
	e.receive(t, Event{Kind: KindDelete, Origin: matrixRoom, Target: "$carols", Sender: mallory, Time: time.Now()})
	e.outcomes(t, 2)
	msg = message(matrixRoom, "$carols", "still here")
	msg.Sender = carol
	e.receive(t, msg)
	for n, o := range e.outcomes(t, 2) {
		if len(o) != 1 || o[0].reason != "" {
			t.Fatalf("a message another sender deleted first, to %s: %+v", n, o)
		}
	}
}
