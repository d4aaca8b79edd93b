//! A pass over the YAML events before deserializing, to report EVERY unknown and duplicate key
//! at once: serde stops at the first one, which would make an operator fix a file one typo per
//! run. Values are not looked at here (the parser does not expand aliases into events, so this
//! pass costs one linear walk); a syntax error ends the pass quietly and serde reports it.
//!
//! The key lists mirror `schema`; a unit test checks them against serde's own lists.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser};

use super::load::nearest;
use super::Diagnostic;

/// The sections of the file whose keys are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Top,
    Global,
    Instance,
    Garp,
    TrackInterface,
    Check,
    Http,
    Notify,
    /// Not checked here (lists of scalars, `virtual_servers`, values).
    Any,
}

const TOP: &[&str] = &["global", "instances", "virtual_servers"];
const GLOBAL: &[&str] = &["status_socket", "log_level"];
const INSTANCE: &[&str] = &[
    "name",
    "interface",
    "virtual_router_id",
    "priority",
    "version",
    "advert_interval",
    "virtual_ipaddress",
    "unicast_src_ip",
    "unicast_peer",
    "preempt",
    "preempt_delay",
    "accept",
    "garp",
    "track_interface",
    "track_check",
    "notify",
    "role",
    "fence",
    "auth_pass",
];
const GARP: &[&str] = &["repeat", "interval", "refresh"];
const TRACK_INTERFACE: &[&str] = &["name", "weight"];
const CHECK: &[&str] = &[
    "name", "exec", "tcp", "http", "process", "file", "interval", "timeout", "rise", "fall",
    "weight",
];
const HTTP: &[&str] = &["url", "status"];
const NOTIFY: &[&str] = &["master", "backup", "fault", "stop", "any"];

impl Section {
    fn keys(self) -> Option<&'static [&'static str]> {
        Some(match self {
            Section::Top => TOP,
            Section::Global => GLOBAL,
            Section::Instance => INSTANCE,
            Section::Garp => GARP,
            Section::TrackInterface => TRACK_INTERFACE,
            Section::Check => CHECK,
            Section::Http => HTTP,
            Section::Notify => NOTIFY,
            Section::Any => return None,
        })
    }

    /// The section of the value under `key`, and for a list, of its items.
    fn child(self, key: &str) -> (Section, Section) {
        match (self, key) {
            (Section::Top, "global") => (Section::Global, Section::Any),
            (Section::Top, "instances") => (Section::Any, Section::Instance),
            (Section::Instance, "garp") => (Section::Garp, Section::Any),
            (Section::Instance, "track_interface") => (Section::Any, Section::TrackInterface),
            (Section::Instance, "track_check") => (Section::Any, Section::Check),
            (Section::Instance, "notify") => (Section::Notify, Section::Any),
            (Section::Check, "http") => (Section::Http, Section::Any),
            _ => (Section::Any, Section::Any),
        }
    }
}

enum Frame {
    Map {
        section: Section,
        /// The next node is a key (else a value).
        want_key: bool,
        /// Section of the value (mapping) and of list items (sequence) under the last key.
        value: (Section, Section),
        /// Keys seen, with where.
        seen: HashMap<String, (u64, u64)>,
    },
    Seq {
        item: Section,
    },
}

/// Unknown and duplicate keys, located; empty when there are none (or the YAML is malformed:
/// then deserializing reports the syntax error).
pub(super) fn check_keys(text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Section of a mapping / item section of a sequence about to start, at the top level.
    let top = (Section::Top, Section::Any);
    for ev in Parser::new_from_str(text) {
        let Ok((ev, span)) = ev else { break };
        let (line, col) = (span.start.line() as u64, span.start.col() as u64 + 1);
        // What the node starting now is: its mapping section and its list-item section.
        let here = match stack.last() {
            None => top,
            Some(Frame::Seq { item }) => (*item, Section::Any),
            Some(Frame::Map { want_key: true, .. }) => (Section::Any, Section::Any),
            Some(Frame::Map { value, .. }) => *value,
        };
        match ev {
            Event::Scalar(v, ..) => {
                if let Some(Frame::Map {
                    section,
                    want_key,
                    value,
                    seen,
                }) = stack.last_mut()
                {
                    if *want_key {
                        key(&mut out, *section, seen, &v, (line, col));
                        *value = section.child(&v);
                        *want_key = false;
                    } else {
                        *want_key = true;
                    }
                }
            }
            Event::Alias(_) => node_done(&mut stack),
            Event::MappingStart(..) => stack.push(Frame::Map {
                section: here.0,
                want_key: true,
                value: (Section::Any, Section::Any),
                seen: HashMap::new(),
            }),
            Event::SequenceStart(..) => stack.push(Frame::Seq { item: here.1 }),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            _ => {}
        }
    }
    out
}

/// A complete node (alias or collection) was read: a mapping key or a value is done.
fn node_done(stack: &mut [Frame]) {
    if let Some(Frame::Map {
        want_key, value, ..
    }) = stack.last_mut()
    {
        if *want_key {
            // A complex key: its value is not checked.
            *value = (Section::Any, Section::Any);
        }
        *want_key = !*want_key;
    }
}

