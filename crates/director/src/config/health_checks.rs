//! Checks on the health settings of a virtual service (issue 18): each `checks:` entry becomes a
//! [`health::CheckSpec`]; `on_down:`, `quorum:` and `quorum_down:` become their model values. An
//! option of another kind (`path:` on a tcp check) is refused rather than ignored.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use health::{
    CheckKind, CheckSpec, DnsCheck, ExecCheck, HttpCheck, StatusRange, TlsSpec, TlsVerify, UdpCheck,
};
use serde_saphyr::Spanned;

use super::model::{Quorum, QuorumDown};
use super::schema_health::{RawHealthCheck, RawQuorumDown};
use super::validate::Cx;
use crate::desired::OnDown;

/// Default `interval` of a real-server check: 5 s (keepalived's `delay_loop` default is 60 s,
/// too slow to notice a dead server; 5 s is its common setting).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default `timeout` of a real-server check: 2 s (capped at the interval).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Validates a `checks:` list.
pub(super) fn checks(cx: &mut Cx, list: &Spanned<Vec<Spanned<RawHealthCheck>>>) -> Vec<CheckSpec> {
    let mut out: Vec<CheckSpec> = Vec::with_capacity(list.value.len());
    for c in &list.value {
        let before = cx.diags.len();
        let spec = check(cx, &c.value);
        if let (Some(spec), true) = (spec, cx.diags.len() == before) {
            if out.contains(&spec) {
                cx.err(c, "the same check is listed twice".into(), "remove one");
            } else {
                out.push(spec);
            }
        }
    }
    out
}

/// The options each kind takes (beyond the common ones), for the refusal of the others.
fn options_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "http" => &["path", "host", "status", "body_contains"],
        "https" => &[
            "path",
            "host",
            "status",
            "body_contains",
            "verify",
            "ca_file",
            "sni",
        ],
        "dns" => &["query", "query_type", "rcode"],
        "udp" => &["send", "expect"],
        "exec" => &["command"],
        _ => &[],
    }
}

fn check(cx: &mut Cx, r: &RawHealthCheck) -> Option<CheckSpec> {
    let kind_name = r.kind.value.as_str();
    if !["tcp", "http", "https", "dns", "udp", "exec"].contains(&kind_name) {
        cx.err(
            &r.kind,
            format!("unknown check kind `{kind_name}`"),
            "use tcp, http, https, dns, udp or exec",
        );
        return None;
    }
    let allowed = options_of(kind_name);
    let opt = |name: &str, v: Option<(u64, u64)>| {
        v.filter(|_| !allowed.contains(&name))
            .map(|at| (name.to_string(), at))
    };
    let pos = |s: Option<&Spanned<String>>| s.map(super::validate::pos);
    let misplaced = [
        opt("path", pos(r.path.as_ref())),
        opt("host", pos(r.host.as_ref())),
        opt("status", pos(r.status.as_ref())),
        opt("body_contains", pos(r.body_contains.as_ref())),
        opt("verify", r.verify.as_ref().map(super::validate::pos)),
        opt("ca_file", pos(r.ca_file.as_ref())),
        opt("sni", pos(r.sni.as_ref())),
        opt("query", pos(r.query.as_ref())),
        opt("query_type", pos(r.query_type.as_ref())),
        opt("rcode", r.rcode.as_ref().map(super::validate::pos)),
        opt("send", pos(r.send.as_ref())),
        opt("expect", pos(r.expect.as_ref())),
        opt("command", pos(r.command.as_ref())),
    ];
    for (name, (line, col)) in misplaced.into_iter().flatten() {
        cx.diags.push(super::Diagnostic::at(
            line,
            col,
            format!("`{name}` has no effect on a {kind_name} check"),
            Some(format!(
                "remove it{}",
                match allowed {
                    [] => String::new(),
                    a => format!(" (a {kind_name} check takes {})", a.join(", ")),
                }
            )),
        ));
    }
    let kind = kind(cx, kind_name, r);
    let interval = match &r.interval {
        None => Some(DEFAULT_INTERVAL),
        Some(v) => cx
            .duration("interval", v)
            .and_then(|d| range(cx, "interval", v, d, Duration::from_millis(10))),
    };
    let timeout = match &r.timeout {
        None => interval.map(|i| DEFAULT_TIMEOUT.min(i)),
        Some(v) => cx
            .duration("timeout", v)
            .and_then(|d| range(cx, "timeout", v, d, Duration::from_millis(1))),
    };
    if let (Some(i), Some(t), Some(v)) = (interval, timeout, &r.timeout) {
        if t > i {
            cx.err(
                v,
                format!("timeout {} is longer than the interval", v.value),
                "a probe must end before the next one starts: shorten the timeout",
            );
        }
    }
    let count = |cx: &mut Cx, key: &str, v: &Option<Spanned<i64>>| match v {
        None => Some(1),
        Some(v) => cx.int_in(key, v, 1, 100, "use 1..100 results in a row"),
    };
    let rise = count(cx, "rise", &r.rise);
    let fall = count(cx, "fall", &r.fall);
    let address = match &r.connect_address {
        None => Some(None),
        Some(a) => match a.value.trim().parse::<IpAddr>() {
            Ok(ip) => Some(Some(ip)),
            Err(_) => {
                cx.err(
                    a,
                    format!("connect_address `{}` is not an IP address", a.value),
                    "write an address such as 10.0.0.11",
                );
                None
            }
        },
    };
    let port = match &r.connect_port {
        None => Some(None),
        Some(p) => cx
            .int_in("connect_port", p, 1, 65_535, "use 1..65535")
            .and_then(|n| u16::try_from(n).ok())
            .map(Some),
    };
    let mut spec = CheckSpec::new(kind?);
    spec.interval = interval?;
    spec.timeout = timeout?;
    spec.rise = u32::try_from(rise?).ok()?;
    spec.fall = u32::try_from(fall?).ok()?;
    spec.connect.address = address?;
    spec.connect.port = port?;
    Some(spec)
}

