//! Typed errors: which object, which errno, what it means for IPVS.
//!
//! The errno meanings follow the handlers in `net/netfilter/ipvs/ip_vs_ctl.c`
//! (`ip_vs_genl_set_cmd`, `ip_vs_add_service`, `ip_vs_add_dest`, `ip_vs_genl_new_daemon`).

use std::fmt;
use std::io;

use serde::Serialize;

/// A reply from the kernel that could not be decoded: what was being read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a header or a fixed-size value needs.
    #[error("{context}: truncated: need {need} bytes, have {have}")]
    Truncated {
        /// What was being read.
        context: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A length field that does not fit the buffer or the value's size.
    #[error("{context}: bad length {len}")]
    BadLength {
        /// What was being read.
        context: &'static str,
        /// The offending length.
        len: usize,
    },
    /// A required attribute is missing.
    #[error("{context}: missing attribute")]
    Missing {
        /// The attribute.
        context: &'static str,
    },
    /// A value out of its range.
    #[error("{context}: invalid value {value}")]
    Invalid {
        /// What was being read.
        context: &'static str,
        /// The number read, which the field's range does not allow.
        value: u64,
    },
    /// A string attribute that is not UTF-8.
    #[error("{context}: not UTF-8")]
    Utf8 {
        /// The attribute.
        context: &'static str,
    },
}

/// A kernel errno as IPVS means it (`ip_vs_ctl.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Errno(pub i32);

impl Errno {
    /// `EPERM`: the caller lacks `CAP_NET_ADMIN`.
    pub const EPERM: Errno = Errno(1);
    /// `ENOENT`: no such destination, scheduler, persistence engine or generic-netlink family.
    pub const ENOENT: Errno = Errno(2);
    /// `ESRCH`: no such service (`ip_vs_genl_find_service`).
    pub const ESRCH: Errno = Errno(3);
    /// `EINTR`: interrupted (`kthread_stop` of a sync daemon that has not run yet).
    pub const EINTR: Errno = Errno(4);
    /// `EAGAIN`.
    pub const EAGAIN: Errno = Errno(11);
    /// `ENOMEM`: the kernel is out of memory.
    pub const ENOMEM: Errno = Errno(12);
    /// `EBUSY`: busy (a second dump on one socket, a daemon being stopped).
    pub const EBUSY: Errno = Errno(16);
    /// `EEXIST`: the object (service, destination, daemon) already exists.
    pub const EEXIST: Errno = Errno(17);
    /// `ENODEV`: no such network device (a sync daemon's interface).
    pub const ENODEV: Errno = Errno(19);
    /// `EINVAL`: a value the kernel does not accept.
    pub const EINVAL: Errno = Errno(22);
    /// `ERANGE`: a negative weight, or a lower threshold above the upper one.
    pub const ERANGE: Errno = Errno(34);
    /// `EMSGSIZE`: a message too large for the socket's buffer.
    pub const EMSGSIZE: Errno = Errno(90);
    /// `EOPNOTSUPP`: not supported by this kernel.
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// `EAFNOSUPPORT`: an address family this kernel's IPVS was built without.
    pub const EAFNOSUPPORT: Errno = Errno(97);
    /// `ENOBUFS`: replies dropped, the receive buffer was full (`netlink_overrun`).
    pub const ENOBUFS: Errno = Errno(105);

