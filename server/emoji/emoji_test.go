package emoji

import "testing"

func TestRoundTrip(t *testing.T) {
	for name, want := range map[string]string{"thumbsup": "👍", "heart": "❤\ufe0f", "smile": "😄"} {
		u, ok := Unicode(name)
		if !ok || u != want {
			t.Errorf("Unicode(%q) = %q, %v; want %q", name, u, ok, want)
		}
		back, ok := Name(u)
		if !ok {
			t.Errorf("Name(%q) not found", u)
			continue
		}
		if u2, _ := Unicode(back); u2 != u {
			t.Errorf("Name(%q) = %q, which is %q", u, back, u2)
		}
	}
}

func TestToName(t *testing.T) {
	cases := map[string]string{"thumbsup": "thumbsup", ":tada:": "tada", "❤️": "heart", "🎉": "tada"}
	for in, want := range cases {
		if got, ok := ToName(in); !ok || got != want {
			t.Errorf("ToName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := ToName("not an emoji!"); ok {
		t.Error("ToName accepted junk")
	}
}
