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
//! - `read` (private): `Conn::read_services`, services read by key (pipelined GETs, each
//!   service's real servers), for callers that own part of the table.
//! - [`worker`]: a `Conn` on a thread of its own ([`Worker::spawn`]), driven through cloneable
//!   [`WorkerHandle`]s, so that its long runs never stall the caller's runtime.
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
mod read;
mod socket;
pub mod worker;

pub use conn::{BatchReport, Conn, Outcome};
pub use dump::{SnapshotReport, SNAPSHOT_TRIES};
pub use error::{DecodeError, Errno, Error, OpError, OpKind};
pub use model::{
    AddressFamily, DaemonState, DestKey, Destination, Forwarding, Info, KeyedService, KeyedTable,
    Netmask, Protocol, Scheduler, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats,
    SyncDaemon, Table, Timeouts, Tunnel, TunnelFlags, TunnelType,
};
pub use ops::Op;
pub use worker::{ReadServices, Worker, WorkerHandle};
