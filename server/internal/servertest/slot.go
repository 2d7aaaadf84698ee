package servertest

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Slot is the one process a restartable test server runs at a time. A
// server's harness embeds it for Running, StartupTime, Stop and Kill, and
// starts its program with Start.
type Slot struct {
	// Name is how errors refer to the program, e.g. "dendrite".
	Name string
	// StopTimeout bounds how long the program may take to exit after
	// SIGTERM before it is killed.
	StopTimeout time.Duration

	mu     sync.Mutex
	proc   *Process
	lastUp time.Duration
}

// Start launches cmd with its output going to out, unless the slot's
// program already runs, and waits for up to accept it; if up fails, the
// program is killed. StartupTime is then how long that took.
func (s *Slot) Start(cmd *exec.Cmd, out *os.File, up func(*Process) error) error {
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		out.Close()
		return fmt.Errorf("%s is already running", s.Name)
	}
	began := time.Now()
	p, err := Launch(s.Name, cmd, out)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	if err := up(p); err != nil {
		_ = s.Kill()
		return err
	}
	s.mu.Lock()
	s.lastUp = time.Since(began)
	s.mu.Unlock()
	return nil
}

// StartupTime is how long the last start or restart took until the server
// served.
func (s *Slot) StartupTime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUp
}

// Running reports whether the program was started and has not been
// stopped, killed or exited.
func (s *Slot) Running() bool {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	return p != nil && p.Running()
}

// Stop sends SIGTERM and waits for the program to exit (killing it after
// StopTimeout). Stopping a stopped server does nothing. The error says
// whether the program had already exited on its own or had to be killed.
func (s *Slot) Stop() error { return s.stop(syscall.SIGTERM) }

// Kill sends SIGKILL, as a crash would, and waits for the program to exit.
func (s *Slot) Kill() error { return s.stop(syscall.SIGKILL) }

func (s *Slot) stop(sig syscall.Signal) error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop(sig, s.StopTimeout)
}
