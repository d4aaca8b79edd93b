//! The IPVS table as plain data: services, their real servers (destinations), counters and the
//! kernel-wide settings (info, timeouts, sync daemons). No I/O here.
//!
//! Field meanings follow `include/uapi/linux/ip_vs.h` and `net/netfilter/ipvs/ip_vs_ctl.c`.
//! Everything is kept in the order the kernel returns it.

mod dest;
mod kernel;
mod keyed;
mod service;

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

pub use dest::{DestKey, Destination, Forwarding, Tunnel, TunnelFlags, TunnelType};
pub use kernel::{DaemonState, Info, SyncDaemon, Timeouts};
pub use keyed::{KeyedService, KeyedTable};
pub use service::{
    AddressFamily, Netmask, Protocol, Scheduler, Service, ServiceFlags, ServiceKey, Stats,
};

/// Writes an address and port as `1.2.3.4:80` or `[2001:db8::1]:80`.
pub(crate) fn fmt_addr_port(f: &mut fmt::Formatter<'_>, addr: &IpAddr, port: u16) -> fmt::Result {
    match addr {
        IpAddr::V4(a) => write!(f, "{a}:{port}"),
        IpAddr::V6(a) => write!(f, "[{a}]:{port}"),
    }
}

/// One service with its real servers, as the kernel lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceEntry {
    /// The virtual service's settings and counters.
    pub service: Service,
    /// Its real servers, in the kernel's order (`IPVS_CMD_GET_DEST` dump).
    pub destinations: Vec<Destination>,
}

/// The whole IPVS table of a network namespace, in the kernel's order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Table {
    /// Every service with its real servers.
    pub services: Vec<ServiceEntry>,
}
