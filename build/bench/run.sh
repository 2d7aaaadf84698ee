#!/bin/sh
# make bench: every message path's benchmarks and their floors (each server
# alone, same load, same run), then build/bench/report's table and latency
# curves in $BENCH_RESULTS (bench-results): results.json, results.md,
# cdf-<path>.png, and the raw `go test -bench` output in bench.txt.
# BenchmarkScale (1,000 links, 10,000 remote users; see
# server/scale_bench_test.go) is in bench.txt and the lines printed here,
# not in the table.
#
#   make bench                              # BENCHTIME=200x COUNT=1
#   BENCHTIME=500x COUNT=3 make bench       # medians of three runs
set -eu
cd "$(dirname "$0")/../.."
results=${BENCH_RESULTS:-bench-results}
benchtime=${BENCHTIME:-200x}
count=${COUNT:-1}
pattern='XMPPToMatrix|MatrixToXMPP|ProsodyRoomToOccupant|XMPPToMattermost|MattermostToXMPP|DendriteSendToSync|MatrixToMattermost|MattermostToMatrix$|SlackAlone|SlackToMattermost|MattermostToSlack$|Scale'

# The servers' data (Dendrite's SQLite databases above all) on tmpfs: on
# disk, Dendrite's fsyncs are the floor of every Matrix path.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=$(mktemp -d /dev/shm/bridge-bench-XXXXXX)
	export TMPDIR
	trap 'rm -rf "$TMPDIR"' EXIT
fi

rm -rf "$results/runs"
mkdir -p "$results/runs"
runs=$(cd "$results/runs" && pwd)
echo "+ go test -run '^\$' -bench '$pattern' -benchtime $benchtime -count $count ./server/"
status=0
BENCH_OUT=$runs go test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count "$count" -timeout 40m ./server/ \
	>"$results/bench.txt" 2>&1 || status=$?
grep -E '^(Benchmark|cpu|PASS|FAIL|ok|--- )' "$results/bench.txt" || true
if [ "$status" -ne 0 ]; then
	echo "the benchmarks failed (exit $status): see $results/bench.txt" >&2
	exit "$status"
fi
out=$(cd "$results" && pwd)
(cd build/bench/report && go run . -in "$runs" -out "$out")
cat "$results/results.md"
