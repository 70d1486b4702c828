#!/usr/bin/env bash
# The million-player run: a cluster on this machine (scripts/cluster.sh),
# every player joined to a few hunts, then three phases over the same held
# players:
#
#   1. the event phase, with nothing else sent: one event published to every
#      hunt (each player gets it once), waited for until every player has it
#      (at most --event-wait); then its floor: one plain broadcast of the same
#      size from every node (POST /v1/test/broadcast, no hunt engine) over
#      the same sockets, waited for the same way;
#   2. the dig floor: pings at the dig rate over the same sockets for
#      --ping-floor (answered on the gateway's loop, no Redis);
#   3. the dig phase: a steady dig rate; after its first third (the steady
#      window, digs alone, reported on their own next to the ping floor)
#      --events N more events, and at its half one node killed with SIGKILL
#      (its players reconnect to the others through the shared port and
#      resume with since/epoch).
#
# Measures players held, connect and join admission rates, the event's time
# to everyone against its floor, dug latency against the ping floor at the
# same offered rate, claims fanned out, seq gaps and resets (nothing lost
# after the kill), and memory: RSS per node and per player, kernel slab per
# socket, load-generator memory per player.
#
#   scripts/million.sh [--players 1000000] [--nodes 60] [--procs auto] [--hunts 4] [--ramp auto]
#                      [--rate 15000] [--duration 60s] [--events 2] [--treasures 8]
#                      [--event-wait auto] [--ping-floor 20s]
#                      [--kill 1] [--redis-cluster] [--port 8080] [--admin-port 9000]
#                      [--redis-port 6380] [--src 127.0.0.2-127.0.0.250]
#                      [--handshake-timeout 5s] [--out DIR] [--limit 1800]
#
# --ramp auto connects at 2,000 players/s (what this 2-core machine sustained
# with the load generator on it and other work beside: 2,000-2,700/s).
# --event-wait auto allows 10 s plus 1 s per 25,000 players for each of the
# event and its floor (a step ends as soon as every player has it); 0 skips
# the event phase. --ping-floor 0 skips the dig floor. --events N spreads N
# events over the dig phase; --kill 0 kills no node; --procs auto runs one
# load-generator process per 18,000 players. Results go to --out (default
# bench/results/<UTC time>-million/): huntload's report (crowd.json,
# crowd.html, crowd.txt), mem.log (every 5 s: node RSS, huntload RSS, kernel
# slab, TCP sockets), the cluster's logs, commands.txt and summary.json /
# summary.txt. The whole run is bounded by --limit seconds; whatever the
# outcome, everything it started is stopped by PID (cluster.sh down; the
# load generator and the sampler by their PIDs).
#
# Players per node are capped by the file limit (20,000 per process here,
# 19,000 connections per node): 1,000,000 players need 56+ nodes, 60 leave
# room for the killed node's players. Run scripts/tune.sh first (as root).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

players=1000000 nodes=60 procs=auto hunts=4 ramp=auto rate=15000 duration=60s events=2 treasures=8 kill=1
event_wait=auto ping_floor=20s
engine=() port=8080 admin_port=9000 redis_port=6380 src=127.0.0.2-127.0.0.250 hs_timeout=5s out="" limit=1800
while [ $# -gt 0 ]; do
	case "$1" in
	--players) players="$2"; shift 2 ;;
	--nodes) nodes="$2"; shift 2 ;;
	--procs) procs="$2"; shift 2 ;;
	--hunts) hunts="$2"; shift 2 ;;
	--ramp) ramp="$2"; shift 2 ;;
	--rate) rate="$2"; shift 2 ;;
	--duration) duration="$2"; shift 2 ;;
	--events) events="$2"; shift 2 ;;
	--treasures) treasures="$2"; shift 2 ;;
	--event-wait) event_wait="$2"; shift 2 ;;
	--ping-floor) ping_floor="$2"; shift 2 ;;
	--kill) kill="$2"; shift 2 ;;
	--redis-cluster) engine=(--redis-cluster); shift ;;
	--port) port="$2"; shift 2 ;;
	--admin-port) admin_port="$2"; shift 2 ;;
	--redis-port) redis_port="$2"; shift 2 ;;
	--src) src="$2"; shift 2 ;;
	--handshake-timeout) hs_timeout="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	--limit) limit="$2"; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "million.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
