#!/bin/sh
# Webhook budget with/without webhooks, one event loop, pinned (loop alone on
# CPU 0; the rest of the process, the receiver process and redis-server on
# CPU 1) and unpinned (everything on both CPUs), all under one hold of the
# lock: flock /work/measure.lock sh run.sh (from anywhere).
# /tmp/hookpin-gateway.test is built with: go test -c -o /tmp/hookpin-gateway.test ./gateway/
# GOMAXPROCS=2 is what huntgate sets for 1 loop (one P more than loops); the
# test binary would otherwise take 1 under taskset -c 1.
T=/tmp/hookpin-gateway.test
B="-test.run ^$ -test.benchtime 1x -test.v"
cd "$(dirname "$0")"
OUT=$PWD
cd ../../../gateway
E="GOMAXPROCS=2 HG_WEBHOOK_LOOPS=1 HG_WEBHOOK_RECEIVER_PROC=1 HG_WEBHOOK_STEADY=10 HG_WEBHOOK_OUTAGE=0.5 HG_WEBHOOK_ROUNDS=3"
# affinity of every thread of the benchmark and of its children (receiver,
# redis-server), sampled while loads run
snap() { # $1 pid, $2 file
	for t in 4 20 25; do
		sleep $t
		kill -0 $1 2>/dev/null || return
		echo "== +${t}s" >> $2
		for p in $1 $(pgrep -P $1); do
			for s in /proc/$p/task/*/status; do
				printf '%s %s %s\n' "$(grep -h '^Name:' $s | cut -f2)" "$(grep -h '^Pid:' $s | cut -f2)" "$(grep -h '^Cpus_allowed_list:' $s | cut -f2)"
			done
			ps -L -o pid,tid,psr,comm -p $p | tail -n +2
		done >> $2 2>/dev/null
	done
}
run() { # $1 name, $2 bench, $3 pinned?
	if [ "$3" = pin ]; then
		env $E HG_WEBHOOK_CPUS=0 taskset -c 1 $T $B -test.bench "$2" > $OUT/$1.txt 2>&1 &
	else
		env $E $T $B -test.bench "$2" > $OUT/$1.txt 2>&1 &
	fi
	pid=$!
	snap $pid $OUT/$1-affinity.txt &
	wait $pid
}
run memory-pinned 'WebhookBudget$' pin
run memory-unpinned 'WebhookBudget$' nopin
run redis-pinned 'WebhookBudgetRedis' pin
run redis-unpinned 'WebhookBudgetRedis' nopin
wait
