package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/store"
)

// Automatic portals: a bridge whose bot was invited to a room no channel
// is linked with asks, through bridge.Portals, for a channel to be made
// for it. The plugin makes it here, the same way for every network.
//
// At most one channel per room, ever: a room linked already gets none; a
// claim in the store (insert-if-absent, so of calls racing on any number
// of nodes exactly one wins) lets only one call work on it at a time; and
// once made, a mark that never expires keeps a room whose link an admin
// removed from getting another channel.
//
// Opening a portal is resumable: before each step that makes something
// the call saves how far it got (portalProgress: the channel name it is
// about to create, then the channel it created), and the record goes only
// once the portal is done. A call that failed or stopped half-way (the
// plugin deactivated, the node crashed) leaves it behind, and the next
// call for the room takes up the channel made then instead of making a
// second one beside an orphan. A call that fails releases its claim, so
// the next can go on at once; a crashed call's claim expires
// (portalClaimTTL) and meanwhile others get bridge.ErrPortalInProgress.

const (
	nsPortalClaim    = "portal-claim" // network|room: a call is opening its portal
	nsPortalMade     = "portal-made"  // network|room: its portal was made
	nsPortalProgress = "portal"       // pending records: network|room -> portalProgress
	portalClaimTTL   = 5 * time.Minute
	// portalNameMax leaves room for a "-NN" suffix within the server's
	// 64-character limit on channel names.
	portalNameMax = 56
	// portalNameTries bounds the suffixes tried for a taken name.
	portalNameTries = 50
	// errChannelNameTaken is the app error the server answers CreateChannel
	// with for a name its team has already (archived channels included).
	errChannelNameTaken = "store.sql_channel.save_channel.exists.app_error"
	// portalChannelWait bounds the wait for a replica to show a channel the
	// server says exists (see channelNamed).
	portalChannelWait = 3 * time.Second
)

// portalProgress is how far an attempt at a room's portal got.
type portalProgress struct {
	TeamID string `json:"team_id,omitempty"`
	// Name is the channel name the attempt was about to create, at NameAt
	// (Unix milliseconds).
	Name   string `json:"name,omitempty"`
	NameAt int64  `json:"name_at,omitempty"`
	// ChannelID is the channel it created.
	ChannelID string `json:"channel_id,omitempty"`
}

// portalMaker is the plugin as bridge.Portals.
type portalMaker struct{ p *Plugin }

func (p *Plugin) portals() bridge.Portals { return portalMaker{p} }

func (m portalMaker) OpenPortal(ctx context.Context, req bridge.PortalRequest) (string, bool, error) {
	rt := m.p.active()
	if rt == nil {
		return "", false, errors.New("the plugin is not running")
	}
	if req.Network == "" || req.Room == "" || strings.TrimSpace(req.Team) == "" {
		return "", false, errors.New("a portal needs a network, a room and a team")
	}
	st := rt.store
	key := string(req.Network) + "|" + req.Room
	// The common answers need no claim: linked, or made once and
	// unlinked since, with nothing left half-done.
	if done, id, err := m.settled(st, req, key); err != nil || done {
		return id, false, err
	}
	release, first, err := st.Claim(nsPortalClaim, key, portalClaimTTL)
	if err != nil {
		return "", false, err
	}
	if !first {
		return "", false, bridge.ErrPortalInProgress
	}
	defer func() {
		if err := release(); err != nil {
			m.p.logger().Warn("Could not release a portal's claim; it expires by itself", "network", string(req.Network), "room", req.Room, "error", err.Error())
		}
	}()
	// Again under the claim: the call that held it may have just finished.
	if done, id, err := m.settled(st, req, key); err != nil || done {
		return id, false, err
	}
	return m.open(ctx, rt, req, key)
}

// settled reports whether the room needs no portal work: no attempt left
// anything half-done, and the room is linked (to channel id) or its portal
// was made once.
func (m portalMaker) settled(st *store.Store, req bridge.PortalRequest, key string) (done bool, id string, err error) {
	if _, pending, err := st.GetPending(nsPortalProgress, key); err != nil || pending {
		return false, "", err
	}
	id, err = st.ChannelForRoom(req.Network, req.Room)
	if err == nil {
		return true, id, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, "", err
	}
	made, err := st.Seen(nsPortalMade, key)
	return made, "", err
}

