//! The director's validated instance settings -> havip's `InstanceConfig` (plain mapping; every
//! value was range-checked in `config::validate`, and the tracked checks are havip's
//! `CheckConfig` already).

use havip::config::{
    GarpConfig, InstanceConfig, Masked, NotifyConfig, RoleMode, TrackInterface, Vip,
};
use havip::packet::Version as WireVersion;
use havip::time::Centisecs;

use crate::config::{Instance, Role, Version};

/// Builds the runner's configuration for one instance.
pub fn to_havip(i: &Instance) -> InstanceConfig {
    let vips = i
        .vips
        .iter()
        .map(|v| Vip {
            addr: v.addr,
            prefix_len: v.prefix,
        })
        .collect();
    let mut c = InstanceConfig::new(&i.name, &i.interface, i.vrid, i.priority, vips);
    c.version = match i.version {
        Version::V2 => WireVersion::V2,
        Version::V3 => WireVersion::V3,
    };
    c.advert_interval =
        Centisecs::from_millis_floor(u64::try_from(i.advert_interval.as_millis()).unwrap_or(0));
    c.unicast_src = i.unicast_src_ip;
    c.unicast_peers = i.unicast_peers.clone();
    c.preempt = i.preempt;
    c.preempt_delay = i.preempt_delay;
    c.garp = GarpConfig {
        repeat: i.garp.repeat,
        interval: i.garp.interval,
        refresh: i.garp.refresh,
    };
    c.track_interfaces = i
        .track_interfaces
        .iter()
        .map(|t| TrackInterface {
            name: t.name.clone(),
            weight: t.weight,
        })
        .collect();
    c.checks = i.checks.clone();
    c.notify = NotifyConfig {
        master: i.notify.master.clone(),
        backup: i.notify.backup.clone(),
        fault: i.notify.fault.clone(),
        stop: i.notify.stop.clone(),
        any: i.notify.any.clone(),
    };
    c.role = match &i.role {
        Role::Vrrp => RoleMode::Vrrp,
        Role::External { fence } => RoleMode::External {
            fence: fence.clone(),
        },
    };
    c.auth_pass = i.auth_pass.as_ref().map(|p| Masked(p.0.clone()));
    c
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use havip::track::ProbeSpec;

    #[test]
    fn maps_every_field() {
        let text = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/config/valid.yaml"
        ))
        .unwrap();
        let cfg = crate::config::load::parse(Path::new("valid.yaml"), &text).unwrap();
        let web = to_havip(&cfg.instances[0]);
        assert_eq!(web.name, "web");
        assert_eq!(web.vrid, 51);
        assert_eq!(web.priority, 150);
        assert_eq!(web.advert_interval, Centisecs(10));
        assert_eq!(web.vips.len(), 2);
        assert_eq!(web.vips[1].prefix_len, 32);
        assert_eq!(
            web.unicast_peers,
            vec!["192.0.2.2".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(web.preempt_delay, Duration::from_secs(5));
        assert_eq!(web.garp.refresh, Some(Duration::from_secs(60)));
        assert_eq!(web.track_interfaces[0].weight, -20);
        assert_eq!(web.checks.len(), 5);
        assert_eq!(
            web.checks[1].check.probe,
            ProbeSpec::Http {
                addr: "127.0.0.1:8080".parse().unwrap(),
                host: None,
                path: "/health".into(),
                expect_status: 200,
            }
        );
        let legacy = to_havip(&cfg.instances[2]);
        assert_eq!(legacy.version, WireVersion::V2);
        assert_eq!(legacy.advert_interval, Centisecs(100));
        assert!(legacy.auth_pass.is_some());
        let db = to_havip(&cfg.instances[3]);
        assert_eq!(
            db.role,
            RoleMode::External {
                fence: Some("/etc/director/fence-old-primary.sh".into())
            }
        );
    }
}
