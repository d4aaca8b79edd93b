//! VIP failover between directors: VRRPv3 (RFC 9568, formerly RFC 5798) and VRRPv2 (RFC 3768).
//!
//! Pure protocol code (no I/O, injected clock): [`packet`] (wire format and receive checks),
//! [`fsm`] (the state machine), [`time`] (intervals, timestamps, the RFC timer formulas).
#![forbid(unsafe_code)]

pub mod fsm;
pub mod packet;
pub mod time;