// open makes and links the room's channel, under the claim, from wherever
// an earlier attempt stopped.
func (m portalMaker) open(ctx context.Context, rt *runtime, req bridge.PortalRequest, key string) (string, bool, error) {
	st := rt.store
	var prog portalProgress
	if raw, ok, err := st.GetPending(nsPortalProgress, key); err != nil {
		return "", false, err
	} else if ok {
		if err := json.Unmarshal(raw, &prog); err != nil {
			m.p.logger().Warn("Ignoring an unreadable record of a portal's progress", "network", string(req.Network), "room", req.Room, "error", err.Error())
			prog = portalProgress{}
		}
	}
	linked, err := st.ChannelForRoom(req.Network, req.Room)
	switch {
	case err == nil && linked == prog.ChannelID:
		// The earlier attempt linked it and stopped before the end.
		return m.finish(rt, req, key, linked)
	case err == nil:
		// Someone linked the room meanwhile: what the attempt made is
		// not needed.
		m.discard(ctx, rt, prog)
		return linked, false, st.DeletePending(nsPortalProgress, key)
	case !errors.Is(err, store.ErrNotFound):
		return "", false, err
	}
	if made, err := st.Seen(nsPortalMade, key); err != nil {
		return "", false, err
	} else if made {
		// Made, then unlinked by an admin before the attempt that made it
		// had tidied up: the room gets no other portal.
		return "", false, st.DeletePending(nsPortalProgress, key)
	}

	team, appErr := m.p.API.GetTeamByName(strings.TrimSpace(req.Team))
	if appErr != nil {
		if appErr.StatusCode == http.StatusNotFound {
			return "", false, fmt.Errorf("no team named %q", req.Team)
		}
		return "", false, fmt.Errorf("could not read team %q: %v", req.Team, appErr)
	}
	if prog.TeamID != "" && prog.TeamID != team.Id {
		// The portal team setting changed since the attempt.
		m.discard(ctx, rt, prog)
		prog = portalProgress{}
	}
	prog.TeamID = team.Id
	ch, err := m.earlierChannel(ctx, rt, team, prog)
	if err != nil {
		return "", false, err
	}
	if ch == nil {
		if ch, err = m.createChannel(ctx, rt, key, team, req, &prog); err != nil {
			return "", false, err
		}
	}
	if err := m.step(ctx, portalStepLinking); err != nil {
		return "", false, err
	}
	_, err = st.AddRemote(ch.Id, team.Id, store.RemoteRoom{Network: req.Network, Room: req.Room})
	switch {
	case err == nil || errors.Is(err, store.ErrAlreadyLinked):
		m.p.shareLinked(rt.node, ch.Id, req.Network)
		return m.finish(rt, req, key, ch.Id)
	case errors.Is(err, store.ErrRoomTaken):
		// Linked with another channel between the check and now.
		m.discard(ctx, rt, prog)
		if err := st.DeletePending(nsPortalProgress, key); err != nil {
			return "", false, err
		}
		id, err := st.ChannelForRoom(req.Network, req.Room)
		return id, false, err
	}
	return "", false, fmt.Errorf("created channel ~%s but could not link it: %w", ch.Name, err)
}

