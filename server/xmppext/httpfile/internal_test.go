package httpfile

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"report.pdf":                      "report.pdf",
		"  spaced\tname .txt ":            "spaced name .txt",
		"a/b\\c":                          "a_b_c",
		"../../etc/passwd":                ".._.._etc_passwd",
		".":                               "",
		"..":                              "",
		"...":                             "",
		"":                                "",
		" \n ":                            "",
		".hidden":                         ".hidden",
		"nul\x00and\x1bescape\x7f":        "nulandescape",
		"\u202egnp.exe":                   "gnp.exe",
		"zero\u200bwidth":                 "zerowidth",
		"bad\xffutf8":                     "badutf8",
		"日本語のファイル.txt":                    "日本語のファイル.txt",
		"line\u2028separator":             "line separator",
		strings.Repeat("é", 200):          strings.Repeat("é", 127),
		strings.Repeat("x", 300) + ".tar": strings.Repeat("x", 251) + ".tar",
		// An "extension" too long to be one is cut like the rest.
		"x." + strings.Repeat("y", 300): "x." + strings.Repeat("y", 253),
	} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
		if got := sanitizeName(in); len(got) > maxNameLen {
			t.Errorf("sanitizeName(%q) has %d bytes", in, len(got))
		}
	}
}

func TestIsPublic(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1", "127.255.0.1", "::1", "0.0.0.0", "::", "0.1.2.3",
		"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1", "fc00::1", "fd12:3456::1",
		"169.254.169.254", "fe80::1", "fec0::1",
		"100.64.0.1", "100.127.255.255", "192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.1",
		"224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "2001::1", "2001:db8::1", "100::1",
	} {
		if isPublic(netip.MustParseAddr(s)) {
			t.Errorf("isPublic(%s) = true", s)
		}
	}
	for _, s := range []string{
		"1.1.1.1", "8.8.8.8", "93.184.215.14", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.169.0.1",
		"2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8",
	} {
		if !isPublic(netip.MustParseAddr(s)) {
			t.Errorf("isPublic(%s) = false", s)
		}
	}
}

func TestRefuseNonPublic(t *testing.T) {
	if err := refuseNonPublic("tcp4", "127.0.0.1:80", nil); !errors.Is(err, ErrPrivateAddress) {
		t.Errorf("refuseNonPublic(127.0.0.1:80) = %v", err)
	}
	if err := refuseNonPublic("tcp6", "[2606:4700:4700::1111]:443", nil); err != nil {
		t.Errorf("refuseNonPublic(a public address) = %v", err)
	}
	if err := refuseNonPublic("tcp", "nonsense", nil); !errors.Is(err, ErrPrivateAddress) {
		t.Errorf("refuseNonPublic(nonsense) = %v", err)
	}
}

func TestExactReader(t *testing.T) {
	for _, tc := range []struct {
		body string
		n    int64
		want error
	}{
		{"hello", 5, nil},
		{"hell", 5, errBodyShort},
		{"hello!", 5, errBodyLong},
		{"", 0, nil},
		{"x", 0, errBodyLong},
	} {
		for _, r := range []io.Reader{strings.NewReader(tc.body), iotest.OneByteReader(strings.NewReader(tc.body)), iotest.DataErrReader(strings.NewReader(tc.body))} {
			got, err := io.ReadAll(&exactReader{ctx: t.Context(), r: r, n: tc.n})
			if !errors.Is(err, tc.want) {
				t.Errorf("reading %q as %d bytes: %v, want %v", tc.body, tc.n, err, tc.want)
			}
			if err == nil && string(got) != tc.body {
				t.Errorf("reading %q as %d bytes gave %q", tc.body, tc.n, got)
			}
		}
	}
}

func TestReadAtMost(t *testing.T) {
	for _, tc := range []struct {
		body      string
		size, max int64
		want      error
	}{
		{"hello", 5, 5, nil},
		{"hello", -1, 5, nil},
		{"hello", -1, 4, errLonger},
		{"hello", -1, 1<<63 - 1, nil},
		{"", -1, 1, nil},
	} {
		r := &countReader{r: strings.NewReader(tc.body)}
		got, err := readAtMost(r, tc.size, tc.max)
		if !errors.Is(err, tc.want) {
			t.Errorf("readAtMost(%q, %d) = %v, want %v", tc.body, tc.max, err, tc.want)
		}
		if err == nil && string(got) != tc.body {
			t.Errorf("readAtMost(%q, %d) = %q", tc.body, tc.max, got)
		}
		if r.n > tc.max+1 && tc.max < 1<<63-1 {
			t.Errorf("readAtMost(%q, %d) read %d bytes", tc.body, tc.max, r.n)
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestNormalizeType(t *testing.T) {
	for in, want := range map[string]string{
		"":                          defaultType,
		"image/png":                 "image/png",
		"Text/Plain; Charset=UTF-8": "text/plain; charset=UTF-8",
		"not a type":                defaultType,
		"text/plain\r\nX-Evil: 1":   defaultType,
	} {
		if got := normalizeType(in); got != want {
			t.Errorf("normalizeType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUploadZeroService(t *testing.T) {
	_, err := Service{}.Upload(t.Context(), nil, "a.txt", "", 1, strings.NewReader("a"), nil)
	if !errors.Is(err, ErrNoUploadService) {
		t.Fatalf("Upload to the zero Service = %v, want ErrNoUploadService", err)
	}
}

func TestExactReaderContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := &exactReader{ctx: ctx, r: strings.NewReader("hello"), n: 5}
	b := make([]byte, 2)
	if n, err := r.Read(b); n != 2 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	cancel()
	if n, err := r.Read(b); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %d, %v", n, err)
	}
}
