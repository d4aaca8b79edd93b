//! `IPVS_DAEMON_ATTR_*`: a sync daemon nested in `IPVS_CMD_ATTR_DAEMON`.
//!
//! `ip_vs_ctl.c` (`ip_vs_genl_new_daemon`) requires state, interface and sync id; the rest is
//! optional. `ip_vs_genl_fill_daemon` reports every field. The multicast group is an `in_addr`
//! (network order) or `in6_addr`; the multicast port is host order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::DecodeError;
use crate::model::{DaemonState, SyncDaemon};

use super::attr::{
    nest_end, nest_start, nest_start_noflag, put_bytes, put_str, put_u16, put_u32, put_u8, Attr,
    AttrIter, RawAttr,
};
use super::cmd_attr;

/// State (u32: 1 master, 2 backup).
pub const STATE: u16 = 1;
/// Multicast interface name (string).
pub const MCAST_IFN: u16 = 2;
/// Sync id (u32).
pub const SYNC_ID: u16 = 3;
/// Maximum sync message length (u16).
pub const SYNC_MAXLEN: u16 = 4;
/// IPv4 multicast group (`in_addr`).
pub const MCAST_GROUP: u16 = 5;
/// IPv6 multicast group (`in6_addr`).
pub const MCAST_GROUP6: u16 = 6;
/// Multicast base port (u16).
pub const MCAST_PORT: u16 = 7;
/// Multicast TTL (u8).
pub const MCAST_TTL: u16 = 8;

/// A sync daemon decoded from a reply, with the attributes this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonReply {
    /// The attributes of `IPVS_CMD_ATTR_DAEMON` this crate knows, decoded.
    pub daemon: SyncDaemon,
    /// Unknown attributes, kept raw.
    pub unknown: Vec<RawAttr>,
}

/// Appends `IPVS_CMD_ATTR_DAEMON` with every field that is set.
pub fn encode_daemon(buf: &mut Vec<u8>, d: &SyncDaemon) {
    let at = nest_start(buf, cmd_attr::DAEMON);
    put_u32(buf, STATE, d.state.to_raw());
    put_str(buf, MCAST_IFN, &d.mcast_ifn);
    put_u32(buf, SYNC_ID, d.syncid);
    if let Some(v) = d.sync_maxlen {
        put_u16(buf, SYNC_MAXLEN, v);
    }
    match d.mcast_group {
        Some(IpAddr::V4(g)) => put_bytes(buf, MCAST_GROUP, &g.octets()),
        Some(IpAddr::V6(g)) => put_bytes(buf, MCAST_GROUP6, &g.octets()),
        None => {}
    }
    if let Some(v) = d.mcast_port {
        put_u16(buf, MCAST_PORT, v);
    }
    if let Some(v) = d.mcast_ttl {
        put_u8(buf, MCAST_TTL, v);
    }
    nest_end(buf, at);
}

/// Appends `IPVS_CMD_ATTR_DAEMON` laid out as the kernel's reply (`ip_vs_genl_fill_daemon`).
/// For tests and fakes.
pub fn encode_daemon_reply(buf: &mut Vec<u8>, d: &SyncDaemon) {
    let at = nest_start_noflag(buf, cmd_attr::DAEMON);
    put_u32(buf, STATE, d.state.to_raw());
    put_str(buf, MCAST_IFN, &d.mcast_ifn);
    put_u32(buf, SYNC_ID, d.syncid);
    if let Some(v) = d.sync_maxlen {
        put_u16(buf, SYNC_MAXLEN, v);
    }
    if let Some(v) = d.mcast_port {
        put_u16(buf, MCAST_PORT, v);
    }
    if let Some(v) = d.mcast_ttl {
        put_u8(buf, MCAST_TTL, v);
    }
    match d.mcast_group {
        Some(IpAddr::V4(g)) => put_bytes(buf, MCAST_GROUP, &g.octets()),
        Some(IpAddr::V6(g)) => put_bytes(buf, MCAST_GROUP6, &g.octets()),
        None => {}
    }
    nest_end(buf, at);
}

/// Appends `IPVS_CMD_ATTR_DAEMON` with only the state (stop).
pub fn encode_daemon_state(buf: &mut Vec<u8>, state: DaemonState) {
    let at = nest_start(buf, cmd_attr::DAEMON);
    put_u32(buf, STATE, state.to_raw());
    nest_end(buf, at);
}

/// Decodes the attributes inside `IPVS_CMD_ATTR_DAEMON`.
pub fn decode_daemon(nest: &Attr<'_>) -> Result<DaemonReply, DecodeError> {
    let mut state = None;
    let mut d = SyncDaemon::new(DaemonState::Master, "", 0);
    let mut unknown = Vec::new();
    for a in nest.nested() {
        let a = a?;
        match a.ty {
            STATE => state = Some(a.u32("IPVS_DAEMON_ATTR_STATE")?),
            MCAST_IFN => d.mcast_ifn = a.str("IPVS_DAEMON_ATTR_MCAST_IFN")?,
            SYNC_ID => d.syncid = a.u32("IPVS_DAEMON_ATTR_SYNC_ID")?,
            SYNC_MAXLEN => d.sync_maxlen = Some(a.u16("IPVS_DAEMON_ATTR_SYNC_MAXLEN")?),
            MCAST_GROUP => {
                d.mcast_group = Some(IpAddr::V4(Ipv4Addr::from(
                    a.array::<4>("IPVS_DAEMON_ATTR_MCAST_GROUP")?,
                )))
            }
            MCAST_GROUP6 => {
                d.mcast_group = Some(IpAddr::V6(Ipv6Addr::from(
                    a.array::<16>("IPVS_DAEMON_ATTR_MCAST_GROUP6")?,
                )))
            }
            MCAST_PORT => d.mcast_port = Some(a.u16("IPVS_DAEMON_ATTR_MCAST_PORT")?),
            MCAST_TTL => d.mcast_ttl = Some(a.u8("IPVS_DAEMON_ATTR_MCAST_TTL")?),
            _ => unknown.push(a.to_raw()),
        }
    }
    let raw = state.ok_or(DecodeError::Missing {
        context: "IPVS_DAEMON_ATTR_STATE",
    })?;
    d.state = DaemonState::from_raw(raw).ok_or(DecodeError::Invalid {
        context: "IPVS_DAEMON_ATTR_STATE",
        value: raw.into(),
    })?;
    Ok(DaemonReply { daemon: d, unknown })
}

/// Finds `IPVS_CMD_ATTR_DAEMON` among a message's top-level attributes and decodes it.
pub fn decode_daemon_msg(attrs: &[u8]) -> Result<DaemonReply, DecodeError> {
    for a in AttrIter::new(attrs) {
        let a = a?;
        if a.ty == cmd_attr::DAEMON {
            return decode_daemon(&a);
        }
    }
    Err(DecodeError::Missing {
        context: "IPVS_CMD_ATTR_DAEMON",
    })
}
