package matrix

import "testing"

func TestParseRoom(t *testing.T) {
	for _, ok := range []string{"!abc:example.com", "#room:example.com:8448"} {
		if _, err := ParseRoom(ok); err != nil {
			t.Errorf("ParseRoom(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"room", "#room", "!:example.com", "@user:example.com"} {
		if _, err := ParseRoom(bad); err == nil {
			t.Errorf("ParseRoom(%q) accepted", bad)
		}
	}
}
