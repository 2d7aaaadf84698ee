package slack

import "testing"

func TestParseChannel(t *testing.T) {
	if got, err := ParseChannel("c0123456789"); err != nil || got != "C0123456789" {
		t.Errorf("ParseChannel = %q, %v", got, err)
	}
	for _, bad := range []string{"general", "#general", "C01-23456789"} {
		if _, err := ParseChannel(bad); err == nil {
			t.Errorf("ParseChannel(%q) accepted", bad)
		}
	}
}
