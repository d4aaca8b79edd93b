//! VIP add/remove, link-state and address events over rtnetlink (the `rtnetlink` crate, pinned exactly in
//! `Cargo.toml` and used nowhere else).
//!
//! Both requests carry the same IFA_LOCAL and IFA_ADDRESS (and, for IPv4 below /31, the same
//! IFA_BROADCAST) that `ip addr add` sets, so the delete always matches what the add created.
//! Both are idempotent: EEXIST on add and EADDRNOTAVAIL on delete mean the kernel is already in
//! the wanted state. IPv6 VIPs are added with IFA_F_NODAD: a VIP that moves between directors
//! must not sit "tentative" for a second of duplicate address detection (keepalived does the same).
//!
//! Removing an IPv4 VIP that is the *primary* address of its subnet would make the kernel delete
//! every secondary address of that subnet with it (`__inet_del_ifa` in net/ipv4/devinet.c, unless
//! `promote_secondaries` is set): a VIP left by a killed process, whose interface got its own
//! address of the same subnet afterwards, would take the operator's address down with it. So
//! before such a removal the interface's `promote_secondaries` is switched on (what keepalived's
//! `promote_secondaries` keyword does), and the kernel promotes the next address instead.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::StreamExt;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, MulticastGroup};

use super::NetError;
use crate::config::Vip;

/// What an idempotent request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The kernel changed: the address was added or removed.
    Changed,
    /// The kernel was already in the wanted state (EEXIST on add, EADDRNOTAVAIL on delete).
    AlreadyDone,
}

/// A route-netlink connection for address changes and link queries.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace and spawns its driver task
    /// on the current tokio runtime.
    pub fn open() -> Result<Netlink, NetError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| NetError::io("open rtnetlink socket", e))?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Adds `vip` to the interface `ifindex`.
    pub async fn add(&self, ifindex: u32, vip: Vip) -> Result<Applied, NetError> {
        let op = format!("add {}/{} on ifindex {ifindex}", vip.addr, vip.prefix_len);
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix_len);
        if vip.addr.is_ipv6() {
            let msg = req.message_mut();
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(Applied::Changed),
            Err(e) => match errno_of(&e) {
                Some(libc::EEXIST) => Ok(Applied::AlreadyDone),
                errno => Err(NetError::Netlink {
                    op,
                    detail: describe(&e),
                    errno,
                }),
            },
        }
    }

    /// Removes `vip` from the interface `ifindex`.
    pub async fn remove(&self, ifindex: u32, vip: Vip) -> Result<Applied, NetError> {
        let op = format!(
            "remove {}/{} from ifindex {ifindex}",
            vip.addr, vip.prefix_len
        );
        if let IpAddr::V4(a) = vip.addr {
            self.keep_secondaries(ifindex, a, vip.prefix_len).await?;
        }
        let msg = match vip.addr {
            IpAddr::V4(a) => rtnetlink::AddressMessageBuilder::<std::net::Ipv4Addr>::new()
                .index(ifindex)
                .address(a, vip.prefix_len)
                .build(),
            IpAddr::V6(a) => rtnetlink::AddressMessageBuilder::<std::net::Ipv6Addr>::new()
                .index(ifindex)
                .address(a, vip.prefix_len)
                .build(),
        };
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(Applied::Changed),
            Err(e) => match errno_of(&e) {
                // ENODEV: the interface is gone, and the address with it.
                Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV) => Ok(Applied::AlreadyDone),
                errno => Err(NetError::Netlink {
                    op,
                    detail: describe(&e),
                    errno,
                }),
            },
        }
    }

    /// Switches `promote_secondaries` on for `ifindex` when removing `addr/prefix_len` would
    /// otherwise delete other addresses with it (see the module's doc).
    async fn keep_secondaries(
        &self,
        ifindex: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NetError> {
        let mut dump = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute();
        let mut addrs = Vec::new();
        while let Some(m) = dump.next().await {
            let m = match m {
                Ok(m) => m,
                Err(e) if errno_of(&e) == Some(libc::ENODEV) => return Ok(()),
                Err(e) => {
                    return Err(NetError::Netlink {
                        op: format!("list the addresses of ifindex {ifindex}"),
                        detail: describe(&e),
                        errno: errno_of(&e),
                    })
                }
            };
            // The dump's filter is applied by the kernel only under strict checking: filter here.
            if m.header.index != ifindex {
                continue;
            }
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(l)) => Some(*l),
                _ => None,
            });
            if let Some(local) = local {
                addrs.push(Ifa4 {
                    addr: local,
                    prefix_len: m.header.prefix_len,
                    secondary: m.header.flags.contains(AddressHeaderFlags::Secondary),
                });
            }
        }
        let doomed = deleted_with(addr, prefix_len, &addrs);
        if doomed.is_empty() {
            return Ok(());
        }
        let name = match self.link_state(ifindex).await?.and_then(|l| l.name) {
            Some(n) => n,
            None => return Ok(()),
        };
        let path = format!("/proc/sys/net/ipv4/conf/{name}/promote_secondaries");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
            return Ok(());
        }
        std::fs::write(&path, "1").map_err(|e| NetError::io(format!("write 1 to {path}"), e))?;
        tracing::warn!(
            interface = %name,
            vip = %format!("{addr}/{prefix_len}"),
            kept = ?doomed,
            "the VIP is the primary address of its subnet: set promote_secondaries on the \
             interface so that removing it keeps the other addresses"
        );
        Ok(())
    }

    /// The current state of the link `ifindex` (`None` when it does not exist).
    pub async fn link_state(&self, ifindex: u32) -> Result<Option<LinkState>, NetError> {
        let mut s = self.handle.link().get().match_index(ifindex).execute();
        match s.next().await {
            Some(Ok(msg)) => Ok(Some(LinkState::from_message(&msg))),
            Some(Err(e)) if errno_of(&e) == Some(libc::ENODEV) => Ok(None),
            Some(Err(e)) => Err(NetError::Netlink {
                op: format!("get link {ifindex}"),
                detail: describe(&e),
                errno: errno_of(&e),
            }),
            None => Ok(None),
        }
    }
}