/// keepalived's name for an instance setting, translated.
fn keepalived(section: Section, k: &str) -> Option<&'static str> {
    if section != Section::Instance {
        return None;
    }
    Some(match k {
        "advert_int" => {
            "keepalived's `advert_int` is `advert_interval` here, with a unit: 1s, 100ms"
        }
        "nopreempt" => "keepalived's `nopreempt` is `preempt: false` here",
        "state" => "there is no initial state: every instance starts as backup, priority decides",
        "authentication" | "auth_type" => {
            "keepalived's PASS authentication is `auth_pass: SECRET` here (version: 2)"
        }
        "track_script" | "track_process" | "track_file" => {
            "use `track_check:` with `exec:`, `process:` or `file:`"
        }
        "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
            "use `notify: {master: CMD, backup: CMD, fault: CMD, stop: CMD}`"
        }
        "virtual_routes" | "virtual_rules" | "virtual_ipaddress_excluded" => "not supported",
        _ => return None,
    })
}

fn key(
    out: &mut Vec<Diagnostic>,
    section: Section,
    seen: &mut HashMap<String, (u64, u64)>,
    k: &str,
    at: (u64, u64),
) {
    let Some(keys) = section.keys() else { return };
    if let Some((l, c)) = seen.get(k) {
        out.push(Diagnostic::at(
            at.0,
            at.1,
            format!("duplicate key `{k}`, first at line {l}, column {c}"),
            Some("each key may appear once in a mapping: remove one".into()),
        ));
        return;
    }
    seen.insert(k.to_string(), at);
    if keys.contains(&k) {
        return;
    }
    let hint = match (keepalived(section, k), nearest(k, keys)) {
        (Some(h), _) => h.to_string(),
        (None, Some(best)) => format!("did you mean `{best}`?"),
        (None, None) => format!("valid keys here: {}", keys.join(", ")),
    };
    out.push(Diagnostic::at(
        at.0,
        at.1,
        format!("unknown key `{k}`"),
        Some(hint),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::RawConfig;

    fn msgs(text: &str) -> Vec<String> {
        check_keys(text)
            .into_iter()
            .map(|d| {
                let (l, c) = d.at.unwrap_or((0, 0));
                format!("{l}:{c}: {}", d.message)
            })
            .collect()
    }

    #[test]
    fn every_unknown_and_duplicate_key_is_reported() {
        let text = "\
globl: {}
instances:
  - name: a
    priorty: 1
    garp: {repat: 2}
    track_check:
      - tcp: x
        intervall: 1s
        http: {url: u, code: 200}
    notify: {master: m, mastr: m}
    track_interface: [{name: e, wieght: 1}]
    name: b
  - name: c
    virtual_ipaddress: [{not_checked: 1}]
";
        assert_eq!(
            msgs(text),
            [
                "1:1: unknown key `globl`",
                "4:5: unknown key `priorty`",
                "5:12: unknown key `repat`",
                "8:9: unknown key `intervall`",
                "9:24: unknown key `code`",
                "10:25: unknown key `mastr`",
                "11:33: unknown key `wieght`",
                "12:5: duplicate key `name`, first at line 3, column 5",
            ]
        );
    }

    #[test]
    fn valid_and_malformed_files_give_nothing() {
        let valid = include_str!("../../tests/fixtures/config/valid.yaml");
        assert!(check_keys(valid).is_empty());
        assert!(check_keys("instances: [\n").is_empty());
        assert!(check_keys("a: &x {b: 1}\nc: *x\n").len() == 2);
    }

    /// The lists here are serde's: an unknown key in each section must name the same list.
    #[test]
    fn key_lists_match_the_schema() {
        let cases: [(&str, &[&str]); 8] = [
            ("zz: 1\n", TOP),
            ("global: {zz: 1}\n", GLOBAL),
            ("instances: [{zz: 1}]\n", INSTANCE),
            ("instances: [{name: a, interface: e, virtual_router_id: 1, garp: {zz: 1}}]\n", GARP),
            (
                "instances: [{name: a, interface: e, virtual_router_id: 1, track_interface: [{zz: 1}]}]\n",
                TRACK_INTERFACE,
            ),
            (
                "instances: [{name: a, interface: e, virtual_router_id: 1, track_check: [{zz: 1}]}]\n",
                CHECK,
            ),
            (
                "instances: [{name: a, interface: e, virtual_router_id: 1, track_check: [{http: {zz: 1}}]}]\n",
                HTTP,
            ),
            (
                "instances: [{name: a, interface: e, virtual_router_id: 1, notify: {zz: 1}}]\n",
                NOTIFY,
            ),
        ];
        for (text, keys) in cases {
            match serde_saphyr::from_str::<RawConfig>(text) {
                Err(serde_saphyr::Error::SerdeUnknownField { expected, .. }) => {
                    assert_eq!(expected, keys, "{text}")
                }
                Err(serde_saphyr::Error::WithSnippet { error, .. }) => match *error {
                    serde_saphyr::Error::SerdeUnknownField { expected, .. } => {
                        assert_eq!(expected, keys, "{text}")
                    }
                    other => panic!("{text}: {other}"),
                },
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
