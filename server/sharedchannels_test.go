package main

import (
	"errors"
	"net/http"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
)

func TestShareResultTellsWhenSharedChannelsAreOff(t *testing.T) {
	n := &node{}
	disabled := model.NewAppError("InviteRemoteToChannel", errServiceDisabled, nil, "", http.StatusBadRequest)
	for _, err := range []error{disabled, errors.New(disabled.Error())} {
		n.noteShareResult(nil)
		n.noteShareResult(err)
		if n.sharing.reason() != sharedChannelsOff {
			t.Fatalf("after %v: reason %q", err, n.sharing.reason())
		}
	}
	n.noteShareResult(errors.New("some other failure"))
	if n.sharing.reason() != sharedChannelsOff {
		t.Fatal("another failure changed what is known")
	}
	n.noteShareResult(nil)
	if n.sharing.reason() != "" {
		t.Fatal("a share that worked left shared channels unavailable")
	}
	on := model.ConnectedWorkspacesSettings{EnableSharedChannels: model.NewPointer(true), EnableRemoteClusterService: model.NewPointer(true)}
	if !sharedChannelsEnabled(on) {
		t.Fatal("both settings on read as off")
	}
	on.EnableRemoteClusterService = model.NewPointer(false)
	if sharedChannelsEnabled(on) || sharedChannelsEnabled(model.ConnectedWorkspacesSettings{}) {
		t.Fatal("shared channels read as on without the remote-cluster service")
	}
}
