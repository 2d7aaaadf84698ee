// Package servertest runs the real servers the tests talk to (Prosody,
// Dendrite) as child processes: start, stop, kill, and read their logs. The
// per-server packages know how to configure each server and when it is up.
package servertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Process is a running server program.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// Launch starts cmd with its output going to out, which is closed when the
// program exits. On Linux the kernel kills the program if the test process
// dies without cleaning up, so no stray server keeps its ports. name is how
// errors refer to the program.
func Launch(name string, cmd *exec.Cmd, out *os.File) (*Process, error) {
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// ChildProcAttr is what Launch sets on its programs, for test helpers that
// run a program with their own pipes: the kernel kills it if the test
// process dies without cleaning up.
func ChildProcAttr() *syscall.SysProcAttr { return sysProcAttr() }

// Done is closed when the program has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the program exited; read it after Done is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the program has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends sig and waits for the program to exit, killing it after
// timeout. The error says whether it had already exited on its own or had
// to be killed.
func (p *Process) Stop(sig syscall.Signal, timeout time.Duration) error {
	select {
	case <-p.done:
		return fmt.Errorf("%s had already exited: %v", p.name, p.err)
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		<-p.done
		return nil
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v of %v and was killed", p.name, timeout, sig)
	}
}

// FileSize is the size of a file, 0 when it does not exist yet: where a
// log's new lines start.
func FileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ReadFrom returns a file's text from offset on, or the error as text.
func ReadFrom(name string, offset int64) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	if offset <= int64(len(b)) {
		b = b[offset:]
	}
	return string(b)
}

// LastLines returns the last n lines of text.
func LastLines(text string, n int) string {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// RandomString is 32 random hex digits, for secrets and IDs in test configs.
func RandomString() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
