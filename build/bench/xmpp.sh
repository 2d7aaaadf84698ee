#!/bin/sh
# Runs the XMPP benchmarks (server/xmpp_bench_test.go) and prints every
# bridge figure next to Prosody's own from the same run, as a ratio.
# Medians over COUNT runs. Needs prosody installed.
#
#   build/bench/xmpp.sh                 # BENCHTIME=500x COUNT=3
#   BENCHTIME=200x COUNT=1 build/bench/xmpp.sh
set -eu
cd "$(dirname "$0")/../.."
benchtime=${BENCHTIME:-500x}
count=${COUNT:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

set -- go test -run '^$' -bench 'Prosody|XMPPTo|ToXMPP' -benchtime "$benchtime" -count "$count" ./server/
echo "+ go test -run '^\$' -bench 'Prosody|XMPPTo|ToXMPP' -benchtime $benchtime -count $count ./server/"
status=0
"$@" >"$out" 2>&1 || status=$?
grep -E '^(Benchmark|goos|goarch|pkg|cpu|PASS|FAIL|ok|--- |    xmpp_bench_test)' "$out" || true

awk -v base=BenchmarkProsodyRoomToOccupant -v what="Prosody alone" -f build/bench/medians.awk "$out"
exit "$status"
