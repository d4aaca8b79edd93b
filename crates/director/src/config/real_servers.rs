//! Checks on `real_servers:` entries and on the forwarding and tunnel settings a service gives
//! its real servers as defaults. Each entry becomes an [`ipvs::Destination`].

use std::collections::HashMap;
use std::net::IpAddr;

use ipvs::{
    AddressFamily, DestKey, Destination, Forwarding, ServiceKey, Tunnel, TunnelFlags, TunnelType,
};
use serde_saphyr::Spanned;

use super::model::RealServer;
use super::schema_ipvs::{RawRealServer, RawSorryServer, RawTunnel, RawVirtualServer};
use super::validate::{pos, Cx};

/// Forwarding of a real server that names none and whose service names none: direct routing,
/// ipvsadm's default (`-g`). Replies go from the real server straight to the client, so the
/// director carries only the inbound half; keepalived defaults to NAT instead.
pub const DEFAULT_FORWARDING: Forwarding = Forwarding::DirectRoute;
/// Weight of a real server that names none: 1, ipvsadm's and keepalived's default.
pub const DEFAULT_WEIGHT: i32 = 1;
/// Largest weight: ipvsadm's bound for `-w` (the kernel only refuses negative weights).
pub const MAX_WEIGHT: i64 = 65_535;
/// Largest connection threshold: ipvsadm's bound for `-x` / `-y`.
pub const MAX_THRESHOLD: i64 = i32::MAX as i64;

/// The forwarding and tunnel a service gives real servers that name none.
pub(super) struct Defaults {
    forwarding: Forwarding,
    tunnel: Tunnel,
}

/// Reads the service-level `forwarding:` and `tunnel:`.
pub(super) fn defaults(cx: &mut Cx, raw: &RawVirtualServer) -> Defaults {
    let forwarding = raw
        .forwarding
        .as_ref()
        .and_then(|f| forwarding(cx, f))
        .unwrap_or(DEFAULT_FORWARDING);
    let mut tunnel_out = Tunnel::default();
    if let Some(t) = &raw.tunnel {
        if raw.forwarding.is_some() && forwarding != Forwarding::Tunnel {
            cx.err(
                t,
                "tunnel settings need `forwarding: tunnel`".into(),
                "remove `tunnel:`, or set `forwarding: tunnel`",
            );
        } else if raw.forwarding.is_none() {
            cx.err(
                t,
                "tunnel settings need `forwarding: tunnel` on the service".into(),
                "add `forwarding: tunnel` next to `tunnel:`",
            );
        }
        if let Some(parsed) = tunnel(cx, t) {
            tunnel_out = parsed;
        }
    }
    Defaults {
        forwarding,
        tunnel: tunnel_out,
    }
}

/// `dr`, `nat` or `tunnel`; keepalived's and ipvsadm's spellings get a hint.
fn forwarding(cx: &mut Cx, v: &Spanned<String>) -> Option<Forwarding> {
    match v.value.as_str() {
        "dr" => return Some(Forwarding::DirectRoute),
        "nat" => return Some(Forwarding::Masq),
        "tunnel" => return Some(Forwarding::Tunnel),
        _ => {}
    }
    let hint = match v.value.to_ascii_lowercase().as_str() {
        "dr" | "droute" | "direct" | "gatewaying" | "route" | "g" => "write `dr`",
        "nat" | "masq" | "masquerading" | "m" => "write `nat`",
        "tun" | "tunnel" | "ipip" | "i" => "write `tunnel` (and `tunnel: {type: ipip}` if needed)",
        _ => "use dr, nat or tunnel (keepalived's lb_kind DR, NAT, TUN; ipvsadm's -g, -m, -i)",
    };
    cx.err(
        v,
        format!("forwarding `{}` is not a forwarding method", v.value),
        hint,
    );
    None
}

