# tests/lab/pair/topo.sh -- the LVS director pair topology as a shell library (source it; needs
# root, network namespaces and, for traffic through the VIP, the IPVS kernel: run it inside
# tests/lab/run). Same layout as crates/director/tests/lab_pair/mod.rs:
#
#   front bridge 10.77.0.0/24          client(s) .21.. | dir1 .2 | dir2 .3 | VIP .100
#                                      real servers .11.. (dr, tun, gue)
#   inside bridge 10.77.1.0/24         dir1 .2 | dir2 .3 | gateway VIP .1 | real servers .11.. (nat)
#
# Both directors run one VRRP instance (VRID $PAIR_VRID, VRRPv3, $PAIR_ADVERT s adverts) on eth0
# holding the VIP on eth0 and, for nat, the real servers' gateway on eth1, so the gateway follows
# the Master. The configurations differ only in priority (dir1 150, dir2 100).
#
#   PAIR_MODE=dr|nat|tun|gue PAIR_REALS=3 PAIR_CLIENTS=1 PAIR_SERVICES=1 (virtual
#   services on ports 80, 81, ...; the real servers answer on 80 only: the rest is table size)
#   PAIR_DIRECTOR=keepalived, or a command line with {conf} for the config file and {n} for the
#   node's name (d1, d2), e.g. "target/debug/director run -c {conf} --state-dir /tmp/x-{n}" with
#   PAIR_CONF_WRITER=pair_director_conf (the function that writes its config)
#
#   pair_up                  bridges, namespaces, addresses, forwarding set-up on the real servers
#   pair_start_reals         HTTP on port 80 answering "rI\n" (busybox httpd: ~10 ms to start
#                            under emulation, python3 http.server ~1.2 s); name + echo on 9000
#   pair_write_conf I        writes dirI's config ($PAIR_DIR/dI.conf) with $PAIR_CONF_WRITER
#   pair_start_director I    starts dirI (I = 1 or 2), writing its config first if not there yet
#   pair_wait_vip I SECONDS  waits until dirI holds the VIP (0 = yes)
#   pair_crash I [node]      SIGSTOP + SIGKILL every process of dirI; "node" also downs its links
#   pair_client_load C SECONDS MAX INTERVAL_MS OUT   bounded load from client C through the VIP
#                            (python3, 300 ms timeouts), one line per request:
#                            "start_ms end_ms OK rI" or "start_ms end_ms FAIL error"
#   pair_load_stats OUT CRASH_MS [GONE_MS]   summary of a load file: failed, first OK after the crash
#   pair_ipvs_count I        "services destinations" in dirI's IPVS table
#   pair_down                kills everything, deletes namespaces, bridges and $PAIR_DIR
# Everything is named $PAIR_ID-* so several topologies can coexist.

PAIR_ID=${PAIR_ID:-lp$$}
PAIR_MODE=${PAIR_MODE:-dr}
PAIR_REALS=${PAIR_REALS:-3}
PAIR_CLIENTS=${PAIR_CLIENTS:-1}
PAIR_SERVICES=${PAIR_SERVICES:-1}
PAIR_VRID=${PAIR_VRID:-51}
PAIR_ADVERT=${PAIR_ADVERT:-0.2}
PAIR_SYNC=${PAIR_SYNC:-0}
PAIR_DIRECTOR=${PAIR_DIRECTOR:-keepalived}
PAIR_CONF_WRITER=${PAIR_CONF_WRITER:-pair_keepalived_conf}
PAIR_VIP=10.77.0.100
PAIR_GW=10.77.1.1
PAIR_GUE_PORT=6080
PAIR_DIR=${PAIR_DIR:-$(mktemp -d /tmp/pair-lab.XXXXXX)}

pair_ns() { echo "$PAIR_ID-$1"; }
pair_in() { local n=$1; shift; ip netns exec "$PAIR_ID-$n" "$@"; }
pair_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
pair_real_addr() { # I -> the real server's address
  if [ "$PAIR_MODE" = nat ]; then echo "10.77.1.$((10 + $1))"; else echo "10.77.0.$((10 + $1))"; fi
}

