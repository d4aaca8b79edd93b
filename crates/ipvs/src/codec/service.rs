//! `IPVS_SVC_ATTR_*`: a service nested in `IPVS_CMD_ATTR_SERVICE`.
//!
//! Encoding follows what `ip_vs_genl_parse_service` (`ip_vs_ctl.c`) requires: the key (af, then
//! fwmark, or protocol + address + port) always; scheduler, flags, timeout and netmask for a
//! full entry (add, edit). Decoding follows `ip_vs_genl_fill_service`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::DecodeError;
use crate::model::{
    AddressFamily, Netmask, Protocol, Scheduler, Service, ServiceFlags, ServiceKey,
};

use super::attr::{
    nest_end, nest_start, nest_start_noflag, put_be16, put_bytes, put_str, put_u16, put_u32, Attr,
    AttrIter, RawAttr,
};
use super::cmd_attr;
use super::stats::{decode_preferred_stats, encode_stats32, encode_stats64};

/// Address family (u16).
pub const AF: u16 = 1;
/// Protocol (u16).
pub const PROTOCOL: u16 = 2;
/// Virtual address (`union nf_inet_addr`, 16 bytes).
pub const ADDR: u16 = 3;
/// Virtual port (`__be16`).
pub const PORT: u16 = 4;
/// Firewall mark (u32).
pub const FWMARK: u16 = 5;
/// Scheduler name (string).
pub const SCHED_NAME: u16 = 6;
/// Flags (`struct ip_vs_flags`).
pub const FLAGS: u16 = 7;
/// Persistence timeout (u32).
pub const TIMEOUT: u16 = 8;
/// Persistence netmask (`__be32` mask, or IPv6 prefix length).
pub const NETMASK: u16 = 9;
/// 32-bit stats (nested).
pub const STATS: u16 = 10;
/// Persistence engine name (string).
pub const PE_NAME: u16 = 11;
/// 64-bit stats (nested).
pub const STATS64: u16 = 12;

/// A service decoded from a reply, with the attributes this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceReply {
    /// The attributes of `IPVS_CMD_ATTR_SERVICE` this crate knows, decoded.
    pub service: Service,
    /// Unknown attributes, kept raw.
    pub unknown: Vec<RawAttr>,
}

/// The 16-byte `union nf_inet_addr` form of an address (IPv4 in the first 4 bytes).
pub fn inet_addr_bytes(addr: &IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            for (d, s) in b.iter_mut().zip(a.octets()) {
                *d = s;
            }
        }
        IpAddr::V6(a) => b = a.octets(),
    }
    b
}

/// Reads an address of family `af` from a `union nf_inet_addr` attribute.
pub fn decode_addr(a: &Attr<'_>, af: AddressFamily) -> Result<IpAddr, DecodeError> {
    Ok(match af {
        AddressFamily::Inet => IpAddr::V4(Ipv4Addr::from(a.array::<4>("IPv4 address")?)),
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::from(a.array::<16>("IPv6 address")?)),
    })
}

fn netmask_raw(n: &Netmask) -> [u8; 4] {
    match n {
        // `__be32`: the mask's bytes in network order.
        Netmask::Inet(m) => m.octets(),
        // `ip_vs_add_service` compares the raw value with 1..128: the prefix in host order.
        Netmask::Inet6(p) => u32::from(*p).to_ne_bytes(),
    }
}

/// Appends the key attributes (no nest).
fn put_key(buf: &mut Vec<u8>, key: &ServiceKey) {
    put_u16(buf, AF, key.af().to_raw());
    match key {
        ServiceKey::Fwmark { mark, .. } => put_u32(buf, FWMARK, *mark),
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            put_u16(buf, PROTOCOL, protocol.to_raw());
            put_bytes(buf, ADDR, &inet_addr_bytes(addr));
            put_be16(buf, PORT, *port);
        }
    }
}

/// Appends `IPVS_CMD_ATTR_SERVICE` holding only the key (delete, zero, destination requests).
pub fn encode_key(buf: &mut Vec<u8>, key: &ServiceKey) {
    let at = nest_start(buf, cmd_attr::SERVICE);
    put_key(buf, key);
    nest_end(buf, at);
}

/// Appends `IPVS_CMD_ATTR_SERVICE` with every field of a full entry (add, edit), in
/// ipvsadm's order.
pub fn encode_service(buf: &mut Vec<u8>, s: &Service) {
    let at = nest_start(buf, cmd_attr::SERVICE);
    put_fields(buf, s);
    nest_end(buf, at);
}

/// Appends `IPVS_CMD_ATTR_SERVICE` laid out as the kernel's reply (`ip_vs_genl_fill_service`):
/// no `NLA_F_NESTED`, then 32- and 64-bit stats when `stats` is set. For tests and fakes.
pub fn encode_service_reply(buf: &mut Vec<u8>, s: &Service) {
    let at = nest_start_noflag(buf, cmd_attr::SERVICE);
    put_fields(buf, s);
    if let Some(st) = &s.stats {
        encode_stats32(buf, STATS, st);
        encode_stats64(buf, STATS64, st);
    }
    nest_end(buf, at);
}

