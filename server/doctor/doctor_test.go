package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRunReportsEachCheckAndSkipsWhatDependsOnAFailure(t *testing.T) {
	steps := []Step{
		{Name: "DNS", Run: func(context.Context) Result { return Pass("example.org resolves to %s", "127.0.0.1") }},
		{Name: "Authentication", Needs: []string{"DNS"}, Run: func(context.Context) Result {
			return Fail("SASL SCRAM-SHA-1 refused: not-authorized", "Set the bot password to the account's password.")
		}},
		{Name: "Room dev", Needs: []string{"Authentication"}, Run: func(context.Context) Result {
			t.Error("a check whose dependency failed was run")
			return Pass("")
		}},
		{Name: "Room archive", Needs: []string{"Room dev"}, Run: func(context.Context) Result {
			t.Error("a check whose dependency was skipped was run")
			return Pass("")
		}},
		{Name: "Upload", Needs: []string{"DNS"}, Run: func(context.Context) Result { return Pass("found") }},
	}
	r := Run(context.Background(), "xmpp", Limits{}, steps)
	if r.Passed || r.Network != "xmpp" || len(r.Checks) != 5 || r.Started.IsZero() {
		t.Fatalf("report: %+v", r)
	}
	want := []struct {
		passed bool
		detail string
	}{
		{true, "example.org resolves to 127.0.0.1"},
		{false, "SASL SCRAM-SHA-1 refused: not-authorized"},
		{false, "Not run: it needs Authentication, which failed."},
		{false, "Not run: it needs Room dev, which did not run."},
		{true, "found"},
	}
	for i, w := range want {
		c := r.Checks[i]
		if c.Passed != w.passed || c.Detail != w.detail {
			t.Errorf("check %d (%s): passed %v, detail %q; want %v, %q", i, c.Name, c.Passed, c.Detail, w.passed, w.detail)
		}
	}
	if r.Checks[2].Fix != "Fix Authentication first." {
		t.Errorf("skipped check's fix: %q", r.Checks[2].Fix)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"network":"xmpp"`, `"passed":false`, `"started":`, `"duration_ms":`, `"checks":[{"name":"DNS","passed":true,"detail":"example.org resolves to 127.0.0.1","fix":"","duration_ms":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	text := r.Text()
	for _, line := range []string{"1 of 5 checks failed, 2 not run", "[ok] **DNS**: example.org resolves to 127.0.0.1", "[FAIL] **Authentication**: SASL SCRAM-SHA-1 refused: not-authorized", "[skip] **Room dev**", "Fix: Set the bot password"} {
		if !strings.Contains(text, line) {
			t.Errorf("text lacks %q:\n%s", line, text)
		}
	}
}

func TestRunPassesWhenEveryCheckPasses(t *testing.T) {
	r := Run(context.Background(), "slack", Limits{}, []Step{{Name: "auth.test", Run: func(context.Context) Result { return Pass("ok") }}})
	if !r.Passed || !strings.Contains(r.Text(), "all 1 checks passed") {
		t.Fatalf("report: %+v\n%s", r, r.Text())
	}
	if r := Run(context.Background(), "slack", Limits{}, nil); r.Passed {
		t.Fatal("a report with no checks passed")
	}
}

// A server that accepts the connection and never says anything: the check
// fails at its bound, with a message that says so, and the run goes on.
func TestACheckFailsAtItsBoundAgainstASilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // silent until the test ends
		}
	}()
	read := func(ctx context.Context) Result {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", l.Addr().String())
		if err != nil {
			return Fail(err.Error(), "")
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err != nil {
			return Fail("no greeting: "+err.Error(), "")
		}
		return Pass("greeted")
	}
	ignoring := func(context.Context) Result {
		time.Sleep(time.Hour) // a check that ignores its context
		return Pass("")
	}
	start := time.Now()
	r := Run(context.Background(), "xmpp", Limits{Check: 300 * time.Millisecond, Run: 5 * time.Second}, []Step{
		{Name: "Stream", Run: read},
		{Name: "Stuck", Run: ignoring},
		{Name: "After", Run: func(context.Context) Result { return Pass("ran") }},
	})
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the run took %v", took)
	}
	for _, c := range r.Checks[:2] {
		if c.Passed || !strings.Contains(c.Detail, "No answer within 300ms") || c.Fix == "" {
			t.Errorf("%s: %+v", c.Name, c)
		}
		if c.DurationMS < 290 || c.DurationMS > 2000 {
			t.Errorf("%s took %d ms", c.Name, c.DurationMS)
		}
	}
	if !r.Checks[2].Passed {
		t.Errorf("the check after the timeouts: %+v", r.Checks[2])
	}
}

func TestTheWholeRunIsBounded(t *testing.T) {
	slow := func(ctx context.Context) Result {
		<-ctx.Done()
		return Fail("waited: "+context.Cause(ctx).Error(), "")
	}
	start := time.Now()
	r := Run(context.Background(), "matrix", Limits{Check: 200 * time.Millisecond, Run: 500 * time.Millisecond}, []Step{
		{Name: "one", Run: slow}, {Name: "two", Run: slow}, {Name: "three", Run: slow}, {Name: "four", Run: slow},
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the run took %v", took)
	}
	last := r.Checks[3]
	if last.Passed || !strings.Contains(last.Detail, "Not run: the doctor's 500ms were used up") {
		t.Fatalf("last check: %+v", last)
	}
	if r.Checks[2].Passed || !strings.Contains(r.Checks[2].Detail, "No answer within") {
		t.Fatalf("third check (cut by the run's bound): %+v", r.Checks[2])
	}
}

func TestCallerCancelStopsTheRun(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("client went away"))
	r := Run(ctx, "xmpp", Limits{}, []Step{{Name: "one", Run: func(context.Context) Result { return Pass("") }}})
	if r.Passed || !strings.Contains(r.Checks[0].Detail, "Not run") {
		t.Fatalf("report: %+v", r)
	}
}
