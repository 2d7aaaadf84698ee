package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Directory is what the router needs from the link and message-map store.
type Directory interface {
	// LinkedRooms returns every room linked with room (the Mattermost channel
	// counts as a room with Network mattermost and Room = channel ID),
	// excluding room itself, and the link ID (the channel ID). Returns
	// ErrNotLinked if the room is not linked.
	LinkedRooms(ctx context.Context, room Ref) (linkID string, rooms []Ref, err error)
	// Counterpart finds the native ID in destRoom of the message msg (msg is a
	// Ref with ID). ok=false if unknown. Either side may be the original: the
	// counterpart of a copy in the origin's room is the origin.
	Counterpart(ctx context.Context, msg Ref, destRoom Ref) (id string, ok bool, err error)
	// CopyOf is what delivering msg to destRoom needs, from one lookup:
	// echo when msg is itself a copy of another message; the ID of the
	// copy destRoom has (ok=false if none) as Counterpart gives it.
	CopyOf(ctx context.Context, msg Ref, destRoom Ref) (id string, ok, echo bool, err error)
	// RecordCounterpart stores that dest (with ID) is the copy of origin (with
	// ID); both map to one bridged message, written by author (the origin
	// sender's Identity).
	RecordCounterpart(ctx context.Context, origin Ref, dest Ref, author string) error
	// AuthorOf returns the origin of the bridged message msg belongs to and
	// the Identity of who wrote it ("" when it was not recorded); ok=false if
	// msg was never bridged.
	AuthorOf(ctx context.Context, msg Ref) (origin Ref, author string, ok bool, err error)
	// OriginOf returns the origin of the bridged message msg belongs to
	// (msg itself when msg is an origin); ok=false if msg was never bridged.
	OriginOf(ctx context.Context, msg Ref) (origin Ref, ok bool, err error)
}

// BridgeSource looks up the bridge that delivers to a network.
type BridgeSource interface {
	Bridge(n Network) (Bridge, bool)
}

// BridgeSourceFunc adapts a function to BridgeSource.
type BridgeSourceFunc func(n Network) (Bridge, bool)

func (f BridgeSourceFunc) Bridge(n Network) (Bridge, bool) { return f(n) }

// RouterOptions configures a Router.
type RouterOptions struct {
	// OnDelivered is called after an event reached dest (for a message, after
	// its counterpart was recorded). nativeID is what the destination bridge
	// returned; for a split message, the ID of the first part.
	OnDelivered func(linkID string, dest Ref, ev Event, nativeID string)
	// OnDropped is called when an event will not reach dest, with a reason
	// code (see the Reason constants) and the error when there is one. dest is
	// the zero Ref for an event dropped before routing (an echo).
	OnDropped func(linkID string, dest Ref, ev Event, reason string, err error)
	// Home is the network the plugin runs in (Mattermost). Its moderators
	// may remove any bridged message, wherever it was written; moderators
	// elsewhere remove only messages written in their own room, so a
	// remote room's moderator never deletes a Home person's post.
	Home Network
	// Counters count the outcomes; nil means counters of the router's own.
	Counters *Counters
	Logger   Logger
}

// Router is the core's Sink: it validates events from bridges and queues one
// delivery per linked room on the bus. Deliveries translate message IDs
// through the Directory, skip messages the destination already has, adapt
// content to the destination's Capabilities and record the new copies.
type Router struct {
	dir     Directory
	bridges BridgeSource
	bus     *Bus
	opts    RouterOptions
	log     Logger
	flight  inFlight
	count   *Counters
	early   earlyDeletes
}

var _ Sink = (*Router)(nil)

// NewRouter returns a Router queueing on bus.
func NewRouter(dir Directory, bridges BridgeSource, bus *Bus, opts RouterOptions) *Router {
	count := opts.Counters
	if count == nil {
		count = NewCounters()
	}
	return &Router{dir: dir, bridges: bridges, bus: bus, opts: opts, log: orNop(opts.Logger), count: count}
}

// Counters are what the router counts.
func (r *Router) Counters() *Counters { return r.count }

