//go:build benchprofile

package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"time"
)

// A plugin built with the benchprofile tag (the benchmarks build one when
// BRIDGE_CPUPROFILE is set; never a release bundle) profiles its own CPU
// when BRIDGE_CPUPROFILE names a file prefix, into <prefix>.<pid>.<n>, a
// file every profileSlice: the process is killed when the plugin stops, so
// only finished slices are kept. The benchmarks run the plugin in a process
// of its own, which a profile of the test binary does not see:
//
//	BRIDGE_CPUPROFILE=/tmp/plugin.cpu go test -run '^$' -bench XMPPToMattermost -benchtime 500x ./server/
//	go tool pprof -top /tmp/plugin.cpu.*
//
// BRIDGE_TRACE does the same with an execution trace, whose blocking
// profiles show where a message's wall time goes (waiting on the RPC
// boundary, on a homeserver, on a lock):
//
//	BRIDGE_CPUPROFILE=/tmp/plugin.cpu BRIDGE_TRACE=/tmp/plugin.trace go test ...
//	go tool trace -pprof=net /tmp/plugin.trace.<pid>.001 > net.pprof
func init() {
	if prefix := os.Getenv("BRIDGE_CPUPROFILE"); prefix != "" {
		go inSlices(fmt.Sprintf("%s.%d", prefix, os.Getpid()), pprof.StartCPUProfile, pprof.StopCPUProfile)
	}
	if prefix := os.Getenv("BRIDGE_TRACE"); prefix != "" {
		go inSlices(fmt.Sprintf("%s.%d", prefix, os.Getpid()), trace.Start, trace.Stop)
	}
}

const profileSlice = 5 * time.Second

func inSlices(prefix string, start func(io.Writer) error, stop func()) {
	for n := 0; ; n++ {
		f, err := os.Create(fmt.Sprintf("%s.%03d", prefix, n))
		if err != nil {
			return
		}
		if err := start(f); err != nil {
			_ = f.Close()
			return
		}
		time.Sleep(profileSlice)
		stop()
		_ = f.Close()
	}
}
