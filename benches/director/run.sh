#!/bin/bash
# benches/director/run.sh DIRECTOR_BIN [SIZES] -- runs INSIDE the lab VM (benches/director/bench.sh
# starts it). Per size N (services x 10 real servers, DR; default "1000 10000"), RUNS rounds of:
#
#   1. takeover: `director run` in namespace A (priority 100) with the N x 10 services, alone on
#      a veth pair: it becomes Master and programs everything before its VIP goes up. Measured:
#      the engine's reconcile (read by key + diff + apply, from `director status`: took_ms).
#   2. re-takeover: namespace B runs the same instance at priority 200 with no services; it
#      preempts, A withdraws everything (the kernel's dest trash now holds A's real servers); B is
#      stopped (SIGTERM: priority 0) and A takes over again. Measured the same way.
#   3. the floor: the plain-C program (benches/floor/ipvs-floor.c) adds the same number
#      of services and real servers in a fresh namespace; its own elapsed time (no start-up,
#      like the daemon's reconcile).
#   4. memory: VmRSS / VmHWM of A holding the table.
# Then once, the 2,300 x 37,000 table: A programs it, one weight changes in the file, SIGHUP:
# the reload's reconcile (ops and took_ms). Ratios are per round; summary lines give the median
# of the per-round ratios and the best round. Every namespace is flushed and deleted, and the CPUs
# left to settle, before the next contender runs.
set -u
BIN=${1:?usage: run.sh DIRECTOR_BIN [SIZES]}
SIZES=${2:-1000 10000}
RUNS=${RUNS:-3}
R=10
REPO=$(cd "$(dirname "$0")/../.." && pwd)
FLOOR_SRC=${FLOOR_SRC:-$REPO/benches/floor/ipvs-floor.c}
W=$(mktemp -d)
cp "$BIN" "$W/director" && BIN=$W/director
gcc -O2 -o "$W/floor" "$FLOOR_SRC" || { echo "cannot build the floor from $FLOOR_SRC" >&2; exit 1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
best() { tr ' ' '\n' | grep . | sort -g | head -1; }
settle() { sync; sleep "${SETTLE:-2}"; }
# status NS FIELD: a field of the first instance's IPVS view (jq-free: python3).
status() {
  ip netns exec "$1" "$BIN" status --json --socket "$W/$1.sock" 2>/dev/null |
    python3 -c "import json,sys; d=json.load(sys.stdin)['instances'][0]; i=d.get('ipvs') or {}; r=i.get('last_reconcile') or {}; t=i.get('last_takeover') or {}; print({'state': d['state'], 'programming': i.get('programming'), 'trigger': r.get('trigger'), 'ops': r.get('ops'), 'took_ms': r.get('took_ms'), 'outcome': r.get('outcome'), 'takeover_at': t.get('at_unix_ms'), 'takeover_ms': t.get('took_ms'), 'takeover_ops': t.get('ops')}['$2'])" 2>/dev/null
}
# wait_for SECONDS CMD...: polls every 50 ms.
wait_for() { local until=$(( $(date +%s) + $1 )); shift; while [ "$(date +%s)" -le $until ]; do "$@" && return 0; sleep 0.05; done; return 1; }
programmed_by() { [ "$(status "$1" programming)" = programmed ] && [ "$(status "$1" trigger)" = "$2" ]; }
# took_over NS [AFTER]: programmed by a takeover newer than AFTER (ms since the epoch).
took_over() { local at; at=$(status "$1" takeover_at); [ "$(status "$1" programming)" = programmed ] && [ "$at" != None ] && [ -n "$at" ] && [ "$at" -gt "${2:-0}" ]; }
withdrawn() { [ "$(status "$1" programming)" = withdrawn ]; }
# logged NS TRIGGER N: the daemon logged at least N finished reconciles with this trigger. The
# waits that overlap a measured reconcile poll this (a grep every 200 ms), not the status socket:
# `status` starts python3, which costs a vCPU for a second under emulation and would slow the
# very reconcile it waits for (the floor runs without such a neighbour).
logged() { [ "$(grep -c "reconciled.*trigger=\"$2\"" "$W/$1.log")" -ge "$3" ]; }
wait_log() { local until=$(( $(date +%s) + $1 )); shift; while [ "$(date +%s)" -le $until ]; do logged "$@" && return 0; sleep 0.2; done; return 1; }
master() { [ "$(status "$1" state)" = MASTER ]; }
pair_up() { # two namespaces joined by a veth pair, 10.99.0.1 (A) and 10.99.0.2 (B)
  for n in A B; do ip netns add $n; ip netns exec $n ip link set lo up; done
  ip link add vA netns A type veth peer name vB netns B
  ip netns exec A ip link set vA name eth0; ip netns exec B ip link set vB name eth0
  ip netns exec A ip addr add 10.99.0.1/24 dev eth0; ip netns exec B ip addr add 10.99.0.2/24 dev eth0
  for n in A B; do ip netns exec $n ip link set eth0 up; done
}
start() { # NS CONFIG
  ip netns exec "$1" "$BIN" run -c "$2" --state-dir "$W/$1-state" > "$W/$1.log" 2>&1 &
  echo $! > "$W/$1.pid"
  wait_for 30 test -S "$W/$1.sock"
}
stop() { kill -TERM "$(cat "$W/$1.pid")" 2>/dev/null; wait "$(cat "$W/$1.pid")" 2>/dev/null; }
teardown() { for n in A B; do ip netns exec $n ipvsadm -C 2>/dev/null; ip netns del $n 2>/dev/null; done; settle; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) kernel $(uname -r), $(nproc) CPUs; floor: $FLOOR_SRC"
fail=0
for N in $SIZES; do
  python3 "$REPO/benches/director/gen.py" "$N" $R 100 "$W/A.sock" > "$W/a-$N.yaml"
  python3 "$REPO/benches/director/gen.py" 0 0 200 "$W/B.sock" > "$W/b.yaml"
  rT=; rRe=; tTs=; tRs=; tFs=
  for run in $(seq 1 "$RUNS"); do
    pair_up
    start A "$W/a-$N.yaml"
    if ! wait_log 120 A takeover 1 || ! took_over A; then echo "takeover ${N}x$R: not programmed"; tail -5 "$W/A.log"; fail=1; stop A; teardown; continue; fi
    tT=$(status A takeover_ms); oT=$(status A takeover_ops); first=$(status A takeover_at)
    rss=$(awk '/VmRSS/{print $2}' "/proc/$(cat "$W/A.pid")/status"); hwm=$(awk '/VmHWM/{print $2}' "/proc/$(cat "$W/A.pid")/status")
    lines=$(ip netns exec A ipvsadm -Sn | wc -l)
    start B "$W/b.yaml"
    wait_for 30 master B; wait_for 120 withdrawn A
    left=$(ip netns exec A ipvsadm -Sn | wc -l)
    stop B
    wait_log 120 A takeover 2; wait_for 30 took_over A "$first"
    tR=$(status A takeover_ms); oR=$(status A takeover_ops)
    # With RUST_LOG=director=debug: where each takeover's time went.
    grep -o 'reconcile phases.*' "$W/A.log" | sed 's/^/  /'
    stop A; teardown
    ip netns add F; ip netns exec F ip link set lo up
    tF=$(ip netns exec F "$W/floor" add "$N" $R 2>&1 >/dev/null | sed -n 's/.*: \([0-9]*\) ms.*/\1/p')
    ip netns exec F ipvsadm -C; ip netns del F; settle
    echo "takeover ${N}x$R run $run: director ${tT} ms (${oT} ops, $lines lines), re-takeover ${tR} ms (${oR} ops; $left lines left on A while B was Master), floor ${tF} ms; takeover/floor $(ratio "$tT" "$tF"), re-takeover/takeover $(ratio "$tR" "$tT"); daemon VmRSS ${rss} kB, VmHWM ${hwm} kB"
    rT="$rT $(ratio "$tT" "$tF")"; rRe="$rRe $(ratio "$tR" "$tT")"
  done
  echo "median ${N}x$R: takeover/floor $(echo "$rT" | median) (best round $(echo "$rT" | best)), re-takeover/takeover $(echo "$rRe" | median) (best round $(echo "$rRe" | best))"
done

# Reload of one weight in a 2,300 x 37,000 table (keepalived #2318: 100-130 s).
if [ "${RELOAD:-1}" = 0 ]; then rm -rf "$W"; exit $fail; fi
python3 "$REPO/benches/director/gen.py" 2300 37000 100 "$W/A.sock" 1 total > "$W/big.yaml"
pair_up
start A "$W/big.yaml"
if wait_log 300 A takeover 1 && took_over A; then
  tT=$(status A takeover_ms)
  python3 "$REPO/benches/director/gen.py" 2300 37000 100 "$W/A.sock" 5 total > "$W/big.yaml"
  s=$(date +%s%N)
  kill -HUP "$(cat "$W/A.pid")"
  wait_log 120 A reload 1
  e=$(date +%s%N)
  echo "reload 2300x37000: takeover ${tT} ms; one weight changed: $(status A ops) op(s), reconcile $(status A took_ms) ms, SIGHUP to programmed $(( (e - s) / 1000000 )) ms (file parse + validate included)"
  [ "$(status A ops)" = 1 ] || { echo "reload: expected 1 operation"; fail=1; }
else
  echo "reload 2300x37000: takeover not programmed"; tail -5 "$W/A.log"; fail=1
fi
stop A; teardown
exit $fail
