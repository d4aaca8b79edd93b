//! Checks on `track_interface:` and `track_check:` entries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use havip::config::{CheckConfig, CheckSpec};
use havip::track::ProbeSpec;
use serde_saphyr::Spanned;

use super::model::{TrackInterface, DEFAULT_CHECK_INTERVAL, DEFAULT_CHECK_TIMEOUT};
use super::schema::{RawCheck, RawTrackInterface};
use super::validate::{interface_name, Cx};

/// Weight range: a weight moves the priority within 1..254.
const WEIGHT_HINT: &str = "use -254..254; 0 (the default) means FAULT while down";

/// Validates `track_interface:` entries.
pub(super) fn interfaces(cx: &mut Cx, list: &[Spanned<RawTrackInterface>]) -> Vec<TrackInterface> {
    let mut out: Vec<TrackInterface> = Vec::new();
    for t in list {
        let ok = interface_name(cx, "track_interface name", &t.value.name);
        let weight = match &t.value.weight {
            None => Some(0),
            Some(w) => cx.int_in("weight", w, -254, 254, WEIGHT_HINT),
        };
        if out.iter().any(|o| o.name == t.value.name.value) {
            cx.err(
                &t.value.name,
                format!("track_interface {} is listed twice", t.value.name.value),
                "remove one",
            );
            continue;
        }
        if let (true, Some(w)) = (ok, weight) {
            out.push(TrackInterface {
                name: t.value.name.value.clone(),
                weight: i32::try_from(w).unwrap_or(0),
            });
        }
    }
    out
}

/// Validates `track_check:` entries into havip's check settings.
pub(super) fn checks(cx: &mut Cx, list: &[Spanned<RawCheck>]) -> Vec<CheckConfig> {
    let mut out: Vec<CheckConfig> = Vec::new();
    for c in list {
        let before = cx.diags.len();
        let Some((probe, default_name)) = kind(cx, c) else {
            continue;
        };
        let r = &c.value;
        let interval = r
            .interval
            .as_ref()
            .map_or(Some(DEFAULT_CHECK_INTERVAL), |v| {
                cx.duration("interval", v)
                    .and_then(|d| positive(cx, "interval", v, d, Duration::from_millis(10)))
            });
        let timeout = r.timeout.as_ref().map_or(Some(DEFAULT_CHECK_TIMEOUT), |v| {
            cx.duration("timeout", v)
                .and_then(|d| positive(cx, "timeout", v, d, Duration::from_millis(1)))
        });
        let count = |cx: &mut Cx, key: &str, v: &Option<Spanned<i64>>| match v {
            None => Some(1),
            Some(v) => cx.int_in(key, v, 1, 100, "use 1..100 probes in a row"),
        };
        let rise = count(cx, "rise", &r.rise);
        let fall = count(cx, "fall", &r.fall);
        let weight = match &r.weight {
            None => Some(0),
            Some(w) => cx.int_in("weight", w, -254, 254, WEIGHT_HINT),
        };
        let name = match &r.name {
            Some(n) if n.value.trim().is_empty() => {
                cx.err(
                    n,
                    "check name is empty".into(),
                    "write a name or remove the key",
                );
                continue;
            }
            Some(n) => n.value.clone(),
            None => default_name,
        };
        if out.iter().any(|o| o.check.name == name) {
            let at: &Spanned<_> = c;
            cx.err(
                at,
                format!("check name `{name}` is used twice in this instance"),
                "give the checks distinct `name:`s",
            );
            continue;
        }
        if cx.diags.len() > before {
            continue;
        }
        let (Some(interval), Some(timeout), Some(rise), Some(fall), Some(weight)) =
            (interval, timeout, rise, fall, weight)
        else {
            continue;
        };
        out.push(CheckConfig {
            check: CheckSpec {
                name,
                probe,
                interval,
                timeout,
                rise: u32::try_from(rise).unwrap_or(1),
                fall: u32::try_from(fall).unwrap_or(1),
            },
            weight: i32::try_from(weight).unwrap_or(0),
        });
    }
    out
}

