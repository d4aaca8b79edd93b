//! SIGHUP reload as a diff: a pure function from the running configuration and the new one to a
//! typed list of changes (the shape of rathole's `config_watcher::calculate_events`).
//!
//! An instance is matched by name. Same name and same settings: untouched. Same name, other
//! settings: restarted (stopped, then started with the new settings; a VRRP instance's settings
//! are few and a restart costs one Master_Down_Interval at worst on the backup side). A name only
//! in the old file: removed; only in the new one: added.

use crate::config::{Config, Instance};

/// One change to apply to the running daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Start a new instance.
    Add(Instance),
    /// Stop and remove the instance with this name.
    Remove(String),
    /// Stop the instance with this name and start it again with new settings.
    Restart(Instance),
    /// The `global:` section changed; only a restart of the daemon applies it.
    GlobalNeedsRestart,
}

/// The changes that turn `old` into `new`, removals first, then restarts and additions in the
/// new file's order (so a VRID freed by a removal is free before it is reused).
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
            Some(o) if o != n => out.push(Change::Restart(n.clone())),
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
                "changed",
                format!("{A}{B}"),
                format!("{A2}{B}"),
                &["restart a"],
            ),
            (
                "all at once",
                format!("{A}{B}"),
                format!("{C}{A2}"),
                &["remove b", "add c", "restart a"],
            ),
        ];
        for (what, old, new, want) in cases {
            let got = names(&diff(&cfg(old), &cfg(new)));
            assert_eq!(got, *want, "{what}");
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
    fn restart_carries_the_new_settings() {
        let changes = diff(&cfg(A), &cfg(A2));
        match changes.as_slice() {
            [Change::Restart(i)] => assert_eq!(i.priority, 200),
            other => panic!("{other:?}"),
        }
    }
}