// finish records that the room's portal, channel channelID, was made and
// says so in the channel. The note comes last, after the progress record
// went: a crash in between loses the note, it never doubles it.
func (m portalMaker) finish(rt *runtime, req bridge.PortalRequest, key, channelID string) (string, bool, error) {
	st := rt.store
	if _, err := st.MarkSeen(nsPortalMade, key, 0); err != nil {
		return "", false, fmt.Errorf("could not record that the portal was made: %w", err)
	}
	if err := st.DeletePending(nsPortalProgress, key); err != nil {
		return "", false, fmt.Errorf("could not record that the portal was made: %w", err)
	}
	title, trigger := string(req.Network), ""
	for _, n := range m.p.allNetworks() {
		if n.Network() == req.Network {
			title, trigger = n.Command.Title, n.Command.Trigger
		}
	}
	note := fmt.Sprintf("This channel was created for the %s room %q (%s), which the bridge was invited to, and is linked with it: messages now flow both ways.", title, req.Name, req.Room)
	if trigger != "" {
		note += fmt.Sprintf(" A system admin can unlink it with `/%s unmap`.", trigger)
	}
	if _, appErr := m.p.API.CreatePost(&model.Post{UserId: rt.botID, ChannelId: channelID, Message: note}); appErr != nil {
		m.p.logger().Warn("Could not post the note in a new portal", "channel", channelID, "error", appErr.Error())
	}
	m.p.logger().Info("Created a channel for a remote room and linked them", "network", string(req.Network), "room", req.Room, "channel", channelID, "team", req.Team)
	return channelID, true, nil
}

// earlierChannel returns the channel an earlier attempt created, when it
// is there to take up: by ID once the attempt recorded it, else by the
// name it was about to create (it may have stopped right after
// CreateChannel). Only a live channel of the team that the bot created and
// nothing is linked with counts; nil when there is none.
func (m portalMaker) earlierChannel(ctx context.Context, rt *runtime, team *model.Team, prog portalProgress) (*model.Channel, error) {
	var ch *model.Channel
	var appErr *model.AppError
	switch {
	case prog.ChannelID != "":
		ch, appErr = m.p.API.GetChannel(prog.ChannelID)
	case prog.Name != "":
		ch, appErr = m.p.API.GetChannelByName(team.Id, prog.Name, true)
	default:
		return nil, nil
	}
	if appErr != nil {
		if appErr.StatusCode == http.StatusNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("could not read the channel an earlier attempt made: %v", appErr)
	}
	if prog.ChannelID == "" {
		return m.ours(ctx, rt, team.Id, ch, prog.NameAt)
	}
	return m.ours(ctx, rt, team.Id, ch, 0)
}

// portalClockSkew is how much earlier than a portal's record of the name
// it was about to create a channel may say it was created (the server's
// clock and the plugin's may differ a little) and still be that portal's.
const portalClockSkew = time.Minute

// ours returns ch if a portal may take it: live, in the team, made by the
// bot (since, Unix milliseconds, when not 0), linked with nothing. A
// channel of the same name that an older portal made, whose link an admin
// removed since, is not this portal's.
func (m portalMaker) ours(ctx context.Context, rt *runtime, teamID string, ch *model.Channel, since int64) (*model.Channel, error) {
	if ch == nil || ch.DeleteAt != 0 || ch.TeamId != teamID || ch.CreatorId != rt.botID {
		return nil, nil
	}
	if since != 0 && ch.CreateAt < since-portalClockSkew.Milliseconds() {
		return nil, nil
	}
	switch _, err := rt.store.ProvenLink(ctx, ch.Id); {
	case err == nil:
		return nil, nil
	case errors.Is(err, store.ErrNotFound):
		return ch, nil
	default:
		return nil, err
	}
}

// discard archives the channel an attempt made, when it is not needed
// after all (the room was linked with another channel), so no orphan is
// left behind.
func (m portalMaker) discard(ctx context.Context, rt *runtime, prog portalProgress) {
	if prog.ChannelID == "" {
		return
	}
	ch, appErr := m.p.API.GetChannel(prog.ChannelID)
	if appErr != nil {
		return
	}
	if mine, err := m.ours(ctx, rt, ch.TeamId, ch, 0); err != nil || mine == nil {
		return
	}
	if appErr := m.p.API.DeleteChannel(ch.Id); appErr != nil {
		m.p.logger().Warn("Could not archive a portal's channel that is not needed", "channel", ch.Id, "error", appErr.Error())
	}
}

// Steps of opening a portal, for Plugin.portalStep.
const (
	portalStepCreated = "created" // the channel was created, its ID not yet recorded
	portalStepLinking = "linking" // the channel is about to be linked
)

func (m portalMaker) step(ctx context.Context, step string) error {
	if m.p.portalStep == nil {
		return nil
	}
	return m.p.portalStep(ctx, step)
}

