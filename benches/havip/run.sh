#!/bin/bash
# benches/havip/run.sh [ROUNDS] -- N VRRP instances on one interface (N = 1, 10, 100; VRIDs 1..N)
# at 100 ms adverts: CPU per advert and the drops the instances' status counters report.
# A veth pair between two network namespaces; each side runs one process (the havip example
# `bench_instances`) holding all N instances, side a at priority 200 (masters), side b at 100
# (backups). Each process settles SETTLE s (default 3) then measures a WINDOW s (default 10)
# window: its CPU time (CLOCK_PROCESS_CPUTIME_ID) / (adverts sent + received), and the drops.
# Prints one line per side per round and the median over ROUNDS (default 3) per binary.
# Needs root. BINS="label=path ..." (default: after=target/release/examples/bench_instances),
# build with: cargo build --release -p havip --example bench_instances
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-3}; SETTLE=${SETTLE:-3}; WINDOW=${WINDOW:-10}; SIZES=${SIZES:-"1 10 100"}
BINS=${BINS:-after=$ROOT/target/release/examples/bench_instances}
ID=hb$$; DIR=$(mktemp -d /tmp/havip-bench.XXXXXX)
ns() { ip netns exec "$@"; }
cleanup() {
  local n
  for n in a b; do ip netns pids "$ID-$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del "$ID-$n" 2>/dev/null; done
}
trap 'cleanup; rm -rf "$DIR"' EXIT
trap 'exit 130' INT TERM
setup() { # fresh namespaces per run: no VIP or socket left from the last one
  local n; cleanup; ID=hb$$$1
  ip netns add "$ID-a"; ip netns add "$ID-b"
  ip link add "${ID}x" netns "$ID-a" type veth peer name "${ID}y" netns "$ID-b"
  ns "$ID-a" ip link set "${ID}x" name eth0; ns "$ID-b" ip link set "${ID}y" name eth0
  ns "$ID-a" ip addr add 10.98.0.1/24 dev eth0; ns "$ID-b" ip addr add 10.98.0.2/24 dev eth0
  for n in a b; do ns "$ID-$n" ip link set lo up; ns "$ID-$n" ip link set eth0 up; done
}
RES=$DIR/results; : > "$RES"; run=0
for spec in $BINS; do
  label=${spec%%=*}; bin=${spec#*=}
  [ -x "$bin" ] || { echo "missing $bin (build: cargo build --release -p havip --example bench_instances)" >&2; exit 2; }
  for n in $SIZES; do
    for r in $(seq "$ROUNDS"); do
      run=$((run + 1)); setup $run
      ns "$ID-a" "$bin" eth0 "$n" 200 10 "$SETTLE" "$WINDOW" > "$DIR/a.out" 2>"$DIR/a.err" &
      pa=$!
      ns "$ID-b" "$bin" eth0 "$n" 100 10 "$SETTLE" "$WINDOW" > "$DIR/b.out" 2>"$DIR/b.err" &
      pb=$!
      wait $pa $pb
      for side in a b; do
        line=$(cat "$DIR/$side.out")
        [ -n "$line" ] || { echo "$label n=$n side $side failed: $(cat "$DIR/$side.err")" >&2; continue; }
        echo "$label side=$side round=$r $line"
        echo "$label $n $side $line" >> "$RES"
      done
    done
  done
done
echo
echo "median over $ROUNDS rounds (side a: N masters, side b: N backups; window ${WINDOW} s):"
printf '%-8s %5s %-4s %10s %10s %10s %12s\n' binary N side adverts cpu_ms us/advert drops
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
med() { sort -n | awk '{a[NR]=$1} END{if(NR) print a[int((NR+1)/2)]; else print "n/a"}'; }
for spec in $BINS; do label=${spec%%=*}; for n in $SIZES; do for side in a b; do
  rows=$(grep "^$label $n $side " "$RES")
  ad=$(echo "$rows" | while read -r l; do tx=$(echo "$l" | val adverts_tx); rx=$(echo "$l" | val adverts_rx); echo $((tx + rx)); done | med)
  printf '%-8s %5s %-4s %10s %10s %10s %12s\n' "$label" "$n" "$side" "$ad" \
    "$(echo "$rows" | val cpu_ms | med)" "$(echo "$rows" | val cpu_us_per_advert | med)" "$(echo "$rows" | val drops | med)"
done; done; done
