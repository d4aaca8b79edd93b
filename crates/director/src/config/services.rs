//! Checks on `virtual_servers:`: each entry becomes an [`ipvs::Service`] with its real servers
//! (`real_servers`), or located errors. The rules are the kernel's (`ip_vs_ctl.c`) and ipvsadm's,
//! plus a refusal of every setting that would have no effect (a flag of another scheduler,
//! one-packet on TCP, a persistence netmask without persistence).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use ipvs::{AddressFamily, Netmask, Protocol, Scheduler, Service, ServiceFlags, ServiceKey};
use serde_saphyr::Spanned;

use super::health_checks;
use super::load::nearest;
use super::model::VirtualService;
use super::real_servers::{defaults, real_servers, sorry_server};
use super::schema::{RawInstance, RawVirtualServer};
use super::validate::{pos, Cx};

/// ipvsadm's `MAX_TIMEOUT` for `-p`: 31 days, in seconds.
const MAX_PERSISTENCE_SECS: u64 = 86_400 * 31;

/// The scheduler of a service that names none: `wlc`, the kernel's and ipvsadm's default
/// (weights are honoured and a slow real server, whose connections pile up, gets fewer new ones).
pub const DEFAULT_SCHEDULER: Scheduler = Scheduler::Wlc;

/// What the services (and the sync daemon) need to know of an instance, read from the raw file
/// so that an instance with an error of its own does not also make its services fail.
pub(super) struct InstanceFacts {
    /// VRID as written.
    pub(super) vrid: i64,
    /// The VIPs that parse.
    pub(super) vips: Vec<IpAddr>,
    /// True when every VIP parses (only then is "not a VIP" certain).
    pub(super) vips_complete: bool,
}

impl InstanceFacts {
    fn family(&self) -> Option<AddressFamily> {
        self.vips.first().map(AddressFamily::of)
    }
}

/// Facts of every instance by name.
pub(super) fn instance_facts(list: &[Spanned<RawInstance>]) -> HashMap<&str, InstanceFacts> {
    let mut out = HashMap::with_capacity(list.len());
    for i in list {
        let raw = i
            .value
            .virtual_ipaddress
            .as_ref()
            .map_or(&[][..], |l| &l.value[..]);
        let vips: Vec<IpAddr> = raw
            .iter()
            .filter_map(|v| v.value.split('/').next()?.trim().parse().ok())
            .collect();
        out.entry(i.value.name.value.as_str())
            .or_insert(InstanceFacts {
                vrid: i.value.virtual_router_id.value,
                vips_complete: vips.len() == raw.len(),
                vips,
            });
    }
    out
}

/// Names an unknown instance, with the nearest name as a hint.
pub(super) fn unknown_instance(
    cx: &mut Cx,
    v: &Spanned<String>,
    facts: &HashMap<&str, InstanceFacts>,
) {
    let names: Vec<&str> = {
        let mut n: Vec<&str> = facts.keys().copied().collect();
        n.sort_unstable();
        n
    };
    let hint = match nearest(&v.value, &names) {
        Some(best) => format!("did you mean `{best}`?"),
        None if names.is_empty() => "define the instance under `instances:`".to_string(),
        None => format!("instances in this file: {}", names.join(", ")),
    };
    cx.err(v, format!("no instance named `{}`", v.value), &hint);
}

