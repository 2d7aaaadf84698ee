// Package doctor runs a network's checks for an admin: each check passes
// or fails with what it found and, when it fails, the fix in one sentence.
// A check is bounded in time, and so is the whole run, so a server that
// accepts connections and never answers makes one check fail instead of
// hanging the slash command or the System Console's Test button. The
// networks write their checks (server/bridge/<network>); this package only
// runs them and reports, in the shape of the REST API's
// POST /api/v1/networks/{network}/test.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The bounds the issue sets: each check 10 s, the whole run 30 s.
const (
	CheckLimit = 10 * time.Second
	RunLimit   = 30 * time.Second
)

// Limits bound a run; zero fields take CheckLimit and RunLimit. Tests
// shorten them so a silent server does not cost them 10 s.
type Limits struct {
	Check time.Duration
	Run   time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.Check <= 0 {
		l.Check = CheckLimit
	}
	if l.Run <= 0 {
		l.Run = RunLimit
	}
	return l
}

// Report is one run of a network's doctor.
type Report struct {
	Network    string    `json:"network"`
	Passed     bool      `json:"passed"`
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	Checks     []Check   `json:"checks"`
}

// Check is how one check went. Detail says what was found; Fix, for a
// failed check, what the admin should do.
type Check struct {
	Name       string `json:"name"`
	Passed     bool   `json:"passed"`
	Detail     string `json:"detail"`
	Fix        string `json:"fix"`
	DurationMS int64  `json:"duration_ms"`
}

// Result is what a check's Run returns.
type Result struct {
	Passed bool
	Detail string
	Fix    string
}

// Pass is a passed check; the detail says what was found.
func Pass(format string, args ...any) Result {
	return Result{Passed: true, Detail: fmt.Sprintf(format, args...)}
}

// Fail is a failed check: the cause, and the fix in one sentence.
func Fail(detail, fix string) Result { return Result{Detail: detail, Fix: fix} }

// Step is one check to run.
type Step struct {
	Name string
	// Needs names earlier steps that must have passed for this one to
	// run: there is no point logging in where the server cannot be
	// reached.
	Needs []string
	// Run does the check within ctx, which ends at the check's bound.
	Run func(ctx context.Context) Result
	// TimeoutFix is the fix when the check reaches its bound; a general
	// one when empty.
	TimeoutFix string
}

// defaultTimeoutFix is the fix for a check that got no answer in time.
const defaultTimeoutFix = "Check that the server is up and that nothing between the Mattermost server and it (firewall, proxy) holds the connection without answering."

// errCheckBound ends a check's context at its bound.
var errCheckBound = errors.New("the check's time bound was reached")

// Run runs steps in order and reports each. A step whose Needs did not
// pass is reported as not run, and so are the steps left when the run's
// bound (or ctx) ends. A check that ignores its context is abandoned at its
// bound: its goroutine finishes on its own later.
func Run(ctx context.Context, network string, limits Limits, steps []Step) Report {
	limits = limits.withDefaults()
	started := time.Now()
	ctx, cancel := context.WithTimeoutCause(ctx, limits.Run, fmt.Errorf("the doctor's %v were used up", limits.Run))
	defer cancel()
	r := Report{Network: network, Started: started.UTC(), Passed: len(steps) > 0}
	outcome := map[string]string{} // name -> "passed", "failed" or "did not run"
	for _, s := range steps {
		c := Check{Name: s.Name}
		switch blocker, why := blocked(s, outcome); {
		case blocker != "":
			c.Detail = fmt.Sprintf("Not run: it needs %s, which %s.", blocker, why)
			c.Fix = "Fix " + blocker + " first."
			outcome[s.Name] = "did not run"
		case ctx.Err() != nil:
			c.Detail = fmt.Sprintf("Not run: %v.", context.Cause(ctx))
			c.Fix = "Run the doctor again once the checks before this one pass quickly."
			outcome[s.Name] = "did not run"
		default:
			res, took := runOne(ctx, s, limits.Check)
			c.Passed, c.Detail, c.Fix, c.DurationMS = res.Passed, res.Detail, res.Fix, took.Milliseconds()
			outcome[s.Name] = "failed"
			if res.Passed {
				outcome[s.Name] = "passed"
			}
		}
		if !c.Passed {
			r.Passed = false
		}
		r.Checks = append(r.Checks, c)
	}
	r.DurationMS = time.Since(started).Milliseconds()
	return r
}

// blocked names the first of s's needs that did not pass, and why.
func blocked(s Step, outcome map[string]string) (string, string) {
	for _, n := range s.Needs {
		switch o := outcome[n]; o {
		case "passed":
		case "":
			return n, "is not among the checks"
		default:
			return n, o
		}
	}
	return "", ""
}

// runOne runs s within bound (and the run's ctx).
func runOne(ctx context.Context, s Step, bound time.Duration) (Result, time.Duration) {
	start := time.Now()
	cctx, cancel := context.WithTimeoutCause(ctx, bound, errCheckBound)
	defer cancel()
	done := make(chan Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- Fail(fmt.Sprintf("The check crashed: %v.", p), "Report this as a bug of the bridge plugin.")
			}
		}()
		done <- s.Run(cctx)
	}()
	var res Result
	select {
	case res = <-done:
	case <-cctx.Done():
		res = Result{}
	}
	// A check that set its I/O deadlines from ctx may return a moment
	// before ctx itself reports the end: the clock decides.
	deadline, _ := cctx.Deadline()
	if (cctx.Err() != nil || !time.Now().Before(deadline)) && !res.Passed {
		// Whatever the check said, its bound (or the run's) cut it short.
		limit := bound
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 0 && dl.Sub(start) < bound {
			limit = dl.Sub(start).Round(time.Millisecond)
		}
		detail := fmt.Sprintf("No answer within %v", limit)
		if res.Detail != "" {
			detail += " (" + strings.TrimSuffix(res.Detail, ".") + ")"
		}
		res.Detail = detail + "."
		if res.Fix == "" {
			res.Fix = s.TimeoutFix
		}
		if res.Fix == "" {
			res.Fix = defaultTimeoutFix
		}
	}
	return res, time.Since(start)
}

// Text is the report as a list a person reads, for the slash command and
// the CLI (Markdown, which a terminal shows well enough).
func (r Report) Text() string {
	failed, skipped := 0, 0
	for _, c := range r.Checks {
		switch {
		case c.Passed:
		case strings.HasPrefix(c.Detail, "Not run"):
			skipped++
		default:
			failed++
		}
	}
	var b strings.Builder
	summary := fmt.Sprintf("all %d checks passed", len(r.Checks))
	if !r.Passed {
		summary = fmt.Sprintf("%d of %d checks failed", failed, len(r.Checks))
		if skipped > 0 {
			summary += fmt.Sprintf(", %d not run", skipped)
		}
	}
	fmt.Fprintf(&b, "**%s doctor**: %s (%d ms)\n", r.Network, summary, r.DurationMS)
	for _, c := range r.Checks {
		mark := "FAIL"
		if c.Passed {
			mark = "ok"
		} else if strings.HasPrefix(c.Detail, "Not run") {
			mark = "skip"
		}
		fmt.Fprintf(&b, "- [%s] **%s**: %s", mark, c.Name, c.Detail)
		if c.DurationMS > 0 {
			fmt.Fprintf(&b, " (%d ms)", c.DurationMS)
		}
		b.WriteString("\n")
		if !c.Passed && c.Fix != "" {
			fmt.Fprintf(&b, "  Fix: %s\n", c.Fix)
		}
	}
	return b.String()
}
