//! The YAML of the IPVS part of the file as written: `virtual_servers:` and `ipvs:`. Same rules as
//! `schema`: loosely typed values wrapped in [`Spanned`], checked in `services` and `ipvs_settings`.

use serde::Deserialize;
use serde_saphyr::Spanned;

pub use super::schema_health::{RawHealthCheck, RawQuorumDown, RawSorryServer};

/// One entry of `virtual_servers:` (keepalived's `virtual_server` block, ipvsadm's `-A`).
#[derive(Debug, Deserialize)]
pub struct RawVirtualServer {
    /// The instance whose VIP gates this service.
    pub instance: Spanned<String>,
    /// Virtual address (a VIP of the instance); exclusive with `fwmark`.
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    /// Virtual port (required with `address`).
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// Firewall mark; exclusive with `address`.
    #[serde(default)]
    pub fwmark: Option<Spanned<i64>>,
    /// `ipv4` or `ipv6`, for a fwmark service only.
    #[serde(default)]
    pub family: Option<Spanned<String>>,
    /// `tcp`, `udp` or `sctp`.
    #[serde(default)]
    pub protocol: Option<Spanned<String>>,
    /// Scheduler name (ipvsadm `-s`, keepalived `lb_algo`).
    #[serde(default)]
    pub scheduler: Option<Spanned<String>>,
    /// Scheduler flags (ipvsadm `-b`).
    #[serde(default)]
    pub scheduler_flags: Option<Spanned<Vec<Spanned<String>>>>,
    /// Persistence timeout, a duration (ipvsadm `-p`).
    #[serde(default)]
    pub persistence_timeout: Option<Spanned<String>>,
    /// Persistence granularity (ipvsadm `-M`).
    #[serde(default)]
    pub persistence_netmask: Option<Spanned<String>>,
    /// Persistence engine (ipvsadm `--pe`).
    #[serde(default)]
    pub persistence_engine: Option<Spanned<String>>,
    /// One-packet scheduling (ipvsadm `-o`).
    #[serde(default)]
    pub one_packet: Option<Spanned<bool>>,
    /// Default forwarding of the real servers.
    #[serde(default)]
    pub forwarding: Option<Spanned<String>>,
    /// Default tunnel settings of the real servers.
    #[serde(default)]
    pub tunnel: Option<Box<Spanned<RawTunnel>>>,
    /// The real servers.
    #[serde(default)]
    pub real_servers: Option<Spanned<Vec<Spanned<RawRealServer>>>>,
    /// Health checks of every real server (a real server's own `checks:` replace them).
    #[serde(default)]
    pub checks: Option<Spanned<Vec<Spanned<RawHealthCheck>>>>,
    /// `inhibit` (default) or `remove`: what a real server that is not up gets.
    #[serde(default)]
    pub on_down: Option<Spanned<String>>,
    /// The real server used while none of the configured ones is up.
    #[serde(default)]
    pub sorry_server: Option<Box<Spanned<RawSorryServer>>>,
    /// Minimum total weight of healthy real servers.
    #[serde(default)]
    pub quorum: Option<Spanned<i64>>,
    /// What happens to the instance while the quorum is lost.
    #[serde(default)]
    pub quorum_down: Option<Box<Spanned<RawQuorumDown>>>,
}

/// One entry of `real_servers:` (ipvsadm's `-a`).
#[derive(Debug, Deserialize)]
pub struct RawRealServer {
    /// Address.
    pub address: Spanned<String>,
    /// Port (default: the service's).
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// Weight (ipvsadm `-w`).
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
    /// `dr`, `nat` or `tunnel` (default: the service's).
    #[serde(default)]
    pub forwarding: Option<Box<Spanned<String>>>,
    /// Tunnel settings (default: the service's).
    #[serde(default)]
    pub tunnel: Option<Box<Spanned<RawTunnel>>>,
    /// Upper connection threshold (ipvsadm `-x`).
    #[serde(default)]
    pub upper_threshold: Option<Box<Spanned<i64>>>,
    /// Lower connection threshold (ipvsadm `-y`).
    #[serde(default)]
    pub lower_threshold: Option<Box<Spanned<i64>>>,
    /// This real server's health checks, instead of the service's.
    #[serde(default)]
    pub checks: Option<Box<Spanned<Vec<Spanned<RawHealthCheck>>>>>,
}

/// `tunnel:` of a service or a real server.
#[derive(Debug, Deserialize)]
pub struct RawTunnel {
    /// `ipip`, `gue` or `gre` (ipvsadm `--tun-type`).
    #[serde(default, rename = "type")]
    pub kind: Option<Spanned<String>>,
    /// GUE destination port (ipvsadm `--tun-port`).
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// `none`, `csum` or `remcsum` (ipvsadm `--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
    #[serde(default)]
    pub checksum: Option<Spanned<String>>,
}

/// `ipvs:`
#[derive(Debug, Deserialize)]
pub struct RawIpvs {
    /// Connection timeouts (ipvsadm `--set`).
    #[serde(default)]
    pub timeouts: Option<Spanned<RawTimeouts>>,
    /// The connection-synchronisation daemon.
    #[serde(default)]
    pub sync_daemon: Option<Spanned<RawSyncDaemon>>,
    /// `net.ipv4.vs.expire_nodest_conn`.
    #[serde(default)]
    pub expire_nodest_conn: Option<Spanned<bool>>,
    /// `net.ipv4.vs.expire_quiescent_template`.
    #[serde(default)]
    pub expire_quiescent_template: Option<Spanned<bool>>,
    /// `net.ipv4.vs.conn_reuse_mode`.
    #[serde(default)]
    pub conn_reuse_mode: Option<Spanned<i64>>,
    /// Drift verification period (a duration, 1s..1h).
    #[serde(default)]
    pub verify_interval: Option<Spanned<String>>,
    /// How long a removed real server drains (a duration, 0s..1d).
    #[serde(default)]
    pub drain_timeout: Option<Spanned<String>>,
}

/// `ipvs: timeouts:`
#[derive(Debug, Deserialize)]
pub struct RawTimeouts {
    /// Established TCP.
    #[serde(default)]
    pub tcp: Option<Spanned<String>>,
    /// TCP after FIN.
    #[serde(default)]
    pub tcp_fin: Option<Spanned<String>>,
    /// UDP.
    #[serde(default)]
    pub udp: Option<Spanned<String>>,
}

/// `ipvs: sync_daemon:` (keepalived's `lvs_sync_daemon`, ipvsadm's `--start-daemon`).
#[derive(Debug, Deserialize)]
pub struct RawSyncDaemon {
    /// The instance whose state decides master or backup.
    #[serde(default)]
    pub instance: Option<Spanned<String>>,
    /// Interface the sync messages use.
    pub interface: Spanned<String>,
    /// Sync id, 0..255 (default: the instance's VRID).
    #[serde(default)]
    pub syncid: Option<Spanned<i64>>,
    /// Largest sync message payload.
    #[serde(default)]
    pub maxlen: Option<Spanned<i64>>,
    /// Multicast group.
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    /// UDP port.
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// Multicast TTL.
    #[serde(default)]
    pub ttl: Option<Spanned<i64>>,
}
