#!/usr/bin/env bash
# The standard suite, in one run on this machine:
#  1. transport (issue 3): huntgate against the gorilla/websocket and
#     cloudwego/netpoll baselines (hold, echo throughput, echo RTT, fanout),
#     with ratios to the gorilla baseline; echo throughput also with
#     huntgate --loops 1 (hg-1loop): with the load generator taking about
#     one of the CPUs, one loop was faster than two in some runs and slower
#     in others, so both are measured;
#  2. game (issue 4) on huntgate: dig (10,000 players, 15,000 digs/s) and
#     event (10,000 players in one hunt, events at rising rates);
#  3. pinning (issue 3): the echo-RTT and dig runs against huntgate
#     (a) as by default (unpinned, --loops = CPUs), (b) with --pin, and
#     (c) as one process per CPU (GOMAXPROCS=1 --loops 1 under taskset -c N,
#     the processes sharing the port with SO_REUSEPORT), the load generator
#     unpinned, with ratios to (a).
#
#   scripts/bench.sh           full suite (10,000 connections; several minutes)
#   scripts/bench.sh --quick   small numbers, a smoke test (about a minute)
#
# Results: bench/results/<UTC time>-<mode>/ with one JSON and HTML report per
# server and test, the commands that produced them (commands.txt) and the
# summary table (summary.txt, summary.json). BENCH_ROUNDS=N (default 1)
# repeats the whole matrix N times, servers interleaved within each round,
# and the summary takes the median per metric: on a noisy machine use 3.
# Ports can be moved with BENCH_PORT_BASE (default 18080: huntgate 18080 +
# admin 18081 (18082.. for the further per-CPU processes), gorilla 18090,
# netpoll 18091).
#
# Idle RSS per connection (hold) is taken the same way for every server:
# the lowest of huntload's 1 s RSS samples over the second half of the hold
# (after the heap left by the handshakes has settled), minus the RSS before
# connecting, divided by the connections; each hold report says so.
#
# In (c) every process runs its own embedded engine, so the dig hunts are
# created in each (same ids and seeds) and a treasure can be claimed once
# per process: a transport comparison, not a game.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mode=full
case "${1:-}" in
--quick) mode=quick ;;
"") ;;
*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

base=${BENCH_PORT_BASE:-18080}
hg_addr=127.0.0.1:$base
hg_admin=127.0.0.1:$((base + 1))
gorilla_addr=127.0.0.1:$((base + 10))
netpoll_addr=127.0.0.1:$((base + 11))
src=127.0.0.2-127.0.0.60
rounds=${BENCH_ROUNDS:-1}

if [ "$mode" = quick ]; then
	hold_n=1000 hold_d=6s
	tput_n=50 tput_d=3s
	rtt_n=1000 rtt_rate=2000 rtt_d=3s
	fan_n=1000 fan_rates=1,5,20,50 fan_d=8s
	dig_n=10000 dig_rate=15000 dig_d=10s
	ev_n=2000 ev_rates=10,50,100 ev_d=9s
else
	hold_n=10000 hold_d=30s
	tput_n=200 tput_d=10s
	rtt_n=10000 rtt_rate=15000 rtt_d=10s
	fan_n=10000 fan_rates=1,2,5,10,20,50,100,200 fan_d=40s
	dig_n=10000 dig_rate=15000 dig_d=60s
	ev_n=10000 ev_rates=10,20,50,100,200 ev_d=50s
fi
dig_hunts=10 dig_grid=1000 dig_treasures=500
api_key=bench
ncpu=$(nproc)

# The load generator needs one fd per socket too; huntload keeps each of its
# processes under 9,000 sockets (--procs default), the servers hold 10,000.
ulimit -n 20000 2>/dev/null || true

out=bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$mode
bin=bench/results/bin
mkdir -p "$out" "$bin"
echo "== building"
go build -o "$bin/huntgate" ./gateway/cmd/huntgate
go build -o "$bin/gorillaserver" ./bench/cmd/gorillaserver
go build -o "$bin/netpollserver" ./bench/cmd/netpollserver
go build -o "$bin/huntload" ./bench/cmd/huntload
{
	echo "# $(date -u) mode=$mode"
	echo "# $(uname -srm), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/commands.txt"

pids=()
stop_server() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap stop_server EXIT

# huntgate_proc ADMIN_ADDR LOG [ENV/PREFIX...] -- [FLAGS...]: one gateway process.
huntgate_proc() {
	local admin=$1 log=$2
	shift 2
	local pre=()
	while [ "$1" != -- ]; do pre+=("$1"); shift; done
	shift
	"${pre[@]}" "$bin/huntgate" --addr "$hg_addr" --admin-addr "$admin" --dev --test-endpoints \
		--api-key "$api_key" --rate -1 --log-level warn "$@" 2>>"$log" &
	pids+=($!)
}

# start_server NAME: a fresh server process per test, so RSS starts clean.
# Sets url, admin (the first admin listener), admins (all of them) and pidlist.
start_server() {
	admins=()
	case $1 in
	huntgate | hg-default)
		huntgate_proc "$hg_admin" "$out/huntgate.log" env -- --loops "$ncpu"
		admins=("$hg_admin")
		url=ws://$hg_addr
		;;
	hg-1loop)
		huntgate_proc "$hg_admin" "$out/huntgate.log" env -- --loops 1
		admins=("$hg_admin")
		url=ws://$hg_addr
		;;
	hg-pin)
		huntgate_proc "$hg_admin" "$out/huntgate.log" env -- --loops "$ncpu" --pin
		admins=("$hg_admin")
		url=ws://$hg_addr
		;;
	hg-percpu)
		local c
		for c in $(seq 0 $((ncpu - 1))); do
			local a=127.0.0.1:$((base + 1 + c))
			huntgate_proc "$a" "$out/huntgate.log" env GOMAXPROCS=1 taskset -c "$c" -- --loops 1
			admins+=("$a")
		done
		url=ws://$hg_addr
		;;
	gorilla)
		"$bin/gorillaserver" --addr "$gorilla_addr" 2>>"$out/gorilla.log" &
		pids+=($!)
		url=ws://$gorilla_addr
		;;
	netpoll)
		"$bin/netpollserver" --addr "$netpoll_addr" 2>>"$out/netpoll.log" &
		pids+=($!)
		url=ws://$netpoll_addr
		;;
	esac
	wait_port "${url#ws://}"
	local a
	for a in "${admins[@]}"; do wait_port "$a"; done
	admin=
	if [ "${#admins[@]}" -gt 0 ]; then admin=http://${admins[0]}; fi
	pidlist=$(IFS=,; echo "${pids[*]}")
}

