//! One run of one probe, bounded by the check's timeout. Each kind lives in its own file; none
//! panics on what it reads (a socket, a process).
//!
//! | file | kind |
//! |---|---|
//! | [`tcp`] | TCP connect (also the connect of HTTP) |
//! | [`http`] | HTTP/1.1 GET: the request, the response head (httparse), the body search |
//! | [`tls`] | rustls client configurations for HTTPS (verification on, off, or a CA file) |
//! | [`dns`] | one DNS query over UDP (hickory-proto for the wire format) |
//! | [`udp`] | UDP send / expect |
//! | [`exec`] | `sh -c` in its own process group |

pub mod dns;
pub mod exec;
pub mod http;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::spec::{CheckKind, CheckSpec, StatusRange};

/// Why a probe run failed: its `Display` is the reason subscribers and logs see.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The run did not finish within the check's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The TCP connect failed (refused, unreachable, ...).
    #[error("connect {addr}: {source}")]
    Connect {
        /// Where it connected.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// A socket operation after the connect failed.
    #[error("{what}: {source}")]
    Io {
        /// Which step: `send`, `recv`, `write request`, `read response`, ...
        what: &'static str,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TLS client configuration could not be built (unreadable CA file, no certificate in
    /// it, a server name that is neither a DNS name nor an address).
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// The TLS handshake failed (certificate rejected, protocol error).
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    /// The server's answer is not an HTTP/1.x response head.
    #[error("bad HTTP response: {0}")]
    Http(String),
    /// The HTTP status is outside the accepted range.
    #[error("status {got}, expected {want}")]
    Status {
        /// The status received.
        got: u16,
        /// The accepted range.
        want: StatusRange,
    },
    /// The body (as much as was read) does not contain the expected text.
    #[error("body ({read} bytes read) does not contain {needle:?}")]
    BodyMissing {
        /// The text looked for.
        needle: String,
        /// Body bytes read (decoded).
        read: usize,
    },
    /// A DNS message could not be built or the answer not parsed.
    #[error("DNS: {0}")]
    Dns(String),
    /// The DNS answer's RCODE is not the expected one.
    #[error("rcode {got}, expected {want}")]
    Rcode {
        /// The RCODE received, by name.
        got: String,
        /// The RCODE expected, by name.
        want: String,
    },
    /// A UDP answer came but does not contain the expected bytes.
    #[error("answer of {len} bytes does not contain the expected {want} bytes")]
    UdpMismatch {
        /// Length of the answer.
        len: usize,
        /// Length of the expected bytes.
        want: usize,
    },
    /// The exec check's command could not be started.
    #[error("spawn `sh -c {command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The spawn error.
        source: std::io::Error,
    },
    /// The exec check's command failed.
    #[error("`{command}` exited with {status}")]
    Exit {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
}

/// Runs probes of one (backend, check): owns what is built once per probe and reused by every
/// run (the TLS client configuration).
pub struct Prober {
    target: SocketAddr,
    spec: Arc<CheckSpec>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Prober {
    /// A prober of `target` (the real server's address and port) with `spec`.
    pub fn new(target: SocketAddr, spec: Arc<CheckSpec>) -> Self {
        Prober {
            target,
            spec,
            tls: None,
        }
    }

    /// One run, bounded by the check's timeout: `Ok` with what was seen (`connected`,
    /// `status 200`, ...) or the failure.
    pub async fn run(&mut self) -> Result<String, ProbeError> {
        if self.bounds_itself() {
            return self.run_unbounded().await.map(Cow::into_owned);
        }
        let limit = self.spec.timeout;
        match tokio::time::timeout(limit, self.run_unbounded()).await {
            Ok(r) => r.map(Cow::into_owned),
            Err(_) => Err(ProbeError::Timeout(limit)),
        }
    }

    /// True when [`Prober::run_unbounded`] enforces the check's timeout itself (exec: it kills
    /// the command's process group at the timeout); the caller must bound every other kind.
    pub(crate) fn bounds_itself(&self) -> bool {
        matches!(self.spec.kind, CheckKind::Exec(_))
    }

    /// One run without the timeout of [`Prober::run`] (except exec, see
    /// [`Prober::bounds_itself`]): the registry races it against the probe's one timer, which
    /// saves a timer registration per run. A TCP success is the static `connected` (no
    /// allocation per run).
    pub(crate) async fn run_unbounded(&mut self) -> Result<Cow<'static, str>, ProbeError> {
        let addr = self.spec.connect_addr(self.target);
        match &self.spec.kind {
            CheckKind::Tcp => {
                tcp::connect(addr).await?;
                Ok(Cow::Borrowed("connected"))
            }
            CheckKind::Http(h) => {
                let tls = match &h.tls {
                    Some(t) => Some(match &self.tls {
                        Some(c) => Arc::clone(c),
                        None => {
                            let c = tls::client_config(&t.verify)?;
                            self.tls = Some(Arc::clone(&c));
                            c
                        }
                    }),
                    None => None,
                };
                // The HTTP future holds a TLS connection: boxed, so that a probe task's size does
                // not grow with it while it sleeps.
                Box::pin(http::get(addr, h, tls)).await.map(Cow::Owned)
            }
            CheckKind::Dns(d) => dns::query(addr, d).await.map(Cow::Owned),
            CheckKind::Udp(u) => udp::exchange(addr, u).await.map(Cow::Owned),
            CheckKind::Exec(e) => exec::run(&e.command, self.target, addr, self.spec.timeout)
                .await
                .map(Cow::Owned),
        }
    }
}
