#!/bin/bash
# benches/ipvs/phases.sh DIRECTOR_BIN [N] -- runs INSIDE the lab VM: where director's time goes.
# Start-up (ROUNDS whole processes each: the floor with no arguments, `director --version`,
# `director ipvs restore < /dev/null`), then one N x 10 table: the floor's add and dump, and
# director's restore and save with DIRECTOR_TIMINGS=1 (per-phase times on stderr).
# Start it from the host: tests/lab/run "benches/ipvs/phases.sh $CARGO_TARGET_DIR/release/director 1000"
set -u
BIN=${1:?usage: phases.sh DIRECTOR_BIN [N]}
N=${2:-1000}
ROUNDS=${ROUNDS:-10}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d)
cp "$BIN" "$W/director" && BIN=$W/director
gcc -O2 -o "$W/floor" "$REPO/benches/floor/ipvs-floor.c" || exit 1
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
best() { local b=; for _ in $(seq 1 "$ROUNDS"); do t=$(ms "$@"); if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi; done; echo "$b"; }
ip netns add ph && ip netns exec ph ip link set lo up
echo "start-up, best of $ROUNDS (ms): floor (no args) $(best ip netns exec ph "$W/floor")," \
  "director --version $(best ip netns exec ph "$BIN" --version)," \
  "director ipvs restore </dev/null $(best sh -c "ip netns exec ph $BIN ipvs restore </dev/null")," \
  "director ipvs save (empty) $(best ip netns exec ph "$BIN" ipvs save)"
awk -v N="$N" -v R=10 'BEGIN{for(s=0;s<N;s++){v=sprintf("10.1.%d.%d:80",int(s/250),s%250+1); print "-A -t " v " -s wrr";
  for(r=1;r<=R;r++) printf "-a -t %s -r 10.2.%d.%d:80 -g -w 1\n", v, s%200, r}}' > "$W/gen.txt"
ip netns del ph
# Each contender programs a fresh namespace (a flushed one keeps its real servers in the kernel's
# trash list, which makes the next adds slower).
for round in 1 2 3; do
  ip netns add ph && ip netns exec ph ip link set lo up
  ip netns exec ph "$W/floor" add "$N" 10 2>&1 | tail -1
  ip netns exec ph "$W/floor" dump 2>&1 | tail -1
  ip netns exec ph ipvsadm -C; ip netns del ph; sync; sleep 1
  ip netns add ph && ip netns exec ph ip link set lo up
  DIRECTOR_TIMINGS=1 ip netns exec ph "$BIN" ipvs restore < "$W/gen.txt"
  DIRECTOR_TIMINGS=1 ip netns exec ph "$BIN" ipvs save > /dev/null
  ip netns exec ph ipvsadm -C; ip netns del ph; sync; sleep 1
done
rm -rf "$W"