for tool in jq curl redis-server; do
	command -v "$tool" >/dev/null || { echo "million.sh: needs $tool" >&2; exit 1; }
done
dur_s="${duration%s}"
[ "$ramp" = auto ] && ramp="$(((players + 1999) / 2000))s"
[ "$event_wait" = auto ] && event_wait="$((10 + players / 25000))s"
# Load-generator processes: 18,000 players each, under the 20,000 files a
# process may open here, so that fewer Go runtimes share the 2 CPUs.
[ "$procs" = auto ] && procs=$(((players + 17999) / 18000))
if [ $((nodes * 19000)) -lt $((players + players / 20)) ]; then
	echo "million.sh: $nodes nodes hold at most $((nodes * 19000)) players (19,000 each); use --nodes $(((players + players / 20) / 19000 + 1)) or more" >&2
	exit 2
fi
[ -n "$out" ] || out="$repo/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-million"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
mkdir -p "$out/bin"
deadline=$((SECONDS + limit))

(cd "$repo" && go build -o "$out/bin/huntgate" ./gateway/cmd/huntgate && go build -o "$out/bin/huntload" ./bench/cmd/huntload)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

key=million
cluster=("$repo/scripts/cluster.sh")
cdir="$out/cluster"
hl_pid="" smp_pid=""
cleanup() {
	[ -n "$hl_pid" ] && kill "$hl_pid" 2>/dev/null || true
	[ -n "$smp_pid" ] && kill "$smp_pid" 2>/dev/null || true
	"${cluster[@]}" down --dir "$cdir" --timeout 20 >/dev/null 2>&1 || true
	# The binaries were only for this run; the results stay.
	rm -rf "$out/bin" "$cdir/huntgate"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Idle timeout 10 min on both sides: a ping every 5 min per player. At
# huntgate's default (pings after 30 s) the keepalive traffic alone of 290,000
# idle players took 0.9 of this machine's 2 cores (see README).
# --test-endpoints: the event's floor (POST /v1/test/broadcast on each node).
node_flags=(--dev --api-key "$key" --loops 1 --idle-timeout 10m --log-level warn --test-endpoints)
up_cmd=("${cluster[@]}" up --nodes "$nodes" "${engine[@]}" --port "$port" --admin-port "$admin_port"
	--redis-port "$redis_port" --dir "$cdir" --bin "$out/bin/huntgate" --timeout 120 -- "${node_flags[@]}")
echo "${up_cmd[*]}" >"$out/commands.txt"
"${up_cmd[@]}"

node_pids=()
for ((i = 0; i < nodes; i++)); do
	read -r pid _ <"$cdir/pids/node-$i"
	node_pids+=("$pid")
done

# Memory sampler: every 5 s, the sum and largest RSS of the live nodes, the
# huntload processes' RSS, kernel slab, TCP sockets in use.
meminfo() { awk -v k="$1:" '$1 == k {print $2 * 1024}' /proc/meminfo; }
sample_mem() {
	local live=0 sum=0 maxr=0 r pid hl=0
	for pid in "${node_pids[@]}"; do
		r="$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$pid/status" 2>/dev/null || true)"
		[ -n "$r" ] || continue
		live=$((live + 1)) sum=$((sum + r))
		[ "$r" -gt "$maxr" ] && maxr=$r
	done
	# The load generator: the huntload under our timeout and its workers.
	local top
	top="$(pgrep -P "${hl_root:-0}" -x huntload || true)"
	for pid in $top $([ -n "$top" ] && pgrep -P "$top" || true); do
		r="$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$pid/status" 2>/dev/null || true)"
		hl=$((hl + ${r:-0}))
	done
	# CPU in clock ticks: the machine's busy time, and PID 1's, which on
	# some hosts is an agent whose work grows with the sockets open.
	echo "$(date +%s) $live $sum $maxr $hl $(meminfo Slab) $(awk '/^TCP:/ {print $3}' /proc/net/sockstat)" \
		"$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat) $(awk '{print $14 + $15}' /proc/1/stat 2>/dev/null || echo 0)"
}
echo "# unix_s live_nodes nodes_rss_sum node_rss_max huntload_rss slab_bytes tcp_inuse cpu_busy_ticks pid1_ticks" >"$out/mem.log"
sample_mem >>"$out/mem.log"

