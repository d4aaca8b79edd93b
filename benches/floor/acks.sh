#!/bin/bash
# benches/floor/acks.sh [DIRECTOR_BIN] [N] -- runs INSIDE the lab VM:
#   tests/lab/run "benches/floor/acks.sh target/x86_64-unknown-linux-gnu/release/director 1000"
# What an ack per request costs the kernel: the plain-C floor (benches/floor/ipvs-floor.c) built
# twice, with NLM_F_ACK on every request (the reference every benchmark compares with) and with
# -DSILENT (no ack: success is silent, the errors queued by each sendmsg read without waiting),
# each programming the same N x 10 table into a fresh namespace, alternately, RUNS rounds
# (default 7). With DIRECTOR_BIN, `director ipvs restore` of the same table too (its "apply"
# phase, DIRECTOR_TIMINGS=1: the library's batch, which sends without acks). Prints per-round
# times and the median and best of the per-round ratios.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-}
N=${2:-1000}
RUNS=${RUNS:-7}
W=$(mktemp -d)
gcc -O2 -o "$W/acked" "$REPO/benches/floor/ipvs-floor.c" &&
  gcc -O2 -DSILENT -o "$W/silent" "$REPO/benches/floor/ipvs-floor.c" || exit 1
if [ -n "$BIN" ]; then
  cp "$BIN" "$W/director" && BIN=$W/director
  awk -v N="$N" -v R=10 'BEGIN{for(s=0;s<N;s++){v=sprintf("10.1.%d.%d:80",int(s/250),s%250+1); print "-A -t " v " -s wrr";
    for(r=1;r<=R;r++) printf "-a -t %s -r 10.2.%d.%d:80 -g -w 1\n", v, s%200, r}}' > "$W/gen.txt"
fi
ms_of() { sed -n 's/.*: \([0-9]*\) ms, \([0-9]*\) errors.*/\1 \2/p'; }
# fresh CMD... -> runs CMD in a new namespace, checks the table, prints CMD's stderr
fresh() {
  ip netns add ak && ip netns exec ak ip link set lo up
  out=$(ip netns exec ak "$@" 2>&1 >/dev/null)
  lines=$(ip netns exec ak ipvsadm -Sn | wc -l)
  ip netns exec ak ipvsadm -C; ip netns del ak; sync; sleep 0.5
  [ "$lines" = $((N * 11)) ] || { echo "table has $lines lines, not $((N * 11)): $out" >&2; exit 1; }
  echo "$out"
}
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
best() { sort -g | head -1; }
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) kernel $(uname -r), $(nproc) CPUs, ${N} x 10, $RUNS rounds"
rs=; rd=; rds=
for round in $(seq 1 "$RUNS"); do
  read -r a ea <<<"$(fresh "$W/acked" add "$N" 10 | ms_of)"
  read -r s es <<<"$(fresh "$W/silent" add "$N" 10 | ms_of)"
  [ "$ea" = 0 ] && [ "$es" = 0 ] || { echo "errors: acked $ea, silent $es" >&2; exit 1; }
  line="round $round: floor with acks $a ms, floor silent $s ms (silent/acked $(ratio "$s" "$a"))"
  rs="$rs $(ratio "$s" "$a")"
  if [ -n "$BIN" ]; then
    d=$(fresh sh -c "DIRECTOR_TIMINGS=1 $BIN ipvs restore < $W/gen.txt" | sed -n 's/.*apply \([0-9.]*\) ms.*/\1/p')
    line="$line, director restore's apply $d ms (/acked $(ratio "$d" "$a"), /silent $(ratio "$d" "$s"))"
    rd="$rd $(ratio "$d" "$a")"; rds="$rds $(ratio "$d" "$s")"
  fi
  echo "$line"
done
echo "median (best round): silent/acked $(echo "$rs" | tr ' ' '\n' | grep . | median) ($(echo "$rs" | tr ' ' '\n' | grep . | best))"
if [ -n "$BIN" ]; then
  echo "median (best round): director/acked floor $(echo "$rd" | tr ' ' '\n' | grep . | median) ($(echo "$rd" | tr ' ' '\n' | grep . | best)), director/silent floor $(echo "$rds" | tr ' ' '\n' | grep . | median) ($(echo "$rds" | tr ' ' '\n' | grep . | best))"
fi
rm -rf "$W"
