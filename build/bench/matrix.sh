#!/bin/sh
# Runs the Matrix benchmarks (server/matrix_bench_test.go) and prints every
# bridge figure next to Dendrite's own from the same run, as a ratio.
# Medians over COUNT runs. Needs bin/dendrite (make dendrite).
#
#   build/bench/matrix.sh                # BENCHTIME=100x COUNT=3
#   BENCHTIME=50x COUNT=1 build/bench/matrix.sh
set -eu
cd "$(dirname "$0")/../.."
benchtime=${BENCHTIME:-100x}
count=${COUNT:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if [ ! -x bin/dendrite ] && [ -z "${DENDRITE_BIN:-}" ]; then
	echo "bin/dendrite is missing: run make dendrite" >&2
	exit 1
fi

set -- go test -run '^$' -bench 'DendriteSendToSync|MatrixToMattermost|MattermostToMatrix' -benchtime "$benchtime" -count "$count" ./server/
echo "+ go test -run '^\$' -bench 'DendriteSendToSync|MatrixToMattermost|MattermostToMatrix' -benchtime $benchtime -count $count ./server/"
status=0
"$@" >"$out" 2>&1 || status=$?
grep -E '^(Benchmark|goos|goarch|pkg|cpu|PASS|FAIL|ok|--- |    matrix_bench_test)' "$out" || true

awk -v base=BenchmarkDendriteSendToSync -v what="Dendrite alone" -f build/bench/medians.awk "$out"
exit "$status"
