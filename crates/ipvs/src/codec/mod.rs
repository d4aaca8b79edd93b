//! IPVS generic-netlink messages <-> the model: pure byte code, no I/O.
//!
//! Constants from `include/uapi/linux/ip_vs.h`. Requests are appended to a caller-provided
//! `Vec<u8>` so that many requests can be packed into one `sendmsg`; replies are decoded from
//! byte slices with every length checked (never a panic, whatever the input). Attributes this
//! crate does not know are kept raw.
//!
//! Byte order (`ip_vs_ctl.c`): ports (`IPVS_SVC_ATTR_PORT`, `IPVS_DEST_ATTR_PORT`,
//! `IPVS_DEST_ATTR_TUN_PORT`) are big-endian; fwmark, weights, thresholds, timeouts, flags and the
//! sync daemon's multicast port are host order; the IPv4 netmask is a `__be32` mask, the IPv6
//! netmask a prefix length.

pub mod attr;
pub mod daemon;
pub mod dest;
pub mod info;
pub mod msg;
pub mod request;
pub mod service;
pub mod stats;

/// `IPVS_GENL_NAME`: the generic-netlink family name.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `IPVS_CMD_*`: generic-netlink commands of the IPVS family.
pub mod cmd {
    /// Add a service (also the command of each service in a dump reply).
    pub const NEW_SERVICE: u8 = 1;
    /// Modify a service.
    pub const SET_SERVICE: u8 = 2;
    /// Delete a service.
    pub const DEL_SERVICE: u8 = 3;
    /// Get (dump) services.
    pub const GET_SERVICE: u8 = 4;
    /// Add a destination (also the command of each destination in a dump reply).
    pub const NEW_DEST: u8 = 5;
    /// Modify a destination.
    pub const SET_DEST: u8 = 6;
    /// Delete a destination.
    pub const DEL_DEST: u8 = 7;
    /// Get (dump) the destinations of a service.
    pub const GET_DEST: u8 = 8;
    /// Start a sync daemon (also the command of each daemon in a dump reply).
    pub const NEW_DAEMON: u8 = 9;
    /// Stop a sync daemon.
    pub const DEL_DAEMON: u8 = 10;
    /// Get (dump) sync daemons.
    pub const GET_DAEMON: u8 = 11;
    /// Set config (timeouts).
    pub const SET_CONFIG: u8 = 12;
    /// Get config (timeouts); the reply carries `SET_CONFIG`.
    pub const GET_CONFIG: u8 = 13;
    /// Only used in the reply to `GET_INFO`.
    pub const SET_INFO: u8 = 14;
    /// Get general info.
    pub const GET_INFO: u8 = 15;
    /// Zero counters.
    pub const ZERO: u8 = 16;
    /// Flush services.
    pub const FLUSH: u8 = 17;
}

/// `IPVS_CMD_ATTR_*`: top-level attributes.
pub mod cmd_attr {
    /// Nested service attributes.
    pub const SERVICE: u16 = 1;
    /// Nested destination attributes.
    pub const DEST: u16 = 2;
    /// Nested daemon attributes.
    pub const DAEMON: u16 = 3;
    /// TCP timeout (u32).
    pub const TIMEOUT_TCP: u16 = 4;
    /// TCP FIN timeout (u32).
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    /// UDP timeout (u32).
    pub const TIMEOUT_UDP: u16 = 6;
}
