//! A pass over the YAML events before deserializing, to report EVERY unknown and duplicate key
//! at once: serde stops at the first one, which would make an operator fix a file one typo per
//! run. Values are not looked at here (the parser does not expand aliases into events, so this
//! pass costs one linear walk); a syntax error ends the pass quietly and serde reports it.
//!
//! The key lists mirror `schema` and `schema_ipvs` (a unit test checks them against the fields
//! serde knows). Deserializing ignores unknown keys, so this pass is what refuses them: every
//! mapping of the file must belong to a section listed here.

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
    VirtualServer,
    RealServer,
    Tunnel,
    Ipvs,
    Timeouts,
    SyncDaemon,
    HealthCheck,
    SorryServer,
    QuorumDown,
    /// Not a mapping of the schema (lists of scalars, values).
    Any,
}

const TOP: &[&str] = &["global", "instances", "virtual_servers", "ipvs"];
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
const VIRTUAL_SERVER: &[&str] = &[
    "instance",
    "address",
    "port",
    "fwmark",
    "family",
    "protocol",
    "scheduler",
    "scheduler_flags",
    "persistence_timeout",
    "persistence_netmask",
    "persistence_engine",
    "one_packet",
    "forwarding",
    "tunnel",
    "real_servers",
    "checks",
    "on_down",
    "sorry_server",
    "quorum",
    "quorum_down",
];
const REAL_SERVER: &[&str] = &[
    "address",
    "port",
    "weight",
    "forwarding",
    "tunnel",
    "upper_threshold",
    "lower_threshold",
    "checks",
];
const HEALTH_CHECK: &[&str] = &[
    "kind",
    "interval",
    "timeout",
    "rise",
    "fall",
    "connect_address",
    "connect_port",
    "path",
    "host",
    "status",
    "body_contains",
    "verify",
    "ca_file",
    "sni",
    "query",
    "query_type",
    "rcode",
    "send",
    "expect",
    "command",
];
const SORRY_SERVER: &[&str] = &["address", "port", "weight", "forwarding"];
const QUORUM_DOWN: &[&str] = &["priority_decrease", "fault"];
const TUNNEL: &[&str] = &["type", "port", "checksum"];
const IPVS: &[&str] = &[
    "timeouts",
    "sync_daemon",
    "expire_nodest_conn",
    "expire_quiescent_template",
    "conn_reuse_mode",
    "verify_interval",
    "drain_timeout",
];
const TIMEOUTS: &[&str] = &["tcp", "tcp_fin", "udp"];
const SYNC_DAEMON: &[&str] = &[
    "instance",
    "interface",
    "syncid",
    "maxlen",
    "group",
    "port",
    "ttl",
];

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
            Section::VirtualServer => VIRTUAL_SERVER,
            Section::RealServer => REAL_SERVER,
            Section::Tunnel => TUNNEL,
            Section::Ipvs => IPVS,
            Section::Timeouts => TIMEOUTS,
            Section::SyncDaemon => SYNC_DAEMON,
            Section::HealthCheck => HEALTH_CHECK,
            Section::SorryServer => SORRY_SERVER,
            Section::QuorumDown => QUORUM_DOWN,
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
            (Section::Top, "virtual_servers") => (Section::Any, Section::VirtualServer),
            (Section::Top, "ipvs") => (Section::Ipvs, Section::Any),
            (Section::VirtualServer, "real_servers") => (Section::Any, Section::RealServer),
            (Section::VirtualServer | Section::RealServer, "tunnel") => {
                (Section::Tunnel, Section::Any)
            }
            (Section::VirtualServer | Section::RealServer, "checks") => {
                (Section::Any, Section::HealthCheck)
            }
            (Section::VirtualServer, "sorry_server") => (Section::SorryServer, Section::Any),
            (Section::VirtualServer, "quorum_down") => (Section::QuorumDown, Section::Any),
            (Section::Ipvs, "timeouts") => (Section::Timeouts, Section::Any),
            (Section::Ipvs, "sync_daemon") => (Section::SyncDaemon, Section::Any),
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
        /// Keys seen, with where (a mapping has a handful: a list beats a hash map, and a
        /// 10,000-service file has 100,000 of them).
        seen: Vec<(String, (u64, u64))>,
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
                seen: Vec::new(),
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

