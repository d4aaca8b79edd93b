//! Kernel-wide settings: info, timeouts, sync daemons.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// General IPVS information (`IPVS_CMD_GET_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Info {
    /// `IPVS_INFO_ATTR_VERSION`: `major << 16 | minor << 8 | patch`.
    pub version: u32,
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE`: connection hash table size.
    pub conn_tab_size: u32,
}

impl Info {
    /// The version as `major.minor.patch` (e.g. `1.2.1`).
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// Connection timeouts in seconds (`IPVS_CMD_ATTR_TIMEOUT_*`); 0 in a set request leaves a value
/// unchanged (`ip_vs_set_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Timeouts {
    /// Idle timeout of an established TCP connection (`IPVS_CMD_ATTR_TIMEOUT_TCP`).
    pub tcp: u32,
    /// Timeout of a TCP connection after the client's FIN (`IPVS_CMD_ATTR_TIMEOUT_TCP_FIN`).
    pub tcp_fin: u32,
    /// Idle timeout of a UDP "connection" (`IPVS_CMD_ATTR_TIMEOUT_UDP`).
    pub udp: u32,
}

/// The role of a connection-synchronisation daemon (`IPVS_DAEMON_ATTR_STATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum DaemonState {
    /// `IP_VS_STATE_MASTER` (1): sends sync messages.
    Master,
    /// `IP_VS_STATE_BACKUP` (2): receives them.
    Backup,
}

impl DaemonState {
    /// The kernel's number.
    pub fn to_raw(self) -> u32 {
        match self {
            DaemonState::Master => 1,
            DaemonState::Backup => 2,
        }
    }

    /// The state for a kernel number.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(DaemonState::Master),
            2 => Some(DaemonState::Backup),
            _ => None,
        }
    }
}

impl fmt::Display for DaemonState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DaemonState::Master => "master",
            DaemonState::Backup => "backup",
        })
    }
}

/// A connection-synchronisation daemon (`IPVS_CMD_ATTR_DAEMON`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: DaemonState,
    /// Multicast interface name.
    pub mcast_ifn: String,
    /// Sync id (0..255).
    pub syncid: u32,
    /// Maximum UDP payload size (`IPVS_DAEMON_ATTR_SYNC_MAXLEN`), kernel default when `None`.
    pub sync_maxlen: Option<u16>,
    /// Multicast group (`IPVS_DAEMON_ATTR_MCAST_GROUP` or `_GROUP6`).
    pub mcast_group: Option<IpAddr>,
    /// Multicast base port (host byte order on the wire).
    pub mcast_port: Option<u16>,
    /// Multicast TTL.
    pub mcast_ttl: Option<u8>,
}

impl SyncDaemon {
    /// A daemon with the kernel's defaults for everything but state, interface and sync id.
    pub fn new(state: DaemonState, mcast_ifn: &str, syncid: u32) -> Self {
        SyncDaemon {
            state,
            mcast_ifn: mcast_ifn.to_string(),
            syncid,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_version_string() {
        let i = Info {
            version: 0x010201,
            conn_tab_size: 4096,
        };
        assert_eq!(i.version_string(), "1.2.1");
    }
}
