package avatarurl

import (
	"strings"
	"testing"
)

func TestPathsOpenOnlyWhatTheyName(t *testing.T) {
	s := New("instance secret")
	p := s.Path("alice1234567890abcdefghijk", "1700000000000")
	if !strings.HasPrefix(p, Prefix) {
		t.Fatalf("Path = %q", p)
	}
	if u, v, ok := s.Parse(p); !ok || u != "alice1234567890abcdefghijk" || v != "1700000000000" {
		t.Fatalf("Parse(%q) = %q, %q, %v", p, u, v, ok)
	}
	sig := p[strings.LastIndex(p, "/")+1:]
	refused := map[string]string{
		"another user":           Prefix + "bob45678901234567890abcdefg/1700000000000/" + sig,
		"another version":        Prefix + "alice1234567890abcdefghijk/1700000000001/" + sig,
		"another installation":   New("other secret").Path("alice1234567890abcdefghijk", "1700000000000"),
		"a shortened signature":  p[:len(p)-1],
		"a longer path":          p + "/x",
		"no signature":           Prefix + "alice1234567890abcdefghijk/1700000000000",
		"a dot segment":          Prefix + "../1700000000000/" + sig,
		"another prefix":         strings.Replace(p, Prefix, "/avatar/", 1),
		"an empty path":          "",
		"an encoded slash in ID": Prefix + "alice%2Fx/1700000000000/" + sig,
	}
	for what, path := range refused {
		if _, _, ok := s.Parse(path); ok {
			t.Errorf("%s: Parse(%q) accepted", what, path)
		}
	}
	if got := s.Path("../etc", "1"); got != "" {
		t.Errorf("Path of a non-ID = %q, want empty", got)
	}
}