# Node 1 is the one killed (node 0 serves the admin API the load generator
# uses), halfway into the dig phase.
kill_flags=()
if [ "$kill" = 1 ] && [ "$nodes" -gt 1 ]; then
	kill_flags=(--kill-pid "${node_pids[1]}" --kill-after "$((dur_s / 2))s")
fi
# Replies and deliveries still in flight at the end are waited for: one event
# to 100,000 players took 5 s here, so 10 s plus 1 s per 25,000 players.
drain="$((10 + players / 25000))s"
# The dig phase's first third is its steady window: digs alone.
event_after="$((dur_s / 3))s"
event_rate="$(awk -v n="$events" -v d="$((dur_s - dur_s / 3))" 'BEGIN {printf "%.6f", (n > 0 ? n / d : 0)}')"
hl_cmd=("$out/bin/huntload" crowd --url "ws://127.0.0.1:$port" --admin "http://127.0.0.1:$admin_port" --api-key "$key"
	--dev --players "$players" --procs "$procs" --hunts "$hunts" --grid 1000 --treasures "$treasures" --ramp "$ramp" --rate "$rate"
	--duration "$duration" --event-rate "$event_rate" --event-after "$event_after" --drain "$drain" --src "$src" --idle-timeout 10m
	--event-wait "$event_wait" --floor-nodes "$([ "${event_wait%s}" = 0 ] && echo 0 || echo "$nodes")" --ping-floor "$ping_floor"
	--handshake-timeout "$hs_timeout" --hunt-prefix "m$(date +%s)" "${kill_flags[@]}"
	--json "$out/crowd.json" --html "$out/crowd.html")
echo "${hl_cmd[*]}" >>"$out/commands.txt"
remaining=$((deadline - SECONDS))
[ "$remaining" -gt 60 ] || { echo "million.sh: --limit leaves no time for the run" >&2; exit 1; }
timeout "$remaining" "${hl_cmd[@]}" >"$out/crowd.txt" 2>"$out/crowd.log" &
hl_pid=$!
hl_root=$hl_pid
(while sleep 5; do sample_mem; done) >>"$out/mem.log" 2>/dev/null &
smp_pid=$!
rc=0
wait "$hl_pid" || rc=$?
hl_pid=""
kill "$smp_pid" 2>/dev/null || true
smp_pid=""
sample_mem >>"$out/mem.log"
"${cluster[@]}" status --dir "$cdir" >"$out/status.txt" 2>&1 || true
cat "$out/crowd.txt"
if [ "$rc" -ne 0 ] || [ ! -s "$out/crowd.json" ]; then
	echo "million.sh: huntload failed (exit $rc); its log:" >&2
	tail -n 20 "$out/crowd.log" >&2
	exit 1
fi

