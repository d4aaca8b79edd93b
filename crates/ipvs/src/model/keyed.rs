//! A table indexed by key: services by [`ServiceKey`], each service's real servers by
//! [`DestKey`], for diffing a wanted table against a snapshot without searching lists.
//!
//! Ordered maps (`BTreeMap`), so that whatever walks a keyed table (a diff, a plan printed for
//! an operator) sees the same order every time: services by key (fwmark services after the
//! others, IPv4 before IPv6, then protocol, address, port), real servers by address and port.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{DestKey, Destination, Service, ServiceEntry, ServiceKey, Table};

/// One service with its real servers by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyedService {
    /// The service's settings (and, from a snapshot, its counters).
    pub service: Service,
    /// Its real servers by address and port.
    pub dests: BTreeMap<DestKey, Destination>,
}

impl KeyedService {
    /// The service with its real servers indexed. A key listed twice (which the kernel never
    /// reports for one service) keeps the last entry.
    pub fn new(service: Service, dests: impl IntoIterator<Item = Destination>) -> Self {
        KeyedService {
            service,
            dests: dests.into_iter().map(|d| (d.key(), d)).collect(),
        }
    }

    /// True when both have the same settings: the service by [`Service::same_settings`], the
    /// same real servers, each by [`Destination::same_settings`] (counters ignored).
    pub fn same_settings(&self, other: &KeyedService) -> bool {
        self.service.same_settings(&other.service)
            && self.dests.len() == other.dests.len()
            && self
                .dests
                .iter()
                .zip(&other.dests)
                .all(|((ka, a), (kb, b))| ka == kb && a.same_settings(b))
    }
}

impl From<ServiceEntry> for KeyedService {
    fn from(e: ServiceEntry) -> Self {
        KeyedService::new(e.service, e.destinations)
    }
}

impl From<KeyedService> for ServiceEntry {
    /// Back to a list entry, real servers in key order.
    fn from(k: KeyedService) -> Self {
        ServiceEntry {
            service: k.service,
            destinations: k.dests.into_values().collect(),
        }
    }
}

/// A whole table by key ([`Table::keyed`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct KeyedTable {
    /// Every service by its key.
    pub services: BTreeMap<ServiceKey, KeyedService>,
}

impl KeyedTable {
    /// The service with this key, if the table has it.
    pub fn get(&self, key: &ServiceKey) -> Option<&KeyedService> {
        self.services.get(key)
    }

    /// The real server `dest` of the service `key`, if both exist.
    pub fn dest(&self, key: &ServiceKey, dest: &DestKey) -> Option<&Destination> {
        self.services.get(key)?.dests.get(dest)
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// True when the table has no service.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Back to a list, services and real servers in key order.
    pub fn into_table(self) -> Table {
        Table {
            services: self
                .services
                .into_values()
                .map(ServiceEntry::from)
                .collect(),
        }
    }
}

impl FromIterator<KeyedService> for KeyedTable {
    /// A key given twice keeps the last service.
    fn from_iter<I: IntoIterator<Item = KeyedService>>(iter: I) -> Self {
        KeyedTable {
            services: iter.into_iter().map(|s| (s.service.key, s)).collect(),
        }
    }
}

impl From<Table> for KeyedTable {
    fn from(t: Table) -> Self {
        t.services.into_iter().map(KeyedService::from).collect()
    }
}

impl Table {
    /// This table by key (a copy; [`Table::into_keyed`] takes the table instead).
    pub fn keyed(&self) -> KeyedTable {
        self.clone().into_keyed()
    }

    /// This table by key, without copying its entries.
    pub fn into_keyed(self) -> KeyedTable {
        KeyedTable::from(self)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::model::{AddressFamily, Forwarding, Protocol, Scheduler};

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    fn entry(addr: &str, dests: &[&str]) -> ServiceEntry {
        let key = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: ip(addr),
            port: 80,
        };
        ServiceEntry {
            service: Service::new(key, Scheduler::Wrr),
            destinations: dests
                .iter()
                .map(|d| Destination::new(ip(d), 80, Forwarding::Masq))
                .collect(),
        }
    }

    #[test]
    fn looks_up_services_and_real_servers_by_key() {
        let fw = ServiceKey::Fwmark {
            af: AddressFamily::Inet,
            mark: 7,
        };
        let table = Table {
            services: vec![
                entry("10.1.0.2", &["10.2.0.2", "10.2.0.1"]),
                ServiceEntry {
                    service: Service::new(fw, Scheduler::Rr),
                    destinations: vec![],
                },
                entry("10.1.0.1", &[]),
            ],
        };
        let k = table.keyed();
        assert_eq!(k.len(), 3);
        let key = table.services[0].service.key;
        let d = DestKey {
            addr: ip("10.2.0.1"),
            port: 80,
        };
        assert_eq!(k.dest(&key, &d).map(|d| d.addr), Some(ip("10.2.0.1")));
        assert!(k.get(&fw).is_some_and(|s| s.dests.is_empty()));
        assert!(k
            .dest(
                &key,
                &DestKey {
                    addr: ip("10.2.0.3"),
                    port: 80
                }
            )
            .is_none());
        // Back to a list: key order, fwmark services last.
        let back = k.into_table();
        let order: Vec<ServiceKey> = back.services.iter().map(|e| e.service.key).collect();
        assert_eq!(
            order,
            vec![table.services[2].service.key, key, fw],
            "services in key order"
        );
        assert_eq!(
            back.services[1]
                .destinations
                .iter()
                .map(|d| d.addr)
                .collect::<Vec<_>>(),
            vec![ip("10.2.0.1"), ip("10.2.0.2")]
        );
    }

    #[test]
    fn keyed_services_compare_settings_not_counters() {
        let a = KeyedService::from(entry("10.1.0.1", &["10.2.0.1", "10.2.0.2"]));
        let mut b = a.clone();
        b.service.flags = b
            .service
            .flags
            .with(crate::model::ServiceFlags::HASHED, true);
        for d in b.dests.values_mut() {
            d.active_conns = 3;
        }
        assert!(a.same_settings(&b));
        if let Some(d) = b.dests.values_mut().next() {
            d.weight = 5;
        }
        assert!(!a.same_settings(&b));
        let fewer = KeyedService::from(entry("10.1.0.1", &["10.2.0.1"]));
        assert!(!a.same_settings(&fewer));
    }
}