/// Validates every virtual service. `sync`: a sync daemon is configured (the kernel then refuses
/// real servers of another family than their service).
pub(super) fn services(
    cx: &mut Cx,
    list: &Spanned<Vec<Spanned<RawVirtualServer>>>,
    instances: &[Spanned<RawInstance>],
    sync: bool,
) -> Vec<VirtualService> {
    let facts = instance_facts(instances);
    let mut seen: HashMap<ServiceKey, (u64, u64)> = HashMap::with_capacity(list.value.len());
    let mut out = Vec::with_capacity(list.value.len());
    for raw in &list.value {
        let before = cx.diags.len();
        let (key, svc) = service(cx, raw, &facts);
        if let Some(k) = &key {
            if let Some((l, c)) = seen.get(k) {
                cx.err(
                    raw,
                    format!("virtual server {k} is already defined at line {l}, column {c}"),
                    "each service (protocol, address, port or fwmark) may appear once: merge \
                     their real servers",
                );
            } else {
                seen.insert(*k, pos(raw));
            }
        }
        let d = defaults(cx, &raw.value);
        let r = &raw.value;
        let service_checks = r
            .checks
            .as_ref()
            .map(|c| health_checks::checks(cx, c))
            .unwrap_or_default();
        let rs = real_servers(cx, r, key.as_ref(), &d, sync, &service_checks);
        let on_down = health_checks::on_down(cx, r.on_down.as_ref());
        let sorry = r
            .sorry_server
            .as_ref()
            .map(|s| sorry_server(cx, &s.value, key.as_ref(), &d, sync));
        let quorum = health_checks::quorum(cx, r.quorum.as_ref(), r.quorum_down.as_deref());
        if let (Some(service), true) = (svc, cx.diags.len() == before) {
            out.push(VirtualService {
                instance: r.instance.value.clone(),
                service,
                real_servers: rs,
                line: pos(raw).0,
                on_down,
                sorry_server: sorry.flatten(),
                quorum,
            });
        }
    }
    out
}

/// One service's key (when it is valid, so that its real servers can still be checked) and the
/// whole service (when everything is valid).
fn service(
    cx: &mut Cx,
    raw: &Spanned<RawVirtualServer>,
    facts: &HashMap<&str, InstanceFacts>,
) -> (Option<ServiceKey>, Option<Service>) {
    let before = cx.diags.len();
    let r = &raw.value;
    let inst = facts.get(r.instance.value.as_str());
    if inst.is_none() {
        unknown_instance(cx, &r.instance, facts);
    }
    let key = key(cx, raw, inst);
    let scheduler = r.scheduler.as_ref().map_or(Some(DEFAULT_SCHEDULER), |s| {
        let found = Scheduler::KNOWN.iter().find(|k| k.as_str() == s.value);
        if found.is_none() {
            let names: Vec<&str> = Scheduler::KNOWN.iter().map(Scheduler::as_str).collect();
            cx.err(
                s,
                format!("unknown scheduler `{}`", s.value),
                &format!(
                    "use one of {} (keepalived's lb_algo and ipvsadm's -s names)",
                    names.join(", ")
                ),
            );
        }
        found.cloned()
    });
    let mut flags = ServiceFlags::default();
    if let (Some(list), Some(sched)) = (&r.scheduler_flags, &scheduler) {
        flags = sched_flags(cx, list, sched);
    }
    let af = key.map(|k| k.af());
    let (is_fwmark, port, protocol) = match key {
        Some(ServiceKey::Fwmark { .. }) => (true, None, None),
        Some(ServiceKey::Inet { port, protocol, .. }) => (false, Some(port), Some(protocol)),
        None => (false, None, None),
    };
    let mut timeout = 0;
    if let Some(t) = &r.persistence_timeout {
        if let Some(secs) = persistence_secs(cx, t) {
            timeout = secs;
            flags = flags.with(ServiceFlags::PERSISTENT, true);
        }
    }
    let persistent = r.persistence_timeout.is_some();
    let mut netmask = af.map(Netmask::default_for);
    if let Some(m) = &r.persistence_netmask {
        if !persistent {
            cx.err(
                m,
                "persistence_netmask has no effect without persistence_timeout".into(),
                "add `persistence_timeout:` (e.g. 5m), or remove persistence_netmask",
            );
        } else if let Some(af) = af {
            netmask = persistence_netmask(cx, m, af);
        }
    }
    let mut pe_name = None;
    if let Some(pe) = &r.persistence_engine {
        if pe.value != "sip" {
            cx.err(
                pe,
                format!("unknown persistence engine `{}`", pe.value),
                "the kernel has one: `sip` (module ip_vs_pe_sip)",
            );
        } else if !persistent {
            cx.err(
                pe,
                "persistence_engine has no effect without persistence_timeout".into(),
                "add `persistence_timeout:`: the engine keys the persistence templates",
            );
        } else if protocol.is_some_and(|p| p != Protocol::Udp) {
            cx.err(
                pe,
                "persistence_engine sip reads SIP over UDP only (ip_vs_pe_sip.c)".into(),
                "use it on a `protocol: udp` service",
            );
        } else {
            pe_name = Some(pe.value.clone());
        }
    }
    if let Some(o) = r.one_packet.as_ref().filter(|o| o.value) {
        if !is_fwmark && protocol.is_some_and(|p| p != Protocol::Udp) {
            cx.err(
                o,
                "one_packet has no effect on a TCP or SCTP service: the kernel schedules each \
                 packet only for UDP"
                    .into(),
                "remove it, or use it on a `protocol: udp` service",
            );
        }
        flags = flags.with(ServiceFlags::ONEPACKET, true);
    }
    if let (Some(0), false, Some(p)) = (port, persistent, &r.port) {
        cx.err(
            p,
            "port 0 (every port) is only allowed for a persistent service".into(),
            "add `persistence_timeout:`, or give the service's port",
        );
    }
    if cx.diags.len() > before {
        return (key, None);
    }
    let (Some(k), Some(sched), Some(netmask)) = (key, scheduler, netmask) else {
        return (key, None);
    };
    let mut s = Service::new(k, sched);
    s.flags = flags;
    s.timeout = timeout;
    s.netmask = netmask;
    s.pe_name = pe_name;
    (key, Some(s))
}

