#!/bin/bash
# benches/pair/run.sh [SIZES] [ROUNDS] -- the LVS director pair end to end, OUR director
# (`director run`) against keepalived 2.2.7 as both directors, in one lab run (it re-runs itself
# inside tests/lab/run when the kernel here has no IPVS). SIZES (default "1x3 1000x10") are
# SERVICESxREALS tables (plus the echo service on 9000), ROUNDS (default 3) rounds per size; in
# each round the contenders run one after the other (keepalived first), each in a fresh topology
# (tests/lab/pair/topo.sh: DR forwarding, VRRPv3 200 ms adverts, priorities 150/100, the same
# real servers, the same load). Between contenders every process is killed, both directors'
# IPVS tables flushed and the namespaces deleted (IPVS hashes every namespace's services into one
# kernel table).
#
#   CONTENDERS="keepalived director"  who runs (the order within a round)
#   DIRECTOR_BIN=target/release/director   our binary (build it first: cargo build --release
#                                      -p director; the lab VM sees the host's root)
#
# Per contender, size and round:
#   prog1      dir1's start -> its IPVS table complete (polled, see poll_count; keepalived
#              programs at start whatever its VRRP state, ours once Master, before the VIP goes up)
#   plog1      ours: dir1's start -> its log line "reconciled trigger=takeover" (its timestamp)
#   vip1       dir1's start -> the VIP on dir1 (`ip -ts monitor address` in dir1)
#   ready2     dir2's start -> dir2 ready as Backup (keepalived: its table complete; ours: it
#              logged from=INIT to=BACKUP, its table stays empty)
#   ent1 ent2  "services destinations" on the Master and on the Backup (ipvsadm -Ln), 2 s later
#   cpu1 cpu2 rss1 rss2 pss1 pss2   CPU seconds (utime+stime, /proc/PID/stat), VmRSS and Pss
#              (smaps_rollup; keepalived's three processes share pages, RSS counts them thrice)
#              in KiB, summed over each node's daemons, after ent*
#   failover   under load (python3 client, 20 ms pace, 300 ms timeouts, port 80) the Master is
#              crashed (its links down in one `ip -batch`, then SIGSTOP+SIGKILL of its daemons):
#              The crash's instant: dir1's eth0 bridge port lost its carrier (ip -ts monitor link).
#     down gone  the crash command's start -> that instant; that instant -> the daemons killed
#     detect   crash -> the VIP on dir2 (`ip -ts monitor address` in dir2), the first add after
#     early    the crash; VIP adds on dir2 before the crash (dir1's adverts missed: split brain)
#     prog2    crash -> dir2's IPVS table complete: 0 when it was complete before the crash
#              (keepalived), else polled (poll_count)
#     tlog2    ours: crash -> dir2's log line "reconciled trigger=takeover" (its timestamp), and
#     took2    that line's took_ms (the engine's apply of the prepared batch)
#     first    crash -> end of the first successful request started after the node was gone
#     failed   failed requests of all sent (req)
#     cpu2b    dir2's CPU seconds after the takeover (cpu2b - cpu2: what the takeover cost)
# Prints one "contender size round key value" line per measurement, then a table of medians with
# the best round in brackets. Needs root (the lab VM is root).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIZES=${1:-1x3 1000x10}
ROUNDS=${2:-3}
CONTENDERS=${CONTENDERS:-keepalived director}
DIRECTOR_BIN=${DIRECTOR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/director}
if [[ " $CONTENDERS " == *" director "* ]] && [ ! -x "$DIRECTOR_BIN" ]; then
  echo "benches/pair/run.sh: $DIRECTOR_BIN missing: cargo build --release -p director" >&2; exit 1
fi
if [ ! -e /proc/net/ip_vs ] && ! { modprobe ip_vs 2>/dev/null && [ -e /proc/net/ip_vs ]; }; then
  exec "$ROOT/tests/lab/run" "cd $ROOT && LAB_INSIDE=1 CONTENDERS='$CONTENDERS' DIRECTOR_BIN='$DIRECTOR_BIN' benches/pair/run.sh '$SIZES' '$ROUNDS'"