fn put_fields(buf: &mut Vec<u8>, s: &Service) {
    put_key(buf, &s.key);
    put_str(buf, SCHED_NAME, s.scheduler.as_str());
    if let Some(pe) = &s.pe_name {
        put_str(buf, PE_NAME, pe);
    }
    let mut flags = [0u8; 8];
    flags[..4].copy_from_slice(&s.flags.bits().to_ne_bytes());
    flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
    put_bytes(buf, FLAGS, &flags);
    put_u32(buf, TIMEOUT, s.timeout);
    put_bytes(buf, NETMASK, &netmask_raw(&s.netmask));
}

/// Decodes the attributes inside `IPVS_CMD_ATTR_SERVICE`.
pub fn decode_service(nest: &Attr<'_>) -> Result<ServiceReply, DecodeError> {
    let mut af = None;
    let mut protocol = None;
    let mut addr = None;
    let mut port = None;
    let mut fwmark = None;
    let mut sched = None;
    let mut flags = 0;
    let mut timeout = 0;
    let mut netmask = None;
    let mut pe_name = None;
    let mut stats32 = None;
    let mut stats64 = None;
    let mut unknown = Vec::new();
    for a in nest.nested() {
        let a = a?;
        match a.ty {
            AF => af = Some(a.u16("IPVS_SVC_ATTR_AF")?),
            PROTOCOL => protocol = Some(a.u16("IPVS_SVC_ATTR_PROTOCOL")?),
            ADDR => addr = Some(a),
            PORT => port = Some(a.be16("IPVS_SVC_ATTR_PORT")?),
            FWMARK => fwmark = Some(a.u32("IPVS_SVC_ATTR_FWMARK")?),
            SCHED_NAME => sched = Some(a.str_ref("IPVS_SVC_ATTR_SCHED_NAME")?),
            FLAGS => flags = a.u32("IPVS_SVC_ATTR_FLAGS")?,
            TIMEOUT => timeout = a.u32("IPVS_SVC_ATTR_TIMEOUT")?,
            NETMASK => netmask = Some(a.array::<4>("IPVS_SVC_ATTR_NETMASK")?),
            PE_NAME => pe_name = Some(a.str("IPVS_SVC_ATTR_PE_NAME")?),
            STATS => stats32 = Some(a),
            STATS64 => stats64 = Some(a),
            _ => unknown.push(a.to_raw()),
        }
    }
    let af_raw = af.ok_or(DecodeError::Missing {
        context: "IPVS_SVC_ATTR_AF",
    })?;
    let af = AddressFamily::from_raw(af_raw).ok_or(DecodeError::Invalid {
        context: "IPVS_SVC_ATTR_AF",
        value: af_raw.into(),
    })?;
    let key = match fwmark {
        Some(mark) if mark != 0 => ServiceKey::Fwmark { af, mark },
        _ => ServiceKey::Inet {
            protocol: Protocol::from_raw(protocol.ok_or(DecodeError::Missing {
                context: "IPVS_SVC_ATTR_PROTOCOL",
            })?),
            addr: decode_addr(
                &addr.ok_or(DecodeError::Missing {
                    context: "IPVS_SVC_ATTR_ADDR",
                })?,
                af,
            )?,
            port: port.ok_or(DecodeError::Missing {
                context: "IPVS_SVC_ATTR_PORT",
            })?,
        },
    };
    let netmask = match (af, netmask) {
        (_, None) => Netmask::default_for(af),
        (AddressFamily::Inet, Some(b)) => Netmask::Inet(Ipv4Addr::from(b)),
        (AddressFamily::Inet6, Some(b)) => {
            let p = u32::from_ne_bytes(b);
            Netmask::Inet6(u8::try_from(p).ok().filter(|p| *p <= 128).ok_or(
                DecodeError::Invalid {
                    context: "IPVS_SVC_ATTR_NETMASK (IPv6 prefix)",
                    value: p.into(),
                },
            )?)
        }
    };
    let service = Service {
        key,
        scheduler: Scheduler::from_name(sched.unwrap_or_default()),
        flags: ServiceFlags::from_bits_retain(flags),
        timeout,
        netmask,
        pe_name,
        stats: decode_preferred_stats(stats64, stats32, &mut unknown)?,
    };
    Ok(ServiceReply { service, unknown })
}

/// Finds `IPVS_CMD_ATTR_SERVICE` among a message's top-level attributes and decodes it.
pub fn decode_service_msg(attrs: &[u8]) -> Result<ServiceReply, DecodeError> {
    for a in AttrIter::new(attrs) {
        let a = a?;
        if a.ty == cmd_attr::SERVICE {
            return decode_service(&a);
        }
    }
    Err(DecodeError::Missing {
        context: "IPVS_CMD_ATTR_SERVICE",
    })
}
