//! Services: key (protocol + address + port, or fwmark), scheduler, flags, netmask, stats.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Serialize, Serializer};

use super::fmt_addr_port;

/// An address family of a service or a destination (`IPVS_SVC_ATTR_AF`,
/// `IPVS_DEST_ATTR_ADDR_FAMILY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AddressFamily {
    /// IPv4, `AF_INET` (2).
    Inet,
    /// IPv6, `AF_INET6` (10).
    Inet6,
}

impl AddressFamily {
    /// The kernel's number for this family (`AF_INET` = 2, `AF_INET6` = 10).
    pub fn to_raw(self) -> u16 {
        match self {
            AddressFamily::Inet => 2,
            AddressFamily::Inet6 => 10,
        }
    }

    /// The family for a kernel number, `None` for any family IPVS does not use.
    pub fn from_raw(raw: u16) -> Option<Self> {
        match raw {
            2 => Some(AddressFamily::Inet),
            10 => Some(AddressFamily::Inet6),
            _ => None,
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Inet => "IPv4",
            AddressFamily::Inet6 => "IPv6",
        })
    }
}

/// The transport protocol of a virtual service (`IPVS_SVC_ATTR_PROTOCOL`, an IP protocol number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub enum Protocol {
    /// TCP (`IPPROTO_TCP`, 6).
    Tcp,
    /// UDP (`IPPROTO_UDP`, 17).
    Udp,
    /// SCTP (`IPPROTO_SCTP`, 132).
    Sctp,
    /// Any other protocol number the kernel reports.
    Other(u16),
}

impl Protocol {
    /// The IP protocol number.
    pub fn to_raw(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
            Protocol::Other(n) => n,
        }
    }

    /// The protocol for an IP protocol number.
    pub fn from_raw(raw: u16) -> Self {
        match raw {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            132 => Protocol::Sctp,
            n => Protocol::Other(n),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("TCP"),
            Protocol::Udp => f.write_str("UDP"),
            Protocol::Sctp => f.write_str("SCTP"),
            Protocol::Other(n) => write!(f, "protocol {n}"),
        }
    }
}

/// What identifies a virtual service: protocol + address + port, or a firewall mark.
///
/// `ip_vs_ctl.c` (`ip_vs_genl_parse_service`): "Use fwmark if it is set, otherwise use
/// protocol, address and port". The family of an `Inet` key is the family of its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ServiceKey {
    /// A service keyed by protocol, virtual address and port.
    Inet {
        /// Transport protocol (`IPVS_SVC_ATTR_PROTOCOL`: TCP, UDP or SCTP).
        protocol: Protocol,
        /// Virtual address (its family is the service's family).
        addr: IpAddr,
        /// Virtual port (sent big-endian on the wire).
        port: u16,
    },
    /// A service keyed by a firewall mark (`IPVS_SVC_ATTR_FWMARK`, host byte order).
    Fwmark {
        /// The family of the packets this mark selects.
        af: AddressFamily,
        /// The firewall mark packets are matched on (`IPVS_SVC_ATTR_FWMARK`, host byte order; set
        /// by an nftables / iptables rule).
        mark: u32,
    },
}

impl ServiceKey {
    /// The service's address family.
    pub fn af(&self) -> AddressFamily {
        match self {
            ServiceKey::Inet { addr, .. } => AddressFamily::of(addr),
            ServiceKey::Fwmark { af, .. } => *af,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                write!(f, "{protocol} ")?;
                fmt_addr_port(f, addr, *port)
            }
            ServiceKey::Fwmark { af, mark } => write!(f, "FWM {mark} ({af})"),
        }
    }
}

/// A scheduler name (`IPVS_SVC_ATTR_SCHED_NAME`); the kernel accepts any name it has a module for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (the kernel's and ipvsadm's default).
    Wlc,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Weighted random twos choice (kernel 5.x+).
    Twos,
    /// Any other scheduler name.
    Other(String),
}

