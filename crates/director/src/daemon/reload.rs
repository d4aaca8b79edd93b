//! SIGHUP reload as a diff: a pure function from the running configuration and the new one to a
//! typed list of changes (the shape of rathole's `config_watcher::calculate_events`).
//!
//! An instance is matched by name. Same name and same settings: untouched. Same name, other
//! settings: classified by havip's own rule ([`havip::config::InstanceConfig::restart_needed`],
//! on the settings converted as the daemon runs them):
//! - VRRP identity or state-machine settings changed (VRID, interface, version, VIPs and so
//!   their family, advert interval, unicast source / peers, preempt / preempt delay,
//!   role, password, priority crossing 255): restarted, i.e. stopped (a Master resigns and hands
//!   the VIP over) and started with the new settings;
//! - anything else (notify commands, GARP settings, tracked interfaces and checks, a priority
//!   within 1..=254): updated in place (`InstanceHandle::update`): the instance keeps its state
//!   and a Master keeps its VIP.
//!
//! A name only in the old file: removed; only in the new one: added.

use crate::config::{Config, Instance};
use crate::daemon::convert::to_havip;

/// One change to apply to the running daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Start a new instance.
    Add(Instance),
    /// Stop and remove the instance with this name.
    Remove(String),
    /// Stop the instance with this name and start it again with new settings (its VRRP identity
    /// changed).
    Restart(Instance),
    /// Apply new settings to the running instance of this name in place
    /// (`havip::runner::InstanceHandle::update(to_havip(&instance))`); its identity is unchanged.
    Update(Instance),
    /// The `global:` section changed; only a restart of the daemon applies it.
    GlobalNeedsRestart,
}

/// Whether the change from `old` to `new` (same name) needs a restart or applies in place.
fn classify(old: &Instance, new: &Instance) -> Change {
    if to_havip(old).restart_needed(&to_havip(new)).is_empty() {
        Change::Update(new.clone())
    } else {
        Change::Restart(new.clone())
    }
}