/// ipvsadm's rules (`tunnel_types_v_options`), which mirror what each encapsulation reads in
/// `ip_vs_xmit.c`: ipip takes no port or checksum option; gue needs a port (`ip_vs_ctl.c`
/// refuses port 0) and takes one checksum option; gre takes `none` or `csum`.
fn tunnel(cx: &mut Cx, t: &Spanned<RawTunnel>) -> Option<Tunnel> {
    let before = cx.diags.len();
    let r = &t.value;
    let kind = match r.kind.as_ref().map(|k| k.value.as_str()) {
        None | Some("ipip") => TunnelType::Ipip,
        Some("gue") => TunnelType::Gue,
        Some("gre") => TunnelType::Gre,
        Some(other) => {
            if let Some(k) = &r.kind {
                cx.err(
                    k,
                    format!("tunnel type `{other}` is not one IPVS has"),
                    "use ipip (the default), gue or gre",
                );
            }
            return None;
        }
    };
    let mut out = Tunnel {
        kind,
        ..Tunnel::default()
    };
    match (&r.port, kind) {
        (Some(p), TunnelType::Gue) => {
            if let Some(n) = cx.int_in("tunnel port", p, 1, 65_535, "the GUE receiver's UDP port") {
                out.port = u16::try_from(n).unwrap_or(0);
            }
        }
        (None, TunnelType::Gue) => cx.err(
            t,
            "a gue tunnel needs `port:` (the real server's GUE UDP port)".into(),
            "add e.g. `port: 6080`",
        ),
        (Some(p), _) => cx.err(
            p,
            format!("tunnel port has no effect with type {}", type_name(kind)),
            "remove `port:`; only gue uses a UDP port",
        ),
        (None, _) => {}
    }
    if let Some(c) = &r.checksum {
        let bits = match c.value.as_str() {
            "none" => Some(TunnelFlags::empty()),
            "csum" => Some(TunnelFlags::CSUM),
            "remcsum" => Some(TunnelFlags::REMCSUM),
            other => {
                cx.err(
                    c,
                    format!("checksum `{other}` is not a tunnel checksum option"),
                    "use none, csum or remcsum (ipvsadm's --tun-nocsum, --tun-csum, --tun-remcsum)",
                );
                None
            }
        };
        let allowed = match kind {
            TunnelType::Gue => true,
            TunnelType::Gre => bits != Some(TunnelFlags::REMCSUM),
            _ => false,
        };
        if bits.is_some() && !allowed {
            cx.err(
                c,
                format!(
                    "checksum {} has no effect with type {}",
                    c.value,
                    type_name(kind)
                ),
                "ipip takes no checksum option; gre takes none or csum; gue takes all three",
            );
        }
        out.flags = bits.unwrap_or(TunnelFlags::empty());
    }
    (cx.diags.len() == before).then_some(out)
}

fn type_name(t: TunnelType) -> &'static str {
    match t {
        TunnelType::Ipip => "ipip",
        TunnelType::Gue => "gue",
        TunnelType::Gre => "gre",
        _ => "other",
    }
}

/// Validates a service's real servers. `key`: the service's key when it is valid (the port and
/// family rules need it). `sync`: a sync daemon is configured.
pub(super) fn real_servers(
    cx: &mut Cx,
    raw: &RawVirtualServer,
    key: Option<&ServiceKey>,
    d: &Defaults,
    sync: bool,
    service_checks: &[health::CheckSpec],
) -> Vec<RealServer> {
    let list = raw.real_servers.as_ref().map_or(&[][..], |l| &l.value[..]);
    let mut seen: HashMap<DestKey, (u64, u64)> = HashMap::with_capacity(list.len());
    let mut out = Vec::with_capacity(list.len());
    for rs in list {
        let before = cx.diags.len();
        let checks = rs
            .value
            .checks
            .as_ref()
            .map(|c| super::health_checks::checks(cx, c));
        if let Some(dest) = real_server(cx, &rs.value, key, d, sync) {
            if let Some((l, c)) = seen.get(&dest.key()) {
                cx.err(
                    &rs.value.address,
                    format!(
                        "real server {} is already in this service at line {l}, column {c}",
                        dest.key()
                    ),
                    "list each real server (address and port) once per service",
                );
            } else {
                seen.insert(dest.key(), pos(&rs.value.address));
                let checks = checks.unwrap_or_else(|| service_checks.to_vec());
                let portless = checks.iter().find(|c| {
                    dest.port == 0
                        && c.connect.port.is_none()
                        && !matches!(c.kind, health::CheckKind::Exec(_))
                });
                if let Some(c) = portless {
                    cx.err(
                        &rs.value.address,
                        format!(
                            "real server {} has port 0 (every port): its {} check needs `connect_port:`",
                            dest.addr,
                            c.kind.name()
                        ),
                        "add `connect_port: 80` (the port to probe) to the check",
                    );
                }
                if cx.diags.len() == before {
                    out.push(RealServer { dest, checks });
                }
            }
        }
    }
    out
}

