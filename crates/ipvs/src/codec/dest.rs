//! `IPVS_DEST_ATTR_*`: a real server nested in `IPVS_CMD_ATTR_DEST`.
//!
//! Encoding follows `ip_vs_genl_parse_dest` (`ip_vs_ctl.c`): address, port and address family
//! always; forwarding method, weight and both thresholds for a full entry (add, edit); tunnel
//! type, port (`__be16`) and flags with tunnel forwarding. Decoding follows
//! `ip_vs_genl_fill_dest`.

use crate::error::DecodeError;
use crate::model::{AddressFamily, DestKey, Destination, Forwarding, TunnelFlags, TunnelType};

use super::attr::{
    nest_end, nest_start, nest_start_noflag, put_be16, put_bytes, put_u16, put_u32, put_u8, Attr,
    AttrIter, RawAttr,
};
use super::cmd_attr;
use super::service::{decode_addr, inet_addr_bytes};
use super::stats::{decode_preferred_stats, encode_stats32, encode_stats64};

/// Address (`union nf_inet_addr`).
pub const ADDR: u16 = 1;
/// Port (`__be16`).
pub const PORT: u16 = 2;
/// Forwarding method (u32, `IP_VS_CONN_F_FWD_MASK` bits).
pub const FWD_METHOD: u16 = 3;
/// Weight (u32, read as int).
pub const WEIGHT: u16 = 4;
/// Upper threshold (u32).
pub const U_THRESH: u16 = 5;
/// Lower threshold (u32).
pub const L_THRESH: u16 = 6;
/// Active connections (u32).
pub const ACTIVE_CONNS: u16 = 7;
/// Inactive connections (u32).
pub const INACT_CONNS: u16 = 8;
/// Persistent connections (u32).
pub const PERSIST_CONNS: u16 = 9;
/// 32-bit stats (nested).
pub const STATS: u16 = 10;
/// Address family of the address (u16).
pub const ADDR_FAMILY: u16 = 11;
/// 64-bit stats (nested).
pub const STATS64: u16 = 12;
/// Tunnel type (u8).
pub const TUN_TYPE: u16 = 13;
/// Tunnel port (`__be16`).
pub const TUN_PORT: u16 = 14;
/// Tunnel flags (u16).
pub const TUN_FLAGS: u16 = 15;

/// A destination decoded from a reply, with the attributes this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestReply {
    /// The attributes of `IPVS_CMD_ATTR_DEST` this crate knows, decoded.
    pub dest: Destination,
    /// Unknown attributes, kept raw.
    pub unknown: Vec<RawAttr>,
}

/// Appends `IPVS_CMD_ATTR_DEST` holding only the key (delete): family, address, port.
pub fn encode_dest_key(buf: &mut Vec<u8>, key: &DestKey) {
    let at = nest_start(buf, cmd_attr::DEST);
    put_u16(buf, ADDR_FAMILY, AddressFamily::of(&key.addr).to_raw());
    put_bytes(buf, ADDR, &inet_addr_bytes(&key.addr));
    put_be16(buf, PORT, key.port);
    nest_end(buf, at);
}

fn put_config(buf: &mut Vec<u8>, d: &Destination) {
    put_u32(buf, FWD_METHOD, d.forwarding.to_raw());
    put_u32(buf, WEIGHT, d.weight as u32);
    put_u8(buf, TUN_TYPE, d.tunnel.kind.to_raw());
    put_be16(buf, TUN_PORT, d.tunnel.port);
    put_u16(buf, TUN_FLAGS, d.tunnel.flags.bits());
    put_u32(buf, U_THRESH, d.upper_threshold);
    put_u32(buf, L_THRESH, d.lower_threshold);
}

/// Appends `IPVS_CMD_ATTR_DEST` with every field of a full entry (add, edit), in ipvsadm's
/// order (tunnel attributes always; kernels before 5.2 ignore them).
pub fn encode_dest(buf: &mut Vec<u8>, d: &Destination) {
    let at = nest_start(buf, cmd_attr::DEST);
    put_u16(buf, ADDR_FAMILY, d.af().to_raw());
    put_bytes(buf, ADDR, &inet_addr_bytes(&d.addr));
    put_be16(buf, PORT, d.port);
    put_config(buf, d);
    nest_end(buf, at);
}