// createChannel makes the portal's channel: named after the room, with
// "-2", "-3"... when the name is taken. Before each try it records the
// name, and after it the channel, in prog: a call that stops in between
// leaves the next one enough to find the channel.
func (m portalMaker) createChannel(ctx context.Context, rt *runtime, key string, team *model.Team, req bridge.PortalRequest, prog *portalProgress) (*model.Channel, error) {
	typ := model.ChannelTypeOpen
	if req.Private {
		typ = model.ChannelTypePrivate
	}
	display := strings.TrimSpace(req.Name)
	if display == "" {
		display = req.Room
	}
	if utf8.RuneCountInString(display) > model.ChannelDisplayNameMaxRunes {
		display = string([]rune(display)[:model.ChannelDisplayNameMaxRunes])
	}
	// The name the earlier attempt was about to create, and since when.
	intended, since := prog.Name, prog.NameAt
	save := func() error {
		raw, err := json.Marshal(prog)
		if err != nil {
			return err
		}
		return rt.store.SavePending(nsPortalProgress, key, raw)
	}
	base := portalName(req)
	for i := 1; i <= portalNameTries; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		prog.Name, prog.NameAt, prog.ChannelID = name, model.GetMillis(), ""
		if err := save(); err != nil {
			return nil, fmt.Errorf("could not record a portal's progress: %w", err)
		}
		ch, appErr := m.p.API.CreateChannel(&model.Channel{
			TeamId: team.Id, Type: typ, Name: name, DisplayName: display, CreatorId: rt.botID,
		})
		if appErr != nil && appErr.Id == errChannelNameTaken {
			if name != intended {
				continue
			}
			// Taken, perhaps by the earlier attempt, which stopped before
			// recording what it created: then the channel is this
			// portal's.
			ch, err := m.channelNamed(ctx, rt, team, name, since)
			if err != nil {
				return nil, err
			}
			if ch == nil {
				continue
			}
			prog.ChannelID = ch.Id
			return ch, save()
		}
		if appErr != nil {
			return nil, fmt.Errorf("could not create channel %s in team %s: %v", name, team.Name, appErr)
		}
		if err := m.step(ctx, portalStepCreated); err != nil {
			return nil, err
		}
		prog.ChannelID = ch.Id
		if err := save(); err != nil {
			return nil, fmt.Errorf("created channel ~%s but could not record it: %w", ch.Name, err)
		}
		return ch, nil
	}
	return nil, fmt.Errorf("could not create a channel in team %s: %s and %d more names are taken", team.Name, base, portalNameTries-1)
}

// channelNamed returns the team's channel of that name if a portal may
// take it up (see ours): one created since (Unix milliseconds). The server
// just said the name is taken, but a replica may not show the channel
// yet: a while is given for that.
func (m portalMaker) channelNamed(ctx context.Context, rt *runtime, team *model.Team, name string, since int64) (*model.Channel, error) {
	deadline := time.Now().Add(portalChannelWait)
	for delay := 25 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		ch, appErr := m.p.API.GetChannelByName(team.Id, name, true)
		if appErr == nil {
			return m.ours(ctx, rt, team.Id, ch, since)
		}
		if appErr.StatusCode != http.StatusNotFound {
			return nil, fmt.Errorf("could not read channel %s: %v", name, appErr)
		}
		if !time.Now().Add(delay).Before(deadline) {
			return nil, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// portalName is a valid channel name (lower-case letters, digits, '-' and
// '_', see model.IsValidChannelIdentifier) made from the room's name, or
// from the network and room ID when nothing of the name is left.
func portalName(req bridge.PortalRequest) string {
	clean := func(s string) string {
		var b strings.Builder
		dash := false
		for _, r := range strings.ToLower(s) {
			switch {
			case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_':
				b.WriteRune(r)
				dash = false
			case !dash:
				b.WriteByte('-')
				dash = true
			}
		}
		out := b.String()
		if len(out) > portalNameMax {
			out = out[:portalNameMax]
		}
		return strings.Trim(out, "-_")
	}
	if name := clean(req.Name); name != "" && model.IsValidChannelIdentifier(name) {
		return name
	}
	return clean(string(req.Network) + "-" + req.Room)
}
