package servertest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLaunchStopAndOutput(t *testing.T) {
	out, err := os.Create(filepath.Join(t.TempDir(), "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	name := out.Name()
	p, err := Launch("sleeper", exec.Command("sh", "-c", "echo started; exec sleep 30"), out)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(ReadFrom(name, 0), "started") {
		time.Sleep(10 * time.Millisecond)
	}
	if !p.Running() {
		t.Fatal("not running")
	}
	if err = p.Stop(syscall.SIGTERM, 5*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if p.Running() {
		t.Fatal("still running after Stop")
	}
	if err = p.Stop(syscall.SIGTERM, time.Second); err == nil || !strings.Contains(err.Error(), "sleeper had already exited") {
		t.Fatalf("second stop: %v", err)
	}
}

func TestStopKillsAProgramThatIgnoresTheSignal(t *testing.T) {
	out, err := os.Create(filepath.Join(t.TempDir(), "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Launch("stubborn", exec.Command("sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"), out)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(ReadFrom(out.Name(), 0), "ready") {
		time.Sleep(10 * time.Millisecond)
	}
	if err = p.Stop(syscall.SIGTERM, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "was killed") {
		t.Fatalf("stop: %v", err)
	}
}

func TestLastLinesAndReadFrom(t *testing.T) {
	if got := LastLines("a\nb\nc\n", 2); got != "b\nc\n" {
		t.Fatalf("LastLines = %q", got)
	}
	if got := LastLines("a\nb", 5); got != "a\nb" {
		t.Fatalf("LastLines = %q", got)
	}
	name := filepath.Join(t.TempDir(), "f")
	if FileSize(name) != 0 {
		t.Fatal("a missing file has a size")
	}
	if err := os.WriteFile(name, []byte("old\nnew\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ReadFrom(name, 4); got != "new\n" {
		t.Fatalf("ReadFrom = %q", got)
	}
}

func TestSlotStartStopAndRestart(t *testing.T) {
	s := Slot{Name: "sleeper", StopTimeout: 5 * time.Second}
	start := func() error {
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		return s.Start(exec.Command("sleep", "30"), out, func(*Process) error { return nil })
	}
	if s.Running() {
		t.Fatal("running before Start")
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	if !s.Running() || s.StartupTime() <= 0 {
		t.Fatalf("after Start: running %v, startup %v", s.Running(), s.StartupTime())
	}
	if err := start(); err == nil || !strings.Contains(err.Error(), "sleeper is already running") {
		t.Fatalf("second Start: %v", err)
	}
	if err := s.Stop(); err != nil || s.Running() {
		t.Fatalf("Stop: %v, running %v", err, s.Running())
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("stopping a stopped slot: %v", err)
	}
	// A start whose readiness check fails leaves nothing running.
	out, _ := os.Create(filepath.Join(t.TempDir(), "out"))
	if err := s.Start(exec.Command("sleep", "30"), out, func(*Process) error { return errors.New("never up") }); err == nil || s.Running() {
		t.Fatalf("failed start: %v, running %v", err, s.Running())
	}
	if err := start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := s.Kill(); err != nil || s.Running() {
		t.Fatalf("Kill: %v", err)
	}
}
