# Reads `go test -bench` output and prints, per benchmark, the median of
# msgs/s, p50-ms, p99-ms and lost over its runs, each beside the ratio to
# the baseline benchmark with the same load in the same run.
#   awk -v base=BenchmarkProsodyRoomToOccupant -v what="Prosody alone" -f medians.awk out.txt
# Optional: bases="Name=Base ..." gives the benchmarks named Name (or
# Name/...) their own baseline Base (longest Name wins; the others take
# base); extra="metric ..." adds columns with those metrics' medians ("-"
# where a benchmark has none); md=1 prints a Markdown table.
function median(key,    n, i, j, v, t) {
	n = cnt[key]
	for (i = 1; i <= n; i++) v[i] = val[key, i]
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
	return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
function ratio(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : "-" }
function extracols(name, sep, width,    i, out) {
	out = ""
	for (i = 1; i <= nx; i++)
		out = out sep sprintf("%" width "s", cnt[name SUBSEP extras[i]] ? sprintf("%g", median(name SUBSEP extras[i])) : "-")
	return out
}
function baseof(name,    k, best) {
	best = ""
	for (k in basefor)
		if ((name == k || index(name, k "/") == 1) && length(k) > length(best)) best = k
	return best == "" ? base : basefor[best]
}
BEGIN {
	nx = split(extra, extras, " ")
	nb = split(bases, pairs, " ")
	for (i = 1; i <= nb; i++) { eq = index(pairs[i], "="); basefor[substr(pairs[i], 1, eq-1)] = substr(pairs[i], eq+1) }
}
/^Benchmark/ && / ns\/op/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++names] = name }
	for (i = 3; i < NF; i += 2) { key = name SUBSEP $(i+1); val[key, ++cnt[key]] = $i }
}
END {
	printf "\nmedians; ratio = bridge / %s (same load, same run)\n", what
	if (md) {
		head = "\n| benchmark | msgs/s | ratio | p50-ms | ratio | p99-ms | ratio | lost |"
		rule = "|---|--:|--:|--:|--:|--:|--:|--:|"
		for (i = 1; i <= nx; i++) { head = head " " extras[i] " |"; rule = rule "--:|" }
		print head; print rule
		row = "| %s | %.1f | %s | %.2f | %s | %.2f | %s | %d"
		sep = " | "; width = ""; end = " |"
	} else {
		head = sprintf("%-44s %9s %7s %9s %7s %9s %7s %5s", "benchmark", "msgs/s", "ratio", "p50-ms", "ratio", "p99-ms", "ratio", "lost")
		for (i = 1; i <= nx; i++) head = head sprintf(" %12s", extras[i])
		print head
		row = "%-44s %9.1f %7s %9.2f %7s %9.2f %7s %5d"
		sep = " "; width = "12"; end = ""
	}
	for (k = 1; k <= names; k++) {
		name = order[k]; load = name; sub(/.*\//, "", load)
		b = baseof(name) "/" load
		r = median(name SUBSEP "msgs/s"); p50 = median(name SUBSEP "p50-ms"); p99 = median(name SUBSEP "p99-ms")
		printf row, name,
			r, ratio(r, median(b SUBSEP "msgs/s")),
			p50, ratio(p50, median(b SUBSEP "p50-ms")),
			p99, ratio(p99, median(b SUBSEP "p99-ms")),
			median(name SUBSEP "lost")
		print extracols(name, sep, width) end
	}
}