/// The state of one link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// The kernel's ifindex of the link (`ifinfomsg.ifi_index`).
    pub index: u32,
    /// The interface name, when the message carried it.
    pub name: Option<String>,
    /// Administratively up and running (IFF_UP and IFF_RUNNING, as keepalived tests them).
    pub up: bool,
    /// The message was RTM_DELLINK: the link is gone and `index` is free for reuse.
    pub deleted: bool,
}

impl LinkState {
    fn from_message(msg: &LinkMessage) -> LinkState {
        let flags = msg.header.flags;
        let name = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        LinkState {
            index: msg.header.index,
            name,
            up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
            deleted: false,
        }
    }
}

/// What the [`LinkMonitor`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A link was created, changed or deleted.
    Link(LinkState),
    /// An IPv4 or IPv6 address was added to or removed from the interface `index` (the
    /// caller looks the interface up again to learn its addresses).
    Address {
        /// The ifindex the address belongs to (`ifaddrmsg.ifa_index`).
        index: u32,
    },
}

/// A subscription to link events (RTNLGRP_LINK: every change of any link's flags) and address
/// events (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR: an address added or removed).
pub struct LinkMonitor {
    rx: futures_util::stream::BoxStream<'static, LinkEvent>,
}

impl std::fmt::Debug for LinkMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkMonitor")
    }
}

impl LinkMonitor {
    /// Subscribes in the calling thread's network namespace (spawns the connection driver on the
    /// current tokio runtime). Open it before reading the initial state, so no change is missed.
    pub fn open() -> Result<LinkMonitor, NetError> {
        let (conn, _handle, messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(|e| NetError::io("open rtnetlink link monitor", e))?;
        tokio::spawn(conn);
        let rx = messages
            .filter_map(|(msg, _)| async move {
                match msg.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                        Some(LinkEvent::Link(LinkState::from_message(&l)))
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                        let mut s = LinkState::from_message(&l);
                        s.up = false;
                        s.deleted = true;
                        Some(LinkEvent::Link(s))
                    }
                    NetlinkPayload::InnerMessage(
                        RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a),
                    ) => Some(LinkEvent::Address {
                        index: a.header.index,
                    }),
                    _ => None,
                }
            })
            .boxed();
        Ok(LinkMonitor { rx })
    }

    /// The next event; `None` when the netlink connection ended.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        self.rx.next().await
    }
}

/// One IPv4 address of an interface, as an address dump reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ifa4 {
    addr: Ipv4Addr,
    prefix_len: u8,
    secondary: bool,
}

/// The addresses the kernel deletes together with `addr/prefix_len` when `promote_secondaries`
/// is off: if it is the primary of its subnet, the secondaries of the same subnet and mask
/// (`__inet_del_ifa`, `inet_ifa_match`). Empty when `addr` is itself secondary or absent.
fn deleted_with(addr: Ipv4Addr, prefix_len: u8, addrs: &[Ifa4]) -> Vec<Ipv4Addr> {
    let primary = addrs
        .iter()
        .any(|a| a.addr == addr && a.prefix_len == prefix_len && !a.secondary);
    if !primary {
        return Vec::new();
    }
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0);
    let net = u32::from(addr) & mask;
    addrs
        .iter()
        .filter(|a| a.secondary && a.prefix_len == prefix_len && u32::from(a.addr) & mask == net)
        .map(|a| a.addr)
        .collect()
}

fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

fn describe(e: &rtnetlink::Error) -> String {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifa(a: &str, p: u8, secondary: bool) -> Ifa4 {
        Ifa4 {
            addr: a.parse().unwrap(),
            prefix_len: p,
            secondary,
        }
    }

    #[test]
    fn a_primary_vip_takes_its_subnets_secondaries_with_it() {
        let addrs = [
            ifa("192.0.2.100", 24, false),
            ifa("192.0.2.2", 24, true),
            ifa("192.0.2.3", 25, false), // another mask: its own primary
            ifa("198.51.100.1", 24, true),
        ];
        let got = deleted_with("192.0.2.100".parse().unwrap(), 24, &addrs);
        assert_eq!(got, vec!["192.0.2.2".parse::<Ipv4Addr>().unwrap()]);
    }

    #[test]
    fn a_secondary_or_absent_vip_takes_nothing() {
        let addrs = [ifa("192.0.2.2", 24, false), ifa("192.0.2.100", 24, true)];
        assert!(deleted_with("192.0.2.100".parse().unwrap(), 24, &addrs).is_empty());
        assert!(deleted_with("192.0.2.9".parse().unwrap(), 24, &addrs).is_empty());
        // A /32 VIP is alone in its subnet.
        let addrs = [ifa("192.0.2.100", 32, false), ifa("192.0.2.2", 24, false)];
        assert!(deleted_with("192.0.2.100".parse().unwrap(), 32, &addrs).is_empty());
    }

    #[test]
    fn a_slash_zero_mask_does_not_overflow() {
        let addrs = [ifa("10.0.0.1", 0, false), ifa("192.0.2.2", 0, true)];
        assert_eq!(
            deleted_with("10.0.0.1".parse().unwrap(), 0, &addrs).len(),
            1
        );
    }
}
