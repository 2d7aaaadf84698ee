package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func TestBadInputWritesNothing(t *testing.T) {
	s, kv := newTestStore(t)
	ctx := context.Background()
	ch, team, user := model.NewId(), model.NewId(), model.NewId()
	// Some state to compare against.
	_, err := s.AddRemote(ch, team, remote(bridge.NetworkXMPP, "a@conf"))
	must(t, err)
	must(t, s.RecordCounterpart(ctx, msgOf(bridge.NetworkMattermost, ch, model.NewId()), msgOf(bridge.NetworkXMPP, "a@conf", "1"), ""))
	before := dump(t, kv)

	good := RemoteRoom{Network: bridge.NetworkMatrix, Room: "!r:hs"}
	huge := strings.Repeat("x", maxField+1)
	calls := map[string]func() error{
		"AddRemote bad channel":   func() error { _, err := s.AddRemote("nope", team, good); return err },
		"AddRemote empty channel": func() error { _, err := s.AddRemote("", team, good); return err },
		"AddRemote bad team":      func() error { _, err := s.AddRemote(ch, "", good); return err },
		"AddRemote unknown net":   func() error { _, err := s.AddRemote(ch, team, remote("IRC!", "#go")); return err },
		"AddRemote mattermost net": func() error {
			_, err := s.AddRemote(ch, team, remote(bridge.NetworkMattermost, model.NewId()))
			return err
		},
		"AddRemote empty room": func() error { _, err := s.AddRemote(ch, team, remote(bridge.NetworkMatrix, "")); return err },
		"AddRemote huge room":  func() error { _, err := s.AddRemote(ch, team, remote(bridge.NetworkMatrix, huge)); return err },
		"AddRemote bad utf8":   func() error { _, err := s.AddRemote(ch, team, remote(bridge.NetworkMatrix, "\xc3")); return err },
		"AddRemote bad linked-by": func() error {
			_, err := s.AddRemote(ch, team, RemoteRoom{Network: bridge.NetworkMatrix, Room: "!r:hs", LinkedBy: "admin"})
			return err
		},
		"RemoveRemote bad channel": func() error { _, err := s.RemoveRemote("x", bridge.NetworkXMPP, "a@conf"); return err },
		"RemoveRemote bad net":     func() error { _, err := s.RemoveRemote(ch, "IRC!", "a@conf"); return err },
		"RemoveRemote empty room":  func() error { _, err := s.RemoveRemote(ch, bridge.NetworkXMPP, ""); return err },
		"GetLink bad channel":      func() error { _, err := s.GetLink(""); return err },
		"ChannelForRoom bad net":   func() error { _, err := s.ChannelForRoom("", "a@conf"); return err },
		"SaveRemoteUser bad user": func() error {
			return s.SaveRemoteUser(RemoteUser{Network: bridge.NetworkXMPP, RemoteID: "b@x", UserID: "bob"})
		},
		"SaveRemoteUser empty remote": func() error {
			return s.SaveRemoteUser(RemoteUser{Network: bridge.NetworkXMPP, UserID: user})
		},
		"SaveRemoteUser bad name": func() error {
			return s.SaveRemoteUser(RemoteUser{Network: bridge.NetworkXMPP, RemoteID: "b@x", UserID: user, Username: "\xff"})
		},
		"ClaimRemoteUser bad user": func() error { _, _, err := s.ClaimRemoteUser(bridge.NetworkXMPP, "b@x", ""); return err },
		"ClaimRemoteUser bad net":  func() error { _, _, err := s.ClaimRemoteUser("", "b@x", user); return err },
		"DeleteRemoteUser bad net": func() error { return s.DeleteRemoteUser("No Pe", "b@x") },
		"SaveGhost bad user":       func() error { return s.SaveGhost(Ghost{Network: bridge.NetworkXMPP, UserID: "u"}) },
		"SaveGhost mattermost":     func() error { return s.SaveGhost(Ghost{Network: bridge.NetworkMattermost, UserID: user}) },
		"SaveGhost bad data": func() error {
			return s.SaveGhost(Ghost{Network: bridge.NetworkXMPP, UserID: user, Data: map[string]string{"": "x"}})
		},
		"UpdateGhost bad user":     func() error { _, err := s.UpdateGhost(bridge.NetworkXMPP, "", nil); return err },
		"DeleteGhost bad user":     func() error { return s.DeleteGhost(bridge.NetworkXMPP, "u") },
		"SetCursor empty link":     func() error { return s.SetCursor("", "n", "v") },
		"SetCursor empty name":     func() error { return s.SetCursor(ch, "", "v") },
		"SetCursor huge value":     func() error { return s.SetCursor(ch, "n", huge) },
		"AdvanceCursorInt empty":   func() error { return s.AdvanceCursorInt(ch, "", 1) },
		"MarkSeen empty namespace": func() error { _, err := s.MarkSeen("", "1", time.Minute); return err },
		"MarkSeen empty id":        func() error { _, err := s.MarkSeen("ns", "", time.Minute); return err },
		"MarkSeen negative ttl":    func() error { _, err := s.MarkSeen("ns", "1", -time.Second); return err },
		"ForgetMessage no id":      func() error { return s.ForgetMessage(roomRef(bridge.NetworkXMPP, "a@conf")) },
		"RecordCounterpart no id": func() error {
			return s.RecordCounterpart(ctx, msgOf(bridge.NetworkXMPP, "a@conf", "1"), roomRef(bridge.NetworkMatrix, "!r:hs"), "")
		},
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: error %v, want ErrInvalidInput", name, err)
		}
		if after := dump(t, kv); !equalMaps(before, after) {
			t.Fatalf("%s wrote to the store: %s", name, diffKeys(before, after))
		}
	}
}
