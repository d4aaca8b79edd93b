//! Real servers (destinations): forwarding method, weight, thresholds, tunnel, counters.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use super::{fmt_addr_port, AddressFamily, ServiceKey, Stats};

/// How packets reach a real server (`IP_VS_CONN_F_FWD_MASK` bits of `IPVS_DEST_ATTR_FWD_METHOD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub enum Forwarding {
    /// Masquerading / NAT (`IP_VS_CONN_F_MASQ`, 0; ipvsadm `-m`).
    Masq,
    /// Local node (`IP_VS_CONN_F_LOCALNODE`, 1).
    Local,
    /// IP tunnelling (`IP_VS_CONN_F_TUNNEL`, 2; ipvsadm `-i`).
    Tunnel,
    /// Direct routing (`IP_VS_CONN_F_DROUTE`, 3; ipvsadm `-g`).
    DirectRoute,
    /// Cache bypass (`IP_VS_CONN_F_BYPASS`, 4).
    Bypass,
}

impl Forwarding {
    /// The kernel's number.
    pub fn to_raw(self) -> u32 {
        match self {
            Forwarding::Masq => 0,
            Forwarding::Local => 1,
            Forwarding::Tunnel => 2,
            Forwarding::DirectRoute => 3,
            Forwarding::Bypass => 4,
        }
    }

    /// The method for the low three bits of a kernel value; `None` for 5..7.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw & 0x7 {
            0 => Some(Forwarding::Masq),
            1 => Some(Forwarding::Local),
            2 => Some(Forwarding::Tunnel),
            3 => Some(Forwarding::DirectRoute),
            4 => Some(Forwarding::Bypass),
            _ => None,
        }
    }
}

/// The encapsulation of a tunnelled real server (`IPVS_DEST_ATTR_TUN_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[non_exhaustive]
pub enum TunnelType {
    /// IP-in-IP (`IP_VS_CONN_F_TUNNEL_TYPE_IPIP`, 0), the default.
    #[default]
    Ipip,
    /// Generic UDP encapsulation (`IP_VS_CONN_F_TUNNEL_TYPE_GUE`, 1).
    Gue,
    /// GRE (`IP_VS_CONN_F_TUNNEL_TYPE_GRE`, 2).
    Gre,
    /// Any other number.
    Other(u8),
}

impl TunnelType {
    /// The kernel's number.
    pub fn to_raw(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
            TunnelType::Other(n) => n,
        }
    }

    /// The type for a kernel number.
    pub fn from_raw(raw: u8) -> Self {
        match raw {
            0 => TunnelType::Ipip,
            1 => TunnelType::Gue,
            2 => TunnelType::Gre,
            n => TunnelType::Other(n),
        }
    }
}

bitflags::bitflags! {
    /// Tunnel encapsulation flags (`IPVS_DEST_ATTR_TUN_FLAGS`, `IP_VS_TUNNEL_ENCAP_FLAG_*`);
    /// empty is `IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM`. Unnamed bits are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct TunnelFlags: u16 {
        /// `IP_VS_TUNNEL_ENCAP_FLAG_CSUM`: outer UDP/GRE checksum.
        const CSUM = 1 << 0;
        /// `IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM`: remote checksum offload.
        const REMCSUM = 1 << 1;
        // Every other bit is kept too.
        const _ = !0;
    }
}

impl Serialize for TunnelFlags {
    /// As `{"bits": N}`, the raw bits (the form the JSON outputs always had).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("TunnelFlags", 1)?;
        st.serialize_field("bits", &self.bits())?;
        st.end()
    }
}

impl TunnelFlags {
    /// True when the checksum flag is set.
    pub fn csum(self) -> bool {
        self.contains(Self::CSUM)
    }

    /// True when the remote-checksum flag is set.
    pub fn remcsum(self) -> bool {
        self.contains(Self::REMCSUM)
    }
}

/// Tunnel settings of a real server (used with `Forwarding::Tunnel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize)]
pub struct Tunnel {
    /// How packets are encapsulated (`IPVS_DEST_ATTR_TUN_TYPE`; ipvsadm `--tun-type`).
    pub kind: TunnelType,
    /// Destination UDP port for GUE (`IPVS_DEST_ATTR_TUN_PORT`, big-endian on the wire).
    pub port: u16,
    /// Checksums of the outer header for GUE and GRE (`IPVS_DEST_ATTR_TUN_FLAGS`; ipvsadm
    /// `--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
    pub flags: TunnelFlags,
}

/// What identifies a real server within its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DestKey {
    /// Real server address (its family may differ from the service's for tunnels).
    pub addr: IpAddr,
    /// Real server port (`IPVS_DEST_ATTR_PORT`, big-endian on the wire; 0 for a fwmark service's
    /// servers that take the client's port).
    pub port: u16,
}

impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_addr_port(f, &self.addr, self.port)
    }
}

