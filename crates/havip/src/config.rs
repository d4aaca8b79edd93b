//! The configuration of one running instance, as the runner takes it: plain data, filled in by
//! the director from its YAML file (or by a test). Defaults follow keepalived where it has one.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::packet::Version;
use crate::time::Centisecs;
use crate::track::ProbeSpec;

/// One virtual address with its prefix length (`192.0.2.10/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The virtual address, as added to the interface and listed in the adverts (RFC 9568 -
    /// Section 5.2.9, "IPvX Address(es)").
    pub addr: IpAddr,
    /// The prefix length added with it (32 or 128 for a host address).
    pub prefix_len: u8,
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Gratuitous ARP / unsolicited NA settings.
///
/// RFC 9568 - Section 6.4.2 (Backup, on becoming Active; erratum 7949 wording): "For each IPv4
/// address associated with the Virtual Router, broadcast a gratuitous ARP message containing the
/// Virtual Router IPv4 address", and for IPv6 "send an unsolicited ND Neighbor Advertisement".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpConfig {
    /// How many announcements per address on takeover (and on each refresh); 0 turns GARP off.
    pub repeat: u32,
    /// Time between two announcements of one burst.
    pub interval: Duration,
    /// While Master, announce again this often; `None` for never.
    pub refresh: Option<Duration>,
}

impl Default for GarpConfig {
    /// 5 announcements 100 ms apart, no periodic refresh.
    fn default() -> Self {
        GarpConfig {
            repeat: 5,
            interval: Duration::from_millis(100),
            refresh: None,
        }
    }
}

/// An interface whose link state is tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    /// The interface name.
    pub name: String,
    /// 0: FAULT while down; > 0: added while up; < 0: added while down.
    pub weight: i32,
}

/// A tracked check's settings: the probe ([`ProbeSpec`], run by [`crate::track`]), its timing
/// and its rise/fall counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// A name for logs and status.
    pub name: String,
    /// What to probe.
    pub probe: ProbeSpec,
    /// Time between the starts of two probe runs.
    pub interval: Duration,
    /// Limit of one probe run.
    pub timeout: Duration,
    /// Consecutive successes to turn up.
    pub rise: u32,
    /// Consecutive failures to turn down.
    pub fall: u32,
}

/// A tracked health check: what to probe and how often ([`CheckSpec`]), and what its result
/// does to this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    /// The probe, its timing and its rise/fall counts.
    pub check: CheckSpec,
    /// 0: FAULT while failing; > 0: added while up; < 0: added while down (see
    /// [`crate::track::verdict`]).
    pub weight: i32,
}

/// Commands run on transitions, as keepalived's `notify_*` scripts: each gets
/// `$1 = INSTANCE`, `$2 = name`, `$3 = STATE` (`MASTER`, `BACKUP`, `FAULT`, `STOP`), and the
/// environment `HAVIP_INSTANCE`, `HAVIP_STATE`, `HAVIP_FROM`, `HAVIP_REASON`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Run on entering Master.
    pub master: Option<String>,
    /// Run on entering Backup.
    pub backup: Option<String>,
    /// Run on entering FAULT.
    pub fault: Option<String>,
    /// Run when the instance stops.
    pub stop: Option<String>,
    /// Run on every transition (after the state's own command).
    pub any: Option<String>,
}

/// Who decides ownership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoleMode {
    /// VRRP elects the master.
    #[default]
    Vrrp,
    /// An external decision (`InstanceHandle::claim` / `release`) does. No VRRP state machine
    /// runs and no adverts are sent: `claim` runs the fence, adds the VIPs and sends GARP / NA;
    /// `release` removes them. Adverts received are only counted.
    External {
        /// A command that must exit 0 before the VIP is taken (fencing the old owner).
        fence: Option<String>,
    },
}

/// A secret that prints as `MASKED` in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Masked(pub String);

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