# Memory at the peak (most TCP sockets): per node, per player, per socket.
base="$(grep -v '^#' "$out/mem.log" | head -n1)"
peak="$(grep -v '^#' "$out/mem.log" | sort -k7 -n | tail -n1)"
held="$(jq '.facts.connections' "$out/crowd.json")"
last="$(grep -v '^#' "$out/mem.log" | tail -n1)"
jq -n --argjson held "$held" --arg base "$base" --arg peak "$peak" --arg last "$last" --slurpfile r "$out/crowd.json" \
	--argjson players "$players" --argjson nodes "$nodes" '
	def f($s; $i): ($s | split(" ") | .[$i] | tonumber);
	def step: {name, bytes, sent, expected, delivered, lost, delivered_pct: (if .expected > 0 then 100 * .delivered / .expected else 0 end),
		deliveries_per_s, time_to_each: .oneway, time_to_everyone: .time_to_everyone};
	$r[0] as $r | $r.facts as $f | ($r.steps // []) as $st |
	{
		players: $players, nodes: $nodes, hunts: $r.config.hunts,
		players_held: $held,
		players_at_end: $f.connected_end,
		connect_s: $f.connect_s,
		connect_per_s: ($held / $f.connect_s),
		failed_dials: $f.failed_dials,
		joins: $f.joins,
		handshake: $r.ops.handshake,
		join: $r.ops.join,
		event_phase: ([ $st[] | select(.name == "event alone" or .name == "floor: plain broadcast") | step ]
			| if length == 2 then {event: .[0], floor: .[1], event_over_floor_p99: (if .[0].delivered < .[0].expected or .[1].delivered < .[1].expected then null elif .[1].time_to_everyone.p99_ms > 0 then .[0].time_to_everyone.p99_ms / .[1].time_to_everyone.p99_ms else null end)}
			  elif length == 1 then {event: .[0]} else null end),
		events: [ $st[] | select(.name != "event alone" and .name != "floor: plain broadcast") | step ],
		dig_floor: ($r.ops.pong // null),
		dug: $r.ops.dug,
		dug_over_floor_p99: (if ($r.ops.pong.p99_ms // 0) > 0 then $r.ops.dug.p99_ms / $r.ops.pong.p99_ms else null end),
		steady_s: (if $r.ops["dug.steady"] then ([$r.config.duration, (if $r.config.event_rate > 0 then $r.config.event_after else $r.config.duration end),
			(if $r.config.kill_pid != 0 then $r.config.kill_after else $r.config.duration end)] | min / 1e9) else null end),
		dug_steady: ($r.ops["dug.steady"] // null),
		dug_steady_over_floor_p99: (if ($r.ops.pong.p99_ms // 0) > 0 and $r.ops["dug.steady"] then $r.ops["dug.steady"].p99_ms / $r.ops.pong.p99_ms else null end),
		pings_per_s: (if $r.config.ping_for > 0 then ($r.ops.pong.count // 0) / $r.config.ping_for * 1e9 else null end),
		digs_per_s: ($r.ops.dug.count / $r.config.duration * 1e9),
		offered: {digs_sent: ($f.counters.digs_sent // 0), pings_sent: ($f.counters.pings_sent // 0),
			shed: ($f.counters.shed // 0), overloaded: ($f.counters.err_overloaded // 0)},
		claims_found: $f.counters.found,
		claimed_pushes: $f.counters.claimed,
		unanswered_digs: $f.unanswered,
		seq: $f.seq,
		killed_at_s: $f.killed_at_s,
		reconnects: ($f.counters.reconnects // 0),
		memory: {
			nodes_rss_sum: f($peak; 2), node_rss_avg: (f($peak; 2) / f($peak; 1)), node_rss_max: f($peak; 3),
			node_rss_per_player: ((f($peak; 2) - f($base; 2)) / $held),
			kernel_slab_per_socket: ((f($peak; 5) - f($base; 5)) / ((f($peak; 6) - f($base; 6)) | if . > 0 then . else 1 end)),
			tcp_sockets_at_peak: f($peak; 6),
			load_rss: $f.load_rss, load_rss_per_player: $f.load_rss_per_player
		},
		load_generator_cores: $f.own_cpu_cores,
		machine: ($last | split(" ") | if length >= 9 then
			(f($last; 0) - f($base; 0)) as $dt | {
				busy_cores: ((f($last; 7) - f($base; 7)) / 100 / $dt),
				pid1_cores: ((f($last; 8) - f($base; 8)) / 100 / $dt),
				seconds: $dt
			} else null end)
	}' >"$out/summary.json"
jq -r --argjson ncpu "$(nproc)" '
	"players held \(.players_held) of \(.players) on \(.nodes) nodes (\(.players_at_end) at the end), connect \(.connect_s | floor) s = \(.connect_per_s | floor)/s, failed dials \(.failed_dials)",
	"joins admitted \(.joins.admitted) (\(.joins.admitted_per_s | floor)/s over the connect phase, peak \(.joins.peak_admitted_s)/s), refused \(.joins.refused), retried \(.joins.retries), refused for good \(.joins.gave_up)",
	(.event_phase // empty | (.event, .floor // empty) | "\(.name): \(.delivered) of \(.expected) delivered (\(.delivered_pct)%), \(.bytes) B, time to everyone \(if .delivered < .expected then "never (not all delivered)" else "\(.time_to_everyone.p99_ms) ms" end) (\(.deliveries_per_s | floor) deliveries/s), time to each p50 \(.time_to_each.p50_ms) p99 \(.time_to_each.p99_ms) ms"),
	(.event_phase.event_over_floor_p99 // empty | "event / floor, time to everyone: \(. * 100 | round / 100)x"),
	(.events[] | "\(.name // "event"): \(.delivered) of \(.expected) delivered (\(.delivered_pct)%), time to each p50 \(.time_to_each.p50_ms) ms p99 \(.time_to_each.p99_ms) ms, time to everyone p50 \(.time_to_everyone.p50_ms) ms p99 \(.time_to_everyone.p99_ms) ms"),
	(.dig_floor // empty | "dig floor (pings at the dig rate, same sockets, no Redis): \(.count) answered, p50 \(.p50_ms) p99 \(.p99_ms) p99.9 \(.p999_ms) ms, errors \(.errors)"),
	"dug: \(.dug.count) (\(.digs_per_s | floor)/s) p50 \(.dug.p50_ms) p99 \(.dug.p99_ms) p99.9 \(.dug.p999_ms) ms, errors \(.dug.errors), unanswered \(.unanswered_digs); claims \(.claims_found), claimed pushes \(.claimed_pushes)",
	(.dug_over_floor_p99 // empty | "dug / dig floor, p99: \(. * 100 | round / 100)x"),
	(if .dug_steady then "steady digs (the first \(.steady_s) s of the dig phase, before its events and the kill): \(.dug_steady.count) (\(.dug_steady.count / .steady_s | floor)/s) p50 \(.dug_steady.p50_ms) p99 \(.dug_steady.p99_ms) p99.9 \(.dug_steady.p999_ms) ms; / dig floor p99: \(.dug_steady_over_floor_p99 // 0 | . * 100 | round / 100)x" else empty end),
	"offered: \(.offered.pings_sent) pings and \(.offered.digs_sent) digs sent, \(.offered.shed) shed unsent by the load generator (over 1 s behind), \(.offered.overloaded) refused overloaded by the gateway",
	"seq: updates \(.seq.updates) gaps \(.seq.gaps) resets \(.seq.resets) replayed \(.seq.replayed); node killed at \(.killed_at_s) s, reconnects \(.reconnects)",
	(.machine // empty | "machine over the run (\(.seconds) s): busy \(.busy_cores * 100 | round / 100) of \($ncpu) cores, of which PID 1 (not ours) \(.pid1_cores * 100 | round / 100)"),
	"memory at the peak: nodes \(.memory.nodes_rss_sum / 1048576 | floor) MiB (avg \(.memory.node_rss_avg / 1048576 | floor) MiB, max \(.memory.node_rss_max / 1048576 | floor) MiB per node), \(.memory.node_rss_per_player | floor) B per player; kernel slab \(.memory.kernel_slab_per_socket | floor) B per socket (\(.memory.tcp_sockets_at_peak) sockets); load generator \(.memory.load_rss / 1048576 | floor) MiB, \(.memory.load_rss_per_player | floor) B per player"
' "$out/summary.json" | tee "$out/summary.txt"
