//! The operations a batch carries: each one is one generic-netlink request to the kernel
//! (`IPVS_CMD_*` in `include/uapi/linux/ip_vs.h`, handled by `ip_vs_genl_set_cmd` and friends in
//! `net/netfilter/ipvs/ip_vs_ctl.c`). Plain data, no I/O.

use std::fmt;

use serde::Serialize;

use crate::model::{
    fmt_addr_port, DaemonState, DestKey, Destination, Service, ServiceKey, SyncDaemon, Timeouts,
};

/// One change to the kernel's IPVS state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Op {
    /// `IPVS_CMD_NEW_SERVICE`: add a virtual service (EEXIST if it exists).
    AddService(Service),
    /// `IPVS_CMD_SET_SERVICE`: change scheduler, flags, timeout, netmask or persistence engine
    /// of an existing service (ESRCH if there is none).
    EditService(Service),
    /// `IPVS_CMD_DEL_SERVICE`: delete a service and its real servers.
    DelService(ServiceKey),
    /// `IPVS_CMD_NEW_DEST`: add a real server to a service.
    AddDest(ServiceKey, Destination),
    /// `IPVS_CMD_SET_DEST`: change a real server (weight, forwarding, thresholds, tunnel).
    EditDest(ServiceKey, Destination),
    /// `IPVS_CMD_DEL_DEST`: remove a real server.
    DelDest(ServiceKey, DestKey),
    /// `IPVS_CMD_ZERO`: zero the counters of one service, or of all when `None`.
    Zero(Option<ServiceKey>),
    /// `IPVS_CMD_FLUSH`: delete every service.
    Flush,
    /// `IPVS_CMD_SET_CONFIG`: set the connection timeouts (0 leaves one unchanged).
    SetTimeouts(Timeouts),
    /// `IPVS_CMD_NEW_DAEMON`: start a connection-synchronisation daemon.
    StartDaemon(SyncDaemon),
    /// `IPVS_CMD_DEL_DAEMON`: stop the sync daemon of this state.
    StopDaemon(DaemonState),
}

impl fmt::Display for Op {
    /// Names the operation and its object, e.g. `add real server 10.2.0.1:80 to TCP 10.1.0.1:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddService(s) => write!(f, "add service {}", s.key),
            Op::EditService(s) => write!(f, "edit service {}", s.key),
            Op::DelService(k) => write!(f, "delete service {k}"),
            Op::AddDest(k, d) => {
                f.write_str("add real server ")?;
                fmt_addr_port(f, &d.addr, d.port)?;
                write!(f, " to {k}")
            }
            Op::EditDest(k, d) => {
                f.write_str("edit real server ")?;
                fmt_addr_port(f, &d.addr, d.port)?;
                write!(f, " of {k}")
            }
            Op::DelDest(k, d) => write!(f, "delete real server {d} from {k}"),
            Op::Zero(Some(k)) => write!(f, "zero counters of {k}"),
            Op::Zero(None) => f.write_str("zero all counters"),
            Op::Flush => f.write_str("flush all services"),
            Op::SetTimeouts(t) => write!(
                f,
                "set timeouts tcp {} tcpfin {} udp {}",
                t.tcp, t.tcp_fin, t.udp
            ),
            Op::StartDaemon(d) => write!(
                f,
                "start {} sync daemon on {} (syncid {})",
                d.state, d.mcast_ifn, d.syncid
            ),
            Op::StopDaemon(s) => write!(f, "stop {s} sync daemon"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Forwarding, Protocol, Scheduler};

    fn key() -> ServiceKey {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: "10.1.0.1".parse().unwrap(),
            port: 80,
        }
    }

    #[test]
    fn display_names_the_object() {
        let d = Destination::new("10.2.0.1".parse().unwrap(), 80, Forwarding::Masq);
        assert_eq!(
            Op::AddDest(key(), d.clone()).to_string(),
            "add real server 10.2.0.1:80 to TCP 10.1.0.1:80"
        );
        assert_eq!(
            Op::DelDest(key(), d.key()).to_string(),
            "delete real server 10.2.0.1:80 from TCP 10.1.0.1:80"
        );
        assert_eq!(
            Op::AddService(Service::new(key(), Scheduler::Rr)).to_string(),
            "add service TCP 10.1.0.1:80"
        );
        assert_eq!(Op::Zero(None).to_string(), "zero all counters");
        assert_eq!(
            Op::StopDaemon(DaemonState::Backup).to_string(),
            "stop backup sync daemon"
        );
    }
}
