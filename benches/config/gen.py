#!/usr/bin/env python3
"""Writes a director config with SERVICES virtual services and REAL real servers in all (spread
evenly, one flow mapping per real server, the way docs/configuration.md writes them).

usage: gen.py SERVICES REAL > file.yaml
"""
import sys

services, real = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
out.write("instances:\n  - name: web\n    interface: eth0\n    virtual_router_id: 51\n")
out.write("    virtual_ipaddress:\n")
vips = (services + 999) // 1000          # at most 1,000 services (ports) per VIP
for v in range(vips):
    out.write(f"      - 192.0.{v // 250}.{v % 250 + 1}/32\n")
out.write("virtual_servers:\n")
n = 0
for s in range(services):
    v = s // 1000
    out.write(f"  - instance: web\n    address: 192.0.{v // 250}.{v % 250 + 1}\n")
    out.write(f"    port: {1000 + s % 1000}\n    real_servers:\n")
    count = real // services + (1 if s < real % services else 0)
    for _ in range(count):
        out.write(f"      - {{address: 10.{(n + 1) >> 16 & 255}.{(n + 1) >> 8 & 255}.{(n + 1) & 255}, weight: 1}}\n")
        n += 1
