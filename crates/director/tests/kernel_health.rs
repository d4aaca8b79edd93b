//! Health checks with the real IPVS kernel (issue 18's lab proof): one `director run` (Master
//! alone), two DR real servers and a sorry server answering HTTP with their own name, a client.
//! A real server's HTTP server stopped -> weight 0 (`on_down: inhibit`) or removed
//! (`on_down: remove`) within fall x interval + margin while client requests keep succeeding;
//! restarted -> back after rise; both stopped -> the sorry server serves.
//!
//! Runs inside the lab VM (`tests/lab/run`; tests/check runs every `kernel_*` binary there).
#![allow(clippy::unwrap_used)]

mod netns_common;

use std::time::{Duration, Instant};

use netns_common::{wait_for, Host, Lan};

const VIP: &str = "10.9.0.100";

fn config(on_down: &str) -> String {
    format!(
        "  - name: web
    interface: eth0
    virtual_router_id: 62
    priority: 150
    advert_interval: 100ms
    virtual_ipaddress: [\"{VIP}/24\"]
virtual_servers:
  - instance: web
    address: {VIP}
    port: 80
    scheduler: rr
    on_down: {on_down}
    sorry_server: {{address: 10.9.0.19}}
    checks: [{{kind: http, path: /, body_contains: r, interval: 500ms, timeout: 400ms, rise: 2, fall: 2}}]
    real_servers:
      - {{address: 10.9.0.11, weight: 1}}
      - {{address: 10.9.0.12, weight: 1}}
"
    )
}

/// A DR real server whose HTTP server answers its name; its pid in /tmp/NAME-www/pid.
fn real_server(lan: &Lan, name: &str, ip: &str) -> Host {
    let h = lan.host(name, &format!("{ip}/24"));
    h.ns.sh(&format!(
        "ip addr add {VIP}/32 dev lo && \
         sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                    net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 && \
         mkdir -p /tmp/{name}-www && echo {name} > /tmp/{name}-www/index.html"
    ))
    .expect("real server");
    start_http(&h);
    h
}

fn start_http(h: &Host) {
    let name = &h.name;
    h.ns.sh(&format!(
        "cd /tmp/{name}-www && (setsid python3 -m http.server 80 --bind 0.0.0.0 \
            >/dev/null 2>&1 < /dev/null & echo $! > /tmp/{name}-www/pid)"
    ))
    .expect("start http");
}

/// Stops the HTTP server this test started (by its pid).
fn stop_http(h: &Host) {
    let name = &h.name;
    h.ns.sh(&format!("kill $(cat /tmp/{name}-www/pid)"))
        .expect("stop http");
}

/// The `-a` line of real server `ip` in the director's table, if any.
fn dest_line(d: &Host, ip: &str) -> Option<String> {
    let t = d.ns.sh("ipvsadm -Sn").unwrap_or_default();
    t.lines()
        .find(|l| l.starts_with(&format!("-a -t {VIP}:80 -r {ip}:80 ")))
        .map(str::to_string)
}

fn weight(d: &Host, ip: &str) -> Option<u32> {
    let l = dest_line(d, ip)?;
    let w = l.split_whitespace().skip_while(|w| *w != "-w").nth(1)?;
    w.parse().ok()
}

fn get(client: &Host) -> Option<String> {
    let out = client
        .ns
        .sh(&format!("curl -s -m 2 http://{VIP}/ || true"))
        .ok()?;
    let body = out.trim().to_string();
    (!body.is_empty()).then_some(body)
}

fn run(on_down: &str) {
    // The two tests run at once in one VM: their real servers' files under /tmp (named after
    // the server) must not meet.
    let tag = &on_down[..3];
    let (n1, n2, n9) = (format!("{tag}r1"), format!("{tag}r2"), format!("{tag}r9"));
    let lan = Lan::new();
    let mut d = lan.host("d1", "10.9.0.1/24");
    let r1 = real_server(&lan, &n1, "10.9.0.11");
    let r2 = real_server(&lan, &n2, "10.9.0.12");
    let _sorry = real_server(&lan, &n9, "10.9.0.19");
    let client = lan.host("client", "10.9.0.50/24");
    d.start(&config(on_down));
    d.wait_state("MASTER", Duration::from_secs(10));
    wait_for(Duration::from_secs(5), "both real servers up", || {
        weight(&d, "10.9.0.11") == Some(1) && weight(&d, "10.9.0.12") == Some(1)
    });
    assert!(
        dest_line(&d, "10.9.0.19").is_none(),
        "no sorry server while one is up"
    );

    // r1 stops: out within fall (2) x 500 ms + margin; clients keep being served (by r2).
    stop_http(&r1);
    let t0 = Instant::now();
    wait_for(
        Duration::from_secs(5),
        "r1 out of rotation",
        || match on_down {
            "inhibit" => weight(&d, "10.9.0.11") == Some(0),
            _ => dest_line(&d, "10.9.0.11").is_none(),
        },
    );
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(3_000), "r1 out after {took:?}");
    for _ in 0..6 {
        assert_eq!(get(&client), Some(n2.clone()), "only r2 serves");
    }
    let doc = d.status_json().expect("status");
    let h = doc["health"].as_array().cloned().unwrap_or_default();
    let r1h = h
        .iter()
        .find(|e| e["real_server"] == "10.9.0.11:80")
        .cloned();
    assert_eq!(
        r1h.as_ref().map(|e| e["health"].clone()),
        Some("down".into()),
        "{doc}"
    );

    // Back after rise (2) passing checks (python's start is slow under emulation).
    start_http(&r1);
    wait_for(Duration::from_secs(15), "r1 back", || {
        weight(&d, "10.9.0.11") == Some(1)
    });

    // Both stop: the sorry server serves.
    stop_http(&r1);
    stop_http(&r2);
    wait_for(Duration::from_secs(15), "sorry server in", || {
        weight(&d, "10.9.0.19") == Some(1)
    });
    wait_for(Duration::from_secs(15), "the sorry server answers", || {
        get(&client).as_ref() == Some(&n9)
    });
    // One comes back: the sorry server leaves.
    start_http(&r2);
    wait_for(Duration::from_secs(15), "sorry server out", || {
        dest_line(&d, "10.9.0.19").is_none() && weight(&d, "10.9.0.12") == Some(1)
    });
    assert_eq!(get(&client), Some(n2.clone()));
    stop_http(&r2);
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(10));
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check runs it)"]
fn inhibit_sorry_and_back() {
    run("inhibit");
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check runs it)"]
fn remove_sorry_and_back() {
    run("remove");
}
