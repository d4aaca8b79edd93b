//! Tracking: health probes whose results move an instance's priority or put it in FAULT, shared
//! later with the director's real-server health checks.
//!
//! | file | concern |
//! |---|---|
//! | [`probe`] | one probe run: exec, TCP connect, HTTP GET, process by name, file value |
//! | [`risefall`] | the pure rise/fall filter |
//! | [`task`] | the periodic task that runs a probe, filters it, and publishes a [`CheckState`] |
//! | [`weight`] | the pure rule that turns check states into a priority or FAULT |
//!
//! The link state of tracked interfaces comes from `net::vip::LinkMonitor`; a weight pushed by the
//! owner of an instance goes straight to the runner (`InstanceHandle::set_external_weight`).

pub mod probe;
pub mod risefall;
pub mod task;
pub mod weight;

pub use probe::{Outcome, ProbeSpec};
pub use task::{spawn_check, CheckSpec, CheckState};
