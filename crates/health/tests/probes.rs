//! Each probe kind against real servers on loopback (see `common`), including hung servers that
//! accept and never answer. Real time, short timeouts.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use health::probe::Prober;
use health::{
    CheckKind, CheckSpec, Connect, DnsCheck, ExecCheck, HttpCheck, StatusRange, TlsSpec, TlsVerify,
    UdpCheck,
};

const T: Duration = Duration::from_millis(300);

async fn probe(target: SocketAddr, kind: CheckKind) -> Result<String, String> {
    let mut spec = CheckSpec::new(kind);
    spec.timeout = T;
    probe_spec(target, spec).await
}

async fn probe_spec(target: SocketAddr, spec: CheckSpec) -> Result<String, String> {
    Prober::new(target, Arc::new(spec))
        .run()
        .await
        .map_err(|e| e.to_string())
}

fn http(path: &str) -> HttpCheck {
    HttpCheck::get(path)
}

fn https(path: &str, verify: TlsVerify, sni: Option<&str>) -> CheckKind {
    let mut h = HttpCheck::get(path);
    h.tls = Some(TlsSpec {
        verify,
        sni: sni.map(str::to_owned),
    });
    CheckKind::Http(h)
}

#[tokio::test]
async fn tcp_connect_refused_and_connect_override() {
    let (addr, seen) = common::tcp_acceptor().await;
    assert_eq!(probe(addr, CheckKind::Tcp).await.unwrap(), "connected");
    let closed = common::closed_port().await;
    let e = probe(closed, CheckKind::Tcp).await.unwrap_err();
    assert!(
        e.contains(&format!("connect {closed}")) && e.contains("refused"),
        "{e}"
    );
    // The real server's port is closed, but the check connects to the health port.
    let mut spec = CheckSpec::new(CheckKind::Tcp);
    spec.connect = Connect {
        address: None,
        port: Some(addr.port()),
    };
    assert!(probe_spec(closed, spec).await.is_ok());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(seen.hits(), 2);
}

#[tokio::test]
async fn http_status_host_and_body() {
    let (addr, seen) = common::http_server().await;
    assert_eq!(
        probe(addr, CheckKind::Http(http("/ok"))).await.unwrap(),
        "status 200"
    );
    let head = seen.log().pop().unwrap();
    assert!(head.starts_with("GET /ok HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nHost: {addr}\r\n")), "{head}");

    let mut h = http("/ok");
    h.host = Some("www.example".into());
    h.body_contains = Some("good".into());
    assert_eq!(
        probe(addr, CheckKind::Http(h)).await.unwrap(),
        "status 200, body matches"
    );
    assert!(seen
        .log()
        .pop()
        .unwrap()
        .contains("\r\nHost: www.example\r\n"));

    for path in ["/chunked", "/close"] {
        let mut h = http(path);
        h.body_contains = Some(" good".into());
        let r = probe(addr, CheckKind::Http(h)).await;
        assert_eq!(r.as_deref(), Ok("status 200, body matches"), "{path}");
    }
    let mut h = http("/ok");
    h.body_contains = Some("bad".into());
    let e = probe(addr, CheckKind::Http(h)).await.unwrap_err();
    assert_eq!(e, "body (12 bytes read) does not contain \"bad\"");

    let e = probe(addr, CheckKind::Http(http("/busy")))
        .await
        .unwrap_err();
    assert_eq!(e, "status 503, expected 200-299");
    let mut h = http("/busy");
    h.status = StatusRange { min: 500, max: 503 };
    assert!(probe(addr, CheckKind::Http(h)).await.is_ok());
    let mut h = http("/missing");
    h.status = StatusRange::exactly(404);
    assert!(probe(addr, CheckKind::Http(h)).await.is_ok());

    let e = probe(addr, CheckKind::Http(http("/garbage")))
        .await
        .unwrap_err();
    assert!(e.starts_with("bad HTTP response"), "{e}");
}

#[tokio::test]
async fn http_hung_servers_time_out() {
    // Accepts (in the kernel's backlog) and never reads.
    let (addr, _l) = common::hung_tcp().await;
    let t0 = Instant::now();
    let e = probe(addr, CheckKind::Http(http("/"))).await.unwrap_err();
    assert_eq!(e, format!("timed out after {T:?}"));
    assert!(t0.elapsed() < T * 3);
    // Reads the request, never answers.
    let (addr, _) = common::http_server().await;
    let e = probe(addr, CheckKind::Http(http("/hang")))
        .await
        .unwrap_err();
    assert_eq!(e, format!("timed out after {T:?}"));
}

