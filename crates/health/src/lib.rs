//! Real-server health checks at scale, shared by the director's services and havip's tracking.
//!
//! One probe runs per (backend address, [`CheckSpec`]) however many subscribers ask for it (a
//! backend used by 50 services is probed once per interval, not 50 times), on the caller's tokio
//! runtime, its first run spread over the interval so thousands of probes never fire together.
//! Results pass a rise/fall filter into a neutral [`State`] (Up / Down / Unknown) that subscribers
//! read from a `watch` channel, with the last result's reason and latency and the time of the
//! last change; each transition is logged as one structured `tracing` event.
//!
//! | module | concern | I/O? |
//! |---|---|---|
//! | [`spec`] | check definitions (`Eq + Hash`: they key the registry) | no |
//! | [`state`] | rise/fall filter, [`Health`], the pessimistic start | no |
//! | [`schedule`] | jitter (the golden-ratio spread) and slot arithmetic | no |
//! | [`probe`] | one run of each kind: TCP, HTTP(S), DNS, UDP, exec | yes |
//! | [`registry`] | subscriptions, reference counting, the probe tasks | yes |
//! | `engine` | every TCP probe in one task: its epoll set and timer heap (`engine::slots`: no I/O) | yes |
//!
//! ```no_run
//! # async fn demo() -> Result<(), health::Error> {
//! use health::{CheckKind, CheckSpec, Registry};
//! let registry = Registry::new()?;
//! let mut rx = registry.subscribe("192.0.2.10:80".parse().unwrap(), CheckSpec::new(CheckKind::Tcp));
//! rx.changed().await.ok();
//! println!("{:?}", rx.borrow().state);
//! # Ok(()) }
//! ```

mod engine;
pub mod probe;
pub mod registry;
pub mod schedule;
pub mod spec;
pub mod state;

pub use probe::ProbeError;
pub use registry::{Registry, Stats};
pub use spec::{
    CheckKind, CheckSpec, Connect, DnsCheck, ExecCheck, HttpCheck, StatusRange, TlsSpec, TlsVerify,
    UdpCheck,
};
pub use state::{Health, Observation, Start, State, Transition};

/// Errors of this crate outside a probe run (a failed run is a [`ProbeError`] carried as the
/// reason of an [`Observation`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// [`Registry::new`] was called outside a tokio runtime.
    #[error("no tokio runtime: create the registry inside one, or pass a handle")]
    NoRuntime,
}

/// A check definition that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The DNS query type is not a known mnemonic.
    #[error("unknown DNS query type {qtype:?} (use a mnemonic such as A, AAAA, SOA, TXT)")]
    DnsType {
        /// The type given.
        qtype: String,
    },
    /// The DNS name is not a valid domain name.
    #[error("invalid DNS name {name:?}: {reason}")]
    DnsName {
        /// The name given.
        name: String,
        /// Why.
        reason: String,
    },
}