fn kind(cx: &mut Cx, name: &str, r: &RawHealthCheck) -> Option<CheckKind> {
    match name {
        "tcp" => Some(CheckKind::Tcp),
        "http" | "https" => {
            let mut h = HttpCheck::get(r.path.as_ref().map_or("/", |p| p.value.as_str()));
            if let Some(p) = r.path.as_ref().filter(|p| !p.value.starts_with('/')) {
                cx.err(
                    p,
                    format!("path `{}` does not start with /", p.value),
                    "write /healthz",
                );
            }
            h.host = r.host.as_ref().map(|v| v.value.clone());
            h.body_contains = r.body_contains.as_ref().map(|v| v.value.clone());
            if let Some(s) = &r.status {
                h.status = status(cx, s)?;
            }
            if name == "https" {
                let verify = match (r.verify.as_ref().map(|v| v.value), &r.ca_file) {
                    (Some(false), Some(f)) => {
                        cx.err(
                            f,
                            "ca_file has no effect with `verify: false`".into(),
                            "remove one",
                        );
                        return None;
                    }
                    (Some(false), None) => TlsVerify::Off,
                    (_, Some(f)) => TlsVerify::CaFile(PathBuf::from(&f.value)),
                    (_, None) => TlsVerify::System,
                };
                h.tls = Some(TlsSpec {
                    verify,
                    sni: r.sni.as_ref().map(|v| v.value.clone()),
                });
            }
            Some(CheckKind::Http(h))
        }
        "dns" => {
            let Some(q) = &r.query else {
                cx.err(
                    &r.kind,
                    "a dns check needs `query:` (the name asked for)".into(),
                    "add `query: example.com`",
                );
                return None;
            };
            let qtype = r.query_type.as_ref().map_or("A", |t| t.value.as_str());
            let mut d = match DnsCheck::new(&q.value, qtype) {
                Ok(d) => d,
                Err(e) => {
                    let at = match (&e, &r.query_type) {
                        (health::SpecError::DnsType { .. }, Some(t)) => super::validate::pos(t),
                        _ => super::validate::pos(q),
                    };
                    cx.diags
                        .push(super::Diagnostic::at(at.0, at.1, e.to_string(), None));
                    return None;
                }
            };
            if let Some(rc) = &r.rcode {
                d.rcode = u16::try_from(cx.int_in(
                    "rcode",
                    rc,
                    0,
                    15,
                    "use 0 (NOERROR) .. 15; 3 is NXDOMAIN",
                )?)
                .ok()?;
            }
            Some(CheckKind::Dns(d))
        }
        "udp" => Some(CheckKind::Udp(UdpCheck {
            send: r
                .send
                .as_ref()
                .map(|v| v.value.clone().into_bytes())
                .unwrap_or_default(),
            expect: r
                .expect
                .as_ref()
                .map(|v| v.value.clone().into_bytes())
                .unwrap_or_default(),
        })),
        "exec" => {
            let Some(c) = &r.command else {
                cx.err(
                    &r.kind,
                    "an exec check needs `command:`".into(),
                    "add `command: /usr/local/bin/check`",
                );
                return None;
            };
            let command = cx.command("command", c)?;
            Some(CheckKind::Exec(ExecCheck { command }))
        }
        _ => None,
    }
}