    /// Every errno this crate names, with its symbolic name.
    const NAMED: [(Errno, &'static str); 15] = [
        (Errno::EPERM, "EPERM"),
        (Errno::ENOENT, "ENOENT"),
        (Errno::ESRCH, "ESRCH"),
        (Errno::EINTR, "EINTR"),
        (Errno::EAGAIN, "EAGAIN"),
        (Errno::ENOMEM, "ENOMEM"),
        (Errno::EBUSY, "EBUSY"),
        (Errno::EEXIST, "EEXIST"),
        (Errno::ENODEV, "ENODEV"),
        (Errno::EINVAL, "EINVAL"),
        (Errno::ERANGE, "ERANGE"),
        (Errno::EMSGSIZE, "EMSGSIZE"),
        (Errno::EOPNOTSUPP, "EOPNOTSUPP"),
        (Errno::EAFNOSUPPORT, "EAFNOSUPPORT"),
        (Errno::ENOBUFS, "ENOBUFS"),
    ];

    /// The symbolic name (`EEXIST`, ...), or `errno N`.
    pub fn name(self) -> String {
        match Self::NAMED.iter().find(|(e, _)| *e == self) {
            Some((_, n)) => (*n).to_string(),
            None => format!("errno {}", self.0),
        }
    }

    /// What the errno means for an IPVS request of the given kind.
    ///
    /// `ip_vs_ctl.c`: `ip_vs_add_service` returns EEXIST for an existing service;
    /// `ip_vs_genl_set_cmd` returns ESRCH when "service not found"; `ip_vs_del_dest` /
    /// `ip_vs_edit_dest` return ENOENT for a missing destination; `ip_vs_scheduler_get` failing
    /// makes an add return ENOENT ("Scheduler module ip_vs_%s not found"); `ip_vs_add_dest`
    /// returns ERANGE for a negative weight or `l_threshold > u_threshold`.
    pub fn meaning(self, kind: OpKind) -> &'static str {
        match (self, kind) {
            (Errno::EEXIST, OpKind::Daemon) => "a sync daemon of this state is already running",
            (Errno::EEXIST, _) => "already exists",
            (Errno::ESRCH, _) => "no such service",
            (Errno::ENOENT, OpKind::Service) => "scheduler or persistence engine not found",
            (Errno::ENOENT, OpKind::Query) => "not found",
            (Errno::ENOENT, _) => "no such destination",
            (Errno::EINVAL, _) => "invalid argument",
            (Errno::ERANGE, _) => {
                "out of range (a negative weight, or lower threshold above upper)"
            }
            (Errno::EBUSY, _) => "busy",
            (Errno::ENOMEM, _) => "out of memory",
            (Errno::EPERM, _) => "operation not permitted (needs CAP_NET_ADMIN)",
            (Errno::ENODEV, _) => "no such device",
            (Errno::EAFNOSUPPORT, _) => "address family not supported by this kernel's IPVS",
            (Errno::EOPNOTSUPP, _) => "not supported",
            (Errno::ENOBUFS, _) => "acknowledgements lost (receive buffer overrun)",
            _ => "unexpected error",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The object an operation acts on, which picks the meaning of an errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum OpKind {
    /// A service add or edit.
    Service,
    /// A service delete, zero or flush.
    ServiceKey,
    /// A destination add, edit or delete.
    Dest,
    /// A sync daemon start or stop.
    Daemon,
    /// A config (timeouts) change.
    Config,
    /// A query: a dump, or a read of info, timeouts or a service.
    Query,
}

/// One operation the kernel refused: the operation (as `Op`'s Display names it) and the errno.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{op}: {} ({errno})", errno.meaning(*kind))]
pub struct OpError {
    /// The operation, e.g. `add real server 10.2.0.1:80 to TCP 10.1.0.1:80`.
    pub op: String,
    /// The kind of object it acts on.
    pub kind: OpKind,
    /// The kernel's errno (positive).
    pub errno: Errno,
}

impl OpError {
    /// What the errno means for this operation.
    pub fn meaning(&self) -> &'static str {
        self.errno.meaning(self.kind)
    }
}

/// Everything that can go wrong talking to IPVS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The generic-netlink family "IPVS" is not registered.
    #[error("IPVS not available in this kernel/namespace: load ip_vs (generic netlink family \"IPVS\" not found)")]
    NotAvailable,
    /// A socket call failed.
    #[error("netlink socket: {context}: {source}")]
    Socket {
        /// The call (`socket`, `bind`, `send`, `recv`, ...).
        context: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A request could not be encoded.
    #[error(transparent)]
    Encode(#[from] crate::codec::request::EncodeError),
    /// A reply could not be decoded.
    #[error("decoding an IPVS reply: {0}")]
    Decode(#[from] DecodeError),
    /// A request (a dump, info, timeouts) that the kernel refused.
    #[error("{request}: {} ({errno})", errno.meaning(OpKind::Query))]
    Request {
        /// The request in words (`list services`, `get IPVS info`, ...).
        request: String,
        /// The errno from the kernel's `NLMSG_ERROR` reply.
        errno: Errno,
    },
    /// An operation that the kernel refused (from the single-operation helpers).
    #[error(transparent)]
    Op(#[from] OpError),
    /// Acknowledgements were lost (ENOBUFS) while reading a reply: the result is unknown.
    #[error("{request}: replies lost (ENOBUFS): re-read the table")]
    Lost {
        /// The request in words (`list services`, `get IPVS info`, ...).
        request: String,
    },
    /// The kernel's table kept changing while it was read.
    #[error(
        "no consistent snapshot of the IPVS table after {tries} reads (the table kept changing)"
    )]
    Inconsistent {
        /// How many reads were tried.
        tries: u32,
    },
    /// The kernel sent something that breaks the protocol (a reply to no request, ...).
    #[error("netlink protocol: {0}")]
    Protocol(String),
    /// The thread of a [`Worker`](crate::worker::Worker) has ended (it panicked, or could not
    /// start): nothing was done.
    #[error("the IPVS worker thread has ended")]
    WorkerGone,
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_errors_name_the_object_and_the_meaning() {
        let e = OpError {
            op: "add real server 10.2.0.1:80 to TCP 10.1.0.1:80".into(),
            kind: OpKind::Dest,
            errno: Errno(17),
        };
        assert_eq!(
            e.to_string(),
            "add real server 10.2.0.1:80 to TCP 10.1.0.1:80: already exists (EEXIST)"
        );
        assert_eq!(Errno(3).meaning(OpKind::Dest), "no such service");
        assert_eq!(Errno(2).meaning(OpKind::Dest), "no such destination");
        assert_eq!(
            Errno(2).meaning(OpKind::Service),
            "scheduler or persistence engine not found"
        );
        assert_eq!(Errno(999).name(), "errno 999");
        assert!(Error::NotAvailable.to_string().contains("load ip_vs"));
    }
}
