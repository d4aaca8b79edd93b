//! A typed, async library for the Linux kernel's IPVS generic-netlink interface.
//!
//! The kernel side lives in `net/netfilter/ipvs/ip_vs_ctl.c` (family `"IPVS"`, attributes in
//! `include/uapi/linux/ip_vs.h`).
//!
//! Pure (no I/O):
//! - [`model`]: the table as plain data (services, destinations, stats, info, timeouts, daemons),
//!   settings equality and normalisation for diffs, and the keyed view ([`KeyedTable`]).
//! - [`ops`]: the operations a batch carries.
//! - [`codec`]: netlink bytes <-> model and ops.
//! - [`ipvsadm`]: ipvsadm's text formats: the `-Sn` save text, the `-R` restore input (every bad
//!   line reported) and the `-Ln` listings, byte for byte as ipvsadm 1.31 prints them.
//! - [`error`]: typed errors, errnos with their IPVS meaning.
//!
//! I/O:
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

pub use conn::{BatchReport, Conn, Outcome, PreparedBatch};
pub use dump::{SnapshotReport, SNAPSHOT_TRIES};
pub use error::{DecodeError, Errno, Error, OpError, OpKind};
pub use model::{
    AddressFamily, DaemonState, DestKey, Destination, Forwarding, Info, KeyedService, KeyedTable,
    Netmask, Protocol, Scheduler, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats,
    SyncDaemon, Table, Timeouts, Tunnel, TunnelFlags, TunnelType,
};
pub use ops::Op;
pub use worker::{ReadServices, Worker, WorkerHandle};
