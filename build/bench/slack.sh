#!/bin/sh
# Runs the Slack benchmarks (server/slack_bench_test.go) against the Slack
# test server and prints every bridge figure next to the test server's own
# from the same run, as a ratio: Slack->Mattermost beside SlackAlone/inbound
# (a person's post to the Socket Mode event), Mattermost->Slack beside
# SlackAlone/outbound (chat.postMessage to the message being visible).
# Medians over COUNT runs, as a Markdown table. These run without Slack's
# rate limits; then MattermostToSlackLimited (Slack's limits on, one message
# a second) runs LIMITED_BENCHTIME messages once, to show nothing is lost or
# reordered under them (LIMITED_BENCHTIME=0 skips it).
#
#   build/bench/slack.sh                # BENCHTIME=200x COUNT=3 LIMITED_BENCHTIME=20x
#   BENCHTIME=50x COUNT=1 LIMITED_BENCHTIME=0 build/bench/slack.sh
set -eu
cd "$(dirname "$0")/../.."
benchtime=${BENCHTIME:-200x}
count=${COUNT:-3}
limited=${LIMITED_BENCHTIME:-20x}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

status=0
set -- go test -run '^$' -bench 'SlackAlone|SlackToMattermost|MattermostToSlack$' -benchtime "$benchtime" -count "$count" ./server/
echo "+ go test -run '^\$' -bench 'SlackAlone|SlackToMattermost|MattermostToSlack\$' -benchtime $benchtime -count $count ./server/"
"$@" >"$out" 2>&1 || status=$?
if [ "$limited" != 0 ]; then
	set -- go test -run '^$' -bench 'MattermostToSlackLimited' -benchtime "$limited" -count 1 ./server/
	echo "+ go test -run '^\$' -bench 'MattermostToSlackLimited' -benchtime $limited -count 1 ./server/"
	"$@" >>"$out" 2>&1 || status=$?
fi
grep -E '^(Benchmark|goos|goarch|pkg|cpu|PASS|FAIL|ok|--- |    slack_bench_test)' "$out" || true

awk -v bases="BenchmarkSlackAlone/inbound=BenchmarkSlackAlone/inbound BenchmarkSlackAlone/outbound=BenchmarkSlackAlone/outbound BenchmarkSlackToMattermost=BenchmarkSlackAlone/inbound BenchmarkMattermostToSlack=BenchmarkSlackAlone/outbound" \
	-v what="the Slack test server alone (inbound / outbound)" -v extra="reordered redelivered rate-limited" -v md=1 \
	-f build/bench/medians.awk "$out"
exit "$status"