/// keepalived's (or ipvsadm's) name for a setting, translated.
fn keepalived(section: Section, k: &str) -> Option<&'static str> {
    match section {
        Section::Instance => keepalived_instance(k),
        Section::VirtualServer | Section::RealServer => keepalived_service(k),
        Section::Top if k == "virtual_server" => Some("the list is `virtual_servers:`"),
        _ => None,
    }
}

fn keepalived_instance(k: &str) -> Option<&'static str> {
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

fn keepalived_service(k: &str) -> Option<&'static str> {
    Some(match k {
        "lb_algo" => "keepalived's `lb_algo` is `scheduler` here (same names: wlc, rr, sh, ...)",
        "lb_kind" => "keepalived's `lb_kind` is `forwarding` here: dr, nat or tunnel",
        "persistence_granularity" => {
            "keepalived's `persistence_granularity` is `persistence_netmask` here"
        }
        "ops" => "keepalived's `ops` is `one_packet: true` here",
        "uthreshold" => "keepalived's `uthreshold` is `upper_threshold` here",
        "lthreshold" => "keepalived's `lthreshold` is `lower_threshold` here",
        "real_server" => "the list is `real_servers:`",
        "ip_family" => "the family is the address's; `family: ipv4|ipv6` is for fwmark services",
        "tun_type" | "tun_port" | "tun_flags" => {
            "use `tunnel: {type: gue, port: 6080, checksum: csum}`"
        }
        "delay_loop" => "keepalived's `delay_loop` is each check's `interval` here (`checks:`)",
        "inhibit_on_failure" => "keepalived's `inhibit_on_failure` is `on_down: inhibit` here",
        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "DNS_CHECK" | "UDP_CHECK" | "MISC_CHECK" => {
            "use `checks: [{kind: tcp|http|https|dns|udp|exec, ...}]`"
        }
        "hysteresis" | "alpha" | "omega" | "virtualhost" => {
            "not supported: see `quorum_down:` and the checks' `rise`/`fall`, `host`"
        }
        _ => return None,
    })
}

fn key(
    out: &mut Vec<Diagnostic>,
    section: Section,
    seen: &mut Vec<(String, (u64, u64))>,
    k: &str,
    at: (u64, u64),
) {
    let Some(keys) = section.keys() else { return };
    if let Some((_, (l, c))) = seen.iter().find(|(s, _)| s == k) {
        out.push(Diagnostic::at(
            at.0,
            at.1,
            format!("duplicate key `{k}`, first at line {l}, column {c}"),
            Some("each key may appear once in a mapping: remove one".into()),
        ));
        return;
    }
    seen.push((k.to_string(), at));
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

    /// A deserializer that records the field list `Deserialize` passes to `deserialize_struct`
    /// and stops there: the fields serde knows for a type, without any YAML.
    struct Fields(std::cell::RefCell<Vec<&'static str>>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> serde::Deserializer<'de> for &Fields {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.borrow_mut().extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    fn fields<T: for<'de> serde::Deserialize<'de>>() -> Vec<&'static str> {
        let d = Fields(std::cell::RefCell::new(Vec::new()));
        let _ = T::deserialize(&d);
        d.0.into_inner()
    }

    /// Every list here is the field list serde has for the matching schema type.
    #[test]
    fn key_lists_match_the_schema() {
        use crate::config::schema::*;
        use crate::config::schema_ipvs::*;
        let cases: [(Vec<&str>, &[&str]); 17] = [
            (fields::<RawConfig>(), TOP),
            (fields::<RawGlobal>(), GLOBAL),
            (fields::<RawInstance>(), INSTANCE),
            (fields::<RawGarp>(), GARP),
            (fields::<RawTrackInterface>(), TRACK_INTERFACE),
            (fields::<RawCheck>(), CHECK),
            (fields::<RawHttp>(), HTTP),
            (fields::<RawNotify>(), NOTIFY),
            (fields::<RawVirtualServer>(), VIRTUAL_SERVER),
            (fields::<RawRealServer>(), REAL_SERVER),
            (fields::<RawTunnel>(), TUNNEL),
            (fields::<RawIpvs>(), IPVS),
            (fields::<RawTimeouts>(), TIMEOUTS),
            (fields::<RawSyncDaemon>(), SYNC_DAEMON),
            (fields::<RawHealthCheck>(), HEALTH_CHECK),
            (fields::<RawSorryServer>(), SORRY_SERVER),
            (fields::<RawQuorumDown>(), QUORUM_DOWN),
        ];
        for (i, (serde_has, ours)) in cases.iter().enumerate() {
            assert_eq!(&serde_has[..], *ours, "case {i}");
        }
    }
}
