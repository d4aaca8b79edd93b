#!/bin/bash
# benches/floor/compare.sh [SIZES] -- runs INSIDE the lab VM (tests/lab/run 'benches/floor/compare.sh').
# Shows that the project's floor (benches/floor/ipvs-floor.c) matches the one it replaced
# (../shared/lab/floor/ipvs-floor.c, outside the repository; skipped when absent): both program
# the same N x 10 table into fresh namespaces, alternately, RUNS rounds (default 5); tables are
# checked identical (ipvsadm -Sn) and each dumps its own table. Prints per-round times and the
# median and best of the per-round ratios ours/shared.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=$REPO/../shared/lab/floor/ipvs-floor.c
[ -f "$SHARED" ] || { echo "no $SHARED: nothing to compare with"; exit 0; }
W=$(mktemp -d)
gcc -O2 -o "$W/ours" "$REPO/benches/floor/ipvs-floor.c" && gcc -O2 -o "$W/shared" "$SHARED" || exit 1
RUNS=${RUNS:-5}
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ms_of() { sed -n 's/.*: \([0-9]*\) ms.*/\1/p'; }
one() { # NAME BIN N -> "add_ms dump_ms", table in $W/NAME.txt
  ip netns add fl; ip netns exec fl ip link set lo up
  a=$(ip netns exec fl "$2" add "$3" 10 2>&1 >/dev/null | ms_of)
  ip netns exec fl ipvsadm -Sn > "$W/$1.txt"
  d=$(ip netns exec fl "$2" dump 2>&1 >/dev/null | ms_of)
  ip netns exec fl ipvsadm -C; ip netns del fl; sync; sleep 1
  echo "$a $d"
}
fail=0
for N in ${1:-1000 10000}; do
  ra=; rd=
  for run in $(seq 1 "$RUNS"); do
    # (no process substitution: the lab VM has no /dev/fd)
    r=$(one shared "$W/shared" "$N"); sa=${r% *}; sd=${r#* }
    r=$(one ours "$W/ours" "$N"); oa=${r% *}; od=${r#* }
    cmp -s "$W/shared.txt" "$W/ours.txt" && same=identical || { same=DIFFER; fail=1; }
    r1=$(awk -v a="$oa" -v b="$sa" 'BEGIN{printf "%.2f", a / b}'); r2=$(awk -v a="$od" -v b="$sd" 'BEGIN{printf "%.2f", a / b}')
    echo "${N}x10 run $run: add ours ${oa} ms, shared ${sa} ms ($r1); dump ours ${od} ms, shared ${sd} ms ($r2); tables $same ($(wc -l < "$W/ours.txt") lines)"
    ra="$ra $r1"; rd="$rd $r2"
  done
  echo "${N}x10 median ours/shared: add $(echo "$ra" | median) (best $(echo "$ra" | tr ' ' '\n' | grep . | sort -g | head -1)), dump $(echo "$rd" | median) (best $(echo "$rd" | tr ' ' '\n' | grep . | sort -g | head -1))"
done
exit $fail
