#!/bin/bash
# benches/ipvs/startup.sh BIN [BIN2] -- runs INSIDE the lab VM: whole-process start-up, best of 10
# runs in a namespace, 3 rounds: the plain-C floor with no arguments (dynamically linked), then for
# each director binary `--version` and `ipvs save` on an empty table. From the host, e.g. a PIE
# against the default (non-PIE) build:
#   A=$(PIE=1 CARGO_TARGET_DIR=target/pie deploy/build-release); B=$(deploy/build-release)
#   tests/lab/run "benches/ipvs/startup.sh $A $B"
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d)
gcc -O2 -o "$W/floor" "$REPO/benches/floor/ipvs-floor.c" || exit 1
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
best() { local b=; for _ in $(seq 1 10); do t=$(ms "$@"); if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi; done; echo "$b"; }
ip netns add su && ip netns exec su ip link set lo up
i=0
for b in "$@"; do i=$((i + 1)); cp "$b" "$W/d$i"; done
for r in 1 2 3; do
  line="round $r: floor $(best ip netns exec su "$W/floor") ms"
  for j in $(seq 1 $i); do
    line="$line | $(basename "$(eval echo \${$j})")#$j --version $(best ip netns exec su "$W/d$j" --version) ms, ipvs save $(best ip netns exec su "$W/d$j" ipvs save) ms"
  done
  echo "$line"
done
ip netns del su
