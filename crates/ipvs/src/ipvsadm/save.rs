//! The `ipvsadm -Sn` text of a table, byte for byte as ipvsadm 1.31 (Debian 12) prints it.
//!
//! ipvsadm 1.31 `ipvsadm.c` (`list_all` with `FMT_RULE | FMT_NUMERIC`, `print_service_entry`,
//! `print_tunnel_rule`): services and real servers sorted by libipvs' comparators (see
//! the `order` module); one `-A` line per service, then one `-a` line per real server.

use std::net::Ipv4Addr;

use super::fmt::{push_addr_port, push_i32, push_u32, push_v4};
use super::order::sorted;
use crate::model::{
    AddressFamily, Destination, Forwarding, Netmask, Protocol, Service, ServiceFlags, ServiceKey,
    Table, TunnelFlags, TunnelType,
};

/// The whole table as `ipvsadm -Sn` prints it (empty for an empty table).
pub fn save(table: &Table) -> String {
    // ~60 bytes per line is typical: avoid regrowing the buffer for large tables.
    let lines: usize = table
        .services
        .iter()
        .map(|e| 1 + e.destinations.len())
        .sum();
    let mut out = String::with_capacity(lines * 64);
    for (svc, dests) in sorted(table) {
        push_service_block(&mut out, svc, &dests);
    }
    out
}

/// Bytes [`write_save`] collects before each write.
const WRITE_CHUNK: usize = 64 << 10;

/// Writes the text of [`save`] to `w` in chunks of about 64 KiB: the same bytes, without holding
/// the whole text in memory (a table of 10,000 x 10 prints ~5 MB, and fresh memory is costly:
/// every page is a fault and a zeroing).
pub fn write_save(table: &Table, w: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut out = String::with_capacity(WRITE_CHUNK + 4096);
    for (svc, dests) in sorted(table) {
        push_service_block(&mut out, svc, &dests);
        if out.len() >= WRITE_CHUNK {
            w.write_all(out.as_bytes())?;
            out.clear();
        }
    }
    w.write_all(out.as_bytes())
}

/// One service's `-A` line and its real servers' `-a` lines.
fn push_service_block(out: &mut String, svc: &Service, dests: &[&Destination]) {
    let name = rule_name(&svc.key);
    push_service_rule(out, "-A", &name, svc);
    for d in dests {
        push_dest_rule(out, "-a", &name, d);
    }
}

/// The service as ipvsadm's rule options name it: `-t 10.1.0.1:80`, `-u [2001:db8::1]:53`,
/// `--sctp-service ...`, `-f 1`, `-f 1 -6`.
pub(crate) fn rule_name(key: &ServiceKey) -> String {
    let mut s = String::with_capacity(32);
    match key {
        ServiceKey::Fwmark { af, mark } => {
            // ipvsadm prints the mark with `%d`: marks above 2^31 come out negative.
            s.push_str("-f ");
            push_i32(&mut s, *mark as i32);
            if *af == AddressFamily::Inet6 {
                s.push_str(" -6");
            }
        }
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            s.push_str(match protocol {
                Protocol::Tcp => "-t ",
                Protocol::Udp => "-u ",
                Protocol::Sctp => "--sctp-service ",
                Protocol::Other(_) => "--xxx-service ",
            });
            push_addr_port(&mut s, *addr, *port);
        }
    }
    s
}

/// Whether any of the three scheduler flags is set.
pub(crate) fn has_sched_flags(flags: ServiceFlags) -> bool {
    flags.intersects(ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::SCHED3)
}

