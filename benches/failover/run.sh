#!/bin/bash
# benches/failover/run.sh [ROUNDS] -- VRRP failover time, ours (`director run`) against keepalived,
# in the same run, on this host (network namespaces on a bridge; VRRP needs no IPVS).
# For each contender x advert interval (1 s, 100 ms) x ROUNDS (default 5):
#   crash:    SIGSTOP + SIGKILL every process of the master -> time until the backup holds the VIP
#   graceful: SIGTERM to the master (priority-0 advert)     -> time until the backup holds the VIP
# The VIP is polled every 10 ms on the backup's interface (so +-10 ms). Prints one line per
# measurement and a median table. Needs root, keepalived and a built director (debug or release:
# BIN=path, default target/release/director). CONTENDERS="keepalived director" picks who runs.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-5}
BIN=${BIN:-$ROOT/target/release/director}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p director (or BIN=...)" >&2; exit 2; }
command -v keepalived >/dev/null || { echo "needs keepalived (tests/lab/install-deps)" >&2; exit 2; }
BASE=fb$$; ID=$BASE; BR=${ID}br; SETUPS=0; VIP=192.168.79.100; DIR=$(mktemp -d /tmp/failover-bench.XXXXXX)
ns() { ip netns exec "$@"; }
now() { date +%s%N; }
cleanup() {
  for n in a b; do ip netns pids "$ID-$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del "$ID-$n" 2>/dev/null; done
  ip link del "$BR" 2>/dev/null; rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
setup() {
  # fresh names each time: the kernel deletes a dropped namespace's veths asynchronously
  cleanup; mkdir -p "$DIR"; SETUPS=$((SETUPS + 1)); ID=$BASE$SETUPS; BR=${ID}br
  ip link add "$BR" type bridge mcast_snooping 0; ip link set "$BR" up
  local i=0
  for n in a b; do
    i=$((i + 1)); ip netns add "$ID-$n"; ns "$ID-$n" ip link set lo up
    ip link add "$ID$i" type veth peer name eth0 netns "$ID-$n"; ip link set "$ID$i" master "$BR" up
    ns "$ID-$n" ip addr add "192.168.79.$i/24" dev eth0; ns "$ID-$n" ip link set eth0 up
  done
}
has_vip() { ns "$ID-$1" ip -4 -o addr show dev eth0 | grep -q " $VIP/"; }
wait_vip() { # node timeout-ms -> prints ms waited, or "timeout"
  local t0=$(now) lim=$(( $(now) + $2 * 1000000 ))
  while [ "$(now)" -lt $lim ]; do has_vip "$1" && { echo $(( ($(now) - t0) / 1000000 )); return 0; }; sleep 0.01; done
  echo timeout; return 1
}
# start CONTENDER NODE PRIORITY INTERVAL(s, e.g. 1 or 0.1)
start() {
  local c=$1 n=$2 p=$3 iv=$4
  case $c in
    keepalived)
      cat > "$DIR/$n.conf" <<EOC
global_defs {
  vrrp_version 3
  vrrp_garp_master_delay 0
}
vrrp_instance V {
  state BACKUP
  interface eth0
  virtual_router_id 79
  priority $p
  advert_int $iv
  virtual_ipaddress {
    $VIP/24 dev eth0
  }
}
EOC
      ip netns exec "$ID-$n" keepalived -n -l -f "$DIR/$n.conf" -p "$DIR/$n.pid" -r "$DIR/$n-v.pid" -c "$DIR/$n-c.pid" > "$DIR/$n.log" 2>&1 &
      disown
      ;;
    director)
      local ms; ms=$(echo "$iv * 1000 / 1" | bc)
      cat > "$DIR/$n.yaml" <<EOC
global:
  status_socket: $DIR/$n.sock
instances:
  - name: v
    interface: eth0
    virtual_router_id: 79
    priority: $p
    advert_interval: ${ms}ms
    virtual_ipaddress:
      - $VIP/24
EOC
      # started directly (not through a shell function) so $! is the daemon itself
      ip netns exec "$ID-$n" "$BIN" run -c "$DIR/$n.yaml" > "$DIR/$n.log" 2>&1 &
      echo $! > "$DIR/$n.pid"; disown
      ;;
  esac
}
stop_all_of() { # signal node: every process in the namespace
  local pids; pids=$(ip netns pids "$ID-$2")
  [ -z "$pids" ] && return
  if [ "$1" = KILL ]; then kill -STOP $pids 2>/dev/null; kill -KILL $pids 2>/dev/null
  else kill -TERM "$(cat "$DIR/$2.pid")" 2>/dev/null; fi
}
RES=$DIR/../failover-results.$$; : > "$RES"
for c in ${CONTENDERS:-keepalived director}; do
  for iv in 1 0.1; do
    for r in $(seq "$ROUNDS"); do
      for kind in crash graceful; do
        setup
        start "$c" a 150 "$iv"; start "$c" b 100 "$iv"
        if ! wait_vip a 15000 >/dev/null; then echo "$c $iv $kind: a never became master" >&2; continue; fi
        sleep $(echo "$iv * 3" | bc)   # steady state: b has learned a's adverts
        if [ $kind = crash ]; then stop_all_of KILL a; ns "$ID-a" ip addr del $VIP/24 dev eth0 2>/dev/null
        else stop_all_of TERM a; fi
        ms=$(wait_vip b 15000)
        echo "$c advert=${iv}s $kind round $r: ${ms} ms"
        echo "$c $iv $kind $ms" >> "$RES"
        stop_all_of KILL b; sleep 0.2
      done
    done
  done
done
echo
echo "median over $ROUNDS rounds (ms from the signal until the backup holds the VIP):"
printf '%-12s %-8s %10s %10s\n' contender advert crash graceful
for c in ${CONTENDERS:-keepalived director}; do for iv in 1 0.1; do
  med() { grep "^$c $iv $1 " "$RES" | awk '{print $4}' | grep -v timeout | sort -n | awk '{a[NR]=$1} END{if(NR) print a[int((NR+1)/2)]; else print "n/a"}'; }
  printf '%-12s %-8s %10s %10s\n' "$c" "${iv}s" "$(med crash)" "$(med graceful)"
done; done
rm -f "$RES"
