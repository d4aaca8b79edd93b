#!/bin/bash
# benches/pair/run.sh [SIZES] -- the LVS director pair's failover with keepalived 2.2.7 as both
# directors, in the IPVS lab VM (it re-runs itself inside tests/lab/run when the kernel here has
# no IPVS). SIZES (default "1x3 1000x10") are SERVICESxREALS tables. For each size, DR forwarding,
# VRRPv3 200 ms adverts, priorities 150/100 (tests/lab/pair/topo.sh):
#   programmed   each keepalived's start -> its IPVS table complete (ipvsadm -Ln counts, polled)
#   entries      services and destinations on the Master and on the Backup (ipvsadm -Ln)
#   cpu, rss     CPU seconds (utime+stime of every process, from /proc/PID/stat) and resident
#                memory (VmRSS) of each node's daemons, once programmed
#   failover     under load (python3 client, 20 ms pace, 300 ms timeouts, port 80), the Master
#                is crashed (SIGSTOP+SIGKILL of keepalived, then its links down): detection
#                (crash -> VIP on the Backup, `ip -ts monitor address`), first success after the
#                crash, failed requests
# Prints one "key value" line per measurement and a table. Needs root (the lab VM is root).
# Later: PAIR_DIRECTOR="director run -c {conf}" PAIR_CONF_WRITER=... adds the director's column.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIZES=${1:-1x3 1000x10}
if [ ! -e /proc/net/ip_vs ] && ! { modprobe ip_vs 2>/dev/null && [ -e /proc/net/ip_vs ]; }; then
  exec "$ROOT/tests/lab/run" "cd $ROOT && LAB_INSIDE=1 benches/pair/run.sh '$SIZES'"
fi
cd "$ROOT" || exit 1
# shellcheck source=../../tests/lab/pair/topo.sh
. tests/lab/pair/topo.sh
export PAIR_MODE=dr
trap 'pair_down' EXIT

# daemon_usage NODE -> "cpu_s rss_kib" summed over the node's processes
daemon_usage() {
  local pid cpu=0 rss=0 tck u s r
  tck=$(getconf CLK_TCK)
  for pid in $(ip netns pids "$(pair_ns "d$1")"); do
    # (no process substitution: the lab VM has no /dev/fd)
    read -r u s <<<"$(awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null)"
    [ -n "$s" ] || continue
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    cpu=$((cpu + u + s)); rss=$((rss + ${r:-0}))
  done
  echo "$(echo "scale=2; $cpu / $tck" | bc) $rss"
}
# start_programmed NODE "SERVICES DESTINATIONS" -> ms from start until ipvsadm -Ln lists them all
# (/proc/net/ip_vs cannot tell: it lists 5,547 lines for 1,001 services + 10,010 destinations,
# measured; its seq_file position counts services, not lines). The poll's step is one
# `ipvsadm -Ln` dump: printed as poll_ms.
start_programmed() {
  local t0 lim p0
  t0=$(pair_now_ms); lim=$((t0 + 120000))
  pair_start_director "$1"
  while [ "$(pair_now_ms)" -lt $lim ]; do
    p0=$(pair_now_ms)
    [ "$(pair_ipvs_count "$1")" = "$2" ] && {
      echo "$(($(pair_now_ms) - t0)) $(($(pair_now_ms) - p0))"; return 0; }
    sleep 0.05
  done
  echo timeout -; return 1
}
# ts_ms "[2026-12-05T14:33:22.123456]" -> ms since the epoch
ts_ms() { local t=${1#[}; t=${t%]}; echo $(( $(date -d "${t/T/ }" +%s%N) / 1000000 )); }

declare -A R
for size in $SIZES; do
  S=${size%x*} N=${size#*x}
  PAIR_ID=bp$S; PAIR_SERVICES=$S; PAIR_REALS=$N; PAIR_DIR=$(mktemp -d /tmp/pair-bench.XXXXXX)
  export PAIR_ID PAIR_SERVICES PAIR_REALS PAIR_DIR
  echo "== $size: $S services x $N real servers (+ the echo service)"
  pair_up || { echo "pair_up failed"; exit 1; }
  pair_start_reals || { echo "real servers failed"; exit 1; }
  want="$((S + 1)) $(((S + 1) * N))"
  pair_write_conf 1 && pair_write_conf 2 || exit 1   # outside the timed part
  read -r "R[$size,prog1]" "R[$size,poll1]" <<<"$(start_programmed 1 "$want")"
  read -r "R[$size,prog2]" "R[$size,poll2]" <<<"$(start_programmed 2 "$want")"
  pair_wait_vip 1 10 || { echo "dir1 never took the VIP"; tail "$PAIR_DIR/d1.log"; exit 1; }
  sleep 1
  R[$size,ent1]=$(pair_ipvs_count 1); R[$size,ent2]=$(pair_ipvs_count 2)
  R[$size,use1]=$(daemon_usage 1); R[$size,use2]=$(daemon_usage 2)
  # failover under load
  pair_in d2 ip -ts -4 monitor address > "$PAIR_DIR/mon" 2>&1 & MON=$!
  pair_client_load 1 6 10000 20 "$PAIR_DIR/load" & LOAD=$!
  pair_wait 10 test -e "$PAIR_DIR/load.ready"; sleep 1.5
  CRASH=$(pair_now_ms); pair_crash 1 node; GONE=$(pair_now_ms)
  wait $LOAD; kill $MON 2>/dev/null; wait $MON 2>/dev/null
  line=$(grep -m1 " $PAIR_VIP/" "$PAIR_DIR/mon")
  if [ -n "$line" ]; then R[$size,detect]=$(( $(ts_ms "${line%% *}") - CRASH )); else R[$size,detect]=none; fi
  read -r _ req _ failed _ first _ <<<"$(pair_load_stats "$PAIR_DIR/load" "$CRASH" "$GONE")"
  R[$size,req]=$req; R[$size,failed]=$failed; R[$size,first]=$first
  for k in prog1 poll1 prog2 poll2 ent1 ent2 use1 use2 detect req failed first; do echo "$size $k ${R[$size,$k]}"; done
  pair_down
done

echo
echo "keepalived $(keepalived --version 2>&1 | head -1 | awk '{print $2}'), kernel $(uname -r), $(date -u +%F)"
printf '%-9s | %-15s | %-15s | %-15s | %-15s | %-15s | %-9s | %-6s | %s\n' size \
  "programmed ms" "entries Master" "entries Backup" "cpu s (M/B)" "rss KiB (M/B)" "detect ms" failed "first ok ms"
for size in $SIZES; do
  read -r c1 m1 <<<"${R[$size,use1]}"; read -r c2 m2 <<<"${R[$size,use2]}"
  printf '%-9s | %-15s | %-15s | %-15s | %-15s | %-15s | %-9s | %-6s | %s\n' "$size" \
    "${R[$size,prog1]}/${R[$size,prog2]}" "${R[$size,ent1]/ /+}" "${R[$size,ent2]/ /+}" \
    "$c1/$c2" "$m1/$m2" "${R[$size,detect]}" "${R[$size,failed]}/${R[$size,req]}" "${R[$size,first]}"
done
