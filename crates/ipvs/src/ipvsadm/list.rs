//! The `ipvsadm -Ln` layouts: the default one, `--stats`, `--rate`, `--thresholds`,
//! `--persistent-conn` and `--tun-info`, each optionally `--exact`.
//!
//! ipvsadm 1.31 `ipvsadm.c` (`list_all`, `print_title`, `print_service_entry`, `print_largenum`,
//! `fwd_name`, `fwd_tun_info`), numeric form (`-n`). Services and real servers are sorted as
//! ipvsadm sorts them (see the `order` module).

use std::fmt::Write as _;
#[cfg(test)]
use std::net::{IpAddr, Ipv4Addr};

use super::fmt::{push_addr_port, push_largenum, push_left, push_v4};
use super::order::sorted;
use super::save::{has_sched_flags, netmask_shown, push_sched_flags};
use crate::model::{
    AddressFamily, Destination, Forwarding, Info, Netmask, Protocol, Service, ServiceKey, Stats,
    Table, TunnelType,
};

/// Which of ipvsadm's list layouts to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `ipvsadm -Ln`: forwarding, weight, active and inactive connections.
    #[default]
    Default,
    /// `ipvsadm -Ln --stats`: connection, packet and byte counters.
    Stats,
    /// `ipvsadm -Ln --rate`: the rate estimates.
    Rate,
    /// `ipvsadm -Ln --thresholds`: upper and lower connection thresholds.
    Thresholds,
    /// `ipvsadm -Ln --persistent-conn`: weight and persistent connections.
    PersistentConn,
    /// `ipvsadm -Ln --tun-info`: the tunnel of each real server.
    TunInfo,
}

/// Options of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// The layout.
    pub layout: Layout,
    /// `--exact`: counters printed whole instead of scaled to K/M/G/T.
    pub exact: bool,
}

/// The table as `ipvsadm -Ln` (with the chosen layout) prints it, `info` giving the first line.
pub fn list(info: &Info, table: &Table, opts: ListOptions) -> String {
    let mut out = String::with_capacity(256 + table.services.len() * 160);
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        info.version_string(),
        info.conn_tab_size
    );
    push_title(&mut out, opts.layout);
    for (svc, dests) in sorted(table) {
        push_service(&mut out, svc, opts);
        for d in dests {
            push_dest(&mut out, d, opts);
        }
    }
    out
}

fn push_title(out: &mut String, layout: Layout) {
    let cols = |out: &mut String, names: [&str; 5], width: usize, right: bool| {
        push_left(out, "Prot LocalAddress:Port", 33);
        for n in names {
            if right {
                let _ = write!(out, " {n:>width$}");
            } else {
                let _ = write!(out, " {n:<width$}");
            }
        }
        out.push_str("\n  -> RemoteAddress:Port\n");
    };
    match layout {
        Layout::Stats => cols(
            out,
            ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"],
            8,
            true,
        ),
        Layout::Rate => cols(out, ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"], 8, true),
        Layout::Thresholds => {
            push_left(out, "Prot LocalAddress:Port", 33);
            for n in ["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"] {
                let _ = write!(out, " {n:<10}");
            }
            out.push_str("\n  -> RemoteAddress:Port\n");
        }
        Layout::PersistentConn => {
            push_left(out, "Prot LocalAddress:Port", 33);
            let _ = write!(
                out,
                " {:<9} {:<11} {:<10} {:<10}",
                "Weight", "PersistConn", "ActiveConn", "InActConn"
            );
            out.push_str("\n  -> RemoteAddress:Port\n");
        }
        Layout::TunInfo => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        ),
        Layout::Default => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        ),
    }
}

