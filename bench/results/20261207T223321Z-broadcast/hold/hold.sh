#!/usr/bin/env bash
# hold.sh OUTDIR: RSS per idle connection (huntload hold, 10,000 connections), this build (/tmp/bcast/huntgate, built from 681d3ea) and the build before (/tmp/bcast/huntgate.old, 34a4033) alternately, 2 rounds, a fresh server per run; run as: flock /work/measure.lock hold.sh OUTDIR
set -u
out=$1; mkdir -p $out
ulimit -n 20000
new=/tmp/bcast/huntgate

for r in 1 2; do
for side in new old; do
  b=$new; [ $side = old ] && b=/tmp/bcast/huntgate.old
  $b --addr 127.0.0.1:32180 --admin-addr 127.0.0.1:32181 --dev --test-endpoints --api-key bench --rate -1 --log-level warn --loops 2 2>>$out/hold-server.log &
  pid=$!
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/32180) 2>/dev/null && break; sleep 0.05; done
  cmd="/tmp/bcast/huntload hold --url ws://127.0.0.1:32180 --pid $pid --src 127.0.0.2-127.0.0.60 --players 10000 --duration 20s --json $out/hold-$side-r$r.json"
  echo "[$side: $b] $cmd" >> $out/hold-commands.txt
  $cmd > $out/hold-$side-r$r.txt 2>$out/hold-$side-r$r.progress
  grep "^server: rss" $out/hold-$side-r$r.txt
  kill $pid; wait $pid 2>/dev/null
done
done
