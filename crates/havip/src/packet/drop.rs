//! Why a received VRRP packet was dropped: one variant per receive check of RFC 9568 -
//! Section 7.1 and RFC 3768 - Section 7.1, each with a stable [`DropReason::label`] for metrics.
//!
//! [`crate::packet::decode`] performs the checks that need only the packet and its IP header;
//! [`check_local`] performs the ones that need the local instance's configuration (the runner
//! calls it after finding the instance by VRID).

use std::fmt;
use std::net::IpAddr;

use crate::packet::{Advert, Auth, Version};
use crate::time::Centisecs;

/// The reason a received packet was discarded. Every variant is counted by the runner under
/// [`DropReason::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// RFC 9568 - Section 5.1.1.3: "A VRRP Router receiving a packet with the TTL not equal to
    /// 255 MUST discard the packet \[RFC5082\]." (Section 5.1.2.3 says the same of the IPv6 Hop
    /// Limit; RFC 3768 - Section 5.2.3: "A VRRP router receiving a packet with the TTL not
    /// equal to 255 MUST discard the packet.")
    BadTtl {
        /// The TTL / hop limit received.
        got: u8,
    },
    /// RFC 9568 - Section 7.1: "It MUST verify that the VRRP version is 3." (RFC 3768 -
    /// Section 7.1: "MUST verify the VRRP version is 2."; decode accepts 2 and 3, and [`check_local`]
    /// matches the instance's version: [`DropReason::VersionMismatch`].)
    BadVersion {
        /// The version nibble received.
        got: u8,
    },
    /// RFC 9568 - Section 7.1: "It MUST verify that the VRRP packet type is 1 (ADVERTISEMENT)."
    /// and Section 5.2.2: "A packet with unknown type MUST be discarded."
    BadType {
        /// The type nibble received.
        got: u8,
    },
    /// RFC 9568 - Section 7.1: "It MUST verify that the received packet contains the complete
    /// VRRP packet (including fixed fields and the IPvX address)." The packet is shorter than the
    /// fixed 8-byte header.
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// Same rule as [`DropReason::Truncated`]: the length does not match the one the address
    /// count implies (too short for the addresses it announces, or trailing bytes).
    LengthMismatch {
        /// The Count IPvX Addr field.
        count: u8,
        /// Bytes received.
        len: usize,
    },
    /// RFC 9568 - Section 5.2.5 (erratum 8299): "If the received count is 0, the VRRP
    /// advertisement MUST be ignored."
    NoAddresses,
    /// RFC 9568 - Section 7.1: "It MUST verify the VRRP checksum."
    BadChecksum {
        /// The checksum field received.
        got: u16,
        /// The checksum we computed.
        want: u16,
    },
    /// RFC 9568 - Section 7.1 (erratum 8301): "It MUST verify that the Max Advertise Interval is
    /// non zero." (Also applied to the VRRPv2 Adver Int, which would make every timer zero.)
    ZeroInterval,
    /// The IP source and destination are of different families, or VRRPv2 arrived over IPv6
    /// (RFC 3768 defines VRRPv2 for IPv4 only).
    FamilyMismatch,
    /// RFC 3768 - Section 5.3.6: "A packet with unknown authentication type or that does not
    /// match the locally configured authentication method MUST be discarded." (Paraphrased from
    /// the same section: type 0 is No Authentication, types 1 and 2 are reserved.) We support
    /// 0 and 1 (keepalived's "PASS"), not 2 (IP AH, which is not protocol 112).
    UnsupportedAuthType {
        /// The Auth Type received.
        got: u8,
    },
    /// RFC 9568 - Section 7.1 (erratum 8298): "It MUST verify that the VRID is configured on the
    /// receiving interface." Returned by the runner, which owns the VRID table.
    VridNotConfigured {
        /// The VRID received.
        vrid: u8,
    },
    /// VRRPv2 only. RFC 3768 - Section 7.1: "MUST verify that the VRID is configured on the
    /// receiving interface and the local router is not the IP Address owner (Priority equals 255
    /// (decimal))." (RFC 9568 erratum 8298 drops the owner clause for v3: an owner processes
    /// adverts, e.g. answers a priority 0 at once.)
    LocalIsOwner,
    /// The packet's version is not the one configured for the instance.
    VersionMismatch {
        /// The version received.
        got: Version,
    },
    /// RFC 3768 - Section 7.1: "MUST verify that the Auth Type matches the locally configured
    /// authentication method for the virtual router and perform that authentication method."
    /// (type or password differs from the local configuration).
    AuthMismatch,
    /// RFC 3768 - Section 7.1: "MUST verify that the Adver Interval in the packet is the same as
    /// the locally configured for this virtual router", then "If any one of the above checks
    /// fails, the receiver MUST discard the packet". (VRRPv3 learns the interval instead.)
    IntervalMismatch {
        /// The interval received.
        got: Centisecs,
    },
    /// RFC 9568 - Section 7.1: "A receiver MAY also verify that "IPvX Addr Count" and the list of
    /// IPvX address(es) match the IPvX address(es) configured for the VRID." On a mismatch
    /// RFC 9568 asks only for a log; we drop as RFC 3768 - Section 7.1 does: "If the packet was
    /// not generated by the address owner (Priority does not equal 255 (decimal)), the receiver
    /// MUST drop the packet, otherwise continue processing." Only when address checking is
    /// enabled.
    AddressListMismatch,
    /// Unicast mode: the sender is not one of the configured peers (issue #10).
    NotFromPeer,
    /// The packet is our own (its source is one of our local addresses), looped back.
    FromSelf,
}