fn real_server(
    cx: &mut Cx,
    r: &RawRealServer,
    key: Option<&ServiceKey>,
    d: &Defaults,
    sync: bool,
) -> Option<Destination> {
    let before = cx.diags.len();
    let addr = address(cx, &r.address);
    let fwd = match &r.forwarding {
        None => Some(d.forwarding),
        Some(f) => forwarding(cx, f),
    };
    let mut tun = d.tunnel;
    if let Some(t) = &r.tunnel {
        if fwd.is_some_and(|f| f != Forwarding::Tunnel) {
            cx.err(
                t,
                "tunnel settings need `forwarding: tunnel`".into(),
                "remove `tunnel:`, or set `forwarding: tunnel`",
            );
        }
        if let Some(parsed) = tunnel(cx, t) {
            tun = parsed;
        }
    }
    let svc_port = match key {
        Some(ServiceKey::Inet { port, .. }) => Some(*port),
        Some(ServiceKey::Fwmark { .. }) => Some(0),
        None => None,
    };
    let port = match (&r.port, fwd) {
        (None, _) => svc_port,
        (Some(p), Some(f)) => {
            let n = cx.int_in("port", p, 0, 65_535, "use 0..65535")?;
            let n = u16::try_from(n).ok()?;
            let rewrites = f == Forwarding::Masq;
            match svc_port {
                Some(s) if !rewrites && n != s => {
                    let what = if f == Forwarding::Tunnel {
                        "tunnelled"
                    } else {
                        "DR"
                    };
                    let msg = if matches!(key, Some(ServiceKey::Fwmark { .. })) {
                        format!("a {what} real server of a fwmark service keeps each packet's port: port {n} has no effect")
                    } else {
                        format!("a {what} real server's port must be the service's ({s}), not {n}: only NAT rewrites the port")
                    };
                    cx.err(
                        p,
                        msg,
                        "remove `port:`, or use `forwarding: nat` to change the port",
                    );
                    None
                }
                _ => Some(n),
            }
        }
        (Some(_), None) => None,
    };
    if let (Some(a), Some(k), Some(f)) = (addr, key, fwd) {
        let (daf, saf) = (AddressFamily::of(&a), k.af());
        if daf != saf {
            if f != Forwarding::Tunnel {
                cx.err(
                    &r.address,
                    format!("real server {a} is {daf} but the service is {saf}: the kernel mixes families only for tunnel forwarding"),
                    "use a real server of the service's family, or `forwarding: tunnel`",
                );
            } else if sync {
                cx.err(
                    &r.address,
                    format!("real server {a} is {daf} but the service is {saf}: the kernel refuses mixed families while the sync daemon runs"),
                    "use a real server of the service's family, or remove ipvs.sync_daemon",
                );
            }
        }
    }
    let weight = match &r.weight {
        None => Some(i64::from(DEFAULT_WEIGHT)),
        Some(w) => cx.int_in(
            "weight",
            w,
            0,
            MAX_WEIGHT,
            "use 0..65535; 0 sends no new connections",
        ),
    };
    let thr = "use 0..2147483647; 0 means no limit";
    let upper = match &r.upper_threshold {
        None => Some(0),
        Some(u) => cx.int_in("upper_threshold", u, 0, MAX_THRESHOLD, thr),
    };
    let lower = match &r.lower_threshold {
        None => Some(0),
        Some(l) => cx.int_in("lower_threshold", l, 0, MAX_THRESHOLD, thr),
    };
    if let (Some(l), Some(u), Some(at)) = (lower, upper, &r.lower_threshold) {
        if l > u {
            cx.err(
                at,
                format!("lower_threshold {l} is above upper_threshold {u}: the kernel refuses it (ERANGE)"),
                "the lower threshold re-enables a server that hit the upper one: set upper_threshold above it",
            );
        }
    }
    if cx.diags.len() > before {
        return None;
    }
    let fwd = fwd?;
    let mut dest = Destination::new(addr?, port?, fwd);
    dest.weight = i32::try_from(weight?).ok()?;
    dest.upper_threshold = u32::try_from(upper?).ok()?;
    dest.lower_threshold = u32::try_from(lower?).ok()?;
    if fwd == Forwarding::Tunnel {
        dest.tunnel = tun;
    }
    Some(dest)
}

/// The `sorry_server:` of a service: a real server with the same rules, default weight 1, not
/// health-checked.
pub(super) fn sorry_server(
    cx: &mut Cx,
    s: &RawSorryServer,
    key: Option<&ServiceKey>,
    d: &Defaults,
    sync: bool,
) -> Option<Destination> {
    let raw = RawRealServer {
        address: s.address.clone(),
        port: s.port.clone(),
        weight: s.weight.clone(),
        forwarding: s.forwarding.clone().map(Box::new),
        tunnel: None,
        upper_threshold: None,
        lower_threshold: None,
        checks: None,
    };
    real_server(cx, &raw, key, d, sync)
}

/// A real server address: unicast, not link-local IPv6 (`ip_vs_new_dest` refuses both).
fn address(cx: &mut Cx, v: &Spanned<String>) -> Option<IpAddr> {
    let Ok(a) = v.value.trim().parse::<IpAddr>() else {
        cx.err(
            v,
            format!("real server address `{}` is not an IP address", v.value),
            "write an address such as 10.0.0.11 or 2001:db8::11 (the port goes in `port:`)",
        );
        return None;
    };
    let bad = match a {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => {
            v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    if bad {
        cx.err(
            v,
            format!("real server address {a} is not a unicast address the kernel accepts"),
            "use a unicast address (no multicast, broadcast or IPv6 link-local)",
        );
        return None;
    }
    Some(a)
}
