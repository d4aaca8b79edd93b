#!/bin/sh
# Health-check load against the plain-C floor, in a private network namespace (root):
#   acceptor.c on 0.0.0.0:80 as the target (127.0.0.0/8 is all local on lo);
#   check-floor.c: unthrottled connects to 100 addresses -> CPU per check (the floor);
#   paced-floor.c (here): the same loop paced at 10,000 connects/s in 1 ms slots -> CPU per check
#   of a C checker that runs at a rate like ours (the wake-ups a paced checker cannot avoid);
#   load (crates/health bench): 100 backends at 10 ms (the paced floor's addresses and rate),
#   1,000 services x 10 real servers over 100 backends at 1 s, and 10,000 distinct backends at
#   1 s -> probes/s achieved vs asked, CPU per probe, peak RSS.
# usage: benches/health/run.sh [SECONDS]   (from the repository root)
set -eu
SECS=${1:-20}
FLOOR=${FLOOR:-/work/shared/lab/floor}
OUT=$(mktemp -d)
cc -O2 -o "$OUT/acceptor" "$FLOOR/acceptor.c"
cc -O2 -o "$OUT/check-floor" "$FLOOR/check-floor.c"
cc -O2 -o "$OUT/paced-floor" benches/health/paced-floor.c
cargo build --release -q --offline -p health --bench load
LOAD=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -1)
NS=hbench$$
ip netns add "$NS"
trap 'ip netns pids "$NS" | xargs -r kill; ip netns del "$NS"; rm -rf "$OUT"' EXIT
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" "$OUT/acceptor" 80
echo "== $(date -u '+%F %T UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== floor: check-floor 127.0.1. 100 200 $SECS"
ip netns exec "$NS" "$OUT/check-floor" 127.0.1. 100 200 "$SECS"
echo "== paced floor: paced-floor 127.0.1. 100 10000 $SECS"
ip netns exec "$NS" "$OUT/paced-floor" 127.0.1. 100 10000 "$SECS"
echo "== health: 100 backends at 10 ms (10,000/s, the paced floor's addresses and rate)"
ip netns exec "$NS" "$LOAD" 127.0.1.101 100 100 1 10 "$SECS"
echo "== paced floor at 100/s (the rate of 1,000 x 10 over 100 backends at 1 s): paced-floor 127.0.1. 100 100 $SECS"
ip netns exec "$NS" "$OUT/paced-floor" 127.0.1. 100 100 "$SECS"
echo "== health: 1,000 services x 10 real servers over 100 backends, 1 s"
ip netns exec "$NS" "$LOAD" 127.0.1.101 100 1000 10 1000 "$SECS"
echo "== health: 10,000 distinct backends, 1 s"
ip netns exec "$NS" "$LOAD" 127.1.0.1 10000 10000 1 1000 "$SECS"
