package xmpp

import (
	"strings"
	"testing"
)

func TestParseRoomJID(t *testing.T) {
	good := map[string]string{
		"room@conference.example.com":           "room@conference.example.com",
		"xmpp:Room@Conference.Example.com?join": "room@conference.example.com",
		"dev@muc.localhost":                     "dev@muc.localhost",
	}
	for in, want := range good {
		got, err := ParseRoomJID(in)
		if err != nil || got != want {
			t.Errorf("ParseRoomJID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "conference.example.com", "room@conference.example.com/nick", "a@b@c", "room@nodot", strings.Repeat("a", 2000) + "@x.com"} {
		if _, err := ParseRoomJID(bad); err == nil {
			t.Errorf("ParseRoomJID(%q) accepted", bad)
		}
	}
}
