#!/bin/sh
# Second hold of the lock: the same loads with GOMAXPROCS=3, which is what
# the huntgate binary sets for 2 loops (conn.ReserveSpareP: one P more than
# event loops); the test binary otherwise runs with GOMAXPROCS=2 (the CPUs).
T=/tmp/hooks-gateway.test
B="-test.run ^$ -test.benchtime 1x -test.v"
cd "$(dirname "$0")"
OUT=$PWD
cd ../../../gateway
env GOMAXPROCS=3 HG_WEBHOOK_STEADY=15 HG_WEBHOOK_OUTAGE=1 HG_WEBHOOK_ROUNDS=3 $T $B -test.bench 'WebhookBudget$' > $OUT/memory-p3.txt 2>&1
env GOMAXPROCS=3 HG_WEBHOOK_RECEIVER_PROC=1 HG_WEBHOOK_STEADY=15 HG_WEBHOOK_OUTAGE=1 HG_WEBHOOK_ROUNDS=3 $T $B -test.bench 'WebhookBudget$' > $OUT/memory-recvproc-p3.txt 2>&1
env GOMAXPROCS=3 HG_WEBHOOK_RECEIVER_PROC=1 HG_WEBHOOK_STEADY=15 HG_WEBHOOK_OUTAGE=1 HG_WEBHOOK_ROUNDS=3 $T $B -test.bench 'WebhookBudgetRedis' > $OUT/redis-p3.txt 2>&1
