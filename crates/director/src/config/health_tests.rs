//! `checks:`, `on_down:`, `sorry_server:`, `quorum:` / `quorum_down:`: what they build, and every
//! error located in one report.

use std::path::Path;
use std::time::Duration;

use health::{CheckKind, StatusRange, TlsVerify};

use super::load::parse;
use super::model::{Quorum, QuorumDown};
use crate::desired::OnDown;

const HEAD: &str = "\
instances:
  - name: web
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddress: [192.0.2.10]
virtual_servers:
  - instance: web
    address: 192.0.2.10
    port: 80
";

fn build(tail: &str) -> Result<super::Config, String> {
    let text = format!("{HEAD}{tail}");
    parse(Path::new("t.yaml"), text.as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn service_checks_are_inherited_and_a_real_servers_own_replace_them() {
    let c = build(
        "    on_down: remove
    quorum: 2
    quorum_down: {priority_decrease: 50}
    sorry_server: {address: 10.0.0.99}
    checks:
      - kind: http
        path: /healthz
        status: 200-399
        body_contains: ok
        interval: 1s
        timeout: 300ms
        rise: 2
        fall: 3
        connect_port: 8080
    real_servers:
      - address: 10.0.0.11
      - address: 10.0.0.12
        checks:
          - {kind: tcp}
          - {kind: https, verify: false, sni: web.example}
          - {kind: dns, query: example.com, query_type: AAAA, rcode: 3}
          - {kind: udp, send: ping, expect: pong}
          - {kind: exec, command: /bin/true}
",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let v = &c.virtual_services[0];
    assert_eq!(v.on_down, OnDown::Remove);
    assert_eq!(
        v.quorum,
        Some(Quorum {
            min_weight: 2,
            on_lost: QuorumDown::PriorityDecrease(50)
        })
    );
    let sorry = v
        .sorry_server
        .as_ref()
        .map(|d| (d.addr.to_string(), d.port, d.weight));
    assert_eq!(sorry, Some(("10.0.0.99".into(), 80, 1)));
    let [a, b] = &v.real_servers[..] else {
        panic!()
    };
    let [h] = &a.checks[..] else {
        panic!("{:?}", a.checks)
    };
    let CheckKind::Http(http) = &h.kind else {
        panic!()
    };
    assert_eq!(http.path, "/healthz");
    assert_eq!(http.status, StatusRange { min: 200, max: 399 });
    assert_eq!(http.body_contains.as_deref(), Some("ok"));
    assert!(http.tls.is_none());
    assert_eq!(
        (h.interval, h.timeout, h.rise, h.fall),
        (Duration::from_secs(1), Duration::from_millis(300), 2, 3)
    );
    assert_eq!(h.connect.port, Some(8080));
    let kinds: Vec<&str> = b.checks.iter().map(|c| c.kind.name()).collect();
    assert_eq!(kinds, ["tcp", "https", "dns", "udp", "exec"]);
    let CheckKind::Http(https) = &b.checks[1].kind else {
        panic!()
    };
    let tls = https
        .tls
        .as_ref()
        .map(|t| (t.verify.clone(), t.sni.clone()));
    assert_eq!(tls, Some((TlsVerify::Off, Some("web.example".into()))));
    let CheckKind::Dns(d) = &b.checks[2].kind else {
        panic!()
    };
    assert_eq!((d.qtype, d.rcode), (28, 3));
    assert_eq!(
        b.checks[0].interval,
        Duration::from_secs(5),
        "default interval"
    );
    assert_eq!(
        b.checks[0].timeout,
        Duration::from_secs(2),
        "default timeout"
    );
}

#[test]
fn defaults_inhibit_no_quorum_no_checks() {
    let c = build("    real_servers: [{address: 10.0.0.11}]\n").unwrap_or_else(|e| panic!("{e}"));
    let v = &c.virtual_services[0];
    assert_eq!(v.on_down, OnDown::Inhibit);
    assert!(v.quorum.is_none() && v.sorry_server.is_none());
    assert!(v.real_servers[0].checks.is_empty());
    let c =
        build("    quorum: 1\n    quorum_down: {fault: true}\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.virtual_services[0].quorum.map(|q| q.on_lost),
        Some(QuorumDown::Fault)
    );
}

#[test]
fn every_error_is_located_in_one_report() {
    let e = build(
        "    on_down: drop
    quorum: 0
    quorum_down: {priority_decrease: 10, fault: true}
    checks:
      - kind: ping
      - {kind: tcp, path: /x}
      - {kind: http, status: 700, timeout: 10s, interval: 1s}
      - {kind: dns}
      - {kind: dns, query: a.example, query_type: NOPE}
      - {kind: exec}
      - {kind: https, verify: false, ca_file: /ca.pem}
      - {kind: tcp, connect_port: 0, rise: 0}
    real_servers:
      - address: 10.0.0.11
        checks: [{kind: tcp, connect_address: nowhere}]
",
    )
    .err()
    .unwrap_or_default();
    let lines: Vec<&str> = e.lines().collect();
    let want = [
        "t.yaml:10:14: unknown on_down `drop`",
        "t.yaml:11:13: quorum 0 out of range",
        "t.yaml:12:18: quorum_down needs exactly one of",
        "t.yaml:14:15: unknown check kind `ping`",
        "t.yaml:15:27: `path` has no effect on a tcp check",
        "t.yaml:16:30: status `700` is not a status code or range",
        "t.yaml:16:44: timeout 10s is longer than the interval",
        "t.yaml:17:16: a dns check needs `query:`",
        "t.yaml:18:51: unknown DNS query type",
        "t.yaml:19:16: an exec check needs `command:`",
        "t.yaml:20:47: ca_file has no effect with `verify: false`",
        "t.yaml:21:35: connect_port 0 out of range",
        "t.yaml:21:44: rise 0 out of range",
        "t.yaml:24:47: connect_address `nowhere` is not an IP address",
    ];
    assert_eq!(lines.len(), want.len(), "{e}");
    for (got, want) in lines.iter().zip(want) {
        assert!(got.starts_with(want), "got {got}\nwant {want}\nall:\n{e}");
    }
}

#[test]
fn quorum_needs_quorum_down_and_the_reverse() {
    let e = build("    quorum: 3\n").err().unwrap_or_default();
    assert!(e.contains("quorum needs quorum_down"), "{e}");
    let e = build("    quorum_down: {fault: true}\n")
        .err()
        .unwrap_or_default();
    assert!(
        e.contains("quorum_down has no effect without quorum"),
        "{e}"
    );
}

#[test]
fn a_portless_real_server_needs_a_connect_port() {
    let text = "\
instances:
  - {name: edge, interface: eth0, virtual_router_id: 9, virtual_ipaddress: [192.0.2.10]}
virtual_servers:
  - instance: edge
    fwmark: 10
    persistence_timeout: 5m
    checks: [{kind: tcp}]
    real_servers:
      - {address: 10.2.0.11}
      - {address: 10.2.0.12, checks: [{kind: tcp, connect_port: 443}, {kind: exec, command: x}]}
";
    let e = parse(Path::new("t.yaml"), text.as_bytes())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("t.yaml:9:19: real server 10.2.0.11 has port 0 (every port): its tcp check needs `connect_port:`"),
        "{e}"
    );
}
