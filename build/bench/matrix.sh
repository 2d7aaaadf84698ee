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

awk '
function median(key,    n, i, j, v, t) {
	n = cnt[key]
	for (i = 1; i <= n; i++) v[i] = val[key, i]
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
	return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
function ratio(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : "-" }
/^Benchmark/ && / ns\/op/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++names] = name }
	for (i = 3; i < NF; i += 2) { key = name SUBSEP $(i+1); val[key, ++cnt[key]] = $i }
}
END {
	printf "\nmedians; ratio = bridge / Dendrite alone (same load, same run)\n"
	printf "%-44s %9s %7s %9s %7s %9s %7s %5s\n", "benchmark", "msgs/s", "ratio", "p50-ms", "ratio", "p99-ms", "ratio", "lost"
	for (k = 1; k <= names; k++) {
		name = order[k]; load = name; sub(/.*\//, "", load)
		base = "BenchmarkDendriteSendToSync/" load
		r = median(name SUBSEP "msgs/s"); p50 = median(name SUBSEP "p50-ms"); p99 = median(name SUBSEP "p99-ms")
		printf "%-44s %9.1f %7s %9.2f %7s %9.2f %7s %5d\n", name,
			r, ratio(r, median(base SUBSEP "msgs/s")),
			p50, ratio(p50, median(base SUBSEP "p50-ms")),
			p99, ratio(p99, median(base SUBSEP "p99-ms")),
			median(name SUBSEP "lost")
	}
}' "$out"
exit "$status"
