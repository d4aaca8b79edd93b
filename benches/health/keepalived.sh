#!/bin/bash
# keepalived's checker side by side with crates/health, inside the IPVS lab VM (keepalived's
# checker needs IPVS; the host kernel has none). Issue 18's configuration: 1,000 virtual services
# x 10 real servers over 100 backend addresses, TCP_CHECK, delay_loop 1 (1 s interval).
#
#   namespace rs:  acceptor.c on :80, the 100 backends 10.9.0.101..200 on its end of a veth
#   namespace chk: the checker under test, alone (its TcpActiveOpens counts its connects)
#     1. ours:       load 10.9.0.101 100 1000 10 1000 SECS  (one probe per backend: 100/s asked)
#     2. ours, fast: load 10.9.0.101 100 100 1 10 SECS      (10,000/s asked: keepalived's rate)
#     3. keepalived -C with the generated keepalived.conf   (one check per real server: 10,000/s)
#   For each: connects the kernel counted in chk (nstat TcpActiveOpens, failures TcpAttemptFails)
#   over SECS, the checker's CPU (utime + stime from /proc, 10 ms ticks) and CPU per connect.
#
# The lab VM is software-emulated on the development machines: absolute CPU figures there are
# inflated many times; compare the rows of one run, not with host figures.
#
# usage: benches/health/keepalived.sh [SECONDS]   (from the repository root; builds the release
#        load bench and the acceptor, then boots one VM through tests/lab/run)
set -euo pipefail
if [ "${1:-}" = --inside ]; then
  BIN=$2 LOAD=$3 SECS=$4
  CONF=/tmp/kbench/keepalived.conf
  mkdir -p /tmp/kbench
  ip netns add rs
  ip netns add chk
  ip link add v0 netns chk type veth peer name v1 netns rs
  ip -n chk link set lo up
  ip -n rs link set lo up
  ip -n chk addr add 10.9.0.1/24 dev v0
  for i in $(seq 101 200); do ip -n rs addr add 10.9.0.$i/24 dev v1; done
  ip -n chk link set v0 up
  ip -n rs link set v1 up
  ip netns exec rs sysctl -qw net.core.somaxconn=4096
  ip netns exec rs "$BIN/acceptor" 80
  # 1,000 virtual services 10.10.x.y:80, service s using backends s*10 .. s*10+9 (mod 100), the
  # load bench's layout.
  {
    echo 'global_defs { router_id kbench }'
    for s in $(seq 0 999); do
      echo "virtual_server 10.10.$((s / 250)).$((s % 250 + 1)) 80 {"
      echo '  delay_loop 1'
      echo '  lb_algo rr'
      echo '  lb_kind NAT'
      echo '  protocol TCP'
      for r in $(seq 0 9); do
        echo "  real_server 10.9.0.$(((s * 10 + r) % 100 + 101)) 80 { weight 1"
        echo '    TCP_CHECK { connect_timeout 1 }'
        echo '  }'
      done
      echo '}'
    done
  } > "$CONF"
  # opens VAR: VAR_o and VAR_f = TcpActiveOpens and TcpAttemptFails in chk now (no /dev/fd in the
  # VM: no process substitution)
  opens() {
    local v
    v=$(ip netns exec chk nstat -az TcpActiveOpens TcpAttemptFails |
      awk '$1=="TcpActiveOpens"{o=$2} $1=="TcpAttemptFails"{f=$2} END{print o, f}')
    eval "$1_o=${v% *} $1_f=${v#* }"
  }
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  report() { # NAME OPENS0 FAILS0 OPENS1 FAILS1 TICKS SECONDS
    awk -v n="$1" -v o="$(($4 - $2))" -v f="$(($5 - $3))" -v t="$6" -v s="$7" 'BEGIN {
      printf "%s: connects %d (failed %d) in %d s = %.0f/s; cpu %.2f s = %.1f us per connect\n",
        n, o, f, s, o / s, t / 100, (o > 0 ? t * 1e4 / o : 0) }'
  }
  echo "== VM: $(nproc) vCPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for run in "1000 10 1000:ours, 1,000 x 10 over 100 backends, 1 s" "100 1 10:ours, 100 backends at 10 ms"; do
    args=${run%%:*} name=${run#*:}
    opens a
    ip netns exec chk "$LOAD" 10.9.0.101 100 $args "$SECS" | sed 's/^/   load: /'
    opens b
    echo "   ($name: chk counted $((b_o - a_o)) connects, $((b_f - a_f)) failed, over warm-up + $SECS s)"
  done
  ip netns exec chk keepalived -C -n -l -f "$CONF" -p /tmp/kbench/k.pid -c /tmp/kbench/chk.pid \
    > /tmp/kbench/keepalived.log 2>&1 &
  KPID=$!
  # Warm-up: keepalived programs 1,000 services and 10,000 real servers, then starts checking.
  for _ in $(seq 1 60); do [ -s /tmp/kbench/chk.pid ] && break; sleep 1; done
  sleep 10
  CPID=$(cat /tmp/kbench/chk.pid)
  echo "   keepalived: $(ip netns exec chk ipvsadm -Ln | grep -c '^TCP') services, $(ip netns exec chk ipvsadm -Ln | grep -c -- '->.*Masq') real servers in IPVS"
  opens a
  c0=$(ticks "$CPID") p0=$(ticks "$KPID")
  sleep "$SECS"
  opens b
  c1=$(ticks "$CPID") p1=$(ticks "$KPID")
  report "   keepalived checker (pid $CPID)" "$a_o" "$a_f" "$b_o" "$b_f" "$((c1 - c0))" "$SECS"
  echo "   keepalived parent: cpu $(awk -v t=$((p1 - p0)) 'BEGIN{printf "%.2f", t / 100}') s"
  kill "$KPID"
  wait "$KPID" 2>/dev/null || true
  echo "   keepalived log: $(wc -l < /tmp/kbench/keepalived.log) lines, $(grep -c 'TCP connection to .* failed' /tmp/kbench/keepalived.log || true) connect failures, $(grep -ci 'timeout' /tmp/kbench/keepalived.log || true) timeouts"
  exit 0
fi

SECS=${1:-20}
FLOOR=${FLOOR:-/work/shared/lab/floor}
BIN=target/bench-health
mkdir -p "$BIN"
cc -O2 -o "$BIN/acceptor" "$FLOOR/acceptor.c"
cargo build --release -q --offline -p health --bench load
LOAD=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -1)
echo "== $(date -u '+%F %T UTC'), host load average $(cut -d' ' -f1-3 /proc/loadavg)"
LAB_TIMEOUT=${LAB_TIMEOUT:-900} tests/lab/run "benches/health/keepalived.sh --inside $BIN $LOAD $SECS"