/// Appends `IPVS_CMD_ATTR_DEST` laid out as the kernel's reply (`ip_vs_genl_fill_dest`),
/// connection counts and stats included. For tests and fakes.
pub fn encode_dest_reply(buf: &mut Vec<u8>, d: &Destination) {
    let at = nest_start_noflag(buf, cmd_attr::DEST);
    put_bytes(buf, ADDR, &inet_addr_bytes(&d.addr));
    put_be16(buf, PORT, d.port);
    put_config(buf, d);
    put_u32(buf, ACTIVE_CONNS, d.active_conns);
    put_u32(buf, INACT_CONNS, d.inactive_conns);
    put_u32(buf, PERSIST_CONNS, d.persist_conns);
    put_u16(buf, ADDR_FAMILY, d.af().to_raw());
    if let Some(st) = &d.stats {
        encode_stats32(buf, STATS, st);
        encode_stats64(buf, STATS64, st);
    }
    nest_end(buf, at);
}

/// Decodes the attributes inside `IPVS_CMD_ATTR_DEST`; `svc_af` is the service's family, used
/// when the kernel omits `IPVS_DEST_ATTR_ADDR_FAMILY` (kernels before 3.18).
pub fn decode_dest(nest: &Attr<'_>, svc_af: AddressFamily) -> Result<DestReply, DecodeError> {
    let mut addr = None;
    let mut port = None;
    let mut fwd = None;
    let mut af = None;
    let mut unknown = Vec::new();
    let mut d = Destination::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0, Forwarding::Masq);
    d.weight = 0;
    let mut stats32 = None;
    let mut stats64 = None;
    for a in nest.nested() {
        let a = a?;
        match a.ty {
            ADDR => addr = Some(a),
            PORT => port = Some(a.be16("IPVS_DEST_ATTR_PORT")?),
            FWD_METHOD => fwd = Some(a.u32("IPVS_DEST_ATTR_FWD_METHOD")?),
            WEIGHT => d.weight = a.u32("IPVS_DEST_ATTR_WEIGHT")? as i32,
            U_THRESH => d.upper_threshold = a.u32("IPVS_DEST_ATTR_U_THRESH")?,
            L_THRESH => d.lower_threshold = a.u32("IPVS_DEST_ATTR_L_THRESH")?,
            ACTIVE_CONNS => d.active_conns = a.u32("IPVS_DEST_ATTR_ACTIVE_CONNS")?,
            INACT_CONNS => d.inactive_conns = a.u32("IPVS_DEST_ATTR_INACT_CONNS")?,
            PERSIST_CONNS => d.persist_conns = a.u32("IPVS_DEST_ATTR_PERSIST_CONNS")?,
            ADDR_FAMILY => af = Some(a.u16("IPVS_DEST_ATTR_ADDR_FAMILY")?),
            TUN_TYPE => d.tunnel.kind = TunnelType::from_raw(a.u8("IPVS_DEST_ATTR_TUN_TYPE")?),
            TUN_PORT => d.tunnel.port = a.be16("IPVS_DEST_ATTR_TUN_PORT")?,
            TUN_FLAGS => {
                d.tunnel.flags = TunnelFlags::from_bits_retain(a.u16("IPVS_DEST_ATTR_TUN_FLAGS")?)
            }
            STATS => stats32 = Some(a),
            STATS64 => stats64 = Some(a),
            _ => unknown.push(a.to_raw()),
        }
    }
    let af = match af {
        None => svc_af,
        Some(raw) => AddressFamily::from_raw(raw).ok_or(DecodeError::Invalid {
            context: "IPVS_DEST_ATTR_ADDR_FAMILY",
            value: raw.into(),
        })?,
    };
    d.addr = decode_addr(
        &addr.ok_or(DecodeError::Missing {
            context: "IPVS_DEST_ATTR_ADDR",
        })?,
        af,
    )?;
    d.port = port.ok_or(DecodeError::Missing {
        context: "IPVS_DEST_ATTR_PORT",
    })?;
    let fwd = fwd.ok_or(DecodeError::Missing {
        context: "IPVS_DEST_ATTR_FWD_METHOD",
    })?;
    d.forwarding = Forwarding::from_raw(fwd).ok_or(DecodeError::Invalid {
        context: "IPVS_DEST_ATTR_FWD_METHOD",
        value: fwd.into(),
    })?;
    d.stats = decode_preferred_stats(stats64, stats32, &mut unknown)?;
    Ok(DestReply { dest: d, unknown })
}

/// Finds `IPVS_CMD_ATTR_DEST` among a message's top-level attributes and decodes it.
pub fn decode_dest_msg(attrs: &[u8], svc_af: AddressFamily) -> Result<DestReply, DecodeError> {
    for a in AttrIter::new(attrs) {
        let a = a?;
        if a.ty == cmd_attr::DEST {
            return decode_dest(&a, svc_af);
        }
    }
    Err(DecodeError::Missing {
        context: "IPVS_CMD_ATTR_DEST",
    })
}