/// ipvsadm's `print_sched_flags`: the names joined by commas (an unnamed flag of sh/mh prints
/// nothing, so `-b` can be followed by an empty list).
pub(crate) fn push_sched_flags(out: &mut String, svc: &Service) {
    let names: [&str; 3] = match svc.scheduler.as_str() {
        "sh" => ["sh-fallback", "sh-port", ""],
        "mh" => ["mh-fallback", "mh-port", ""],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    let mut first = true;
    for (bit, name) in [
        ServiceFlags::SCHED1,
        ServiceFlags::SCHED2,
        ServiceFlags::SCHED3,
    ]
    .iter()
    .zip(names)
    {
        if svc.flags.contains(*bit) && !name.is_empty() {
            if !first {
                out.push(',');
            }
            out.push_str(name);
            first = false;
        }
    }
}

/// Whether a netmask is not the per-client default (ipvsadm prints `-M`/`mask` only then).
pub(crate) fn netmask_shown(mask: Netmask) -> bool {
    match mask {
        Netmask::Inet(m) => m != Ipv4Addr::BROADCAST,
        Netmask::Inet6(p) => p != 128,
    }
}

/// One service line: `CMD NAME -s SCHED ...` and its options, as `ipvsadm -Sn` prints them.
pub(crate) fn push_service_rule(out: &mut String, cmd: &str, name: &str, svc: &Service) {
    out.push_str(cmd);
    out.push(' ');
    out.push_str(name);
    out.push_str(" -s ");
    out.push_str(svc.scheduler.as_str());
    if svc.flags.persistent() {
        out.push_str(" -p ");
        push_u32(out, svc.timeout);
        // ipvsadm picks the -M form by the service's family, not by the mask's.
        if netmask_shown(svc.netmask) {
            push_mask(out, svc.netmask);
        }
    }
    if let Some(pe) = svc.pe_name.as_deref().filter(|p| !p.is_empty()) {
        out.push_str(" --pe ");
        out.push_str(pe);
    }
    if svc.flags.one_packet() {
        out.push_str(" -o");
    }
    if has_sched_flags(svc.flags) {
        out.push_str(" -b ");
        push_sched_flags(out, svc);
    }
    out.push('\n');
}

fn push_mask(out: &mut String, mask: Netmask) {
    match mask {
        Netmask::Inet(m) => {
            out.push_str(" -M ");
            push_v4(out, m);
        }
        Netmask::Inet6(p) => {
            out.push_str(" -M ");
            push_u32(out, u32::from(p));
        }
    }
}

/// ipvsadm's `fwd_switch`: local node prints as `-g`, bypass has no switch (C prints `(null)`).
pub(crate) fn fwd_switch(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "-m",
        Forwarding::Tunnel => "-i",
        Forwarding::Local | Forwarding::DirectRoute => "-g",
        Forwarding::Bypass => "(null)",
    }
}

/// The `--tun-*` checksum option for the flags (`tun_flags_opts` in ipvsadm.c).
pub(crate) fn tun_flags_opt(flags: TunnelFlags) -> &'static str {
    if flags.remcsum() {
        "--tun-remcsum"
    } else if flags.csum() {
        "--tun-csum"
    } else {
        "--tun-nocsum"
    }
}

/// One real-server line: `CMD NAME -r ADDR:PORT FWD -w W [tunnel]`, as `ipvsadm -Sn` prints it
/// (without thresholds: ipvsadm's save never prints `-x`/`-y`).
pub(crate) fn push_dest_rule(out: &mut String, cmd: &str, name: &str, d: &Destination) {
    out.push_str(cmd);
    out.push(' ');
    out.push_str(name);
    out.push_str(" -r ");
    push_addr_port(out, d.addr, d.port);
    out.push(' ');
    out.push_str(fwd_switch(d.forwarding));
    out.push_str(" -w ");
    push_i32(out, d.weight);
    if d.forwarding == Forwarding::Tunnel {
        match d.tunnel.kind {
            TunnelType::Ipip => out.push_str(" --tun-type ipip"),
            TunnelType::Gue => {
                out.push_str(" --tun-type gue --tun-port ");
                push_u32(out, u32::from(d.tunnel.port));
                out.push(' ');
                out.push_str(tun_flags_opt(d.tunnel.flags));
            }
            TunnelType::Gre => {
                out.push_str(" --tun-type gre ");
                out.push_str(tun_flags_opt(d.tunnel.flags));
            }
            TunnelType::Other(_) => {}
        }
    }
    out.push('\n');
}