/// The service key: `address` + `port` (+ `protocol`), or `fwmark` (+ `family`).
fn key(
    cx: &mut Cx,
    raw: &Spanned<RawVirtualServer>,
    inst: Option<&InstanceFacts>,
) -> Option<ServiceKey> {
    let r = &raw.value;
    match (&r.address, &r.fwmark) {
        (Some(_), Some(f)) => {
            cx.err(
                f,
                "a virtual server has an address or a fwmark, not both".into(),
                "keep `address:` + `port:` for one VIP and port, or `fwmark:` for a marked set",
            );
            None
        }
        (None, None) => {
            cx.err(
                raw,
                "a virtual server needs `address:` and `port:`, or `fwmark:`".into(),
                "e.g. `address: 192.0.2.10` and `port: 80`",
            );
            None
        }
        (Some(a), None) => inet_key(cx, raw, a, inst),
        (None, Some(f)) => fwmark_key(cx, r, f, inst),
    }
}

fn inet_key(
    cx: &mut Cx,
    raw: &Spanned<RawVirtualServer>,
    a: &Spanned<String>,
    inst: Option<&InstanceFacts>,
) -> Option<ServiceKey> {
    let r = &raw.value;
    if let Some(f) = &r.family {
        cx.err(
            f,
            "family is for fwmark services: an address has its own".into(),
            "remove `family:`",
        );
    }
    let addr = match a.value.trim().parse::<IpAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            cx.err(
                a,
                format!("address `{}` is not an IP address", a.value),
                "write the VIP, e.g. 192.0.2.10 or 2001:db8::10 (no prefix, no port)",
            );
            None
        }
    };
    if let (Some(addr), Some(i)) = (addr, inst) {
        if i.vips_complete && !i.vips.contains(&addr) {
            let vips: Vec<String> = i.vips.iter().map(ToString::to_string).collect();
            cx.err(
                a,
                format!(
                    "address {addr} is not a VIP of instance `{}` (its VIPs: {})",
                    r.instance.value,
                    vips.join(", ")
                ),
                "a service is programmed only where its instance holds the VIP: add the \
                 address to that instance's virtual_ipaddress, or name the instance that has it",
            );
        }
    }
    let port = match &r.port {
        None => {
            cx.err(
                raw,
                "a virtual server with an address needs `port:`".into(),
                "add `port: 80` (or `port: 0` with persistence_timeout for every port)",
            );
            None
        }
        Some(p) => cx.int_in("port", p, 0, 65_535, "use 0..65535"),
    };
    let protocol = protocol(cx, r.protocol.as_ref());
    Some(ServiceKey::Inet {
        protocol: protocol?,
        addr: addr?,
        port: u16::try_from(port?).ok()?,
    })
}

