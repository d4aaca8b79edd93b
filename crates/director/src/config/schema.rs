//! The YAML file as written: serde types, every value a
//! check needs wrapped in [`Spanned`] so a semantic error can name its line and column.
//!
//! No untagged enums and no `#[serde(flatten)]` here: inside them `Spanned` silently reports 0:0
//! (a serde-saphyr limit, found in round 1). Values are read loosely typed (integers as `i64`,
//! addresses and durations as strings) and checked in `validate`, which can then say *why* a
//! value is wrong instead of serde's "invalid value".
//!
//! Unknown keys are NOT refused here: `keys` reports every one of them in a pass of its own, and
//! deserializing ignores them, so one `check` run shows unknown keys and value errors together.

use std::fmt;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub use super::schema_ipvs::{RawIpvs, RawVirtualServer};

/// The whole file.
#[derive(Debug, Deserialize)]
pub struct RawConfig {
    /// Daemon-wide settings.
    #[serde(default)]
    pub global: Option<RawGlobal>,
    /// The VRRP instances (one VIP set each).
    #[serde(default)]
    pub instances: Option<Spanned<Vec<Spanned<RawInstance>>>>,
    /// The IPVS virtual services, each gated by an instance's VIP.
    #[serde(default)]
    pub virtual_servers: Option<Spanned<Vec<Spanned<RawVirtualServer>>>>,
    /// Kernel-wide IPVS settings: timeouts, the sync daemon, `net.ipv4.vs.*` sysctls.
    #[serde(default)]
    pub ipvs: Option<Spanned<RawIpvs>>,
}

/// `global:`
#[derive(Debug, Deserialize)]
pub struct RawGlobal {
    /// Path of the status socket.
    #[serde(default)]
    pub status_socket: Option<Spanned<String>>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    #[serde(default)]
    pub log_level: Option<Spanned<String>>,
}

/// One entry of `instances:`.
#[derive(Debug, Deserialize)]
pub struct RawInstance {
    /// Unique name, used in logs, status and notify arguments.
    pub name: Spanned<String>,
    /// The interface the adverts go out of and the VIPs are added to.
    pub interface: Spanned<String>,
    /// VRID, 1..255.
    pub virtual_router_id: Spanned<i64>,
    /// 1..255 (255: the address owner).
    #[serde(default)]
    pub priority: Option<Spanned<i64>>,
    /// 2 or 3.
    #[serde(default)]
    pub version: Option<Spanned<i64>>,
    /// Advertisement interval, e.g. `100ms`, `1s`.
    #[serde(default)]
    pub advert_interval: Option<Spanned<String>>,
    /// VIPs, `ADDR[/PREFIX]`.
    #[serde(default)]
    pub virtual_ipaddress: Option<Spanned<Vec<Spanned<String>>>>,
    /// Source address of unicast adverts.
    #[serde(default)]
    pub unicast_src_ip: Option<Spanned<String>>,
    /// Unicast peers (no multicast).
    #[serde(default)]
    pub unicast_peer: Option<Vec<Spanned<String>>>,
    /// Take over from a lower-priority master.
    #[serde(default)]
    pub preempt: Option<Spanned<bool>>,
    /// Wait this long after start before preempting.
    #[serde(default)]
    pub preempt_delay: Option<Spanned<String>>,
    /// Accept packets to the VIPs while master even if not the address owner.
    #[serde(default)]
    pub accept: Option<Spanned<bool>>,
    /// Gratuitous ARP / unsolicited NA.
    #[serde(default)]
    pub garp: Option<Spanned<RawGarp>>,
    /// Interfaces whose link state is tracked.
    #[serde(default)]
    pub track_interface: Option<Vec<Spanned<RawTrackInterface>>>,
    /// Health checks that change the priority or force FAULT.
    #[serde(default)]
    pub track_check: Option<Vec<Spanned<RawCheck>>>,
    /// Commands run on transitions.
    #[serde(default)]
    pub notify: Option<RawNotify>,
    /// `vrrp` (election) or `external` (claimed and released by a command).
    #[serde(default)]
    pub role: Option<Spanned<RawRole>>,
    /// Command that must succeed before an external-role instance takes the VIP.
    #[serde(default)]
    pub fence: Option<Spanned<String>>,
    /// VRRPv2 simple password (RFC 3768 type 1 authentication), at most 8 bytes.
    #[serde(default)]
    pub auth_pass: Option<Spanned<Secret>>,
}

/// `role:` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawRole {
    /// Priority-based VRRP election.
    Vrrp,
    /// Ownership decided outside (`director claim/release`): no VRRP election and no adverts.
    External,
}

/// `garp:`
#[derive(Debug, Deserialize)]
pub struct RawGarp {
    /// Announcements sent on takeover.
    #[serde(default)]
    pub repeat: Option<Spanned<i64>>,
    /// Gap between them.
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    /// Re-announce this often while master (`0s`: never).
    #[serde(default)]
    pub refresh: Option<Spanned<String>>,
}

/// One `track_interface:` entry.
#[derive(Debug, Deserialize)]
pub struct RawTrackInterface {
    /// Interface name.
    pub name: Spanned<String>,
    /// Priority change while down; 0 (default) means FAULT.
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
}

/// One `track_check:` entry: exactly one of `exec`, `tcp`, `http`, `process`, `file`.
#[derive(Debug, Deserialize)]
pub struct RawCheck {
    /// Name shown in logs and status (default: derived from the probe).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Command run with `sh -c`; exit 0 is success.
    #[serde(default)]
    pub exec: Option<Spanned<String>>,
    /// `HOST:PORT` to connect to.
    #[serde(default)]
    pub tcp: Option<Spanned<String>>,
    /// HTTP GET.
    #[serde(default)]
    pub http: Option<Spanned<RawHttp>>,
    /// Process name that must be running.
    #[serde(default)]
    pub process: Option<Spanned<String>>,
    /// File whose content (an integer) is the weight.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Time between probes.
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    /// Time a probe may take.
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Successes in a row to become up.
    #[serde(default)]
    pub rise: Option<Spanned<i64>>,
    /// Failures in a row to become down.
    #[serde(default)]
    pub fall: Option<Spanned<i64>>,
    /// Priority change while down; 0 (default) means FAULT.
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
}

/// `http:` of a check.
#[derive(Debug, Deserialize)]
pub struct RawHttp {
    /// `http://HOST:PORT/PATH`.
    pub url: Spanned<String>,
    /// Expected status code (default 200).
    #[serde(default)]
    pub status: Option<Spanned<i64>>,
}

/// `notify:` commands, each run with `sh -c` plus keepalived's arguments
/// `INSTANCE NAME STATE PRIORITY` (see `model::Notify`).
#[derive(Debug, Deserialize)]
pub struct RawNotify {
    /// On becoming master.
    #[serde(default)]
    pub master: Option<Spanned<String>>,
    /// On becoming backup.
    #[serde(default)]
    pub backup: Option<Spanned<String>>,
    /// On entering FAULT.
    #[serde(default)]
    pub fault: Option<Spanned<String>>,
    /// On stop.
    #[serde(default)]
    pub stop: Option<Spanned<String>>,
    /// On every transition.
    #[serde(default)]
    pub any: Option<Spanned<String>>,
}

/// A secret string (VRRPv2 password): its `Debug` prints `MASKED`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_masked_in_debug() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "MASKED");
    }
}
