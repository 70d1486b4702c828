#!/bin/sh
# The webhook budget runs, one after the other under one hold of the
# measurement lock: flock /work/measure.lock sh run.sh (from this folder).
# /tmp/hooks-gateway.test is built with: go test -c -o /tmp/hooks-gateway.test ./gateway/
T=/tmp/hooks-gateway.test
B="-test.run ^$ -test.benchtime 1x -test.v"
cd "$(dirname "$0")"
OUT=$PWD
cd ../../../gateway
# 1. memory engine, receiver in the process (as the earlier 1.25x figure), 60 s outage
env HG_WEBHOOK_STEADY=15 HG_WEBHOOK_OUTAGE=60 HG_WEBHOOK_ROUNDS=3 $T $B -test.bench 'WebhookBudget$' > $OUT/memory.txt 2>&1
# 2. memory engine, receiver in its own process
env HG_WEBHOOK_RECEIVER_PROC=1 HG_WEBHOOK_STEADY=15 HG_WEBHOOK_OUTAGE=1 HG_WEBHOOK_ROUNDS=3 $T $B -test.bench 'WebhookBudget$' > $OUT/memory-recvproc.txt 2>&1
# 3. Redis engine (redis-server started by the benchmark), receiver in its own process, 60 s outage
env HG_WEBHOOK_RECEIVER_PROC=1 HG_WEBHOOK_STEADY=15 HG_WEBHOOK_OUTAGE=60 HG_WEBHOOK_ROUNDS=3 $T $B -test.bench 'WebhookBudgetRedis' > $OUT/redis.txt 2>&1
# 4. memory engine, pinned loops (kernel CPU and run-queue time of the loop threads), receiver in its own process
env HG_WEBHOOK_PIN=1 HG_WEBHOOK_RECEIVER_PROC=1 HG_WEBHOOK_STEADY=15 HG_WEBHOOK_OUTAGE=1 HG_WEBHOOK_ROUNDS=3 $T $B -test.bench 'WebhookBudget$' > $OUT/memory-pinned.txt 2>&1
