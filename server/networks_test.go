package main

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
		got, err := parseRoomJID(in)
		if err != nil || got != want {
			t.Errorf("parseRoomJID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "conference.example.com", "room@conference.example.com/nick", "a@b@c", "room@nodot", strings.Repeat("a", 2000) + "@x.com"} {
		if _, err := parseRoomJID(bad); err == nil {
			t.Errorf("parseRoomJID(%q) accepted", bad)
		}
	}
}

func TestParseMatrixRoomAndSlackChannel(t *testing.T) {
	for _, ok := range []string{"!abc:example.com", "#room:example.com:8448"} {
		if _, err := parseMatrixRoom(ok); err != nil {
			t.Errorf("parseMatrixRoom(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"room", "#room", "!:example.com", "@user:example.com"} {
		if _, err := parseMatrixRoom(bad); err == nil {
			t.Errorf("parseMatrixRoom(%q) accepted", bad)
		}
	}
	if got, err := parseSlackChannel("c0123456789"); err != nil || got != "C0123456789" {
		t.Errorf("parseSlackChannel = %q, %v", got, err)
	}
	for _, bad := range []string{"general", "#general", "C01-23456789"} {
		if _, err := parseSlackChannel(bad); err == nil {
			t.Errorf("parseSlackChannel(%q) accepted", bad)
		}
	}
}
