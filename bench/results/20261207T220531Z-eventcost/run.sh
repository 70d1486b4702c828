#!/usr/bin/env bash
# crowd at P players / N nodes: event phase + floor + ping floor + digs; perf stat per group during the event phase.
set -u
TRIG=${TRIG:-85} P=${P:-100000} N=${N:-8} RATE=${RATE:-15000}
D=${D:-/tmp/million/exp2}
BIN=${BIN:-/tmp/million}
rm -rf $D; mkdir -p $D
cd /work/wt/million
ulimit -n $(ulimit -Hn)
scripts/cluster.sh up --nodes $N --port 22080 --admin-port 22000 --redis-port 22500 --dir $D/cluster --bin $BIN/huntgate --timeout 60 -- --dev --api-key k --loops 1 --idle-timeout 10m --log-level warn --pprof --test-endpoints >$D/up.txt
gp=$(for f in $D/cluster/pids/node-*; do read p _ <$f; echo -n "$p,"; done); gp=${gp%,}
read rp _ < $D/cluster/pids/redis-22500
$BIN/huntload crowd --url ws://127.0.0.1:22080 --admin http://127.0.0.1:22000 --api-key k --dev --players $P --procs $(( (P+17999)/18000 )) --hunts 4 --grid 1000 --treasures 8 --ramp $((P/4000))s --rate $RATE --duration ${DUR:-20s} --event-rate 0 --drain 10s --src 127.0.0.2-127.0.0.250 --idle-timeout 10m --hunt-prefix x$(date +%s) --event-wait 30s --floor-nodes $N --ping-floor ${PF:-10s} --json $D/crowd.json >$D/crowd.txt 2>$D/crowd.log &
hl=$!
until [ "$(grep -o "connected *[0-9]*" $D/crowd.log 2>/dev/null | tail -1 | awk '{print $2}')" -ge $((P*TRIG/100)) ] 2>/dev/null; do sleep 0.2; kill -0 $hl 2>/dev/null || break; done
lp=$(pgrep -P $hl | tr '\n' ',' ); lp=$hl,${lp%,}
EV=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto
/tmp/million/snap.sh > $D/snap0
perf stat -x, -I 1000 -e $EV -p $gp -o $D/gw.stat -- sleep ${WIN:-20} &
perf stat -x, -I 1000 -e $EV -p $lp -o $D/hl.stat -- sleep ${WIN:-20} &
perf stat -x, -I 1000 -e $EV -p $rp -o $D/redis.stat -- sleep ${WIN:-20} &
(sleep ${PPS:-3}; for i in 0 1; do curl -s -o $D/node$i.pprof "http://127.0.0.1:$((22000+i))/debug/pprof/profile?seconds=${PPD:-12}" & done; wait) &
wait %2 %3 %4 2>/dev/null
/tmp/million/snap.sh > $D/snap1
wait $hl
scripts/cluster.sh down --dir $D/cluster --timeout 10