impl Scheduler {
    /// The name the kernel knows the scheduler by.
    pub fn as_str(&self) -> &str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
            Scheduler::Twos => "twos",
            Scheduler::Other(s) => s,
        }
    }

    /// The scheduler with this name (an unknown name becomes `Other`).
    pub fn from_name(name: &str) -> Self {
        match name {
            "rr" => Scheduler::Rr,
            "wrr" => Scheduler::Wrr,
            "lc" => Scheduler::Lc,
            "wlc" => Scheduler::Wlc,
            "lblc" => Scheduler::Lblc,
            "lblcr" => Scheduler::Lblcr,
            "dh" => Scheduler::Dh,
            "sh" => Scheduler::Sh,
            "sed" => Scheduler::Sed,
            "nq" => Scheduler::Nq,
            "fo" => Scheduler::Fo,
            "ovf" => Scheduler::Ovf,
            "mh" => Scheduler::Mh,
            "twos" => Scheduler::Twos,
            other => Scheduler::Other(other.to_string()),
        }
    }

    /// Every scheduler this crate names, in ipvsadm's order.
    pub const KNOWN: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
        Scheduler::Twos,
    ];
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scheduler {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

bitflags::bitflags! {
    /// Service flags (`IP_VS_SVC_F_*` in `ip_vs.h`), every bit kept as the kernel reports it
    /// (bits this crate does not name included: [`ServiceFlags::from_bits_retain`]).
    ///
    /// The wire form is `struct ip_vs_flags { flags, mask }`; this crate always sends the mask
    /// `0xffff_ffff` so that every bit is set or cleared as given (`ip_vs_genl_parse_service`:
    /// `usvc->flags = (usvc->flags & ~flags.mask) | (flags.flags & flags.mask)`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct ServiceFlags: u32 {
        /// `IP_VS_SVC_F_PERSISTENT`: persistent port (ipvsadm `-p`).
        const PERSISTENT = 0x0001;
        /// `IP_VS_SVC_F_HASHED`: hashed entry (set by the kernel on every live service).
        const HASHED = 0x0002;
        /// `IP_VS_SVC_F_ONEPACKET`: one-packet scheduling (ipvsadm `-o`).
        const ONEPACKET = 0x0004;
        /// `IP_VS_SVC_F_SCHED1`: scheduler flag 1 (sh-fallback / mh-fallback).
        const SCHED1 = 0x0008;
        /// `IP_VS_SVC_F_SCHED2`: scheduler flag 2 (sh-port / mh-port).
        const SCHED2 = 0x0010;
        /// `IP_VS_SVC_F_SCHED3`: scheduler flag 3 (unnamed by every scheduler so far).
        const SCHED3 = 0x0020;
        // Every other bit is kept too (a later kernel's flag survives a read and a write back).
        const _ = !0;
    }
}

impl Serialize for ServiceFlags {
    /// As `{"bits": N}`, the raw `IP_VS_SVC_F_*` bits (the form the JSON outputs always had).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ServiceFlags", 1)?;
        st.serialize_field("bits", &self.bits())?;
        st.end()
    }
}

impl ServiceFlags {
    /// These flags with `flag` set or cleared.
    #[must_use]
    pub fn with(self, flag: ServiceFlags, on: bool) -> Self {
        let mut f = self;
        f.set(flag, on);
        f
    }

    /// These flags without the bits the kernel sets by itself ([`ServiceFlags::HASHED`]): the
    /// part of the flags that is a setting of the service.
    #[must_use]
    pub fn settings(self) -> Self {
        self.with(Self::HASHED, false)
    }

    /// Persistent port (`-p` in ipvsadm).
    pub fn persistent(self) -> bool {
        self.contains(Self::PERSISTENT)
    }

    /// Hashed (a kernel-internal state bit reported on every live service).
    pub fn hashed(self) -> bool {
        self.contains(Self::HASHED)
    }

    /// One-packet scheduling (`-o` in ipvsadm).
    pub fn one_packet(self) -> bool {
        self.contains(Self::ONEPACKET)
    }