# _pair_node NAME: a namespace with lo up
_pair_node() {
  ip netns add "$PAIR_ID-$1" && pair_in "$1" ip link set lo up
}
# _pair_plug NAME IFNAME BRIDGE CIDR: a veth from the namespace into the bridge
_pair_plug() {
  local peer=$PAIR_ID${1}${2#eth}
  ip link add "$peer" type veth peer name "$2" netns "$PAIR_ID-$1" &&
    ip link set "$peer" master "$3" up &&
    pair_in "$1" ip addr add "$4" dev "$2" && pair_in "$1" ip link set "$2" up
}

pair_up() {
  local i br_f=${PAIR_ID}f br_i=${PAIR_ID}i r
  mkdir -p "$PAIR_DIR"
  for b in "$br_f" "$br_i"; do
    ip link add "$b" type bridge mcast_snooping 0 && ip link set "$b" up || return 1
  done
  for i in $(seq 1 "$PAIR_CLIENTS"); do
    _pair_node "c$i" && _pair_plug "c$i" eth0 "$br_f" "10.77.0.$((20 + i))/24" || return 1
  done
  for i in 1 2; do
    _pair_node "d$i" || return 1
    _pair_plug "d$i" eth0 "$br_f" "10.77.0.$((1 + i))/24" || return 1
    _pair_plug "d$i" eth1 "$br_i" "10.77.1.$((1 + i))/24" || return 1
    pair_in "d$i" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.vs.conntrack=0 || return 1
  done
  if [ "$PAIR_MODE" = gue ]; then modprobe fou || return 1; fi
  for i in $(seq 1 "$PAIR_REALS"); do
    r=r$i
    _pair_node "$r" || return 1
    case $PAIR_MODE in
      nat)
        _pair_plug "$r" eth0 "$br_i" "$(pair_real_addr "$i")/24" &&
          pair_in "$r" ip route add default via "$PAIR_GW" || return 1 ;;
      dr)
        _pair_plug "$r" eth0 "$br_f" "$(pair_real_addr "$i")/24" &&
          pair_in "$r" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 &&
          pair_in "$r" ip addr add "$PAIR_VIP/32" dev lo || return 1 ;;
      tun|gue)
        _pair_plug "$r" eth0 "$br_f" "$(pair_real_addr "$i")/24" &&
          pair_in "$r" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
            net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 &&
          pair_in "$r" ip link set tunl0 up &&
          pair_in "$r" sysctl -qw net.ipv4.conf.tunl0.rp_filter=0 &&
          pair_in "$r" ip addr add "$PAIR_VIP/32" dev tunl0 || return 1
        if [ "$PAIR_MODE" = gue ]; then
          pair_in "$r" ip fou add port "$PAIR_GUE_PORT" gue || return 1
        fi ;;
      *) echo "pair_up: unknown PAIR_MODE $PAIR_MODE" >&2; return 1 ;;
    esac
  done
}

pair_start_reals() {
  local i p
  for i in $(seq 1 "$PAIR_REALS"); do
    mkdir -p "$PAIR_DIR/www-r$i" && echo "r$i" > "$PAIR_DIR/www-r$i/index.html"
    pair_in "r$i" busybox httpd -f -p 0.0.0.0:80 -h "$PAIR_DIR/www-r$i" &
    # a long-lived connection: says its name, then echoes
    printf '#!/bin/sh\necho r%s\nexec cat\n' "$i" > "$PAIR_DIR/echo-r$i" && chmod +x "$PAIR_DIR/echo-r$i"
    pair_in "r$i" busybox nc -ll -p 9000 -e "$PAIR_DIR/echo-r$i" &
  done
  # listening is immediate with busybox; make sure anyway
  for i in $(seq 1 "$PAIR_REALS"); do
    pair_wait 5 _pair_listening "r$i" 80 || return 1
  done
}
_pair_listening() { pair_in "$1" cat /proc/net/tcp | awk -v p="$(printf ':%04X' "$2")" '$2 ~ p"$" && $4 == "0A" {f=1} END {exit !f}'; }

# pair_wait SECONDS COMMAND...: polls COMMAND every 20 ms
pair_wait() {
  local until=$(( $(date +%s%N) + ${1%.*}000000000 )); shift
  while [ "$(date +%s%N)" -lt "$until" ]; do "$@" && return 0; sleep 0.02; done
  return 1
}

