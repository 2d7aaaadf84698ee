//go:build benchprofile

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"
)

// A plugin built with the benchprofile tag (the benchmarks build one when
// BRIDGE_CPUPROFILE is set; never a release bundle) profiles its own CPU
// when BRIDGE_CPUPROFILE names a file prefix: from its start for
// BRIDGE_CPUPROFILE_SECONDS (120), into <prefix>.<pid>. The benchmarks run
// the plugin in a process of its own, which a profile of the test binary
// does not see:
//
//	BRIDGE_CPUPROFILE=/tmp/plugin.cpu go test -run '^$' -bench XMPPToMattermost -benchtime 500x ./server/
//	go tool pprof -top /tmp/plugin.cpu.<pid>
func init() {
	prefix := os.Getenv("BRIDGE_CPUPROFILE")
	if prefix == "" {
		return
	}
	seconds, err := strconv.Atoi(os.Getenv("BRIDGE_CPUPROFILE_SECONDS"))
	if err != nil || seconds <= 0 {
		seconds = 120
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", prefix, os.Getpid()))
	if err != nil {
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return
	}
	time.AfterFunc(time.Duration(seconds)*time.Second, func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	})
}
