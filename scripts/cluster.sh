#!/usr/bin/env bash
# Runs a huntgate cluster on this machine: Redis (one standalone redis-server,
# or a Redis Cluster of 3 primaries + 3 replicas) and K gateway nodes sharing
# one player port through SO_REUSEPORT (every loop of every node has its own
# listening socket on the port; the kernel spreads connections over them).
#
#   scripts/cluster.sh up --nodes K [--redis-cluster | --no-redis] [--port 8080]
#                         [--admin-port 9000] [--redis-port 6380] [--host 127.0.0.1]
#                         [--dir .cluster] [--bin PATH] [--timeout 60]
#                         [-- extra huntgate flags]
#   scripts/cluster.sh down [--dir .cluster] [--timeout 15]
#   scripts/cluster.sh status [--dir .cluster]
#
# up: node i (from 0) serves players on --host:--port and its admin API on
# 127.0.0.1:(--admin-port + i), with --redis redis://127.0.0.1:<redis-port>/0,
# or with --redis-cluster 127.0.0.1:<redis-port>,... (the cluster on the Redis
# port and the five after it), or with its own memory engine (--no-redis: the
# nodes share no hunts; for connection-only tests). It returns once every node
# answers 200 on /readyz; if one does not within --timeout seconds, or exits,
# it prints that node's log, stops everything it started and fails. Logs,
# PIDs and Redis data go under --dir; the huntgate binary is built there
# from this checkout unless --bin names one. Flags after "--" go to every node
# (for example -- --dev --api-key K --loops 1).
#
# down: stops what up started, by the PIDs it recorded (each checked against
# the command it started, so a reused PID is left alone): SIGTERM (the nodes
# drain), then SIGKILL for whatever is still running after --timeout seconds.
#
# status: one line per node: PID, running or not, /readyz, open connections
# (huntgate_connections from /metrics); then the Redis processes.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

cmd="${1:-}"
[ -n "$cmd" ] || usage
shift

nodes=0 port=8080 admin_port=9000 redis_port=6380 host=127.0.0.1
dir=.cluster bin="" timeout="" engine=redis
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--nodes) nodes="$2"; shift 2 ;;
	--port) port="$2"; shift 2 ;;
	--admin-port) admin_port="$2"; shift 2 ;;
	--redis-port) redis_port="$2"; shift 2 ;;
	--host) host="$2"; shift 2 ;;
	--dir) dir="$2"; shift 2 ;;
	--bin) bin="$2"; shift 2 ;;
	--timeout) timeout="$2"; shift 2 ;;
	--redis-cluster) engine=cluster; shift ;;
	--no-redis) engine=memory; shift ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) usage ;;
	*) echo "cluster.sh: unknown argument $1" >&2; usage ;;
	esac
done

case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac

# alive PID NAME: PID runs and is the NAME we started (its argv[0] ends in
# NAME), so that a PID reused by another process after ours exited is never
# signalled.
alive() {
	local pid="$1" name="$2" argv0
	[ -r "/proc/$pid/cmdline" ] || return 1
	argv0="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1)"
	# redis-server rewrites its title to "redis-server host:port [cluster]".
	case "${argv0##*/}" in "$name" | "$name "*) return 0 ;; esac
	return 1
}