# pair_keepalived_conf I: keepalived.conf for dirI on stdout (priority the only difference)
pair_keepalived_conf() {
  local prio=$((200 - 50 * $1)) p i method
  case $PAIR_MODE in
    dr) method=DR ;; nat) method=NAT ;; tun) method="TUN type ipip" ;;
    gue) method="TUN type gue port $PAIR_GUE_PORT" ;;
  esac
  echo "global_defs {"
  echo "  router_id dir$1"
  echo "  vrrp_version 3"
  [ "$PAIR_SYNC" = 1 ] && echo "  lvs_sync_daemon eth0 VI_1 id $PAIR_VRID"
  echo "}"
  echo "vrrp_instance VI_1 {"
  echo "  state BACKUP"
  echo "  interface eth0"
  echo "  virtual_router_id $PAIR_VRID"
  echo "  priority $prio"
  echo "  advert_int $PAIR_ADVERT"
  echo "  virtual_ipaddress {"
  echo "    $PAIR_VIP/24 dev eth0"
  [ "$PAIR_MODE" = nat ] && echo "    $PAIR_GW/24 dev eth1"
  echo "  }"
  echo "}"
  local reals=()  # addresses computed once: a subshell per line costs minutes at 1,000 x 10
  for i in $(seq 1 "$PAIR_REALS"); do reals+=("$(pair_real_addr "$i")"); done
  for p in $(seq 80 $((79 + PAIR_SERVICES))) 9000; do
    echo "virtual_server $PAIR_VIP $p {"
    echo "  lb_algo rr"
    echo "  lvs_method $method"
    echo "  protocol TCP"
    for i in "${reals[@]}"; do echo "  real_server $i $p { weight 1 }"; done
    echo "}"
  done
}

# pair_director_conf I: the director's YAML for dirI on stdout (priority the only difference; the
# NAT gateway is a second instance on eth1, VRID + 1, as in lab_pair's director_yaml)
pair_director_conf() {
  local prio=$((200 - 50 * $1)) p i fwd=dr tunnel=""
  case $PAIR_MODE in
    nat) fwd=nat ;; tun) fwd=tunnel ;;
    gue) fwd=tunnel; tunnel="    tunnel: {type: gue, port: $PAIR_GUE_PORT}" ;;
  esac
  echo "global:"
  echo "  status_socket: $PAIR_DIR/d$1.sock"
  echo "instances:"
  _pair_instance() { # name ifname vrid vip
    printf '  - name: %s\n    interface: %s\n    virtual_router_id: %s\n    priority: %s\n' "$1" "$2" "$3" "$prio"
    printf '    advert_interval: %sms\n    virtual_ipaddress: [%s/24]\n' "$(awk -v a="$PAIR_ADVERT" 'BEGIN {print a * 1000}')" "$4"
  }
  _pair_instance pair eth0 "$PAIR_VRID" "$PAIR_VIP"
  [ "$PAIR_MODE" = nat ] && _pair_instance inside eth1 $((PAIR_VRID + 1)) "$PAIR_GW"
  echo "virtual_servers:"
  local reals=()
  for i in $(seq 1 "$PAIR_REALS"); do reals+=("$(pair_real_addr "$i")"); done
  for p in $(seq 80 $((79 + PAIR_SERVICES))) 9000; do
    printf '  - instance: pair\n    address: %s\n    port: %s\n    forwarding: %s\n    scheduler: rr\n' "$PAIR_VIP" "$p" "$fwd"
    [ -n "$tunnel" ] && echo "$tunnel"
    echo "    real_servers:"
    for i in "${reals[@]}"; do echo "      - {address: $i, port: $p}"; done
  done
  if [ "$PAIR_SYNC" = 1 ]; then
    echo "ipvs:"
    echo "  sync_daemon: {instance: pair, interface: eth0, syncid: $PAIR_VRID}"
  fi
}

pair_write_conf() { "$PAIR_CONF_WRITER" "$1" > "$PAIR_DIR/d$1.conf"; }

