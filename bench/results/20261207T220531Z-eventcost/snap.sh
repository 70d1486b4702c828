#!/usr/bin/env bash
# snap: per process of huntgate/huntload/redis-server: syscr syscw run_ns wait_ns slices vol nonvol
for pid in $(pgrep -x huntgate; pgrep -x huntload; pgrep -x redis-server); do
  [ -r /proc/$pid/io ] || continue
  c=$(cat /proc/$pid/comm)
  read r w < <(awk '/^syscr/{r=$2} /^syscw/{w=$2} END{print r, w}' /proc/$pid/io 2>/dev/null)
  read run wait sl < <(cat /proc/$pid/task/*/schedstat 2>/dev/null | awk '{a+=$1; b+=$2; c+=$3} END{print a+0, b+0, c+0}')
  read v nv < <(cat /proc/$pid/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/{a+=$2} /^nonvoluntary_ctxt/{b+=$2} END{print a+0, b+0}')
  echo "$pid $c $r $w $run $wait $sl $v $nv"
done