# stop_all signals every recorded process, nodes first, and waits for them.
stop_all() {
	local wait_s="${timeout:-15}" f pid name left deadline
	[ -d "$dir/pids" ] || return 0
	for f in "$dir"/pids/node-* "$dir"/pids/redis-*; do
		[ -e "$f" ] || continue
		read -r pid name <"$f"
		alive "$pid" "$name" && kill -TERM "$pid" 2>/dev/null || true
	done
	deadline=$((SECONDS + wait_s))
	while :; do
		left=0
		for f in "$dir"/pids/*; do
			[ -e "$f" ] || continue
			read -r pid name <"$f"
			if alive "$pid" "$name"; then
				left=$((left + 1))
			else
				rm -f "$f"
			fi
		done
		[ "$left" -eq 0 ] && break
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "cluster.sh: $left process(es) still running after ${wait_s}s: SIGKILL" >&2
			for f in "$dir"/pids/*; do
				[ -e "$f" ] || continue
				read -r pid name <"$f"
				alive "$pid" "$name" && kill -KILL "$pid" 2>/dev/null || true
			done
			deadline=$((SECONDS + 5))
			wait_s=5
		fi
		sleep 0.1
	done
}

redis_ready() { # port
	[ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]
}

start_redis() { # port extra-args...
	local p="$1"
	shift
	mkdir -p "$dir/redis-$p"
	redis-server --port "$p" --bind 127.0.0.1 --dir "$dir/redis-$p" --save '' --appendonly no \
		--daemonize no --logfile "$dir/redis-$p.log" --tcp-backlog 65535 "$@" </dev/null >/dev/null 2>&1 &
	echo "$! redis-server" >"$dir/pids/redis-$p"
	# One Redis thread serves every node: starved of CPU by the nodes (and
	# load generators) on the same host it answered too late, the nodes'
	# clients timed out and redialled, and its 511-entry accept queue
	# overflowed (a 60-node run on 2 cores). As root it runs at a higher
	# priority; elsewhere this does nothing. Its accept queue is as deep
	# as the kernel allows (somaxconn; scripts/tune.sh raises it): a
	# reconnect storm of every node's pool is queued, not dropped as SYNs
	# the nodes retry after a second.
	renice -n -10 -p "$!" >/dev/null 2>&1 || true
	# A nice level is a weight: against the 250-300 runnable threads of 60
	# nodes and 56 load-generator processes at 400,000 players it left
	# Redis 0.08 cores, its clients timed out and redialled (52,632
	# connections in 4.5 minutes) and joins failed by the hundred thousand.
	# A real-time policy runs Redis whenever it has work; it is one thread,
	# and the kernel keeps 5 % of every second for everything else
	# (sched_rt_runtime_us). As root only; elsewhere this does nothing.
	chrt -f -p 10 "$!" >/dev/null 2>&1 || true
}

fail_up() {
	echo "cluster.sh: $*" >&2
	stop_all
	exit 1
}

wait_until() { # what check-command...
	local what="$1" deadline=$((SECONDS + ${timeout:-60}))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || fail_up "timed out waiting for $what"
		sleep 0.05
	done
}

cluster_ok() {
	local p
	for p in $(seq "$redis_port" $((redis_port + 5))); do
		redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
	done
}

up() {
	[ "$nodes" -ge 1 ] 2>/dev/null || { echo "cluster.sh: --nodes K (K >= 1) is required" >&2; exit 2; }
	if [ -d "$dir/pids" ] && [ -n "$(ls -A "$dir/pids" 2>/dev/null)" ]; then
		for f in "$dir"/pids/*; do
			read -r pid name <"$f"
			if alive "$pid" "$name"; then
				echo "cluster.sh: $dir already runs a cluster ($name $pid): run 'cluster.sh down --dir $dir' first" >&2
				exit 1
			fi
		done
		rm -f "$dir"/pids/*
	fi
	mkdir -p "$dir/pids"
	if [ -z "$bin" ]; then
		bin="$dir/huntgate"
		(cd "$repo" && go build -o "$bin" ./gateway/cmd/huntgate) || { echo "cluster.sh: build failed" >&2; exit 1; }
	fi
	[ -x "$bin" ] || { echo "cluster.sh: $bin is not executable" >&2; exit 1; }
	# One fd per player: take the hard limit (20,000 per process here).
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

	local engine_flags=() p seeds=""
	case "$engine" in
	redis)
		start_redis "$redis_port"
		wait_until "redis-server on $redis_port" redis_ready "$redis_port"
		engine_flags=(--redis "redis://127.0.0.1:$redis_port/0")
		;;
	cluster)
		for p in $(seq "$redis_port" $((redis_port + 5))); do
			start_redis "$p" --cluster-enabled yes --cluster-config-file "$dir/redis-$p/nodes.conf" \
				--cluster-node-timeout 2000
			seeds="$seeds${seeds:+,}127.0.0.1:$p"
		done
		for p in $(seq "$redis_port" $((redis_port + 5))); do
			wait_until "redis-server on $p" redis_ready "$p"
		done
		# shellcheck disable=SC2046
		redis-cli --cluster create $(echo "$seeds" | tr ',' ' ') --cluster-replicas 1 --cluster-yes \
			>"$dir/redis-cluster-create.log" 2>&1 || fail_up "redis-cli --cluster create failed: $(tail -n5 "$dir/redis-cluster-create.log")"
		wait_until "the Redis Cluster to be ok" cluster_ok
		engine_flags=(--redis-cluster "$seeds")
		;;
	memory) ;;
	esac

	local i
	for ((i = 0; i < nodes; i++)); do
		"$bin" --addr "$host:$port" --admin-addr "127.0.0.1:$((admin_port + i))" \
			"${engine_flags[@]}" "${extra[@]}" </dev/null >"$dir/node-$i.log" 2>&1 &
		echo "$! ${bin##*/}" >"$dir/pids/node-$i"
	done
	# Every node ready, checked in turn; a node that exited fails at once.
	local deadline=$((SECONDS + ${timeout:-60})) pid name
	for ((i = 0; i < nodes; i++)); do
		read -r pid name <"$dir/pids/node-$i"
		until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$((admin_port + i))/readyz" 2>/dev/null; do
			if ! alive "$pid" "$name"; then
				echo "cluster.sh: node $i (pid $pid) exited; its log:" >&2
				tail -n 20 "$dir/node-$i.log" >&2
				fail_up "node $i did not start"
			fi
			if [ "$SECONDS" -ge "$deadline" ]; then
				tail -n 20 "$dir/node-$i.log" >&2
				fail_up "node $i not ready after ${timeout:-60}s"
			fi
			sleep 0.05
		done
	done
	{
		echo "nodes=$nodes"
		echo "port=$port"
		echo "host=$host"
		echo "admin_port=$admin_port"
		echo "redis_port=$redis_port"
		echo "engine=$engine"
	} >"$dir/cluster.env"
	echo "cluster.sh: $nodes node(s) ready on $host:$port (admin 127.0.0.1:$admin_port-$((admin_port + nodes - 1)), engine $engine${engine_flags[1]:+ ${engine_flags[1]}}), dir $dir"
}