fn positive(
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

/// Exactly one probe per check: the probe, and the check's name when it has none (`tcp ADDR`,
/// `http URL`, ...).
fn kind(cx: &mut Cx, c: &Spanned<RawCheck>) -> Option<(ProbeSpec, String)> {
    let r = &c.value;
    let set = [
        r.exec.is_some(),
        r.tcp.is_some(),
        r.http.is_some(),
        r.process.is_some(),
        r.file.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set != 1 {
        cx.err(
            c,
            format!("a check needs exactly one probe, this one has {set}"),
            "give one of exec, tcp, http, process, file",
        );
        return None;
    }
    if let Some(e) = &r.exec {
        return cx.command("exec", e).map(|command| {
            let name = format!("exec {command}");
            (ProbeSpec::Exec { command }, name)
        });
    }
    if let Some(t) = &r.tcp {
        return match t.value.trim().parse::<SocketAddr>() {
            Ok(addr) => Some((ProbeSpec::Tcp { addr }, format!("tcp {addr}"))),
            Err(_) => {
                cx.err(
                    t,
                    format!("tcp `{}` is not ADDRESS:PORT", t.value),
                    "e.g. 127.0.0.1:8080 or [::1]:8080",
                );
                None
            }
        };
    }
    if let Some(h) = &r.http {
        let url = &h.value.url;
        // http://ADDRESS:PORT[/PATH]: the path from the first '/', `/` when there is none.
        let target = url.value.strip_prefix("http://").and_then(|rest| {
            let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let path = if path.is_empty() { "/" } else { path };
            Some((hostport.parse::<SocketAddr>().ok()?, path.to_owned()))
        });
        if target.is_none() {
            cx.err(
                url,
                format!("http url `{}` is not http://ADDRESS:PORT/PATH", url.value),
                "e.g. http://127.0.0.1:8080/health (https is not supported)",
            );
        }
        let status = match &h.value.status {
            None => Some(200),
            Some(s) => cx.int_in("status", s, 100, 599, "use an HTTP status code such as 200"),
        };
        return match (target, status) {
            (Some((addr, path)), Some(s)) => Some((
                ProbeSpec::Http {
                    addr,
                    host: None,
                    path,
                    expect_status: u16::try_from(s).unwrap_or(200),
                },
                format!("http {}", url.value),
            )),
            _ => None,
        };
    }
    if let Some(p) = &r.process {
        let ok = !p.value.is_empty() && p.value.len() <= 15 && !p.value.contains('/');
        if !ok {
            cx.err(
                p,
                format!("process `{}` is not a process name", p.value),
                "use the name as in /proc/PID/comm (at most 15 characters, no '/')",
            );
            return None;
        }
        let name = p.value.clone();
        return Some((
            ProbeSpec::Process { name: name.clone() },
            format!("process {name}"),
        ));
    }
    if let Some(f) = &r.file {
        if !f.value.starts_with('/') {
            cx.err(
                f,
                format!("file `{}` is not an absolute path", f.value),
                "e.g. /run/director/weight",
            );
            return None;
        }
        let path = PathBuf::from(&f.value);
        let name = format!("file {}", path.display());
        return Some((ProbeSpec::File { path }, name));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes(checks: &str) -> Vec<(String, ProbeSpec)> {
        let text = format!(
            "instances:\n  - {{name: web, interface: eth0, virtual_router_id: 51, \
             virtual_ipaddress: [192.0.2.10], track_check: {checks}}}\n"
        );
        let cfg = crate::config::load::parse(std::path::Path::new("t.yaml"), text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        cfg.instances[0]
            .checks
            .iter()
            .map(|c| (c.check.name.clone(), c.check.probe.clone()))
            .collect()
    }

    #[test]
    fn probes_and_their_default_names() {
        let got = probes(
            "[{tcp: \"[::1]:80\"}, {http: {url: \"http://127.0.0.1:8080\"}}, \
             {http: {url: \"http://[::1]:81/a/b?c\", status: 204}}, {exec: \"true\"}, \
             {process: haproxy}, {file: /run/w}]",
        );
        let want = [
            (
                "tcp [::1]:80",
                ProbeSpec::Tcp {
                    addr: "[::1]:80".parse().unwrap(),
                },
            ),
            (
                "http http://127.0.0.1:8080",
                ProbeSpec::Http {
                    addr: "127.0.0.1:8080".parse().unwrap(),
                    host: None,
                    path: "/".into(),
                    expect_status: 200,
                },
            ),
            (
                "http http://[::1]:81/a/b?c",
                ProbeSpec::Http {
                    addr: "[::1]:81".parse().unwrap(),
                    host: None,
                    path: "/a/b?c".into(),
                    expect_status: 204,
                },
            ),
            (
                "exec true",
                ProbeSpec::Exec {
                    command: "true".into(),
                },
            ),
            (
                "process haproxy",
                ProbeSpec::Process {
                    name: "haproxy".into(),
                },
            ),
            (
                "file /run/w",
                ProbeSpec::File {
                    path: "/run/w".into(),
                },
            ),
        ];
        let want: Vec<(String, ProbeSpec)> =
            want.into_iter().map(|(n, p)| (n.to_owned(), p)).collect();
        assert_eq!(got, want);
    }
}
