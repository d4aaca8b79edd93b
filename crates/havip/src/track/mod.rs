//! Tracking: checks whose results move an instance's priority or put it in FAULT.
//!
//! Each item is reachable at one path, `havip::track::Item` (the files are private):
//!
//! | file | concern |
//! |---|---|
//! | `probe.rs` | one probe run: exec, TCP connect, HTTP GET (all three on the `health` crate's probes, shared with the director's real-server checks), process by name, file value |
//! | `risefall.rs` | the pure rise/fall filter (keepalived's tracking law: the first result decides at once; `health`'s real-server filter starts pessimistic instead) |
//! | `task.rs` | the periodic task that runs a probe, filters it, and publishes a [`CheckState`] |
//! | `weight.rs` | the pure rule that turns check states into a priority or FAULT |
//!
//! A check is configured as a [`crate::config::CheckSpec`]. The link state of tracked interfaces
//! comes from `net::vip::LinkMonitor`; a weight or a fault pushed by the owner of an instance goes
//! straight to the runner (`InstanceHandle::set_external_weight`, `set_external_fault`).

mod probe;
mod risefall;
mod task;
mod weight;

pub use probe::{Outcome, Probe, ProbeSpec};
pub use task::{spawn_check, CheckState};
pub use weight::{verdict, Tracked, Verdict};