# create_hunts: the dig hunts in every gateway process after the first (the
# load generator creates them in the first), with the ids and seeds it uses.
create_hunts() {
	local a i
	for a in "${admins[@]:1}"; do
		for i in $(seq 0 $((dig_hunts - 1))); do
			curl -fsS -o /dev/null -X POST -H "X-API-Key: $api_key" \
				-d "{\"id\":\"load-$i\",\"width\":$dig_grid,\"height\":$dig_grid,\"random\":{\"count\":$dig_treasures,\"seed\":$((i + 1)),\"max_points\":100}}" \
				"http://$a/v1/hunts"
		done
	done
}

# run SERVER TEST SCENARIO ARGS... (uses $round). A failed run is reported
# and the suite goes on; the script then exits non-zero.
failed=()
run() {
	local server=$1 test=$2 scenario=$3
	shift 3
	local name=$server-$test
	if [ "$rounds" -gt 1 ]; then name=$name-r$round; fi
	start_server "$server"
	local extra=()
	case $scenario in
	dig | event | game)
		create_hunts
		extra=(--admin "$admin" --api-key "$api_key" --dev)
		;;
	esac
	local cmd=("$bin/huntload" "$scenario" --url "$url" --pid "$pidlist" --src "$src"
		--json "$out/$name.json" --html "$out/$name.html" "${extra[@]}" "$@")
	echo "[$server] ${cmd[*]}" >>"$out/commands.txt"
	echo "== $name"
	if ! "${cmd[@]}" 2>"$out/$name.progress" | tee "$out/$name.txt"; then
		echo "bench: $name failed (see $out/$name.progress)" >&2
		failed+=("$name")
	fi
	stop_server
}

dig_args=(--players "$dig_n" --hunts "$dig_hunts" --grid "$dig_grid" --treasures "$dig_treasures" --rate "$dig_rate" --duration "$dig_d")
rtt_args=(--players "$rtt_n" --rate "$rtt_rate" --size 64 --duration "$rtt_d")

for round in $(seq "$rounds"); do
	for server in gorilla netpoll huntgate; do
		run "$server" hold hold --players "$hold_n" --duration "$hold_d"
		run "$server" echo-tput echo --players "$tput_n" --pipeline 8 --size 64 --duration "$tput_d"
		if [ "$server" = huntgate ]; then
			run hg-1loop echo-tput echo --players "$tput_n" --pipeline 8 --size 64 --duration "$tput_d"
		fi
		run "$server" echo-rtt echo "${rtt_args[@]}"
		run "$server" fanout fanout --players "$fan_n" --rates "$fan_rates" --size 64 --duration "$fan_d"
	done
	run huntgate dig dig "${dig_args[@]}"
	run huntgate event event --players "$ev_n" --rates "$ev_rates" --duration "$ev_d"
	for server in hg-pin hg-percpu; do
		run "$server" echo-rtt echo "${rtt_args[@]}"
		run "$server" dig dig "${dig_args[@]}"
	done
done

echo "== summary: transport and game ($out)"
"$bin/huntload" summary "$out" gorilla gorilla netpoll huntgate hg-1loop | tee "$out/summary.txt"
echo "   hg-1loop = huntgate --loops 1 (the load generator takes about one of the $ncpu CPUs;"
echo "   one loop has measured faster than $ncpu in some runs and slower in others)."
echo
echo "== pinning: huntgate = (a) default, unpinned --loops $ncpu; hg-pin = (b) --pin;"
echo "   hg-percpu = (c) $ncpu processes, GOMAXPROCS=1 --loops 1 under taskset -c N; load generator unpinned."
echo "   In (c) each process has its own engine: a claim fans out to the players of that process only"
echo "   (about 1/$ncpu of the hunt), so (c)'s dig does less fan-out work than (a) and (b)."
"$bin/huntload" summary --tests echo-rtt,dig "$out" huntgate huntgate hg-pin hg-percpu | tee "$out/summary-pinning.txt"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "bench: failed runs: ${failed[*]}" >&2
	exit 1
fi