/// One VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// The instance name (logs, status, notify `$2`).
    pub name: String,
    /// The interface adverts go out of and the VIPs are added to.
    pub interface: String,
    /// The virtual router id, 1..=255.
    pub vrid: u8,
    /// The configured priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// VRRP version: 3 (default) or 2 (keepalived v2 pairs, IPv4 only).
    pub version: Version,
    /// The advertisement interval (v2: whole seconds).
    pub advert_interval: Centisecs,
    /// The virtual addresses: all of one family.
    pub vips: Vec<Vip>,
    /// The source address of unicast adverts (default: the interface's primary address).
    pub unicast_src: Option<IpAddr>,
    /// Unicast peers; empty means multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// Preempt a lower-priority master (RFC default: true).
    pub preempt: bool,
    /// Wait this long after start before preempting.
    pub preempt_delay: Duration,
    /// Accept packets addressed to the VIP while Master (RFC 9568 Accept_Mode).
    pub accept: bool,
    /// GARP / NA settings.
    pub garp: GarpConfig,
    /// Tracked interfaces.
    pub track_interfaces: Vec<TrackInterface>,
    /// Tracked checks.
    pub checks: Vec<CheckConfig>,
    /// Notify commands.
    pub notify: NotifyConfig,
    /// VRRP-elected or externally driven.
    pub role: RoleMode,
    /// VRRPv2 simple password (keepalived `auth_type PASS`); printed as MASKED.
    pub auth_pass: Option<Masked>,
}

impl InstanceConfig {
    /// A config with the RFC/keepalived defaults for everything but the essentials: multicast,
    /// v3, 1 s adverts, preempt on, default GARP, no tracking.
    pub fn new(name: &str, interface: &str, vrid: u8, priority: u8, vips: Vec<Vip>) -> Self {
        InstanceConfig {
            name: name.to_string(),
            interface: interface.to_string(),
            vrid,
            priority,
            version: Version::V3,
            advert_interval: Centisecs::ONE_SECOND,
            vips,
            unicast_src: None,
            unicast_peers: Vec::new(),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: false,
            garp: GarpConfig::default(),
            track_interfaces: Vec::new(),
            checks: Vec::new(),
            notify: NotifyConfig::default(),
            role: RoleMode::Vrrp,
            auth_pass: None,
        }
    }
}

/// A setting of [`InstanceConfig`] that cannot change while the instance runs: its VRRP
/// identity (what peers see and match: VRID, version, addresses, source, password), the
/// interface and sockets, and the state machine's settings read at start. Changing one means
/// stopping the instance (a Master resigns) and starting it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigField {
    /// `name`: the instance is matched by it.
    Name,
    /// `interface`: the sockets are bound to it.
    Interface,
    /// `vrid` (RFC 9568 - Section 5.2.3, the Virtual Rtr ID in every advert).
    Vrid,
    /// `version`: the wire format.
    Version,
    /// `vips`: the addresses adverts carry and the family of everything.
    Vips,
    /// `priority` crossing 255 (address owner, RFC 9568 - Section 5.2.4) either way.
    Owner,
    /// `advert_interval`: the state machine's timers.
    AdvertInterval,
    /// `unicast_src`: the adverts' source and the tie-break address.
    UnicastSource,
    /// `unicast_peers`: the socket's destinations and receive filter.
    UnicastPeers,
    /// `preempt` / `preempt_delay`: the state machine's settings.
    Preempt,
    /// `accept` (RFC 9568 Accept_Mode).
    Accept,
    /// `role`: VRRP-elected or role-driven.
    Role,
    /// `auth_pass` (VRRPv2): peers must match it.
    AuthPass,
}

impl fmt::Display for ConfigField {
    /// The field's name in [`InstanceConfig`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigField::Name => "name",
            ConfigField::Interface => "interface",
            ConfigField::Vrid => "vrid",
            ConfigField::Version => "version",
            ConfigField::Vips => "vips",
            ConfigField::Owner => "priority (address owner, 255)",
            ConfigField::AdvertInterval => "advert_interval",
            ConfigField::UnicastSource => "unicast_src",
            ConfigField::UnicastPeers => "unicast_peers",
            ConfigField::Preempt => "preempt",
            ConfigField::Accept => "accept",
            ConfigField::Role => "role",
            ConfigField::AuthPass => "auth_pass",
        })
    }
}