/// A real server (destination) of a service.
///
/// Its family is its address's family (`IPVS_DEST_ATTR_ADDR_FAMILY`); `ip_vs_ctl.c` allows a
/// family different from the service's only with tunnel forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    /// The real server's address (`IPVS_DEST_ATTR_ADDR`), which sets its family.
    pub addr: IpAddr,
    /// The real server's port (`IPVS_DEST_ATTR_PORT`, big-endian on the wire); the service's
    /// port for direct routing and tunnels ([`Destination::normalised_for`]).
    pub port: u16,
    /// How packets reach it (`IPVS_DEST_ATTR_FWD_METHOD`).
    pub forwarding: Forwarding,
    /// Weight (the kernel rejects negative weights with EINVAL).
    pub weight: i32,
    /// Upper connection threshold, 0 = none.
    pub upper_threshold: u32,
    /// Lower connection threshold, 0 = none.
    pub lower_threshold: u32,
    /// Tunnel settings (sent only with `Forwarding::Tunnel`; reported by the kernel always).
    pub tunnel: Tunnel,
    /// Connections the kernel counts as active (TCP established), counted by the kernel
    /// (`IPVS_DEST_ATTR_ACTIVE_CONNS`; replies only, ignored when sent).
    pub active_conns: u32,
    /// Connections in other states (`IPVS_DEST_ATTR_INACT_CONNS`; replies only).
    pub inactive_conns: u32,
    /// Persistence templates pointing at it (`IPVS_DEST_ATTR_PERSIST_CONNS`; replies only).
    pub persist_conns: u32,
    /// Traffic counters (`IPVS_DEST_ATTR_STATS64`; replies only, `None` in what is sent).
    pub stats: Option<Stats>,
}

impl Destination {
    /// A destination with ipvsadm's defaults: weight 1, no thresholds, default tunnel.
    pub fn new(addr: IpAddr, port: u16, forwarding: Forwarding) -> Self {
        Destination {
            addr,
            port,
            forwarding,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: Tunnel::default(),
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: None,
        }
    }

    /// The destination's own address family.
    pub fn af(&self) -> AddressFamily {
        AddressFamily::of(&self.addr)
    }

    /// Its key within the service.
    pub fn key(&self) -> DestKey {
        DestKey {
            addr: self.addr,
            port: self.port,
        }
    }

    /// True when `other` is the same real server with the same settings: address, port,
    /// forwarding, tunnel settings, weight and both thresholds.
    ///
    /// Ignored: what the kernel counts (active, inactive and persistent connections, `stats`).
    /// The tunnel settings are compared whatever the forwarding: this crate sends them with
    /// every add and edit and the kernel stores them as sent (`__ip_vs_update_dest`), so compare
    /// [normalised](Destination::normalised_for) destinations, whose tunnel is the default
    /// unless they tunnel.
    pub fn same_settings(&self, other: &Destination) -> bool {
        // Destructured so that a new field cannot be forgotten here.
        let Destination {
            addr,
            port,
            forwarding,
            weight,
            upper_threshold,
            lower_threshold,
            tunnel,
            active_conns: _,
            inactive_conns: _,
            persist_conns: _,
            stats: _,
        } = self;
        *addr == other.addr
            && *port == other.port
            && *forwarding == other.forwarding
            && *weight == other.weight
            && *upper_threshold == other.upper_threshold
            && *lower_threshold == other.lower_threshold
            && *tunnel == other.tunnel
    }

    /// The real server as the kernel will hold it under the service `service`, so that
    /// [`Destination::same_settings`] compares it with a snapshot by what matters. The rules
    /// are ipvsadm's (`ipvsadm.c`, `process_options` and `tunnel_opt_check`), so that the
    /// restore parser, a configuration and the kernel agree:
    /// - direct routing and tunnelling take the service's port: "The destination port must be
    ///   equal to the service port if the IP_VS_CONN_F_TUNNEL or IP_VS_CONN_F_DROUTE is set.
    ///   Don't worry about this if fwmark is used." (packets reach such a real server unchanged,
    ///   addressed to the virtual port);
    /// - a real server that does not tunnel has the default tunnel settings (ipvsadm refuses
    ///   `--tun-*` options without `-i`; the kernel would store and report them);
    /// - no connection counts and no counters (reply-only).
    ///
    /// Not normalised, because the kernel refuses it rather than changing it: a negative weight,
    /// `lower_threshold > upper_threshold` (ERANGE), a family other than the service's without
    /// tunnelling (EINVAL). Validation is the caller's.
    #[must_use]
    pub fn normalised_for(mut self, service: &ServiceKey) -> Destination {
        if let ServiceKey::Inet { port, .. } = service {
            if matches!(
                self.forwarding,
                Forwarding::DirectRoute | Forwarding::Tunnel
            ) {
                self.port = *port;
            }
        }
        if self.forwarding != Forwarding::Tunnel {
            self.tunnel = Tunnel::default();
        }
        self.active_conns = 0;
        self.inactive_conns = 0;
        self.persist_conns = 0;
        self.stats = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_numbers() {
        for n in 0..5 {
            assert_eq!(Forwarding::from_raw(n).map(Forwarding::to_raw), Some(n));
        }
        assert_eq!(Forwarding::from_raw(5), None);
    }
}