fi
# The clock is checked against the RTC (qemu's RTC follows the host's clock, 1 s steps): a TCG
# guest booted while the host was saturated once ran its clock ~6x fast (16 min by its clock in
# 2 min 45 s; probably a wrong TSC calibration at boot), inflating every ms figure alike.
rtc() { cat /sys/class/rtc/rtc0/since_epoch 2>/dev/null || echo 0; }
CLOCK0="$(date +%s) $(rtc)"
cd "$ROOT" || exit 1
# shellcheck source=../../tests/lab/pair/topo.sh
. tests/lab/pair/topo.sh
export PAIR_MODE=dr
trap 'teardown' EXIT
teardown() {
  local i
  disown -a 2>/dev/null   # (no "Killed" notices for the daemons and servers killed here)
  for i in 1 2; do pair_crash "$i" 2>/dev/null; done
  for i in 1 2; do pair_in "d$i" ipvsadm -C 2>/dev/null; done
  pair_down
}

# daemon_usage NODE -> "cpu_s rss_kib pss_kib" summed over the node's processes
daemon_usage() {
  local pid cpu=0 rss=0 pss=0 tck u s r p
  tck=$(getconf CLK_TCK)
  for pid in $(ip netns pids "$(pair_ns "d$1")"); do
    # (no process substitution: the lab VM has no /dev/fd)
    read -r u s <<<"$(awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null)"
    [ -n "$s" ] || continue
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    p=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null)
    cpu=$((cpu + u + s)); rss=$((rss + ${r:-0})); pss=$((pss + ${p:-0}))
  done
  echo "$(echo "scale=2; $cpu / $tck" | bc) $rss $pss"
}
# poll_count NODE "SERVICES DESTINATIONS" T0 SECONDS -> "UPPER LOWER": ms from T0 until the table
# was seen complete, and the start of the last probe that saw it incomplete (0 when none did): it
# was completed in between. The probe is the last service of the config (VIP:9000, which both
# contenders program last) listing its real servers (`ipvsadm -Ln -t`: one service's dump, cheap);
# then the whole table is counted (`ipvsadm -Ln`, ~1 s for 11,011 entries under emulation) and,
# if it falls short, the probe goes on. (/proc/net/ip_vs cannot tell: its seq_file position
# counts services, not lines.)
poll_count() {
  local lim=$(($(pair_now_ms) + $4 * 1000)) lo=0 p up
  while [ "$(pair_now_ms)" -lt $lim ]; do
    p=$(($(pair_now_ms) - $3))
    if [ "$(pair_in "d$1" ipvsadm -Ln -t "$PAIR_VIP:9000" 2>/dev/null | grep -c -- '->.*Route')" = "$PAIR_REALS" ]; then
      up=$(($(pair_now_ms) - $3))
      [ "$(pair_ipvs_count "$1")" = "$2" ] && { echo "$up $lo"; return 0; }
    fi
    lo=$p
    sleep 0.05
  done
  echo "timeout $lo"; return 1
}
# ts_ms "[2026-12-05T14:33:22.123456]" or "2026-12-05T14:33:22.123456Z" -> ms since the epoch
ts_ms() { local t=${1#[}; t=${t%]}; t=${t%Z}; echo $(( $(date -d "${t/T/ } UTC" +%s%N) / 1000000 )); }
d2_backup() { grep -q 'to=BACKUP' "$PAIR_DIR/d2.log"; }

declare -A R   # R[contender,size,round,key]
CONFS=$(mktemp -d /tmp/pair-bench-confs.XXXXXX)
# one CONTENDER SIZE ROUND: one fresh topology, both directors, the failover
one() {
  local c=$1 size=$2 r=$3 S N want t t0 T1 line k CRASH CMD GONE MON MONL LOAD POLL
  S=${size%x*} N=${size#*x}
  # one directory per contender and size (the configs name it), its configs written once
  PAIR_ID=b${S}${c:0:1}$r PAIR_SERVICES=$S PAIR_REALS=$N PAIR_DIR=/tmp/pair-bench-$c-$size
  export PAIR_ID PAIR_SERVICES PAIR_REALS PAIR_DIR
  if [ "$c" = keepalived ]; then
    PAIR_DIRECTOR=keepalived PAIR_CONF_WRITER=pair_keepalived_conf
  else
    PAIR_DIRECTOR="env RUST_LOG=info,director=debug $DIRECTOR_BIN run -c {conf} --state-dir $PAIR_DIR/state-{n}"
    PAIR_CONF_WRITER=pair_director_conf
  fi
  echo "== $c $size round $r ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
  pair_up || { echo "pair_up failed"; return 1; }
  pair_start_reals || { echo "real servers failed"; return 1; }
  want="$((S + 1)) $(((S + 1) * N))"
  for k in 1 2; do   # outside the timed part (tens of seconds at 1,000 x 10 under emulation)
    [ -s "$CONFS/$c-$size-d$k.conf" ] || { pair_write_conf $k && mv "$PAIR_DIR/d$k.conf" "$CONFS/$c-$size-d$k.conf"; } || return 1
    cp "$CONFS/$c-$size-d$k.conf" "$PAIR_DIR/d$k.conf" || return 1
  done
  pair_in d1 ip -ts -4 monitor address > "$PAIR_DIR/mon1" 2>&1 & MON=$!
  sleep 0.5
  t0=$(pair_now_ms); T1=$t0; pair_start_director 1; echo "  dir1 started $(date -u -d @$((t0 / 1000)) +%T).$(printf %03d $((t0 % 1000)))"
  read -r "R[$c,$size,$r,prog1]" "R[$c,$size,$r,prog1lo]" <<<"$(poll_count 1 "$want" "$t0" 120)"
  pair_wait_vip 1 30 || { echo "dir1 never took the VIP"; tail "$PAIR_DIR/d1.log"; return 1; }
  kill $MON 2>/dev/null; wait $MON 2>/dev/null
  line=$(grep -m1 " $PAIR_VIP/" "$PAIR_DIR/mon1")
  R[$c,$size,$r,vip1]=$(( $(ts_ms "${line%% *}") - t0 ))
  t0=$(pair_now_ms); pair_start_director 2; echo "  dir2 started $(date -u -d @$((t0 / 1000)) +%T).$(printf %03d $((t0 % 1000)))"
  R[$c,$size,$r,ready2lo]=-
  if [ "$c" = keepalived ]; then read -r "R[$c,$size,$r,ready2]" "R[$c,$size,$r,ready2lo]" <<<"$(poll_count 2 "$want" "$t0" 120)"
  elif pair_wait 60 d2_backup; then R[$c,$size,$r,ready2]=$(($(pair_now_ms) - t0))
  else R[$c,$size,$r,ready2]=timeout; fi
  sleep 2   # ours prepares the takeover's batch as Backup
  R[$c,$size,$r,ent1]=$(pair_ipvs_count 1); R[$c,$size,$r,ent2]=$(pair_ipvs_count 2)
  read -r "R[$c,$size,$r,cpu1]" "R[$c,$size,$r,rss1]" "R[$c,$size,$r,pss1]" <<<"$(daemon_usage 1)"
  read -r "R[$c,$size,$r,cpu2]" "R[$c,$size,$r,rss2]" "R[$c,$size,$r,pss2]" <<<"$(daemon_usage 2)"
  # failover under load
  pair_in d2 ip -ts -4 monitor address > "$PAIR_DIR/mon" 2>&1 & MON=$!
  ip -ts monitor link > "$PAIR_DIR/monl" 2>&1 & MONL=$!   # the bridge ports, in the VM's namespace
  pair_client_load 1 6 10000 20 "$PAIR_DIR/load" & LOAD=$!
  pair_wait 10 test -e "$PAIR_DIR/load.ready"; sleep 1.5
  CRASH=$(pair_now_ms)
  # dir2's table, polled from the crash on (in parallel: downing dir1's links takes 0.2-5 s)
  if [ "${R[$c,$size,$r,ent2]}" = "$want" ]; then echo 0 0 > "$PAIR_DIR/prog2"; POLL=
  else poll_count 2 "$want" "$CRASH" 30 > "$PAIR_DIR/prog2" & POLL=$!; fi
  # the node crash: both links down in one command (forwarding and adverts stop together), then
  # every daemon SIGSTOPped and SIGKILLed (pair_crash's order, kill then links, leaves dir1's
  # kernel forwarding for the 0.4-2.3 s the kill took under emulation: it skewed failed requests)
  printf 'link set eth0 down\nlink set eth1 down\n' | pair_in d1 ip -batch -
  pair_crash 1; GONE=$(pair_now_ms)
  wait $LOAD; kill $MON $MONL 2>/dev/null; wait $MON $MONL 2>/dev/null
  # The crash's instant is when dir1's eth0 lost its carrier (its bridge port went NO-CARRIER,
  # `ip -ts monitor link`): the command that downs it takes 0.1-1.7 s under emulation, so every
  # time below is from that event, not from the command's start (CMD).
  CMD=$CRASH
  line=$(grep -m1 "${PAIR_ID}d10@.*NO-CARRIER" "$PAIR_DIR/monl")
  [ -n "$line" ] && CRASH=$(ts_ms "${line%% *}")
  R[$c,$size,$r,down]=$((CRASH - CMD)) R[$c,$size,$r,gone]=$((GONE - CRASH))
  [ -n "$POLL" ] && wait "$POLL"
  read -r "R[$c,$size,$r,prog2]" "R[$c,$size,$r,prog2lo]" < "$PAIR_DIR/prog2"
  if [ -n "$POLL" ]; then   # the poll counted from CMD
    R[$c,$size,$r,prog2]=$((R[$c,$size,$r,prog2] - (CRASH - CMD)))
    R[$c,$size,$r,prog2lo]=$((R[$c,$size,$r,prog2lo] - (CRASH - CMD)))
  fi
  # detection: the first VIP add on dir2 at or after the crash; adds before it mean dir2 took the
  # VIP while dir1 was alive (missed adverts: a starved VM), counted as "early"
  R[$c,$size,$r,detect]=none R[$c,$size,$r,early]=0
  while read -r line; do
    t=$(( $(ts_ms "${line%% *}") - CRASH ))
    if [ $t -lt 0 ]; then R[$c,$size,$r,early]=$((R[$c,$size,$r,early] + 1))
    else R[$c,$size,$r,detect]=$t; break; fi
  done <<<"$(grep " $PAIR_VIP/" "$PAIR_DIR/mon" | grep -v Deleted)"
  read -r _ "R[$c,$size,$r,req]" _ "R[$c,$size,$r,failed]" _ "R[$c,$size,$r,first]" _ <<<"$(pair_load_stats "$PAIR_DIR/load" "$CRASH" "$GONE")"
  R[$c,$size,$r,tlog2]=- R[$c,$size,$r,took2]=- R[$c,$size,$r,plog1]=-
  if [ "$c" = director ]; then
    line=$(grep -a 'reconciled' "$PAIR_DIR/d1.log" | grep -a 'trigger="\?takeover' | head -1)
    [ -n "$line" ] && R[$c,$size,$r,plog1]=$(( $(ts_ms "${line%% *}") - T1 ))
    line=$(grep -a 'reconciled' "$PAIR_DIR/d2.log" | grep -a 'trigger="\?takeover' | head -1)
    if [ -n "$line" ]; then
      R[$c,$size,$r,tlog2]=$(( $(ts_ms "${line%% *}") - CRASH ))
      R[$c,$size,$r,took2]=$(grep -o 'took_ms=[0-9]*' <<<"$line" | cut -d= -f2)
    fi
    # the daemons' own account (transitions, reconciles, their phases), for the record
    for k in 1 2; do
      grep -a -E 'to=|reconcile|programmed' "$PAIR_DIR/d$k.log" | head -12 | cut -c1-220 | sed "s/^/  d$k: /"
    done
  fi
  read -r "R[$c,$size,$r,cpu2b]" _ _ <<<"$(daemon_usage 2)"
  echo "  crash $(date -u -d @$((CRASH / 1000)) +%T).$(printf %03d $((CRASH % 1000)))"
  for k in prog1 prog1lo plog1 vip1 ready2 ready2lo ent1 ent2 cpu1 cpu2 rss1 rss2 pss1 pss2 down gone detect early prog2 prog2lo tlog2 took2 first failed req cpu2b; do
    echo "$c $size $r $k ${R[$c,$size,$r,$k]}"
  done
  teardown
}

median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g | awk '{v[NR] = $1} END {if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
best() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g | head -1; }
# cell C SIZE KEY -> "median (best)" over the rounds, "median" when one round; failures counted
cell() {
  local v="" r x bad=0 m b
  for r in $(seq 1 "$ROUNDS"); do
    x=${R[$1,$2,$r,$3]:-}; v="$v $x"
    [[ $x =~ ^[0-9.]+$ ]] || bad=$((bad + 1))
  done
  m=$(median <<<"$v"); b=$(best <<<"$v")
  if [ "$ROUNDS" -gt 1 ] && [ "$m" != - ]; then printf '%s (%s)' "$m" "$b"; else printf '%s' "$m"; fi
  [ $bad -gt 0 ] && printf ' [%d of %d missing]' $bad "$ROUNDS"
  return 0
}
# span C SIZE KEY -> "LOWER-UPPER" medians over the rounds (a polled time), "UPPER" when LOWER is 0
span() {
  local lo up
  lo=$(for r in $(seq 1 "$ROUNDS"); do echo "${R[$1,$2,$r,${3}lo]:-}"; done | median)
  up=$(for r in $(seq 1 "$ROUNDS"); do echo "${R[$1,$2,$r,$3]:-}"; done | median)
  if [ "$lo" = - ] || [ "$lo" = 0 ]; then printf '%s' "$up"; else printf '%s-%s' "$lo" "$up"; fi
}
# entries C SIZE NODE -> the entries as "S+D" when every round agrees, else each round's
entries() {
  local r s=""
  for r in $(seq 1 "$ROUNDS"); do s="$s ${R[$1,$2,$r,ent$3]// /+}"; done
  tr ' ' '\n' <<<"$s" | grep . | sort -u | paste -sd/
}

host_load=$(cut -d' ' -f1-3 /proc/loadavg)
for size in $SIZES; do
  for r in $(seq 1 "$ROUNDS"); do
    for c in $CONTENDERS; do one "$c" "$size" "$r" || { teardown; echo "$c $size $r failed"; }; done
  done
done

echo
read -r g0 r0 <<<"$CLOCK0"; g=$(($(date +%s) - g0)); h=$(($(rtc) - r0))
echo "clock check: this run took $g s by the guest's clock, $h s by the RTC (the host's clock); $(dmesg 2>/dev/null | grep -m1 -o 'tsc: Detected.*')"
[ $((g - h)) -gt $((h / 20 + 2)) ] || [ $((h - g)) -gt $((h / 20 + 2)) ] && echo "WARNING: the guest's clock is off: the ms figures are not real milliseconds"
echo "keepalived $(keepalived --version 2>&1 | head -1 | awk '{print $2}'), director $("$DIRECTOR_BIN" --version 2>/dev/null | awk '{print $2}'), kernel $(uname -r), $(date -u '+%F %T') UTC, $ROUNDS round(s), VM load at start $host_load, now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median (best) over the rounds; times in ms, CPU in s, memory in KiB"
for size in $SIZES; do
  echo
  echo "| $size | $(echo "$CONTENDERS" | sed 's/ / | /g') |"
  echo "|---|$(for c in $CONTENDERS; do printf -- '---|'; done)"
  row() { local label=$1 key=$2 c; printf '| %s |' "$label"; for c in $CONTENDERS; do printf ' %s |' "$(cell "$c" "$size" "$key")"; done; echo; }
  srow() { local label=$1 key=$2 c; printf '| %s |' "$label"; for c in $CONTENDERS; do printf ' %s |' "$(span "$c" "$size" "$key")"; done; echo; }
  srow "dir1 start -> its table complete (polled: last seen incomplete-first seen complete)" prog1
  row "dir1 start -> dir1 logged the takeover reconciled" plog1
  row "dir1 start -> VIP on dir1" vip1
  srow "dir2 start -> ready as Backup (keepalived: table complete, polled; ours: logged BACKUP)" ready2
  printf '| entries on the Master |'; for c in $CONTENDERS; do printf ' %s |' "$(entries "$c" "$size" 1)"; done; echo
  printf '| entries on the Backup |'; for c in $CONTENDERS; do printf ' %s |' "$(entries "$c" "$size" 2)"; done; echo
  row "crash command -> dir1's eth0 down (the crash's instant)" down
  row "crash -> dir1's daemons killed too" gone
  row "crash -> VIP on dir2 (detection)" detect
  row "VIP on dir2 before the crash (split brain, count)" early
  srow "crash -> dir2's table complete (polled)" prog2
  row "crash -> dir2 logged the takeover reconciled" tlog2
  row "takeover reconcile took_ms" took2
  row "crash -> first success" first
  row "failed requests" failed
  row "requests sent" req
  row "CPU s, Master (start + programmed + 2 s)" cpu1
  row "CPU s, Backup (same)" cpu2
  row "CPU s, Backup after the takeover" cpu2b
  row "RSS KiB, Master" rss1
  row "RSS KiB, Backup" rss2
  row "PSS KiB, Master" pss1
  row "PSS KiB, Backup" pss2
done