#[tokio::test]
async fn https_verification_off_ca_file_and_sni() {
    let dir = common::temp_dir("https");
    let (addr, seen, pem) = common::https_server(&dir).await;

    let ok = probe(addr, https("/ok", TlsVerify::Off, None)).await;
    assert_eq!(ok.as_deref(), Ok("status 200"));
    assert_eq!(
        seen.log().first().map(String::as_str),
        Some("sni -"),
        "no SNI for an address"
    );

    let ca = TlsVerify::CaFile(pem.clone());
    let ok = probe(addr, https("/ok", ca.clone(), Some("health.test"))).await;
    assert_eq!(ok.as_deref(), Ok("status 200"));
    assert!(seen.log().contains(&"sni health.test".to_owned()));

    // The certificate names 127.0.0.1 too: verified against the address without SNI.
    assert!(probe(addr, https("/ok", ca.clone(), None)).await.is_ok());

    // The Host header's name is the SNI when none is given.
    let mut h = HttpCheck::get("/ok");
    h.host = Some("health.test:8443".into());
    h.tls = Some(TlsSpec {
        verify: ca.clone(),
        sni: None,
    });
    assert!(probe(addr, CheckKind::Http(h)).await.is_ok());

    let e = probe(addr, https("/ok", ca.clone(), Some("other.test")))
        .await
        .unwrap_err();
    assert!(
        e.starts_with("TLS handshake") && e.contains("not valid for name"),
        "{e}"
    );
    // The system store does not trust a certificate made a moment ago.
    let e = probe(addr, https("/ok", TlsVerify::System, Some("health.test")))
        .await
        .unwrap_err();
    assert!(e.starts_with("TLS"), "{e}");
    let e = probe(addr, https("/busy", TlsVerify::Off, None))
        .await
        .unwrap_err();
    assert_eq!(e, "status 503, expected 200-299");

    // A server that closes at once, and hung ones (never accepts; handshake done, never answers).
    let (closing, _) = common::tcp_acceptor().await;
    let e = probe(closing, https("/ok", TlsVerify::Off, None))
        .await
        .unwrap_err();
    assert!(e.starts_with("TLS handshake"), "{e}");
    let (hung, _l) = common::hung_tcp().await;
    let e = probe(hung, https("/ok", TlsVerify::Off, None))
        .await
        .unwrap_err();
    assert_eq!(e, format!("timed out after {T:?}"));
    let e = probe(addr, https("/hang", TlsVerify::Off, None))
        .await
        .unwrap_err();
    assert_eq!(e, format!("timed out after {T:?}"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn dns_rcode_and_hung_responder() {
    let (addr, seen) = common::dns_server().await;
    let ok = DnsCheck::new("ok.test.", "A").unwrap();
    assert_eq!(
        probe(addr, CheckKind::Dns(ok)).await.unwrap(),
        "rcode No Error, 0 answers"
    );
    assert_eq!(seen.log(), ["ok.test."]);
    let late = DnsCheck::new("late.test", "SOA").unwrap();
    assert!(
        probe(addr, CheckKind::Dns(late)).await.is_ok(),
        "an answer with another ID is skipped"
    );
    let nx = DnsCheck::new("nope.test.", "AAAA").unwrap();
    let e = probe(addr, CheckKind::Dns(nx.clone())).await.unwrap_err();
    assert_eq!(e, "rcode Non-Existent Domain, expected No Error");
    let expect_nx = DnsCheck { rcode: 3, ..nx };
    assert!(probe(addr, CheckKind::Dns(expect_nx)).await.is_ok());

    let (silent, _s) = common::udp_silent().await;
    let ok = DnsCheck::new("ok.test.", "A").unwrap();
    let e = probe(silent, CheckKind::Dns(ok.clone())).await.unwrap_err();
    assert_eq!(e, format!("timed out after {T:?}"));
    let e = probe(common::closed_port().await, CheckKind::Dns(ok))
        .await
        .unwrap_err();
    assert!(e.contains("refused"), "{e}");
}

#[tokio::test]
async fn udp_send_expect() {
    let (addr, seen) = common::udp_echo().await;
    let check = |send: &[u8], expect: &[u8]| {
        CheckKind::Udp(UdpCheck {
            send: send.to_vec(),
            expect: expect.to_vec(),
        })
    };
    assert_eq!(
        probe(addr, check(b"ping 42", b"42")).await.unwrap(),
        "answer of 7 bytes"
    );
    assert!(probe(addr, check(b"x", b"")).await.is_ok());
    let e = probe(addr, check(b"ping", b"pong")).await.unwrap_err();
    assert_eq!(e, "answer of 4 bytes does not contain the expected 4 bytes");
    assert_eq!(seen.hits(), 3);
    let (silent, _s) = common::udp_silent().await;
    let e = probe(silent, check(b"ping", b"")).await.unwrap_err();
    assert_eq!(e, format!("timed out after {T:?}"));
    let e = probe(common::closed_port().await, check(b"ping", b""))
        .await
        .unwrap_err();
    assert!(e.starts_with("receive") && e.contains("refused"), "{e}");
}

#[tokio::test]
async fn exec_status_environment_and_timeout() {
    let target: SocketAddr = "192.0.2.9:8080".parse().unwrap();
    let exec = |c: &str| CheckKind::Exec(ExecCheck { command: c.into() });
    assert_eq!(probe(target, exec("true")).await.unwrap(), "exit 0");
    let e = probe(target, exec("exit 3")).await.unwrap_err();
    assert_eq!(e, "`exit 3` exited with exit status: 3");
    let env = r#"test "$REAL_SERVER_ADDRESS $REAL_SERVER_PORT $CHECK_ADDRESS $CHECK_PORT" = "192.0.2.9 8080 127.0.0.2 9000""#;
    let mut spec = CheckSpec::new(exec(env));
    spec.timeout = T;
    spec.connect = Connect {
        address: Some("127.0.0.2".parse().unwrap()),
        port: Some(9000),
    };
    assert!(probe_spec(target, spec).await.is_ok());

    // The timeout kills the whole process group: the grandchild never writes its marker.
    let dir = common::temp_dir("exec");
    let marker = dir.join("survived");
    let cmd = format!("(sleep 0.6; touch {}) & wait", marker.display());
    let t0 = Instant::now();
    let e = probe(target, exec(&cmd)).await.unwrap_err();
    assert_eq!(e, format!("timed out after {T:?}"));
    assert!(t0.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !marker.exists(),
        "a process of the timed-out script survived"
    );
    let _ = std::fs::remove_dir_all(dir);
}