impl InstanceConfig {
    /// The fields that differ between `self` (running) and `new` and need a restart, in
    /// [`ConfigField`] order; empty when `new` can be applied in place
    /// (`InstanceHandle::update`): a change of `notify`, `garp`, `track_interfaces`, `checks`,
    /// or of `priority` within 1..=254.
    pub fn restart_needed(&self, new: &InstanceConfig) -> Vec<ConfigField> {
        let checks = [
            (ConfigField::Name, self.name != new.name),
            (ConfigField::Interface, self.interface != new.interface),
            (ConfigField::Vrid, self.vrid != new.vrid),
            (ConfigField::Version, self.version != new.version),
            (ConfigField::Vips, self.vips != new.vips),
            (
                ConfigField::Owner,
                (self.priority == 255) != (new.priority == 255),
            ),
            (
                ConfigField::AdvertInterval,
                self.advert_interval != new.advert_interval,
            ),
            (
                ConfigField::UnicastSource,
                self.unicast_src != new.unicast_src,
            ),
            (
                ConfigField::UnicastPeers,
                self.unicast_peers != new.unicast_peers,
            ),
            (
                ConfigField::Preempt,
                self.preempt != new.preempt || self.preempt_delay != new.preempt_delay,
            ),
            (ConfigField::Accept, self.accept != new.accept),
            (ConfigField::Role, self.role != new.role),
            (ConfigField::AuthPass, self.auth_pass != new.auth_pass),
        ];
        checks
            .into_iter()
            .filter(|(_, changed)| *changed)
            .map(|(f, _)| f)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> InstanceConfig {
        let vip = Vip {
            addr: "192.0.2.10".parse().unwrap(),
            prefix_len: 24,
        };
        InstanceConfig::new("vi", "eth0", 7, 100, vec![vip])
    }

    #[test]
    fn what_changes_in_place_and_what_restarts() {
        type Edit = fn(&mut InstanceConfig);
        let cases: &[(&str, Edit, &[ConfigField])] = &[
            ("nothing", |_| {}, &[]),
            ("notify", |c| c.notify.master = Some("true".into()), &[]),
            (
                "garp",
                |c| c.garp.refresh = Some(Duration::from_secs(60)),
                &[],
            ),
            (
                "track interface",
                |c| {
                    c.track_interfaces.push(TrackInterface {
                        name: "eth1".into(),
                        weight: 0,
                    })
                },
                &[],
            ),
            ("priority", |c| c.priority = 254, &[]),
            (
                "priority to owner",
                |c| c.priority = 255,
                &[ConfigField::Owner],
            ),
            ("vrid", |c| c.vrid = 8, &[ConfigField::Vrid]),
            (
                "interface",
                |c| c.interface = "eth1".into(),
                &[ConfigField::Interface],
            ),
            (
                "version",
                |c| c.version = Version::V2,
                &[ConfigField::Version],
            ),
            ("vips", |c| c.vips[0].prefix_len = 32, &[ConfigField::Vips]),
            (
                "family",
                |c| c.vips[0].addr = "2001:db8::1".parse().unwrap(),
                &[ConfigField::Vips],
            ),
            (
                "interval",
                |c| c.advert_interval = Centisecs(10),
                &[ConfigField::AdvertInterval],
            ),
            (
                "unicast",
                |c| {
                    c.unicast_src = Some("192.0.2.1".parse().unwrap());
                    c.unicast_peers = vec!["192.0.2.2".parse().unwrap()];
                },
                &[ConfigField::UnicastSource, ConfigField::UnicastPeers],
            ),
            ("preempt", |c| c.preempt = false, &[ConfigField::Preempt]),
            (
                "preempt delay",
                |c| c.preempt_delay = Duration::from_secs(1),
                &[ConfigField::Preempt],
            ),
            ("accept", |c| c.accept = true, &[ConfigField::Accept]),
            (
                "role",
                |c| c.role = RoleMode::External { fence: None },
                &[ConfigField::Role],
            ),
            (
                "password",
                |c| c.auth_pass = Some(Masked("x".into())),
                &[ConfigField::AuthPass],
            ),
            (
                "name and vrid",
                |c| {
                    c.name = "other".into();
                    c.vrid = 9;
                },
                &[ConfigField::Name, ConfigField::Vrid],
            ),
        ];
        for (what, edit, want) in cases {
            let old = base();
            let mut new = base();
            edit(&mut new);
            assert_eq!(old.restart_needed(&new), *want, "{what}");
        }
    }

    #[test]
    fn password_is_masked_in_debug() {
        let mut c = InstanceConfig::new("vi", "eth0", 7, 100, vec![]);
        c.auth_pass = Some(Masked("s3cret".into()));
        let d = format!("{c:?}");
        assert!(d.contains("MASKED"), "{d}");
        assert!(!d.contains("s3cret"), "{d}");
    }

    #[test]
    fn vip_displays_with_prefix() {
        let v = Vip {
            addr: "192.0.2.10".parse().unwrap(),
            prefix_len: 24,
        };
        assert_eq!(v.to_string(), "192.0.2.10/24");
    }
}
