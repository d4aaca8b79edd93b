//! Settings equality between what we want and what the kernel reports, and the normal form of
//! what we send: the library's normal forms (`Service::normalised`,
//! `Destination::normalised_for`) and settings equality (`same_settings`), applied the way the
//! diff needs them.
//!
//! What the kernel adds or reports that is not a setting (`net/netfilter/ipvs/ip_vs_ctl.c`):
//! - `IP_VS_SVC_F_HASHED` on every live service (`ip_vs_svc_hash`; `ip_vs_edit_service` sets
//!   `svc->flags = u->flags | IP_VS_SVC_F_HASHED`): ignored when comparing, and never sent:
//!   `ip_vs_svc_hash` refuses to hash a new service whose flags already carry it ("request for
//!   already hashed"), which would leave an added service out of the table.
//! - counters and connection counts (replies only): ignored.
//! - a persistence engine is absent or named; an empty name means none (`ip_vs_edit_service`
//!   binds an engine only for `u->pe_name && *u->pe_name`).
//! - tunnel type, port and flags matter only with tunnel forwarding; a real server of another
//!   method is sent with the default tunnel, and its reported tunnel fields are not compared.

use ipvs::{Destination, Forwarding, Service, Tunnel};

/// True when `have` (a kernel copy) has the settings of `want`: scheduler, flags without
/// `HASHED`, timeout, netmask, persistence engine (key included; counters ignored).
pub(crate) fn same_service(want: &Service, have: &Service) -> bool {
    service_to_send(want).same_settings(&service_to_send(have))
}

/// True when `have` (a kernel copy) has the settings of `want`: address, port, forwarding,
/// weight, thresholds, and the tunnel with tunnel forwarding (connection counts ignored).
pub(crate) fn same_dest(want: &Destination, have: &Destination) -> bool {
    dest_to_send(want).same_settings(&dest_to_send(have))
}

/// The service as we send it: no `HASHED`, no counters, an empty engine name as none, the
/// scheduler by its canonical name.
pub(crate) fn service_to_send(s: &Service) -> Service {
    s.clone().normalised()
}

/// The real server as we send it: no counts or counters, the default tunnel unless tunnelled.
pub(crate) fn dest_to_send(d: &Destination) -> Destination {
    let mut out = d.clone();
    out.active_conns = 0;
    out.inactive_conns = 0;
    out.persist_conns = 0;
    out.stats = None;
    if out.forwarding != Forwarding::Tunnel {
        out.tunnel = Tunnel::default();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ipvs::{Protocol, Scheduler, ServiceFlags, ServiceKey, Stats, TunnelType};

    fn service() -> Service {
        Service::new(
            ServiceKey::Inet {
                protocol: Protocol::Tcp,
                addr: "192.0.2.1".parse().unwrap(),
                port: 80,
            },
            Scheduler::Wlc,
        )
    }

    #[test]
    fn kernel_additions_are_not_differences() {
        let want = service();
        let mut have = want.clone();
        have.flags = have.flags.with(ServiceFlags::HASHED, true);
        have.stats = Some(Stats {
            conns: 7,
            ..Stats::default()
        });
        assert!(same_service(&want, &have));
        let mut empty_pe = want.clone();
        empty_pe.pe_name = Some(String::new());
        assert!(same_service(&empty_pe, &have));
        have.timeout = 300;
        assert!(!same_service(&want, &have));

        let sent = service_to_send(&have);
        assert!(!sent.flags.hashed());
        assert_eq!(sent.stats, None);
    }

    #[test]
    fn tunnel_fields_count_only_for_tunnels() {
        let mut want = Destination::new("10.0.0.1".parse().unwrap(), 80, Forwarding::DirectRoute);
        let mut have = want.clone();
        have.tunnel.kind = TunnelType::Gre;
        have.active_conns = 4;
        assert!(same_dest(&want, &have));
        assert_eq!(dest_to_send(&have).tunnel, Tunnel::default());
        assert_eq!(dest_to_send(&have).active_conns, 0);
        want.forwarding = Forwarding::Tunnel;
        have.forwarding = Forwarding::Tunnel;
        assert!(!same_dest(&want, &have));
        have.weight = 2;
        want.tunnel.kind = TunnelType::Gre;
        assert!(!same_dest(&want, &have));
    }
}
