#!/bin/bash
# tests/lab/pair/scenario.sh [MODE...] -- the pair scenario with topo.sh, one mode after the other
# (default: dr nat tun gue), a progress line per step: topology, real servers, both directors,
# requests spread over the real servers, the Master crashed under load, the takeover.
# Inside the lab VM: tests/lab/run 'tests/lab/pair/scenario.sh dr'. Exit 0 when every mode spread
# over all real servers and recovered after the crash.
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
rc=0
for mode in "${@:-dr nat tun gue}"; do
  for m in $mode; do
    (
      export PAIR_MODE=$m PAIR_ID=ps$m PAIR_DIR
      PAIR_DIR=$(mktemp -d /tmp/pair-scenario.XXXXXX)
      # shellcheck source=topo.sh
      . tests/lab/pair/topo.sh
      trap pair_down EXIT
      T0=$(pair_now_ms)
      st() { printf '[%s %6d ms] %s\n' "$m" $(($(pair_now_ms) - T0)) "$*"; }
      pair_up || { st "topology failed"; exit 1; }
      st "topology up: client, dir1, dir2, r1..r$PAIR_REALS"
      pair_start_reals || { st "real servers failed"; exit 1; }
      st "real servers answer"
      pair_start_director 1 && pair_start_director 2
      pair_wait_vip 1 10 || { st "dir1 never took the VIP"; tail "$PAIR_DIR/d1.log"; exit 1; }
      st "dir1 is Master; IPVS (services destinations): dir1 $(pair_ipvs_count 1), dir2 $(pair_ipvs_count 2)"
      pair_client_load 1 30 $((2 * PAIR_REALS)) 0 "$PAIR_DIR/spread"
      s=$(pair_load_stats "$PAIR_DIR/spread" 0); st "spread: $s"
      for i in $(seq 1 "$PAIR_REALS"); do
        [[ $s == *"r$i=2"* ]] || { st "r$i did not answer twice"; exit 1; }
      done
      pair_client_load 1 5 10000 20 "$PAIR_DIR/load" &
      LOAD=$!
      pair_wait 10 test -e "$PAIR_DIR/load.ready"; sleep 1.5
      CRASH=$(pair_now_ms); pair_crash 1 node; GONE=$(pair_now_ms)
      st "dir1 crashed (SIGKILL, links down)"
      pair_wait_vip 2 5 || { st "dir2 never took the VIP"; tail "$PAIR_DIR/d2.log"; exit 1; }
      st "dir2 holds the VIP, $(($(pair_now_ms) - CRASH)) ms after the crash"
      wait $LOAD
      s=$(pair_load_stats "$PAIR_DIR/load" "$CRASH" "$GONE"); st "under load: $s"
      [[ $s == *"first_ok_after_ms none"* ]] && { st "no request succeeded after the crash"; exit 1; }
      exit 0
    ) || rc=1
  done
done
exit $rc
