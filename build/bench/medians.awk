# Reads `go test -bench` output and prints, per benchmark, the median of
# msgs/s, p50-ms, p99-ms and lost over its runs, each beside the ratio to
# the baseline benchmark with the same load in the same run.
#   awk -v base=BenchmarkProsodyRoomToOccupant -v what="Prosody alone" -f medians.awk out.txt
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
	printf "\nmedians; ratio = bridge / %s (same load, same run)\n", what
	printf "%-44s %9s %7s %9s %7s %9s %7s %5s\n", "benchmark", "msgs/s", "ratio", "p50-ms", "ratio", "p99-ms", "ratio", "lost"
	for (k = 1; k <= names; k++) {
		name = order[k]; load = name; sub(/.*\//, "", load)
		b = base "/" load
		r = median(name SUBSEP "msgs/s"); p50 = median(name SUBSEP "p50-ms"); p99 = median(name SUBSEP "p99-ms")
		printf "%-44s %9.1f %7s %9.2f %7s %9.2f %7s %5d\n", name,
			r, ratio(r, median(b SUBSEP "msgs/s")),
			p50, ratio(p50, median(b SUBSEP "p50-ms")),
			p99, ratio(p99, median(b SUBSEP "p99-ms")),
			median(name SUBSEP "lost")
	}
}