status() {
	[ -r "$dir/cluster.env" ] || { echo "cluster.sh: no cluster in $dir" >&2; exit 1; }
	# shellcheck disable=SC1091
	. "$dir/cluster.env"
	local i pid name state ready conns total=0
	printf '%-6s %-8s %-8s %-6s %s\n' node pid state ready connections
	for ((i = 0; i < nodes; i++)); do
		pid=- state=gone ready=- conns=-
		if [ -r "$dir/pids/node-$i" ]; then
			read -r pid name <"$dir/pids/node-$i"
			if alive "$pid" "$name"; then
				state=running
				ready="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$((admin_port + i))/readyz" || true)"
				conns="$(curl -s --max-time 2 "http://127.0.0.1:$((admin_port + i))/metrics" | awk '$1 == "huntgate_connections" {print $2}' || true)"
				[ -n "$conns" ] && total=$((total + ${conns%.*}))
			fi
		fi
		printf '%-6s %-8s %-8s %-6s %s\n' "$i" "$pid" "$state" "$ready" "${conns:--}"
	done
	echo "total connections: $total"
	for f in "$dir"/pids/redis-*; do
		[ -e "$f" ] || continue
		read -r pid name <"$f"
		state=gone
		alive "$pid" "$name" && state=running
		echo "redis ${f##*/redis-}: pid $pid $state"
	done
}

case "$cmd" in
up) up ;;
down) stop_all; rm -f "$dir/cluster.env" ;;
status) status ;;
*) usage ;;
esac
