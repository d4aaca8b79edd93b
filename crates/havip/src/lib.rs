//! VIP failover between directors: VRRPv3 (RFC 9568, formerly RFC 5798) and VRRPv2 (RFC 3768).
//!
//! Pure protocol code (no I/O, injected clock): [`packet`] (wire format and receive checks),
//! [`fsm`] (the state machine), [`time`] (intervals, timestamps, the RFC timer formulas).
//!
//! I/O (see `docs/havip-runtime.md`): [`net`] (raw socket, VIPs, GARP/NA, link events), [`track`]
//! (health probes, rise/fall, weights), [`runner`] (one instance: where the state machine meets
//! sockets, timers and tracking), configured by [`config`].
#![forbid(unsafe_code)]

pub mod config;
pub mod fsm;
pub mod net;
pub mod packet;
pub mod runner;
pub mod time;
pub mod track;
