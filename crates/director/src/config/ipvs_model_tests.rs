//! The validated model of the deploy examples, value by value: what `validate` builds is the
//! exact `ipvs::Service` / `ipvs::Destination` the kernel is to hold.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ipvs::{
    AddressFamily, DaemonState, Destination, Forwarding, Netmask, Protocol, Scheduler,
    ServiceFlags, ServiceKey, Tunnel, TunnelFlags, TunnelType,
};

use super::load::parse;
use super::Config;

fn example(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/examples")
        .join(name);
    let bytes = std::fs::read(&path).expect("example");
    parse(&path, &bytes).expect("valid example")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn tunnel_example_builds_fwmark_and_tunnel_values() {
    let c = example("lvs-tun-pair.yaml");
    let [fwm, gue] = &c.virtual_services[..] else {
        panic!("{:?}", c.virtual_services)
    };
    assert_eq!(fwm.instance, "edge");
    assert_eq!(
        fwm.service.key,
        ServiceKey::Fwmark {
            af: AddressFamily::Inet,
            mark: 10
        }
    );
    assert_eq!(fwm.service.scheduler, Scheduler::Wlc);
    assert_eq!(fwm.service.flags, ServiceFlags::PERSISTENT);
    assert_eq!(fwm.service.timeout, 600);
    assert_eq!(
        fwm.service.netmask,
        Netmask::Inet(Ipv4Addr::new(255, 255, 255, 0))
    );
    let dests: Vec<&Destination> = fwm.real_servers.iter().map(|r| &r.dest).collect();
    let mut want = Destination::new(ip("10.2.0.11"), 0, Forwarding::Tunnel);
    assert_eq!(dests[0], &want);
    want.addr = ip("10.3.0.11");
    want.tunnel = Tunnel {
        kind: TunnelType::Gue,
        port: 6080,
        flags: TunnelFlags::CSUM,
    };
    assert_eq!(dests[2], &want);
    assert_eq!(dests[3].tunnel.kind, TunnelType::Gre);
    assert_eq!(
        gue.service.key,
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: ip("203.0.113.10"),
            port: 8443
        }
    );
    assert_eq!(
        gue.service.flags,
        ServiceFlags::SCHED1 | ServiceFlags::SCHED2
    );
    // The service-level tunnel is every real server's default, port forced to the service's.
    let six = &gue.real_servers[2].dest;
    assert_eq!(
        (six.addr, six.port, six.weight),
        (ip("2001:db8:3::11"), 8443, 1)
    );
    assert_eq!((six.tunnel.kind, six.tunnel.port), (TunnelType::Gue, 6080));
    assert_eq!(gue.real_servers[0].dest.weight, 2);
    assert!(c.ipvs.sync_daemon.is_none());
    assert_eq!(c.ipvs.sysctls.expire_nodest_conn, Some(true));
    assert_eq!(c.ipvs.sysctls.conn_reuse_mode, None);
}

#[test]
fn nat_example_rewrites_ports_and_syncs() {
    let c = example("lvs-nat-pair.yaml");
    let web = &c.virtual_services[0];
    let d = &web.real_servers[2].dest;
    assert_eq!(
        (
            d.port,
            d.forwarding,
            d.weight,
            d.upper_threshold,
            d.lower_threshold
        ),
        (8080, Forwarding::Masq, 5, 2000, 1500)
    );
    assert_eq!(d.tunnel, Tunnel::default());
    let dns = &c.virtual_services[1];
    assert!(dns.service.flags.one_packet());
    assert_eq!(dns.real_servers[0].dest.port, 53);
    assert_eq!(c.ipvs.timeouts.udp, 30);
    let sync = c.ipvs.sync_daemon.as_ref().expect("sync");
    let d = sync.daemon(DaemonState::Backup);
    assert_eq!(
        (d.mcast_ifn.as_str(), d.syncid, d.state),
        ("eth1", 61, DaemonState::Backup)
    );
    assert_eq!(
        c.ipvs.sysctls.entries(),
        [
            ("net/ipv4/vs/expire_nodest_conn", "1".to_string()),
            ("net/ipv4/vs/expire_quiescent_template", "1".to_string())
        ]
    );
}

#[test]
fn dr_example_defaults() {
    let c = example("lvs-dr-pair.yaml");
    let web = &c.virtual_services[0];
    assert_eq!(web.line, 24);
    let d = &web.real_servers[0].dest;
    assert_eq!(
        (d.port, d.forwarding, d.weight),
        (80, Forwarding::DirectRoute, 100)
    );
    assert_eq!(c.virtual_services[2].service.netmask, Netmask::Inet6(64));
    // No syncid written: the instance's VRID, as keepalived does.
    assert_eq!(c.ipvs.sync_daemon.as_ref().map(|s| s.syncid), Some(51));
    assert_eq!(c.ipvs.timeouts.tcp, 900);
}
