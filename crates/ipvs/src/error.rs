//! Typed errors: which object, which errno, what it means for IPVS.
//!
//! The errno meanings follow the handlers in `net/netfilter/ipvs/ip_vs_ctl.c`
//! (`ip_vs_genl_set_cmd`, `ip_vs_add_service`, `ip_vs_add_dest`, `ip_vs_genl_new_daemon`).

use std::fmt;
use std::io;

use serde::Serialize;

/// A reply from the kernel that could not be decoded: what was being read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
        /// The value.
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
    /// The symbolic name (`EEXIST`, ...), or `errno N`.
    pub fn name(self) -> String {
        let n = match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
            11 => "EAGAIN",
            12 => "ENOMEM",
            16 => "EBUSY",
            17 => "EEXIST",
            19 => "ENODEV",
            22 => "EINVAL",
            34 => "ERANGE",
            90 => "EMSGSIZE",
            95 => "EOPNOTSUPP",
            97 => "EAFNOSUPPORT",
            105 => "ENOBUFS",
            _ => return format!("errno {}", self.0),
        };
        n.to_string()
    }

    /// What the errno means for an IPVS request of the given kind.
    ///
    /// `ip_vs_ctl.c`: `ip_vs_add_service` returns EEXIST for an existing service;
    /// `ip_vs_genl_set_cmd` returns ESRCH when "service not found"; `ip_vs_del_dest` /
    /// `ip_vs_edit_dest` return ENOENT for a missing destination; `ip_vs_scheduler_get` failing
    /// makes an add return ENOENT ("Scheduler module ip_vs_%s not found"); `ip_vs_add_dest`
    /// returns ERANGE for a negative weight or `l_threshold > u_threshold`.
    pub fn meaning(self, kind: OpKind) -> &'static str {
        match (self.0, kind) {
            (17, OpKind::Daemon) => "a sync daemon of this state is already running",
            (17, _) => "already exists",
            (3, _) => "no such service",
            (2, OpKind::Service) => "scheduler or persistence engine not found",
            (2, _) => "no such destination",
            (22, _) => "invalid argument",
            (34, _) => "out of range (a negative weight, or lower threshold above upper)",
            (16, _) => "busy",
            (12, _) => "out of memory",
            (1, _) => "operation not permitted (needs CAP_NET_ADMIN)",
            (19, _) => "no such device",
            (97, _) => "address family not supported by this kernel's IPVS",
            (95, _) => "not supported",
            (105, _) => "acknowledgements lost (receive buffer overrun)",
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
    #[error("{request}: {} ({errno})", errno.meaning(OpKind::ServiceKey))]
    Request {
        /// What was asked.
        request: String,
        /// The errno.
        errno: Errno,
    },
    /// An operation that the kernel refused (from the single-operation helpers).
    #[error(transparent)]
    Op(#[from] OpError),
    /// Acknowledgements were lost (ENOBUFS) while reading a reply: the result is unknown.
    #[error("{request}: replies lost (ENOBUFS): re-read the table")]
    Lost {
        /// What was asked.
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