// Validate checks that ev is well formed; the error wraps ErrInvalidEvent.
func (ev Event) Validate() error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	switch ev.Kind {
	case KindMessage, KindEdit, KindDelete, KindReactionAdd, KindReactionRemove:
	default:
		return invalid("unknown kind %q", ev.Kind)
	}
	if ev.Origin.Network == "" || ev.Origin.Room == "" {
		return invalid("%s without origin room", ev.Kind)
	}
	switch ev.Kind {
	case KindMessage:
		if ev.Origin.ID == "" {
			return invalid("message without origin ID")
		}
		if ev.Text == "" && len(ev.Attachments) == 0 {
			return invalid("message without text or attachments")
		}
	case KindReactionAdd, KindReactionRemove:
		if ev.Emoji == "" {
			return invalid("%s without emoji", ev.Kind)
		}
	}
	if ev.Kind != KindMessage && ev.Target == "" {
		return invalid("%s without target", ev.Kind)
	}
	return nil
}

// Receive routes ev to every room linked with its origin. It returns once a
// delivery is queued for every destination; the error joins the enqueue
// failures (e.g. ErrQueueFull), and the other destinations still get theirs.
// An event from an unlinked room returns an error wrapping ErrNotLinked; an
// invalid one, ErrInvalidEvent; after the bus closed, ErrBusClosed. Echoes of copies the bridge posted itself are
// dropped silently.
func (r *Router) Receive(ctx context.Context, ev Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if r.bus.Closed() {
		return ErrBusClosed
	}
	room := Ref{Network: ev.Origin.Network, Room: ev.Origin.Room}
	linkID, rooms, err := r.dir.LinkedRooms(ctx, room)
	if err != nil {
		return fmt.Errorf("bridge: routing %s from %s: %w", ev.Kind, room.RoomKey(), err)
	}
	label := string(ev.Kind)
	if ev.Kind == KindMessage {
		echo, err := r.isEcho(ctx, ev.Origin)
		if err != nil {
			return fmt.Errorf("bridge: routing message %s: %w", ev.Origin.Key(), err)
		}
		if echo {
			r.bus.RecordDrop(QueueKey{Link: linkID}, label, ReasonEcho, nil)
			r.dropped(linkID, Ref{}, ev, ReasonEcho, nil)
			if ev.Settled != nil {
				ev.Settled()
			}
			return nil
		}
	}

	// Receive holds the settlement open until every delivery is queued, so
	// it cannot settle between two destinations.
	settle := NewSettleGroup(ev.Settled)
	defer settle.Seal()
	var errs []error
	for _, dest := range rooms {
		dest.ID = ""
		if dest.RoomKey() == room.RoomKey() {
			continue
		}
		key := QueueKey{Link: linkID, Dest: dest.RoomKey()}
		b, ok := r.bridges.Bridge(dest.Network)
		if !ok {
			err := fmt.Errorf("no running %s bridge", dest.Network)
			r.bus.RecordDrop(key, label, ReasonNoBridge, err)
			r.dropped(linkID, dest, ev, ReasonNoBridge, err)
			continue
		}
		if !b.Capabilities().Supports(ev.Kind) {
			err := fmt.Errorf("%s does not support %s", dest.Network, ev.Kind)
			r.bus.RecordDrop(key, label, ReasonUnsupported, err)
			r.dropped(linkID, dest, ev, ReasonUnsupported, err)
			continue
		}
		j := &job{r: r, linkID: linkID, dest: dest, ev: ev, settle: settle.member()}
		if err := r.bus.Enqueue(key, Item{Label: label, Task: j.run, Done: j.done}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mustReadAgain reports whether a drop reason leaves the event for its
// source to read again rather than settled.
func mustReadAgain(reason string) bool {
	return reason == ReasonQueueFull || reason == ReasonShutdown || reason == ReasonClosed
}

var _ DeliveryChecker = (*Router)(nil)

// BridgedEverywhere reports whether msg has a counterpart in every room its
// room is linked with.
func (r *Router) BridgedEverywhere(ctx context.Context, msg Ref) (bool, error) {
	_, rooms, err := r.dir.LinkedRooms(ctx, Ref{Network: msg.Network, Room: msg.Room})
	if err != nil {
		return false, err
	}
	for _, dest := range rooms {
		dest.ID = ""
		if dest.RoomKey() == msg.RoomKey() {
			continue
		}
		if _, ok, err := r.dir.Counterpart(ctx, msg, dest); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// isEcho reports whether msg is a copy the bridge posted of another message.
func (r *Router) isEcho(ctx context.Context, msg Ref) (bool, error) {
	origin, ok, err := r.dir.OriginOf(ctx, msg)
	if err != nil || !ok {
		return false, err
	}
	return origin.Key() != msg.Key(), nil
}

func (r *Router) dropped(linkID string, dest Ref, ev Event, reason string, err error) {
	r.count.dropped(ev.Origin.Network, dest.Network, reason)
	if r.opts.OnDropped != nil {
		r.opts.OnDropped(linkID, dest, ev, reason, err)
	}
}

// job is one event on its way to one destination room. Its state survives
// between attempts so a retry never re-posts what already went through.
type job struct {
	r      *Router
	linkID string
	dest   Ref
	ev     Event

	prepared bool
	parentID string
	chunks   []string
	atts     []Attachment
	sent     int    // message parts delivered
	nativeID string // first part's ID, or the ID Deliver returned
	recorded bool
	settle   func(ok bool)

	// missedAt is when an action first found no map for its target, and
	// waitUpTo the last delivery begun then (see inFlight).
	missedAt time.Time
	waitUpTo uint64
}

func (j *job) done(reason string, err error) {
	if reason == "" {
		j.r.count.delivered(j.linkID, j.ev.Origin, j.dest, j.ev.Time, time.Now())
		if j.r.opts.OnDelivered != nil {
			j.r.opts.OnDelivered(j.linkID, j.dest, j.ev, j.nativeID)
		}
	} else {
		j.r.dropped(j.linkID, j.dest, j.ev, reason, err)
	}
	j.settle(!mustReadAgain(reason))
}

func (j *job) run(ctx context.Context) error {
	b, ok := j.r.bridges.Bridge(j.dest.Network)
	if !ok {
		return Dropf(ReasonNoBridge, "no running %s bridge", j.dest.Network)
	}
	caps := b.Capabilities()
	if !caps.Supports(j.ev.Kind) {
		return Dropf(ReasonUnsupported, "%s does not support %s", j.dest.Network, j.ev.Kind)
	}
	if j.ev.Kind == KindMessage {
		return j.message(ctx, b, caps)
	}
	return j.action(ctx, b, caps)
}

// ref returns the origin-network ref of a message ID of the event's room.
func (j *job) ref(id string) Ref {
	return Ref{Network: j.ev.Origin.Network, Room: j.ev.Origin.Room, ID: id}
}

// parent translates ev.Parent; unknown parents become "" (a plain message).
func (j *job) parent(ctx context.Context) (string, error) {
	if j.ev.Parent == "" {
		return "", nil
	}
	id, ok, err := j.r.dir.Counterpart(ctx, j.ref(j.ev.Parent), j.dest)
	if err != nil {
		return "", fmt.Errorf("translating parent %s: %w", j.ev.Parent, err)
	}
	if !ok {
		return "", nil
	}
	return id, nil
}

func (j *job) message(ctx context.Context, b Bridge, caps Capabilities) error {
	if !j.prepared {
		// Checked when the job runs, not when it was queued: by then the copy
		// an echo came from is recorded, and a replay finds the first delivery.
		id, ok, echo, err := j.r.dir.CopyOf(ctx, j.ev.Origin, j.dest)
		if err != nil {
			return fmt.Errorf("looking up counterpart: %w", err)
		}
		if echo {
			return Dropf(ReasonEcho, "%s is a bridged copy", j.ev.Origin.Key())
		}
		if ok {
			return Dropf(ReasonDuplicate, "%s already bridged to %s as %s", j.ev.Origin.Key(), j.dest.RoomKey(), id)
		}
		if j.r.early.deleted(ctx, j.r, j.ev.Origin, j.ev.Sender.Identity()) {
			return Dropf(ReasonDeletedBeforeDelivery, "%s deleted %s before it came", j.ev.Sender.Identity(), j.ev.Origin.Key())
		}
		if j.parentID, err = j.parent(ctx); err != nil {
			return err
		}
		text, atts := adaptContent(j.ev.Text, j.ev.Attachments, caps)
		j.chunks, j.atts = SplitText(text, caps.MaxTextLength), atts
		j.prepared = true
	}

	if !j.recorded {
		defer j.r.flight.begin(j.dest.RoomKey())()
	}
	for j.sent < len(j.chunks) {
		if j.sent == 1 && !j.recorded {
			if err := j.record(ctx); err != nil {
				return err
			}
		}
		d := &Delivery{Event: j.ev, Room: j.dest.Room, ParentID: j.parentID, Part: j.sent}
		d.Text, d.Attachments = j.chunks[j.sent], nil
		if j.sent == 0 {
			d.Attachments = j.atts
		}
		id, err := b.Deliver(ctx, d)
		if err != nil {
			return err
		}
		if j.sent == 0 {
			j.nativeID = id
		}
		j.sent++
	}
	if !j.recorded {
		return j.record(ctx)
	}
	return nil
}

// record stores the first part's ID as the counterpart of the origin message.
func (j *job) record(ctx context.Context) error {
	if j.nativeID == "" {
		j.r.log.Warn("bridge: destination returned no message ID; edits and replies to it will not bridge",
			"origin", j.ev.Origin.Key(), "dest", j.dest.RoomKey())
		j.recorded = true
		return nil
	}
	dest := j.dest
	dest.ID = j.nativeID
	if err := j.r.dir.RecordCounterpart(ctx, j.ev.Origin, dest, j.ev.Sender.Identity()); err != nil {
		return fmt.Errorf("recording counterpart: %w", err)
	}
	j.recorded = true
	return nil
}

func (j *job) action(ctx context.Context, b Bridge, caps Capabilities) error {
	moderate, err := j.authorize(ctx)
	if err != nil {
		return err
	}
	target, ok, err := j.r.dir.Counterpart(ctx, j.ref(j.ev.Target), j.dest)
	if err != nil {
		return fmt.Errorf("translating target %s: %w", j.ev.Target, err)
	}
	if !ok {
		return Dropf(ReasonUnknownTarget, "%s never reached %s", j.ref(j.ev.Target).Key(), j.dest.RoomKey())
	}
	parentID, err := j.parent(ctx)
	if err != nil {
		return err
	}
	d := &Delivery{Event: j.ev, Room: j.dest.Room, TargetID: target, ParentID: parentID, Moderate: moderate}
	if j.ev.Kind == KindEdit {
		// Rebuild the text the way the original was built, so the copy keeps
		// its file notes; a long edit replaces the first part only.
		text, atts := adaptContent(j.ev.Text, j.ev.Attachments, caps)
		d.Text, d.Attachments = SplitText(text, caps.MaxTextLength)[0], atts
	}
	id, err := b.Deliver(ctx, d)
	if err != nil {
		return err
	}
	j.nativeID = id
	return nil
}

// authorize lets an edit or delete through only from the target's author,
// or a delete from a moderator the origin network vouched for (see
// RouterOptions.Home for whose moderation reaches where). moderate is true
// when the target in the destination room is not the bridge's copy but the
// original, so removing it needs the room's moderation rights. Reactions
// are keyed by their sender and need no author check.
func (j *job) authorize(ctx context.Context) (moderate bool, err error) {
	origin, author, ok, err := j.r.dir.AuthorOf(ctx, j.ref(j.ev.Target))
	if err != nil {
		return false, fmt.Errorf("looking up the author of %s: %w", j.ev.Target, err)
	}
	if !ok {
		return false, j.unknownTarget()
	}
	if j.ev.Kind != KindEdit && j.ev.Kind != KindDelete {
		return false, nil
	}
	if author != "" && author == j.ev.Sender.Identity() {
		return false, nil
	}
	if j.ev.Kind == KindDelete && j.ev.Moderated &&
		(j.ev.Origin.Network == j.r.opts.Home || origin.RoomKey() == j.ev.Origin.RoomKey()) {
		return origin.RoomKey() == j.dest.RoomKey(), nil
	}
	return false, Dropf(ReasonNotAuthor, "%s by %s of %s, written by %s", j.ev.Kind, j.ev.Sender.Identity(), origin.Key(), orUnknown(author))
}

// freshCopyWait is how long an action on a copy the bridge has just posted
// waits for that copy's map: the copy appears a moment before its delivery
// records it, in another queue.
const freshCopyWait = 10 * time.Second

// unknownTarget drops an action whose target no map knows, unless it is a
// Home person's action on a copy the bridge posted (AwaitTarget), young
// enough that the copy may still be being recorded, or deliveries into the
// action's room were under way when it missed (see inFlight): those are
// retried.
// Remote senders' actions are dropped at once, so nobody outside can hold
// a queue up with made-up IDs; and a known message that never reached a
// destination is dropped at once too.
func (j *job) unknownTarget() error {
	if j.ev.AwaitTarget && j.ev.Origin.Network == j.r.opts.Home && j.r.opts.Home != "" && time.Since(j.ev.Time) < freshCopyWait {
		return fmt.Errorf("%s is not bridged yet", j.ref(j.ev.Target).Key())
	}
	if j.missedAt.IsZero() {
		j.missedAt, j.waitUpTo = time.Now(), j.r.flight.latest()
	}
	if j.r.flight.busy(j.ev.Origin.RoomKey(), j.waitUpTo) && time.Since(j.missedAt) < freshCopyWait {
		return fmt.Errorf("%s may be a copy still being delivered", j.ref(j.ev.Target).Key())
	}
	if j.ev.Kind == KindDelete {
		j.r.early.record(j.r, j.ref(j.ev.Target), j.ev.Sender.Identity())
	}
	return Dropf(ReasonUnknownTarget, "%s never reached %s", j.ref(j.ev.Target).Key(), j.dest.RoomKey())
}

func orUnknown(s string) string {
	if s == "" {
		return "an unrecorded author"
	}
	return s
}

// adaptContent replaces the attachments the destination cannot take with a
// note line at the end of the text.
func adaptContent(text string, atts []Attachment, caps Capabilities) (string, []Attachment) {
	if len(atts) == 0 {
		return text, nil
	}
	var kept []Attachment
	var notes []string
	for _, a := range atts {
		switch {
		case !caps.Files:
			notes = append(notes, fmt.Sprintf("(file %s not bridged: files are not supported here)", a.Name))
		case caps.MaxFileSize > 0 && a.Size > caps.MaxFileSize:
			notes = append(notes, fmt.Sprintf("(file %s too large to bridge: %s)", a.Name, formatMB(a.Size)))
		default:
			kept = append(kept, a)
		}
	}
	if len(notes) > 0 {
		if text != "" {
			text += "\n"
		}
		text += strings.Join(notes, "\n")
	}
	return text, kept
}

func formatMB(n int64) string {
	return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + " MB"
}

// SplitText cuts text into parts of at most limit bytes, preferring to cut at
// a line break, then at a space, and never inside a UTF-8 character. The
// line break or space cut at is dropped. limit <= 0 means no limit. It always
// returns at least one part.
func SplitText(text string, limit int) []string {
	if limit <= 0 || len(text) <= limit {
		return []string{text}
	}
	var parts []string
	for len(text) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		if cut == 0 {
			// limit is smaller than this character: send it whole.
			_, cut = utf8.DecodeRuneInString(text)
			parts = append(parts, text[:cut])
			text = text[cut:]
			continue
		}
		skip := 0
		if i := strings.LastIndexByte(text[:cut+1], '\n'); i > 0 {
			cut, skip = i, 1
		} else if i := strings.LastIndexByte(text[:cut+1], ' '); i > 0 {
			cut, skip = i, 1
		}
		parts = append(parts, text[:cut])
		text = text[cut+skip:]
	}
	if text != "" {
		parts = append(parts, text)
	}
	return parts
}