pair_start_director() {
  local n=d$1 conf=$PAIR_DIR/d$1.conf
  [ -s "$conf" ] || pair_write_conf "$1" || return 1
  if [ "$PAIR_DIRECTOR" = keepalived ]; then
    pair_in "$n" keepalived -n -l -D -f "$conf" -p "$PAIR_DIR/$n.pid" -r "$PAIR_DIR/$n-vrrp.pid" \
      -c "$PAIR_DIR/$n-chk.pid" > "$PAIR_DIR/$n.log" 2>&1 &
  else
    local cmd=${PAIR_DIRECTOR//\{conf\}/$conf}
    # shellcheck disable=SC2086  # the command line is split into words on purpose
    pair_in "$n" ${cmd//\{n\}/$n} > "$PAIR_DIR/$n.log" 2>&1 &
  fi
  echo $! > "$PAIR_DIR/$n.started"
}

pair_has_vip() { pair_in "d$1" ip -4 -o addr show dev eth0 | grep -q " $PAIR_VIP/"; }
pair_wait_vip() { pair_wait "$2" pair_has_vip "$1"; }

pair_crash() { # I [node]
  local pids
  pids=$(ip netns pids "$PAIR_ID-d$1")
  [ -n "$pids" ] && kill -STOP $pids 2>/dev/null && kill -KILL $pids 2>/dev/null
  if [ "${2:-}" = node ]; then
    pair_in "d$1" ip link set eth0 down; pair_in "d$1" ip link set eth1 down
  fi
  return 0
}

pair_client_load() { # C SECONDS MAX_REQUESTS INTERVAL_MS OUT
  # one python3 process in the client's namespace sends every request (a curl process costs
  # ~200 ms a request under emulation, busybox wget ~15 ms plus the shell's forks; python3 starts
  # in ~1.2 s, then a request costs a few ms). It writes "ready" to OUT.ready once started.
  pair_in "c$1" python3 - "$2" "$3" "$4" "$PAIR_VIP" "$5" <<'PY'
import socket, sys, time
secs, n, iv, vip, out = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000, sys.argv[4], sys.argv[5]
now = lambda: int(time.time() * 1000)
open(out + ".ready", "w").write("ready\n")
end, k, lines = time.time() + secs, 0, []
while k < n and time.time() < end:
    k += 1
    t0 = now()
    try:
        s = socket.create_connection((vip, 80), timeout=0.3)
        s.settimeout(0.3)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        buf = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            buf += b
        s.close()
        head, _, body = buf.decode(errors="replace").partition("\r\n\r\n")
        ok = " 200 " in head.split("\r\n")[0]
        lines.append("%d %d %s %s" % (t0, now(), "OK" if ok else "FAIL", body.strip() or "-"))
    except OSError as e:
        lines.append("%d %d FAIL %s" % (t0, now(), type(e).__name__))
    time.sleep(iv)
open(out, "w").write("\n".join(lines) + "\n")
PY
}

pair_load_stats() { # OUT CRASH_MS [GONE_MS]: "requests N failed N first_ok_after_ms N names ..."
  # first_ok_after_ms: from CRASH_MS to the end of the first success started at GONE_MS or later
  awk -v ev="$2" -v gone="${3:-$2}" '
    { n++; if ($3 != "OK") f++; else names[$4]++ }
    $3 == "OK" && $1 >= gone && first == "" { first = $2 - ev }
    END { s = ""; for (k in names) s = s (s == "" ? "" : ",") k "=" names[k]
          printf "requests %d failed %d first_ok_after_ms %s names %s\n", n, f + 0, (first == "" ? "none" : first), s }' "$1"
}

pair_ipvs_count() { # I -> "services destinations"
  pair_in "d$1" ipvsadm -Ln | awk '/^(TCP|UDP|FWM|SCTP) / {s++} /->/ && !/RemoteAddress/ {d++} END {print s + 0, d + 0}'
}

pair_down() {
  local n
  for n in $(ip netns list | awk -v p="$PAIR_ID-" 'index($1, p) == 1 {print $1}'); do
    ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$n" 2>/dev/null
  done
  ip link del "${PAIR_ID}f" 2>/dev/null; ip link del "${PAIR_ID}i" 2>/dev/null
  rm -rf "$PAIR_DIR"
  return 0
}
