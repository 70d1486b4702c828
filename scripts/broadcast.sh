#!/usr/bin/env bash
# Broadcast memory under overload (issue 14): one sender on /fanout to 10,000
# subscribers, 128 B messages, huntgate against the gorilla/websocket
# baseline in the same run, a fresh server per run, servers interleaved
# within each round:
#   overload   1,000 msg/s offered (10,000,000 deliveries/s): peak RSS of the
#              server (VmHWM, read after the drain), deliveries/s, closes;
#   held       huntgate only: 400 msg/s (4,000,000 deliveries/s), which it
#              must deliver 100 % (gorilla's ceiling is far below it).
#
#   flock /work/measure.lock scripts/broadcast.sh     3 rounds (about 4 minutes)
#   BCAST_ROUNDS=1 BCAST_N=1000 scripts/broadcast.sh    a smoke run
#
# BCAST_BASE_BIN=PATH also runs another huntgate binary (an older build) as
# hg-base, overloaded and held, in every round.
#
# Ports: BCAST_PORT_BASE (default 18120: huntgate +0, admin +1, gorilla +2).
# Results: bench/results/<UTC time>-broadcast/ (JSON, HTML and text report
# per server, test and round, commands.txt, summary.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

base=${BCAST_PORT_BASE:-18120}
rounds=${BCAST_ROUNDS:-3}
n=${BCAST_N:-10000}
dur=${BCAST_DURATION:-10s}
over=${BCAST_OVERLOAD_RATE:-1000}
held=${BCAST_HELD_RATE:-400}
hg_addr=127.0.0.1:$base
hg_admin=127.0.0.1:$((base + 1))
gorilla_addr=127.0.0.1:$((base + 2))
src=127.0.0.2-127.0.0.60
ncpu=$(nproc)

ulimit -n 20000 2>/dev/null || true
prepare_run broadcast "rounds=$rounds players=$n duration=$dur overload=$over/s held=$held/s"
if [ -n "${BCAST_BASE_BIN:-}" ]; then echo "# hg-base: $BCAST_BASE_BIN" >>"$out/commands.txt"; fi

trap stop_server EXIT

failed=()
# run SERVER TEST RATE
run() {
	local server=$1 test=$2 rate=$3
	local name=$server-$test-r$round
	if [ "$server" = hg-base ]; then
		hg_bin=$BCAST_BASE_BIN start_server huntgate
	else
		start_server "$server"
	fi
	local cmd=("$bin/huntload" fanout --url "$url" --pid "$pid" --src "$src" --players "$n"
		--rate "$rate" --size 128 --duration "$dur" --json "$out/$name.json" --html "$out/$name.html")
	run_load "$server" "$name" "^server rss taken|^  *[0-9]+ .*(true|false)$|^close codes" "${cmd[@]}"
}

for round in $(seq "$rounds"); do
	run gorilla overload "$over"
	if [ -n "${BCAST_BASE_BIN:-}" ]; then run hg-base overload "$over"; fi
	run huntgate overload "$over"
	if [ -n "${BCAST_BASE_BIN:-}" ]; then run hg-base held "$held"; fi
	run huntgate held "$held"
done

# One line per run, then the medians and huntgate / gorilla.
line='[.target, (.facts.server_rss_peak/1e6*10|round/10), (.facts.server_rss_peak/1048576*10|round/10), (.steps[0].deliveries_per_s|round),
	(.steps[0].delivered*1000/.steps[0].expected|round/10), .steps[0].lost, (.facts.close_codes|tostring)] | @tsv'
{
	printf 'run\ttarget\tpeak RSS MB\tMiB\tdeliveries/s\tdelivered %%\tlost\tcloses\n'
	for f in "$out"/*-r*.json; do
		printf '%s\t%s\n' "$(basename "$f" .json)" "$(jq -r "$line" "$f")"
	done
	echo
	for t in gorilla-overload hg-base-overload huntgate-overload hg-base-held huntgate-held; do
		ls "$out"/$t-r*.json >/dev/null 2>&1 || continue
		jq -s -r --arg t "$t" 'def med: sort | .[length/2|floor];
			"\($t): median peak RSS \(map(.facts.server_rss_peak/1e6) | med * 10 | round / 10) MB (max \(map(.facts.server_rss_peak/1e6) | max * 10 | round / 10) MB = \(map(.facts.server_rss_peak/1048576) | max * 10 | round / 10) MiB), median deliveries/s \(map(.steps[0].deliveries_per_s) | med | round), delivered 100 % in \(map(select(.steps[0].lost == 0)) | length) of \(length) runs"' \
			"$out"/$t-r*.json
	done
	if ls "$out"/gorilla-overload-r*.json >/dev/null 2>&1; then
		jq -s -r 'def med: sort | .[length/2|floor];
			(map(select(.target|test("'"$gorilla_addr"'"))) | map(.facts.server_rss_peak) | med) as $g |
			(map(select(.target|test("'"$hg_addr"'"))) | map(.facts.server_rss_peak) | med) as $h |
			"peak RSS overloaded, huntgate / gorilla: \($h / $g * 1000 | round / 1000)x"' \
			"$out"/gorilla-overload-r*.json "$out"/huntgate-overload-r*.json
	fi
} | tee "$out/summary.txt"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "broadcast: failed runs: ${failed[*]}" >&2
	exit 1
fi