/// `200` or `200-399`.
fn status(cx: &mut Cx, s: &Spanned<String>) -> Option<StatusRange> {
    let parse = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| (100..=599).contains(n))
    };
    let range = match s.value.split_once('-') {
        None => parse(&s.value).map(StatusRange::exactly),
        Some((a, b)) => match (parse(a), parse(b)) {
            (Some(min), Some(max)) if min <= max => Some(StatusRange { min, max }),
            _ => None,
        },
    };
    if range.is_none() {
        cx.err(
            s,
            format!("status `{}` is not a status code or range", s.value),
            "write a code such as 200, or a range such as 200-399 (codes 100..599)",
        );
    }
    range
}

fn range(
    cx: &mut Cx,
    key: &str,
    v: &Spanned<String>,
    d: Duration,
    min: Duration,
) -> Option<Duration> {
    if d < min || d > Duration::from_secs(3600) {
        cx.err(
            v,
            format!("{key} {} out of range", v.value),
            &format!("use {}ms..1h", min.as_millis()),
        );
        None
    } else {
        Some(d)
    }
}

/// `on_down:`: `inhibit` (default) or `remove`.
pub(super) fn on_down(cx: &mut Cx, v: Option<&Spanned<String>>) -> OnDown {
    match v.map(|v| (v, v.value.as_str())) {
        None | Some((_, "inhibit")) => OnDown::Inhibit,
        Some((_, "remove")) => OnDown::Remove,
        Some((v, other)) => {
            cx.err(
                v,
                format!("unknown on_down `{other}`"),
                "use `inhibit` (weight 0, connections drain) or `remove`",
            );
            OnDown::Inhibit
        }
    }
}

/// `quorum:` and `quorum_down:`: each needs the other (no silent default for what losing the
/// quorum does).
pub(super) fn quorum(
    cx: &mut Cx,
    q: Option<&Spanned<i64>>,
    down: Option<&Spanned<RawQuorumDown>>,
) -> Option<Quorum> {
    let (q, down) = match (q, down) {
        (None, None) => return None,
        (None, Some(d)) => {
            cx.err(
                d,
                "quorum_down has no effect without quorum".into(),
                "add `quorum: N` (the minimum healthy weight)",
            );
            return None;
        }
        (Some(q), None) => {
            cx.err(
                q,
                "quorum needs quorum_down".into(),
                "add `quorum_down: {priority_decrease: 50}` or `quorum_down: {fault: true}`",
            );
            return None;
        }
        (Some(q), Some(d)) => (q, d),
    };
    let min = cx.int_in(
        "quorum",
        q,
        1,
        i64::from(u32::MAX),
        "the minimum total weight of the healthy real servers, at least 1",
    );
    let on_lost = match (&down.value.priority_decrease, &down.value.fault) {
        (Some(p), None) => cx
            .int_in("priority_decrease", p, 1, 254, "use 1..254")
            .and_then(|n| u8::try_from(n).ok())
            .map(QuorumDown::PriorityDecrease),
        (None, Some(f)) if f.value => Some(QuorumDown::Fault),
        _ => {
            cx.err(
                down,
                "quorum_down needs exactly one of `priority_decrease: N` and `fault: true`".into(),
                "write `quorum_down: {priority_decrease: 50}` or `quorum_down: {fault: true}`",
            );
            None
        }
    };
    Some(Quorum {
        min_weight: u64::try_from(min?).ok()?,
        on_lost: on_lost?,
    })
}