impl DropReason {
    /// A stable snake_case name for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::BadTtl { .. } => "bad_ttl",
            DropReason::BadVersion { .. } => "bad_version",
            DropReason::BadType { .. } => "bad_type",
            DropReason::Truncated { .. } => "truncated",
            DropReason::LengthMismatch { .. } => "length_mismatch",
            DropReason::NoAddresses => "no_addresses",
            DropReason::BadChecksum { .. } => "bad_checksum",
            DropReason::ZeroInterval => "zero_interval",
            DropReason::FamilyMismatch => "family_mismatch",
            DropReason::UnsupportedAuthType { .. } => "unsupported_auth_type",
            DropReason::VridNotConfigured { .. } => "vrid_not_configured",
            DropReason::LocalIsOwner => "local_is_owner",
            DropReason::VersionMismatch { .. } => "version_mismatch",
            DropReason::AuthMismatch => "auth_mismatch",
            DropReason::IntervalMismatch { .. } => "interval_mismatch",
            DropReason::AddressListMismatch => "address_list_mismatch",
            DropReason::NotFromPeer => "not_from_peer",
            DropReason::FromSelf => "from_self",
        }
    }

    /// Every label, in declaration order (for pre-registering metrics at zero).
    pub const ALL_LABELS: [&'static str; 18] = [
        "bad_ttl",
        "bad_version",
        "bad_type",
        "truncated",
        "length_mismatch",
        "no_addresses",
        "bad_checksum",
        "zero_interval",
        "family_mismatch",
        "unsupported_auth_type",
        "vrid_not_configured",
        "local_is_owner",
        "version_mismatch",
        "auth_mismatch",
        "interval_mismatch",
        "address_list_mismatch",
        "not_from_peer",
        "from_self",
    ];
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::BadTtl { got } => write!(f, "TTL/hop limit {got}, must be 255"),
            DropReason::BadVersion { got } => write!(f, "VRRP version {got}, must be 2 or 3"),
            DropReason::BadType { got } => write!(f, "VRRP type {got}, must be 1"),
            DropReason::Truncated { len } => write!(f, "packet of {len} bytes is truncated"),
            DropReason::LengthMismatch { count, len } => {
                write!(f, "{len} bytes do not fit an address count of {count}")
            }
            DropReason::NoAddresses => write!(f, "address count is 0"),
            DropReason::BadChecksum { got, want } => {
                write!(f, "checksum {got:#06x}, expected {want:#06x}")
            }
            DropReason::ZeroInterval => write!(f, "advertisement interval is 0"),
            DropReason::FamilyMismatch => write!(f, "address family mismatch"),
            DropReason::UnsupportedAuthType { got } => write!(f, "unsupported auth type {got}"),
            DropReason::VridNotConfigured { vrid } => write!(f, "VRID {vrid} is not configured"),
            DropReason::LocalIsOwner => write!(f, "local router is the address owner"),
            DropReason::VersionMismatch { got } => write!(f, "version {got} not configured"),
            DropReason::AuthMismatch => write!(f, "authentication mismatch"),
            DropReason::IntervalMismatch { got } => {
                write!(f, "advertisement interval {got} differs from ours")
            }
            DropReason::AddressListMismatch => write!(f, "virtual address list differs"),
            DropReason::NotFromPeer => write!(f, "sender is not a configured unicast peer"),
            DropReason::FromSelf => write!(f, "our own packet looped back"),
        }
    }
}

/// What [`check_local`] compares a decoded advertisement with: the receiving instance's
/// configuration.
#[derive(Debug, Clone, Copy)]
pub struct LocalCheck<'a> {
    /// The instance's version.
    pub version: Version,
    /// The instance's local priority (255 = address owner).
    pub priority: u8,
    /// The instance's advertisement interval (compared for VRRPv2 only).
    pub advert_interval: Centisecs,
    /// The instance's VRRPv2 authentication.
    pub auth: &'a Auth,
    /// The instance's virtual addresses; `None` skips the optional address check.
    pub addresses: Option<&'a [IpAddr]>,
}

/// The receive checks that need the local configuration, in RFC order. The VRID lookup, the
/// unicast peer filter and the own-packet filter are the runner's (it returns
/// [`DropReason::VridNotConfigured`], [`DropReason::NotFromPeer`], [`DropReason::FromSelf`]).
pub fn check_local(advert: &Advert, local: &LocalCheck<'_>) -> Result<(), DropReason> {
    if advert.version != local.version {
        return Err(DropReason::VersionMismatch {
            got: advert.version,
        });
    }
    if advert.version == Version::V2 {
        // RFC 3768 - Section 7.1: "... and the local router is not the IP Address owner".
        if local.priority == 255 {
            return Err(DropReason::LocalIsOwner);
        }
        // RFC 3768 - Section 7.1: "MUST verify that the Auth Type matches the locally configured
        // authentication method for the virtual router and perform that authentication method."
        if &advert.auth != local.auth {
            return Err(DropReason::AuthMismatch);
        }
        // RFC 3768 - Section 7.1: "MUST verify that the Adver Interval in the packet is the same
        // as the locally configured for this virtual router".
        if advert.max_advert_int != local.advert_interval {
            return Err(DropReason::IntervalMismatch {
                got: advert.max_advert_int,
            });
        }
    }
    if let Some(ours) = local.addresses {
        let same = ours.len() == advert.addresses.len()
            && ours.iter().all(|a| advert.addresses.contains(a));
        // RFC 3768 - Section 7.1: "If the packet was not generated by the address owner
        // (Priority does not equal 255 (decimal)), the receiver MUST drop the packet, otherwise
        // continue processing." (RFC 9568 - Section 7.1 only asks for a log: our choice.)
        if !same && advert.priority != 255 {
            return Err(DropReason::AddressListMismatch);
        }
    }
    Ok(())
}