/// `TCP  10.1.0.1:80` (IPv4 names cut at 33 columns, as ipvsadm does), `FWM  1`, `FWM  1 IPv6`.
fn service_name(key: &ServiceKey) -> String {
    let mut s = String::with_capacity(40);
    match key {
        ServiceKey::Fwmark { af, mark } => {
            let _ = write!(s, "FWM  {}", *mark as i32);
            if *af == AddressFamily::Inet6 {
                s.push_str(" IPv6");
            }
        }
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            let p = match protocol {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
                Protocol::Other(_) => "?",
            };
            let _ = write!(s, "{p:<4} ");
            push_addr_port(&mut s, *addr, *port);
            if addr.is_ipv4() {
                s.truncate(33);
            }
        }
    }
    s
}

fn push_five(out: &mut String, v: [u64; 5], exact: bool) {
    for n in v {
        push_largenum(out, n, exact);
    }
}

fn counters(s: Option<Stats>) -> Stats {
    s.unwrap_or_default()
}

fn push_service(out: &mut String, svc: &Service, opts: ListOptions) {
    let name = service_name(&svc.key);
    match opts.layout {
        Layout::Stats => {
            push_left(out, &name, 33);
            let s = counters(svc.stats);
            push_five(
                out,
                [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes],
                opts.exact,
            );
        }
        Layout::Rate => {
            push_left(out, &name, 33);
            let s = counters(svc.stats);
            push_five(
                out,
                [s.cps, s.inpps, s.outpps, s.inbps, s.outbps],
                opts.exact,
            );
        }
        _ => {
            out.push_str(&name);
            out.push(' ');
            out.push_str(svc.scheduler.as_str());
            if has_sched_flags(svc.flags) {
                out.push_str(" (");
                push_sched_flags(out, svc);
                out.push(')');
            }
            if svc.flags.persistent() {
                let _ = write!(out, " persistent {}", svc.timeout);
                if netmask_shown(svc.netmask) {
                    match svc.netmask {
                        Netmask::Inet(m) => {
                            out.push_str(" mask ");
                            push_v4(out, m);
                        }
                        Netmask::Inet6(p) => {
                            let _ = write!(out, " mask {p}");
                        }
                    }
                }
                if let Some(pe) = svc.pe_name.as_deref().filter(|p| !p.is_empty()) {
                    out.push_str(" pe ");
                    out.push_str(pe);
                }
            }
            if svc.flags.one_packet() {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');
}

/// ipvsadm's `fwd_name` (bypass has no name: C prints `(null)`).
fn fwd_name(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "Masq",
        Forwarding::Local => "Local",
        Forwarding::Tunnel => "Tunnel",
        Forwarding::DirectRoute => "Route",
        Forwarding::Bypass => "(null)",
    }
}

/// ipvsadm's `fwd_tun_info`: `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS` or `n/a`.
fn tun_info(d: &Destination) -> String {
    let flags = if d.tunnel.flags.remcsum() {
        "r+c"
    } else if d.tunnel.flags.csum() {
        "+c"
    } else {
        "-c"
    };
    if d.forwarding != Forwarding::Tunnel {
        return "n/a".into();
    }
    match d.tunnel.kind {
        TunnelType::Ipip => "ipip".into(),
        TunnelType::Gue => format!("gue:{}:{flags}", d.tunnel.port),
        TunnelType::Gre => format!("gre:{flags}"),
        TunnelType::Other(_) => "n/a".into(),
    }
}

fn push_dest(out: &mut String, d: &Destination, opts: ListOptions) {
    let mut name = String::with_capacity(48);
    push_addr_port(&mut name, d.addr, d.port);
    if d.addr.is_ipv4() {
        name.truncate(28);
    }
    out.push_str("  -> ");
    let s = counters(d.stats);
    match opts.layout {
        Layout::Stats => {
            push_left(out, &name, 28);
            push_five(
                out,
                [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes],
                opts.exact,
            );
        }
        Layout::Rate => {
            push_left(out, &name, 28);
            // ipvsadm prints the first three rates unscaled, the byte rates scaled.
            let _ = write!(out, " {:>8} {:>8} {:>8}", s.cps, s.inpps, s.outpps);
            push_largenum(out, s.inbps, opts.exact);
            push_largenum(out, s.outbps, opts.exact);
        }
        Layout::Thresholds => {
            let _ = write!(
                out,
                "{name:<28} {:<10} {:<10} {:<10} {:<10}",
                d.upper_threshold, d.lower_threshold, d.active_conns, d.inactive_conns
            );
        }
        Layout::PersistentConn => {
            let _ = write!(
                out,
                "{name:<28} {:<9} {:<11} {:<10} {:<10}",
                d.weight as u32, d.persist_conns, d.active_conns, d.inactive_conns
            );
        }
        Layout::TunInfo => {
            let _ = write!(
                out,
                "{name:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                fwd_name(d.forwarding),
                tun_info(d),
                d.weight,
                d.active_conns,
                d.inactive_conns
            );
        }
        Layout::Default => {
            let _ = write!(
                out,
                "{name:<28} {:<7} {:<6} {:<10} {:<10}",
                fwd_name(d.forwarding),
                d.weight,
                d.active_conns,
                d.inactive_conns
            );
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Scheduler, ServiceEntry};

    fn table() -> Table {
        let key = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
            port: 80,
        };
        let mut service = Service::new(key, Scheduler::Wrr);
        service.stats = Some(Stats {
            conns: 5,
            inpkts: 123_456_789,
            outpkts: 99_999_999,
            inbytes: 5_000_000_000,
            outbytes: 123_456_789_012_345,
            ..Stats::default()
        });
        let mut d = Destination::new(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)), 80, Forwarding::Masq);
        d.stats = Some(Stats {
            cps: 1,
            inpps: 2,
            outpps: 300_000_000,
            inbps: 150_000_000,
            outbps: 7,
            conns: 123_456_789_012,
            ..Stats::default()
        });
        Table {
            services: vec![ServiceEntry {
                service,
                destinations: vec![d],
            }],
        }
    }

    const INFO: Info = Info {
        version: 0x0001_0201,
        conn_tab_size: 4096,
    };

    /// The lines after the title, as C's printf formats ipvsadm's `%-33s`, `%9llu`, `%8lluK`...
    fn body(layout: Layout, exact: bool) -> Vec<String> {
        list(&INFO, &table(), ListOptions { layout, exact })
            .lines()
            .skip(3)
            .map(str::to_string)
            .collect()
    }

    /// `%-Ns` of `s`.
    fn pad(s: &str, n: usize) -> String {
        format!("{s}{}", " ".repeat(n - s.len()))
    }

    #[test]
    fn large_counters_scale_like_print_largenum() {
        // print_largenum: `%9llu` below 10^8, else `%8lluK` (/10^3) below 10^9, `%8lluM` below
        // 10^11, `%8lluG` below 10^14, `%8lluT` beyond.
        let svc = pad("TCP  10.1.0.1:80", 33);
        let dst = format!("  -> {}", pad("10.2.0.1:80", 28));
        assert_eq!(
            body(Layout::Stats, false),
            [
                format!("{svc}        5  123456K 99999999    5000M     123T"),
                format!("{dst}     123G        0        0        0        0"),
            ]
        );
        // --exact: `%*llu` with width 9, or the number's length + 1 beyond 8 digits.
        assert_eq!(
            body(Layout::Stats, true),
            [
                format!("{svc}        5 123456789 99999999 5000000000 123456789012345"),
                format!("{dst} 123456789012        0        0        0        0"),
            ]
        );
    }

    #[test]
    fn rates_print_packet_rates_unscaled() {
        // Real servers: `  -> %-28s %8llu %8llu %8llu` then print_largenum twice.
        let svc = pad("TCP  10.1.0.1:80", 33);
        let dst = format!("  -> {}", pad("10.2.0.1:80", 28));
        assert_eq!(
            body(Layout::Rate, false),
            [
                format!("{svc}        0        0        0        0        0"),
                format!("{dst}        1        2 300000000  150000K        7"),
            ]
        );
    }
}
