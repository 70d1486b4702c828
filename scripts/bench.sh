#!/usr/bin/env bash
# The standard transport suite: huntgate against the gorilla/websocket and
# cloudwego/netpoll baselines, in one run on this machine, with ratios to
# the gorilla baseline.
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
# admin 18081, gorilla 18090, netpoll 18091).
set -euo pipefail
cd "$(dirname "$0")/.."

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
	hold_n=1000 hold_d=3s
	tput_n=50 tput_d=3s
	rtt_n=1000 rtt_rate=2000 rtt_d=3s
	fan_n=1000 fan_rates=1,5,20,50 fan_d=8s
else
	hold_n=10000 hold_d=10s
	tput_n=200 tput_d=10s
	rtt_n=10000 rtt_rate=15000 rtt_d=10s
	fan_n=10000 fan_rates=1,2,5,10,20,50,100,200 fan_d=40s
fi

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

pid=
stop_server() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}
trap stop_server EXIT

wait_port() {
	local hp=$1 i
	for i in $(seq 200); do
		if (exec 3<>"/dev/tcp/${hp%:*}/${hp#*:}") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "bench: nothing listens on $hp" >&2
	return 1
}

# start_server NAME: a fresh server process per test, so RSS starts clean.
start_server() {
	case $1 in
	huntgate)
		"$bin/huntgate" --addr "$hg_addr" --admin-addr "$hg_admin" --loops "$(nproc)" --dev --test-endpoints \
			--api-key bench --rate -1 --log-level warn 2>>"$out/huntgate.log" &
		pid=$!
		url=ws://$hg_addr
		;;
	gorilla)
		"$bin/gorillaserver" --addr "$gorilla_addr" 2>>"$out/gorilla.log" &
		pid=$!
		url=ws://$gorilla_addr
		;;
	netpoll)
		"$bin/netpollserver" --addr "$netpoll_addr" 2>>"$out/netpoll.log" &
		pid=$!
		url=ws://$netpoll_addr
		;;
	esac
	wait_port "${url#ws://}"
}

# run SERVER TEST SCENARIO ARGS... (uses $round)
run() {
	local server=$1 test=$2 scenario=$3
	shift 3
	local name=$server-$test
	if [ "$rounds" -gt 1 ]; then name=$name-r$round; fi
	start_server "$server"
	local cmd=("$bin/huntload" "$scenario" --url "$url" --pid "$pid" --src "$src"
		--json "$out/$name.json" --html "$out/$name.html" "$@")
	echo "${cmd[*]}" >>"$out/commands.txt"
	echo "== $name"
	if ! "${cmd[@]}" 2>"$out/$name.progress" | tee "$out/$name.txt"; then
		echo "bench: $name failed (see $out/$name.progress)" >&2
	fi
	stop_server
}

for round in $(seq "$rounds"); do
	for server in gorilla netpoll huntgate; do
		run "$server" hold hold --players "$hold_n" --duration "$hold_d"
		run "$server" echo-tput echo --players "$tput_n" --pipeline 8 --size 64 --duration "$tput_d"
		run "$server" echo-rtt echo --players "$rtt_n" --rate "$rtt_rate" --size 64 --duration "$rtt_d"
		run "$server" fanout fanout --players "$fan_n" --rates "$fan_rates" --size 64 --duration "$fan_d"
	done
done

echo "== summary ($out)"
"$bin/huntload" summary "$out" gorilla gorilla netpoll huntgate | tee "$out/summary.txt"