    /// The scheduler flags by the names `scheduler` gives them (ipvsadm's `-b` names):
    /// `sh-fallback`, `sh-port` for sh, `mh-fallback`, `mh-port` for mh, `flag-1..3` otherwise.
    pub fn sched_flag_names(self, scheduler: &Scheduler) -> Vec<&'static str> {
        let names: [&'static str; 3] = match scheduler {
            Scheduler::Sh => ["sh-fallback", "sh-port", "flag-3"],
            Scheduler::Mh => ["mh-fallback", "mh-port", "flag-3"],
            _ => ["flag-1", "flag-2", "flag-3"],
        };
        [Self::SCHED1, Self::SCHED2, Self::SCHED3]
            .into_iter()
            .zip(names)
            .filter(|(bit, _)| self.contains(*bit))
            .map(|(_, n)| n)
            .collect()
    }

    /// The scheduler-flag bit a name stands for (`sh-fallback`, `sh-port`, `mh-fallback`,
    /// `mh-port`, `flag-1`, `flag-2`, `flag-3`), or `None`.
    pub fn sched_flag_from_name(name: &str) -> Option<ServiceFlags> {
        match name {
            "sh-fallback" | "mh-fallback" | "flag-1" => Some(Self::SCHED1),
            "sh-port" | "mh-port" | "flag-2" => Some(Self::SCHED2),
            "flag-3" => Some(Self::SCHED3),
            _ => None,
        }
    }
}

/// The persistence netmask of a service (`IPVS_SVC_ATTR_NETMASK`).
///
/// `ip_vs_ctl.c` (`ip_vs_add_service`): for IPv6 the attribute holds a prefix length, checked
/// `u->netmask < 1 || u->netmask > 128`; for IPv4 it holds a mask in network byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Netmask {
    /// An IPv4 mask such as 255.255.255.0.
    Inet(Ipv4Addr),
    /// An IPv6 prefix length, 1..=128.
    Inet6(u8),
}

impl Netmask {
    /// The default for a family: 255.255.255.255 or /128 (a persistence per client address).
    pub fn default_for(af: AddressFamily) -> Self {
        match af {
            AddressFamily::Inet => Netmask::Inet(Ipv4Addr::BROADCAST),
            AddressFamily::Inet6 => Netmask::Inet6(128),
        }
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::Inet(m) => write!(f, "{m}"),
            Netmask::Inet6(p) => write!(f, "{p}"),
        }
    }
}

/// Traffic counters and rate estimates (`IPVS_STATS_ATTR_*`; read from the 64-bit
/// `IPVS_SVC_ATTR_STATS64` / `IPVS_DEST_ATTR_STATS64` when present).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Stats {
    /// Connections scheduled since the counters were zeroed (`IPVS_STATS_ATTR_CONNS`).
    pub conns: u64,
    /// Packets from clients, since zeroed (`IPVS_STATS_ATTR_INPKTS`).
    pub inpkts: u64,
    /// Packets to clients, since zeroed (`IPVS_STATS_ATTR_OUTPKTS`; 0 for direct routing and
    /// tunnels, whose replies bypass the director).
    pub outpkts: u64,
    /// Bytes from clients, since zeroed (`IPVS_STATS_ATTR_INBYTES`).
    pub inbytes: u64,
    /// Bytes to clients, since zeroed (`IPVS_STATS_ATTR_OUTBYTES`).
    pub outbytes: u64,
    /// Current connection rate (per second).
    pub cps: u64,
    /// Current incoming packet rate.
    pub inpps: u64,
    /// Current outgoing packet rate.
    pub outpps: u64,
    /// Current incoming byte rate.
    pub inbps: u64,
    /// Current outgoing byte rate.
    pub outbps: u64,
}

/// A virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// What identifies the service.
    pub key: ServiceKey,
    /// How new connections pick a real server (`IPVS_SVC_ATTR_SCHED_NAME`; ipvsadm `-s`).
    pub scheduler: Scheduler,
    /// Persistence, one-packet scheduling and the scheduler's own flags
    /// (`IPVS_SVC_ATTR_FLAGS`); the kernel adds `HASHED` to every live service.
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (`IPVS_SVC_ATTR_TIMEOUT`; meaningful with `persistent`).
    pub timeout: u32,
    /// Persistence netmask or IPv6 prefix length.
    pub netmask: Netmask,
    /// Persistence engine name (`IPVS_SVC_ATTR_PE_NAME`, e.g. `sip`).
    pub pe_name: Option<String>,
    /// Counters, present in replies only (ignored when sent).
    pub stats: Option<Stats>,
}

