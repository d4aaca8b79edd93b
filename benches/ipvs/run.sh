#!/bin/bash
# benches/ipvs/run.sh DIRECTOR_BIN [SIZES] -- runs INSIDE the lab VM (benches/ipvs/bench.sh starts it).
#
# Programs N services x 10 real servers (N in SIZES, default "1000 10000") into a fresh network
# namespace with three contenders, each as a whole process under `ip netns exec` (start-up
# included): `ipvsadm -R`, the plain-C floor ($REPO/benches/floor/ipvs-floor.c, compiled here
# with gcc into the VM's RAM) and `director ipvs restore`. Like the floor's binary, which
# gcc writes into the VM's RAM, director is copied into the VM's RAM first (the host's disk reaches
# the VM over 9p, which makes the first page-in of a large binary slow). Every table is checked
# identical with `ipvsadm -Sn`. Then each contender dumps its own table: `ipvsadm -Sn`, the floor's
# `dump`, `director ipvs save` (both text printers write the same bytes, checked). Each
# contender's namespace is flushed (`ipvsadm -C`) and deleted, and the CPUs left to settle, before
# the next one runs (the services of every namespace share one kernel hash table).
# Times are milliseconds; ratios are to the floor of the same round. RUNS (default 5) rounds; two
# closing lines per size: "best of" compares each contender's fastest round (interference from the
# rest of the machine only ever adds time), "median" the median of the per-round ratios (each
# round's contenders ran back to back, so a slow spell of the host hits them alike).
set -u
BIN=${1:?usage: run.sh DIRECTOR_BIN [SIZES]}
SIZES=${2:-1000 10000}
RUNS=${RUNS:-5}
R=10
REPO=$(cd "$(dirname "$0")/../.." && pwd)
FLOOR_SRC=${FLOOR_SRC:-$REPO/benches/floor/ipvs-floor.c}
W=$(mktemp -d)
cp "$BIN" "$W/director" && BIN=$W/director
FLOOR=$W/ipvs-floor
gcc -O2 -o "$FLOOR" "$FLOOR_SRC" || { echo "cannot build the floor from $FLOOR_SRC" >&2; exit 1; }

ms() { local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
settle() { sync; sleep "${SETTLE:-2}"; }
fresh() { ip netns add "$1" && ip netns exec "$1" ip link set lo up; }
gone() { ip netns exec "$1" ipvsadm -C; ip netns del "$1"; settle; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) kernel $(uname -r), $(nproc) CPUs, $(ipvsadm -v)"
echo "# director: $1 ($(stat -c %s "$BIN") bytes, run from a copy in RAM)"
fail=0
for N in $SIZES; do
  gen=$W/gen-$N.txt
  awk -v N="$N" -v R=$R 'BEGIN{for(s=0;s<N;s++){v=sprintf("10.1.%d.%d:80",int(s/250),s%250+1); print "-A -t " v " -s wrr";
    for(r=1;r<=R;r++) printf "-a -t %s -r 10.2.%d.%d:80 -g -w 1\n", v, s%200, r}}' > "$gen"
  bA=; bF=; bD=; bsA=; bsF=; bsD=; blD=; blA=; rR=; rS=; rRA=; rSA=
  min() { if [ -z "$1" ] || [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi; }
  for run in $(seq 1 "$RUNS"); do
    # ipvsadm: the reference text of this table.
    fresh bA
    tA=$(ms sh -c "ip netns exec bA ipvsadm -R < $gen")
    ip netns exec bA ipvsadm -Sn > "$W/ref.txt"
    sA=$(ms sh -c "ip netns exec bA ipvsadm -Sn > $W/a.txt")
    gone bA
    # The floor.
    fresh bF
    tF=$(ms sh -c "ip netns exec bF $FLOOR add $N $R 2>/dev/null")
    ip netns exec bF ipvsadm -Sn > "$W/f.txt"
    sF=$(ms sh -c "ip netns exec bF $FLOOR dump >/dev/null 2>&1")
    gone bF
    # director.
    fresh bD
    tD=$(ms sh -c "ip netns exec bD $BIN ipvs restore < $gen")
    ip netns exec bD ipvsadm -Sn > "$W/d.txt"
    sD=$(ms sh -c "ip netns exec bD $BIN ipvs save > $W/ds.txt")
    lD=$(ms sh -c "ip netns exec bD $BIN ipvs list > /dev/null")
    lA=$(ms sh -c "ip netns exec bD ipvsadm -Ln > /dev/null")
    gone bD
    same=identical
    cmp -s "$W/ref.txt" "$W/f.txt" || same="FLOOR-DIFFERS"
    cmp -s "$W/ref.txt" "$W/d.txt" || same="DIRECTOR-TABLE-DIFFERS"
    cmp -s "$W/ref.txt" "$W/ds.txt" || same="DIRECTOR-SAVE-DIFFERS"
    cmp -s "$W/ref.txt" "$W/a.txt" || same="IPVSADM-SAVE-DIFFERS"
    [ "$same" = identical ] || fail=1
    lines=$(wc -l < "$W/ref.txt")
    echo "restore ${N}x$R run $run: ipvsadm -R ${tA} ms, floor ${tF} ms, director ${tD} ms; director/floor $(ratio "$tD" "$tF"), ipvsadm/floor $(ratio "$tA" "$tF"); tables $same ($lines lines)"
    echo "save    ${N}x$R run $run: ipvsadm -Sn ${sA} ms, floor dump ${sF} ms, director save ${sD} ms; director/floor $(ratio "$sD" "$sF"), ipvsadm/floor $(ratio "$sA" "$sF")"
    echo "list    ${N}x$R run $run: ipvsadm -Ln ${lA} ms, director list ${lD} ms; director/floor-dump $(ratio "$lD" "$sF")"
    bA=$(min "$bA" "$tA"); bF=$(min "$bF" "$tF"); bD=$(min "$bD" "$tD")
    bsA=$(min "$bsA" "$sA"); bsF=$(min "$bsF" "$sF"); bsD=$(min "$bsD" "$sD")
    blA=$(min "$blA" "$lA"); blD=$(min "$blD" "$lD")
    rR="$rR $(ratio "$tD" "$tF")"; rS="$rS $(ratio "$sD" "$sF")"
    rRA="$rRA $(ratio "$tA" "$tF")"; rSA="$rSA $(ratio "$sA" "$sF")"
  done
  echo "best of $RUNS ${N}x$R: restore: ipvsadm -R $bA, floor $bF, director $bD ms (director/floor $(ratio "$bD" "$bF"), ipvsadm/floor $(ratio "$bA" "$bF")); save: ipvsadm -Sn $bsA, floor dump $bsF, director $bsD ms (director/floor $(ratio "$bsD" "$bsF"), ipvsadm/floor $(ratio "$bsA" "$bsF")); list: ipvsadm -Ln $blA, director $blD ms"
  echo "median of $RUNS ${N}x$R per-round ratios: restore director/floor $(echo $rR | median) (rounds:$rR), ipvsadm/floor $(echo $rRA | median); save director/floor $(echo $rS | median) (rounds:$rS), ipvsadm/floor $(echo $rSA | median)"
done
rm -rf "$W"
exit $fail