/// The changes that turn `old` into `new`, removals first, then restarts, updates and additions
/// in the new file's order (so a VRID freed by a removal is free before it is reused).
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    for o in &old.instances {
        if !new.instances.iter().any(|n| n.name == o.name) {
            out.push(Change::Remove(o.name.clone()));
        }
    }
    for n in &new.instances {
        match old.instances.iter().find(|o| o.name == n.name) {
            None => out.push(Change::Add(n.clone())),
            Some(o) if o != n => out.push(classify(o, n)),
            Some(_) => {}
        }
    }
    if old.global != new.global {
        out.push(Change::GlobalNeedsRestart);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn cfg(instances: &str) -> Config {
        let text = format!("instances:\n{instances}");
        crate::config::load::parse(Path::new("t.yaml"), text.as_bytes()).expect("valid test config")
    }

    /// Instance `a` with `extra` keys appended to its flow mapping.
    fn a_with(extra: &str) -> String {
        format!("  - {{name: a, interface: eth0, virtual_router_id: 1, virtual_ipaddress: [192.0.2.1]{extra}}}\n")
    }

    const A: &str =
        "  - {name: a, interface: eth0, virtual_router_id: 1, virtual_ipaddress: [192.0.2.1]}\n";
    const A2: &str = "  - {name: a, interface: eth0, virtual_router_id: 1, priority: 200, virtual_ipaddress: [192.0.2.1]}\n";
    const B: &str =
        "  - {name: b, interface: eth0, virtual_router_id: 2, virtual_ipaddress: [192.0.2.2]}\n";
    const C: &str =
        "  - {name: c, interface: eth1, virtual_router_id: 2, virtual_ipaddress: [192.0.2.3]}\n";

    fn names(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Add(i) => format!("add {}", i.name),
                Change::Remove(n) => format!("remove {n}"),
                Change::Restart(i) => format!("restart {}", i.name),
                Change::Update(i) => format!("update {}", i.name),
                Change::GlobalNeedsRestart => "global".into(),
            })
            .collect()
    }

    #[test]
    fn diff_table() {
        let cases: &[(&str, String, String, &[&str])] = &[
            ("identical", format!("{A}{B}"), format!("{A}{B}"), &[]),
            ("reordered only", format!("{A}{B}"), format!("{B}{A}"), &[]),
            ("added", A.to_string(), format!("{A}{B}"), &["add b"]),
            ("removed", format!("{A}{B}"), A.to_string(), &["remove b"]),
            (
                "priority changed",
                format!("{A}{B}"),
                format!("{A2}{B}"),
                &["update a"],
            ),
            (
                "all at once",
                format!("{A}{B}"),
                format!("{C}{A2}"),
                &["remove b", "add c", "update a"],
            ),
        ];
        for (what, old, new, want) in cases {
            let got = names(&diff(&cfg(old), &cfg(new)));
            assert_eq!(got, *want, "{what}");
        }
    }

    #[test]
    fn identity_restarts_the_rest_updates_in_place() {
        // (what, extra keys of `a` in the new file, expected change)
        let cases: &[(&str, &str, &str)] = &[
            ("notify", ", notify: {master: /bin/true}", "update a"),
            ("garp", ", garp: {repeat: 2, refresh: 30s}", "update a"),
            (
                "track_interface",
                ", track_interface: [{name: lo}]",
                "update a",
            ),
            (
                "track_check",
                ", track_check: [{name: c, tcp: \"127.0.0.1:80\"}]",
                "update a",
            ),
            ("priority", ", priority: 254", "update a"),
            ("priority to owner", ", priority: 255", "restart a"),
            ("preempt", ", preempt: false", "restart a"),
            ("preempt_delay", ", preempt_delay: 5s", "restart a"),
            ("advert_interval", ", advert_interval: 2s", "restart a"),
            ("version", ", version: 2", "restart a"),
            ("unicast", ", unicast_peer: [192.0.2.9]", "restart a"),
            ("role", ", role: external", "restart a"),
        ];
        for (what, extra, want) in cases {
            let got = names(&diff(&cfg(A), &cfg(&a_with(extra))));
            assert_eq!(got, [*want], "{what}");
        }
        // Fields outside the flow mapping above: VRID, interface, VIPs (and so the family).
        let identity: &[(&str, &str)] = &[
            ("vrid", "  - {name: a, interface: eth0, virtual_router_id: 9, virtual_ipaddress: [192.0.2.1]}\n"),
            ("interface", "  - {name: a, interface: eth1, virtual_router_id: 1, virtual_ipaddress: [192.0.2.1]}\n"),
            ("vip", "  - {name: a, interface: eth0, virtual_router_id: 1, virtual_ipaddress: [192.0.2.7]}\n"),
            ("family", "  - {name: a, interface: eth0, virtual_router_id: 1, virtual_ipaddress: [\"2001:db8::1\"]}\n"),
        ];
        for (what, new) in identity {
            let got = names(&diff(&cfg(A), &cfg(new)));
            assert_eq!(got, ["restart a"], "{what}");
        }
    }

    #[test]
    fn global_change_is_reported() {
        let old = cfg(A);
        let mut new = cfg(A);
        new.global.log_level = "debug".into();
        assert_eq!(diff(&old, &new), vec![Change::GlobalNeedsRestart]);
    }

    #[test]
    fn changes_carry_the_new_settings() {
        match diff(&cfg(A), &cfg(A2)).as_slice() {
            [Change::Update(i)] => assert_eq!(i.priority, 200),
            other => panic!("{other:?}"),
        }
        match diff(&cfg(A), &cfg(&a_with(", version: 2"))).as_slice() {
            [Change::Restart(i)] => assert_eq!(i.version, crate::config::Version::V2),
            other => panic!("{other:?}"),
        }
    }
}
