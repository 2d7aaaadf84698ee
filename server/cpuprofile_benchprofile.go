//go:build benchprofile

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
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
func init() {
	prefix := os.Getenv("BRIDGE_CPUPROFILE")
	if prefix == "" {
		return
	}
	go profileSlices(fmt.Sprintf("%s.%d", prefix, os.Getpid()))
}

const profileSlice = 5 * time.Second

func profileSlices(prefix string) {
	for n := 0; ; n++ {
		f, err := os.Create(fmt.Sprintf("%s.%03d", prefix, n))
		if err != nil {
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return
		}
		time.Sleep(profileSlice)
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
