//! The I/O edge of havip: everything that touches a socket or the kernel's address tables.
//!
//! | file | concern |
//! |---|---|
//! | [`iface`] | interface lookup: index, MAC, addresses (getifaddrs) |
//! | [`socket`] | the raw IP socket for protocol 112: multicast or unicast, TTL/hop limit 255 |
//! | [`vip`] | VIP add/remove and link-state events over rtnetlink |
//! | [`garp`] | gratuitous ARP and unsolicited neighbour advertisements (AF_PACKET) |
//!
//! The pure parts (IPv4 header parsing, frame builders) are plain functions with byte-wise tests;
//! the rest is thin wrappers over `socket2`, `nix` and `rtnetlink`, all without `unsafe`.

pub mod garp;
pub mod iface;
pub mod socket;
pub mod vip;

use std::io;

/// Errors of the I/O edge. Each variant says which operation failed and keeps the OS error.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The named interface does not exist (in this network namespace).
    #[error("interface {0:?} not found")]
    NoSuchInterface(String),
    /// The interface has no address of the family the operation needs.
    #[error("interface {name:?} has no {what}")]
    NoAddress {
        /// The interface name as configured.
        name: String,
        /// What was missing, e.g. "IPv4 address" or "IPv6 link-local address".
        what: &'static str,
    },
    /// A socket system call failed.
    #[error("{op}: {source}")]
    Io {
        /// The operation, e.g. "join 224.0.0.18 on eth0".
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A netlink request was refused by the kernel or the connection broke.
    #[error("netlink {op}: {detail}")]
    Netlink {
        /// The operation, e.g. "add 192.0.2.10/24 on eth0".
        op: String,
        /// The kernel's error (errno text) or the transport failure.
        detail: String,
        /// The errno when the kernel answered with one.
        errno: Option<i32>,
    },
}

impl NetError {
    pub(crate) fn io(op: impl Into<String>, source: impl Into<io::Error>) -> NetError {
        NetError::Io {
            op: op.into(),
            source: source.into(),
        }
    }
}
