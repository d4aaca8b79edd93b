#!/usr/bin/env python3
"""benches/director/gen.py N R PRIORITY SOCKET [WEIGHT0] [FORMAT]: a director config with one
VRRP instance (VIP 10.99.0.100 on eth0) gating N virtual services x R real servers (DR).

FORMAT `even` (default): service s is VIP:(s+1), its real servers 10.2.(s % 200).(r+1): the
floor's real-server addresses (the floor keys services by address, we by port: one VIP per
instance; the kernel's per-operation cost is the same). FORMAT `total` spreads R real servers
in total over N services (the 2,300 x 37,000 table). WEIGHT0: the first real server's weight
(a reload bench changes it)."""
import sys

n, r, prio, sock = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
w0 = int(sys.argv[5]) if len(sys.argv) > 5 else 1
fmt = sys.argv[6] if len(sys.argv) > 6 else "even"
out = [
    "global:",
    f"  status_socket: {sock}",
    "  log_level: info",
    "instances:",
    "  - name: web",
    "    interface: eth0",
    "    virtual_router_id: 50",
    f"    priority: {prio}",
    "    advert_interval: 200ms",
    '    virtual_ipaddress: ["10.99.0.100/24"]',
]
if n:
    out.append("virtual_servers:")
first = True
g = 0  # real servers so far (FORMAT total: each gets an address of its own)
for s in range(n):
    out.append(f"  - {{instance: web, address: 10.99.0.100, port: {s + 1}, scheduler: wrr, real_servers: [")
    count = r if fmt == "even" else r // n + (1 if s < r % n else 0)
    reals = []
    for k in range(count):
        if fmt == "even":
            addr = f"10.2.{s % 200}.{k + 1}"
        else:
            addr = f"10.{3 + g // 62500}.{(g // 250) % 250}.{g % 250 + 1}"
        g += 1
        w = w0 if first else 1
        first = False
        reals.append(f"{{address: {addr}, weight: {w}}}")
    out[-1] += ", ".join(reals) + "]}"
print("\n".join(out))
