package servertest

import (
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