fn fwmark_key(
    cx: &mut Cx,
    r: &RawVirtualServer,
    f: &Spanned<i64>,
    inst: Option<&InstanceFacts>,
) -> Option<ServiceKey> {
    if let Some(p) = &r.port {
        cx.err(
            p,
            "a fwmark service has no port: the mark selects the packets".into(),
            "remove `port:`; match the ports in the rule that sets the mark",
        );
    }
    if let Some(p) = &r.protocol {
        cx.err(
            p,
            "a fwmark service has no protocol: the mark selects the packets".into(),
            "remove `protocol:`; match the protocol in the rule that sets the mark",
        );
    }
    let mark = cx.int_in(
        "fwmark",
        f,
        1,
        i64::from(u32::MAX),
        "use 1..4294967295 (0 means no mark)",
    );
    let af = match &r.family {
        None => Some(
            inst.and_then(InstanceFacts::family)
                .unwrap_or(AddressFamily::Inet),
        ),
        Some(v) => match v.value.as_str() {
            "ipv4" => Some(AddressFamily::Inet),
            "ipv6" => Some(AddressFamily::Inet6),
            other => {
                cx.err(
                    v,
                    format!("family `{other}` is not an address family"),
                    "use ipv4 or ipv6 (default: the family of the instance's VIPs)",
                );
                None
            }
        },
    };
    Some(ServiceKey::Fwmark {
        af: af?,
        mark: u32::try_from(mark?).ok()?,
    })
}

fn protocol(cx: &mut Cx, p: Option<&Spanned<String>>) -> Option<Protocol> {
    let Some(p) = p else {
        return Some(Protocol::Tcp);
    };
    match p.value.to_ascii_lowercase().as_str() {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "sctp" => Some(Protocol::Sctp),
        _ => {
            cx.err(
                p,
                format!("protocol `{}` is not one IPVS balances", p.value),
                "use tcp (the default), udp or sctp",
            );
            None
        }
    }
}

/// ipvsadm's `-b` names, each only with the scheduler that reads it (`ip_vs_sh.c`, `ip_vs_mh.c`).
fn sched_flags(
    cx: &mut Cx,
    list: &Spanned<Vec<Spanned<String>>>,
    sched: &Scheduler,
) -> ServiceFlags {
    let fits: &[&str] = match sched {
        Scheduler::Sh => &["sh-fallback", "sh-port"],
        Scheduler::Mh => &["mh-fallback", "mh-port"],
        _ => &[],
    };
    let mut flags = ServiceFlags::default();
    for f in &list.value {
        let name = f.value.as_str();
        let bit = ServiceFlags::sched_flag_from_name(name);
        if bit.is_none() || name.starts_with("flag-") {
            cx.err(
                f,
                format!("unknown scheduler flag `{name}`"),
                "sh takes sh-fallback and sh-port, mh takes mh-fallback and mh-port",
            );
        } else if !fits.contains(&name) {
            cx.err(
                f,
                format!("scheduler flag `{name}` does not belong to scheduler `{sched}`"),
                &if fits.is_empty() {
                    format!("scheduler `{sched}` reads no flag: remove scheduler_flags")
                } else {
                    format!("`{sched}` takes {}", fits.join(" and "))
                },
            );
        } else if let Some(bit) = bit {
            if flags.contains(bit) {
                cx.err(
                    f,
                    format!("scheduler flag `{name}` is listed twice"),
                    "remove one",
                );
            }
            flags = flags.with(bit, true);
        }
    }
    flags
}