impl Service {
    /// A service with ipvsadm's defaults: no flags, timeout 0, the family's default netmask.
    pub fn new(key: ServiceKey, scheduler: Scheduler) -> Self {
        Service {
            netmask: Netmask::default_for(key.af()),
            key,
            scheduler,
            flags: ServiceFlags::default(),
            timeout: 0,
            pe_name: None,
            stats: None,
        }
    }

    /// True when `other` is the same service with the same settings: key, scheduler, flags,
    /// persistence timeout, netmask and persistence engine.
    ///
    /// Ignored: the counters (`stats`) and [`ServiceFlags::HASHED`], which the kernel sets on
    /// every live service (`ip_vs_add_service` and `ip_vs_edit_service`:
    /// `svc->flags = u->flags | IP_VS_SVC_F_HASHED`), so that a wanted service equals its
    /// snapshot. Compare [normalised](Service::normalised) services: the scheduler `Other("rr")`
    /// is not `Rr`, and `pe_name` `Some("")` is not `None`, until normalised.
    pub fn same_settings(&self, other: &Service) -> bool {
        // Destructured so that a new field cannot be forgotten here.
        let Service {
            key,
            scheduler,
            flags,
            timeout,
            netmask,
            pe_name,
            stats: _,
        } = self;
        *key == other.key
            && *scheduler == other.scheduler
            && flags.settings() == other.flags.settings()
            && *timeout == other.timeout
            && *netmask == other.netmask
            && *pe_name == other.pe_name
    }

    /// The service as the kernel will hold it, so that [`Service::same_settings`] compares it
    /// with a snapshot by what matters:
    /// - the scheduler by its canonical variant (`Other("rr")` becomes `Rr`: the kernel knows a
    ///   scheduler only by name);
    /// - no [`ServiceFlags::HASHED`] (the kernel's own bit: it sets it on every live service);
    /// - no persistence engine for an empty name (`ip_vs_add_service` looks one up only when
    ///   `u->pe_name && *u->pe_name`);
    /// - no counters (`stats` is reply-only).
    ///
    /// Everything else is kept as given (the kernel stores timeout and netmask even without
    /// `PERSISTENT`).
    #[must_use]
    pub fn normalised(mut self) -> Service {
        if let Scheduler::Other(name) = &self.scheduler {
            self.scheduler = Scheduler::from_name(name);
        }
        self.flags = self.flags.settings();
        if self.pe_name.as_deref() == Some("") {
            self.pe_name = None;
        }
        self.stats = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_protocols_round_trip_their_numbers() {
        for af in [AddressFamily::Inet, AddressFamily::Inet6] {
            assert_eq!(AddressFamily::from_raw(af.to_raw()), Some(af));
        }
        assert_eq!(AddressFamily::from_raw(7), None);
        for n in [6u16, 17, 132, 1, 0, 65535] {
            assert_eq!(Protocol::from_raw(n).to_raw(), n);
        }
    }

    #[test]
    fn schedulers_round_trip_their_names() {
        for s in Scheduler::KNOWN {
            assert_eq!(Scheduler::from_name(s.as_str()), s);
        }
        assert_eq!(
            Scheduler::from_name("xyz"),
            Scheduler::Other("xyz".to_string())
        );
    }

    #[test]
    fn scheduler_flags_are_named_per_scheduler() {
        let f = ServiceFlags::SCHED1 | ServiceFlags::SCHED2;
        assert_eq!(
            f.sched_flag_names(&Scheduler::Sh),
            ["sh-fallback", "sh-port"]
        );
        assert_eq!(
            f.sched_flag_names(&Scheduler::Mh),
            ["mh-fallback", "mh-port"]
        );
        assert_eq!(
            ServiceFlags::sched_flag_from_name("sh-port"),
            Some(ServiceFlags::SCHED2)
        );
        assert!(!f.persistent());
        assert!(f.with(ServiceFlags::PERSISTENT, true).persistent());
    }

    #[test]
    fn keys_display_like_ipvsadm_names_them() {
        let k = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: "2001:db8::1".parse().unwrap(),
            port: 80,
        };
        assert_eq!(k.to_string(), "TCP [2001:db8::1]:80");
        assert_eq!(k.af(), AddressFamily::Inet6);
        let f = ServiceKey::Fwmark {
            af: AddressFamily::Inet,
            mark: 5,
        };
        assert_eq!(f.to_string(), "FWM 5 (IPv4)");
    }
}
