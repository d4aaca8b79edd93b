//! A typed, async library for the Linux kernel's IPVS generic-netlink interface.
//!
//! The kernel side lives in `net/netfilter/ipvs/ip_vs_ctl.c` (family `"IPVS"`, attributes in
//! `include/uapi/linux/ip_vs.h`).
//!
//! - [`model`]: the table as plain data (services, destinations, stats, info, timeouts, daemons).
//! - [`ops`]: the operations a batch carries.
//! - [`codec`]: netlink bytes <-> model (pure).
//! - [`error`]: typed errors.
//! - [`conn`]: the socket: `Conn::connect`, `apply` (pipelined batches), info, timeouts, daemons.
//! - [`dump`]: streamed dumps and consistent snapshots.
//! - `socket` (private): neli's low-level `NlSocket`, sized for batches.
// Denied, not forbidden: `socket::borrow` is the one exception (neli's `NlSocket` has no `AsFd`).
#![deny(unsafe_code)]

pub mod codec;
pub mod conn;
pub mod dump;
pub mod error;
pub mod ipvsadm;
pub mod model;
pub mod ops;
mod socket;

pub use conn::{BatchReport, Conn, Outcome};
pub use dump::{SnapshotReport, SNAPSHOT_TRIES};
pub use error::{DecodeError, Errno, Error, OpError, OpKind};
pub use model::{
    AddressFamily, DaemonState, DestKey, Destination, Forwarding, Info, KeyedService, KeyedTable,
    Netmask, Protocol, Scheduler, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats,
    SyncDaemon, Table, Timeouts, Tunnel, TunnelFlags, TunnelType,
};
pub use ops::Op;
