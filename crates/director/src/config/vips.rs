//! Checks on addresses: VIPs with their prefix, unicast source and peers.

use std::net::IpAddr;

use serde_saphyr::Spanned;

use super::model::{Version, Vip};
use super::schema::RawInstance;
use super::validate::Cx;

/// The address family of an address, for messages.
pub(super) fn family(a: &IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Parses an address, optionally checking its family against the instance's VIPs.
pub(super) fn address(
    cx: &mut Cx,
    key: &str,
    v: &Spanned<String>,
    v4: Option<bool>,
) -> Option<IpAddr> {
    let Ok(a) = v.value.trim().parse::<IpAddr>() else {
        cx.err(
            v,
            format!("{key} `{}` is not an IP address", v.value),
            "write an address such as 192.0.2.1 or 2001:db8::1",
        );
        return None;
    };
    if v4.is_some_and(|v4| v4 != a.is_ipv4()) {
        cx.err(
            v,
            format!(
                "{key} {a} is {} but the instance's VIPs are not",
                family(&a)
            ),
            "an instance carries one address family",
        );
        return None;
    }
    Some(a)
}

/// Validates `virtual_ipaddress`: addresses, prefixes, one family, no duplicates.
pub(super) fn vips(cx: &mut Cx, raw: &Spanned<RawInstance>, version: Option<Version>) -> Vec<Vip> {
    let mut out: Vec<Vip> = Vec::new();
    let list = match &raw.value.virtual_ipaddress {
        Some(l) if !l.value.is_empty() => l,
        Some(l) => {
            cx.err(
                l,
                "virtual_ipaddress is empty".into(),
                "list at least one VIP",
            );
            return out;
        }
        None => {
            cx.err(
                raw,
                format!(
                    "instance `{}` has no virtual_ipaddress",
                    raw.value.name.value
                ),
                "add `virtual_ipaddress: [192.0.2.10/24]`",
            );
            return out;
        }
    };
    for v in &list.value {
        let text = v.value.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let Ok(addr) = addr.parse::<IpAddr>() else {
            cx.err(
                v,
                format!("VIP `{}` is not an address", v.value),
                "write ADDRESS[/PREFIX], e.g. 192.0.2.10/24 or 2001:db8::10/64",
            );
            continue;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix.map(str::parse::<u8>) {
            None => max,
            Some(Ok(p)) if p <= max => p,
            Some(_) => {
                cx.err(
                    v,
                    format!("VIP `{}` has a bad prefix length", v.value),
                    &format!("use /0../{max}, or leave it out for /{max}"),
                );
                continue;
            }
        };
        if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
            cx.err(
                v,
                format!("VIP {addr} is not a unicast address"),
                "use an address of the interface's subnet",
            );
            continue;
        }
        if version == Some(Version::V2) && addr.is_ipv6() {
            cx.err(
                v,
                format!("VIP {addr} is IPv6, which VRRPv2 cannot carry"),
                "use `version: 3` for IPv6",
            );
            continue;
        }
        if let Some(first) = out.first() {
            if first.addr.is_ipv4() != addr.is_ipv4() {
                cx.err(
                    v,
                    format!(
                        "VIP {addr} is {} but the first VIP {} is {}",
                        family(&addr),
                        first.addr,
                        family(&first.addr)
                    ),
                    "one instance carries one family: put these VIPs in a second instance",
                );
                continue;
            }
        }
        if out.iter().any(|o| o.addr == addr) {
            cx.err(v, format!("VIP {addr} is listed twice"), "remove one");
            continue;
        }
        out.push(Vip { addr, prefix });
    }
    out
}
