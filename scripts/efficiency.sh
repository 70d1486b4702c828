#!/usr/bin/env bash
# CPU and system calls per operation (issue 14), huntgate against the
# gorilla/websocket baseline in the same run, servers interleaved within each
# round, medians over the rounds:
#   hold        10,000 connections: server CPU per accepted+upgraded connection
#               (and RSS per idle connection);
#   echo-rtt    15,000 msg/s over 10,000 connections (64 B): server CPU per
#               echoed message, RTT tails;
#   echo-sys    the same load again with the server's system calls counted
#               (perf stat on the syscall tracepoints, all threads, over the
#               measured phase; a separate run so the counting does not touch
#               the CPU figures): system calls per echoed message;
#   echo-tput   200 connections x 8 pipelined (64 B): server CPU per echoed
#               message;
#   fanout      one sender, 200 msg/s to 10,000 subscribers (2,000,000
#               deliveries/s, 64 B): server CPU per delivery; fanout-sys the
#               same with system calls counted;
#   fanout-4m   huntgate (and EFF_OTHER) only: 400 msg/s to 10,000 (4,000,000
#               deliveries/s), the broadcast ceiling, 100 % delivered or not.
#
#   scripts/efficiency.sh            3 rounds (about 20 minutes)
#   EFF_ROUNDS=1 EFF_N=1000 scripts/efficiency.sh   a smoke run
#
# EFF_OTHER=NAME=PATH adds a third server: PATH PORT must serve /echo (echo
# every message) and /fanout (every message to every /fanout connection, the
# sender too) on 127.0.0.1:PORT, as gorillaserver does; the tables then give
# ratios to it as well (NAME/gorilla and huntgate/NAME). Nothing here builds
# it.
#
# EFF_TESTS=echo-rtt,echo-sys runs only the tests named (comma-separated).
# HG_LOOPS (default: the CPU count) and HG_FLAGS (more flags, split on
# spaces) change how huntgate is started, e.g. HG_LOOPS=1.
#
# Run it under the machine's measurement lock: flock /work/measure.lock
# scripts/efficiency.sh. Results: bench/results/<UTC time>-efficiency/ (one
# JSON, HTML and text report per server, test and round, commands.txt,
# summary*.txt, syscalls.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

base=${EFF_PORT_BASE:-18100}
rounds=${EFF_ROUNDS:-3}
n=${EFF_N:-10000}
rate=${EFF_RATE:-15000}
dur=${EFF_DURATION:-10s}
sysdur=${EFF_SYS_DURATION:-8s}
hg_addr=127.0.0.1:$base
hg_admin=127.0.0.1:$((base + 1))
gorilla_addr=127.0.0.1:$((base + 2))
other_addr=127.0.0.1:$((base + 3))
src=127.0.0.2-127.0.0.60
ncpu=$(nproc)
other=${EFF_OTHER:-}
other_name=${other%%=*}
other_bin=${other#*=}

ulimit -n 20000 2>/dev/null || true
if ! perf stat -e raw_syscalls:sys_enter true 2>/dev/null; then
	echo "efficiency: perf stat cannot count syscall tracepoints here (apt-get install linux-perf; run as root)" >&2
	exit 1
fi

prepare_run efficiency "rounds=$rounds players=$n rate=$rate duration=$dur"
if [ -n "$other" ]; then echo "# $other_name: $other_bin PORT" >>"$out/commands.txt"; fi

trap stop_server EXIT

# start_other NAME: start_server, or the EFF_OTHER server.
start_other() {
	case $1 in huntgate | gorilla)
		start_server "$1"
		return
		;;
	esac
	"$other_bin" "${other_addr#*:}" >>"$out/$other_name.log" 2>&1 &
	pid=$!
	url=ws://$other_addr
	wait_port "${url#ws://}"
}

failed=()
# EFF_TESTS=a,b runs only those tests (all by default).
tests=${EFF_TESTS:-hold,echo-rtt,echo-sys,echo-tput,fanout,fanout-sys,fanout-4m}

# run SERVER TEST SCENARIO ARGS...
run() {
	local server=$1 test=$2 scenario=$3
	shift 3
	case ",$tests," in *",$test,"*) ;; *) return 0 ;; esac
	local name=$server-$test-r$round
	start_other "$server"
	local cmd=("$bin/huntload" "$scenario" --url "$url" --pid "$pid" --src "$src"
		--json "$out/$name.json" --html "$out/$name.html" "$@")
	run_load "$server" "$name" "^server (cpu|system)|^echo throughput|^  *[0-9]+ .*(true|false)$" "${cmd[@]}"
}

servers=(gorilla huntgate)
if [ -n "$other" ]; then servers+=("$other_name"); fi
echo_args=(--players "$n" --rate "$rate" --size 64)
fan_args=(--players "$n" --size 64)
for round in $(seq "$rounds"); do
	for server in "${servers[@]}"; do
		run "$server" hold hold --players "$n" --duration "$dur"
		run "$server" echo-rtt echo "${echo_args[@]}" --duration "$dur"
		run "$server" echo-sys echo "${echo_args[@]}" --duration "$sysdur" --syscalls
		run "$server" echo-tput echo --players 200 --pipeline 8 --size 64 --duration "$dur"
		run "$server" fanout fanout "${fan_args[@]}" --rate 200 --duration "$dur"
		run "$server" fanout-sys fanout "${fan_args[@]}" --rate 200 --duration "$sysdur" --syscalls
		if [ "$server" != gorilla ]; then
			run "$server" fanout-4m fanout "${fan_args[@]}" --rate 400 --duration "$dur"
		fi
	done
done

echo "== summary: ratios to gorilla ($out)"
"$bin/huntload" summary --tests "$tests" "$out" gorilla "${servers[@]}" | tee "$out/summary.txt"
mv "$out/summary-${tests//,/-}.json" "$out/summary.json"
if [ -n "$other" ]; then
	echo
	echo "== summary: huntgate / $other_name"
	"$bin/huntload" summary --tests "$tests" "$out" "$other_name" "$other_name" huntgate | tee "$out/summary-$other_name.txt"
	mv "$out/summary-${tests//,/-}.json" "$out/summary-$other_name.json"
fi
{
	for f in "$out"/*-sys-r*.txt; do
		echo "$(basename "$f" .txt): $(grep '^server system calls' "$f" || echo -)"
	done
} >"$out/syscalls.txt"
echo
cat "$out/syscalls.txt"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "efficiency: failed runs: ${failed[*]}" >&2
	exit 1
fi