/// A persistence timeout: whole seconds, 1 s..31 days (ipvsadm's range for `-p`).
fn persistence_secs(cx: &mut Cx, t: &Spanned<String>) -> Option<u32> {
    let d = cx.duration("persistence_timeout", t)?;
    let ms = d.as_millis();
    if ms % 1000 != 0 || !(1..=u128::from(MAX_PERSISTENCE_SECS)).contains(&(ms / 1000)) {
        cx.err(
            t,
            format!(
                "persistence_timeout {} out of range 1s..31 days in whole seconds",
                t.value
            ),
            "the kernel counts persistence in seconds: e.g. 5m (ipvsadm's -p default is 300)",
        );
        return None;
    }
    u32::try_from(ms / 1000).ok()
}

/// IPv4: a contiguous mask (`255.255.255.0`) or `/N`; IPv6: a prefix length `/N` or `N`, 1..128
/// (`ip_vs_add_service` refuses other IPv6 values).
fn persistence_netmask(cx: &mut Cx, m: &Spanned<String>, af: AddressFamily) -> Option<Netmask> {
    let text = m.value.trim();
    let prefix = text.strip_prefix('/').unwrap_or(text).parse::<u8>().ok();
    match af {
        AddressFamily::Inet => {
            let mask = match (text.parse::<Ipv4Addr>(), prefix) {
                (Ok(mask), _) => {
                    let bits = u32::from(mask);
                    (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(mask)
                }
                (_, Some(p)) if p <= 32 && text.starts_with('/') => Some(Ipv4Addr::from(
                    u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0),
                )),
                _ => None,
            };
            if mask.is_none() {
                cx.err(
                    m,
                    format!("persistence_netmask `{}` is not an IPv4 netmask", m.value),
                    "write a mask such as 255.255.255.0, or /24",
                );
            }
            mask.map(Netmask::Inet)
        }
        AddressFamily::Inet6 => match prefix {
            Some(p @ 1..=128) => Some(Netmask::Inet6(p)),
            _ => {
                cx.err(
                    m,
                    format!(
                        "persistence_netmask `{}` is not an IPv6 prefix length",
                        m.value
                    ),
                    "write /1 to /128, e.g. /64",
                );
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_masks_and_prefixes() {
        let mut cx = Cx::default();
        let sp = |s: &str| Spanned {
            value: s.to_string(),
            referenced: serde_saphyr::Location::UNKNOWN,
            defined: serde_saphyr::Location::UNKNOWN,
        };
        let v4 = AddressFamily::Inet;
        let got = |cx: &mut Cx, s: &str| persistence_netmask(cx, &sp(s), v4);
        assert_eq!(
            got(&mut cx, "255.255.255.0"),
            Some(Netmask::Inet(Ipv4Addr::new(255, 255, 255, 0)))
        );
        assert_eq!(
            got(&mut cx, "/20"),
            Some(Netmask::Inet(Ipv4Addr::new(255, 255, 240, 0)))
        );
        assert_eq!(
            got(&mut cx, "/0"),
            Some(Netmask::Inet(Ipv4Addr::UNSPECIFIED))
        );
        assert_eq!(
            got(&mut cx, "/32"),
            Some(Netmask::Inet(Ipv4Addr::BROADCAST))
        );
        assert!(cx.diags.is_empty());
        assert_eq!(got(&mut cx, "255.0.255.0"), None);
        assert_eq!(got(&mut cx, "/33"), None);
        assert_eq!(got(&mut cx, "24"), None);
        assert_eq!(cx.diags.len(), 3);
        let v6 = |cx: &mut Cx, s: &str| persistence_netmask(cx, &sp(s), AddressFamily::Inet6);
        assert_eq!(v6(&mut cx, "/64"), Some(Netmask::Inet6(64)));
        assert_eq!(v6(&mut cx, "128"), Some(Netmask::Inet6(128)));
        assert_eq!(v6(&mut cx, "/0"), None);
    }
}
