//! The director pair with the real IPVS kernel (issue 16's lab proof): two `director run`
//! processes, three real servers answering HTTP with their own name, a client, one bridge, DR
//! forwarding. Only the VRRP Master holds our virtual service; a service added by hand on both
//! directors (someone else's) survives everything; kill -9 the Master and the Backup programs,
//! takes the VIP and serves; the old Master restarts, adopts the table it left (its counters keep
//! counting) and preempts, the other withdraws; drift is repaired; drain and undrain; SIGTERM
//! hands over and leaves nothing of ours behind.
//!
//! Runs inside the lab VM (`tests/lab/run`; tests/check runs every `kernel_*` binary there).
#![allow(clippy::unwrap_used)]

mod netns_common;

use std::time::{Duration, Instant};

use netns_common::{dr_real_server, ipvs_table, wait_for, Host, Lan};

const VIP: &str = "10.9.0.100";
const FOREIGN: &str = "-A -t 10.9.0.200:8080 -s rr";

/// The instance and the service, as both directors run them (only the priority differs).
fn config(priority: u8) -> String {
    format!(
        "  - name: web
    interface: eth0
    virtual_router_id: 61
    priority: {priority}
    advert_interval: 300ms
    virtual_ipaddress: [\"{VIP}/24\"]
virtual_servers:
  - instance: web
    address: {VIP}
    port: 80
    scheduler: rr
    real_servers:
      - {{address: 10.9.0.11, weight: 1}}
      - {{address: 10.9.0.12, weight: 1}}
      - {{address: 10.9.0.13, weight: 1}}
ipvs:
  verify_interval: 2s
"
    )
}

fn real_server(lan: &Lan, name: &str, ip: &str) -> Host {
    dr_real_server(lan, name, ip, VIP, "")
}

fn table(h: &Host) -> String {
    ipvs_table(h)
}

/// Whether the director's kernel holds our service with `n` real servers.
fn has_ours(h: &Host, n: usize) -> bool {
    let t = table(h);
    t.contains(&format!("-A -t {VIP}:80 -s rr"))
        && t.lines()
            .filter(|l| l.starts_with(&format!("-a -t {VIP}:80 ")))
            .count()
            == n
}

fn nothing_of_ours(h: &Host) -> bool {
    !table(h).contains(VIP)
}

/// One HTTP GET through the VIP from the client; the body (a real server's name) or None.
fn get(client: &Host) -> Option<String> {
    let out = client
        .ns
        .sh(&format!("curl -s -m 2 http://{VIP}/ || true"))
        .ok()?;
    let body = out.trim().to_string();
    (!body.is_empty()).then_some(body)
}

fn service_conns(h: &Host) -> u64 {
    netns_common::service_conns(h, &format!("{VIP}:80"))
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn only_the_master_programs_and_the_pair_fails_over_with_the_service() {
    let lan = Lan::new();
    let mut d1 = lan.host("d1", "10.9.0.1/24");
    let mut d2 = lan.host("d2", "10.9.0.2/24");
    let _reals: Vec<Host> = [
        ("r1", "10.9.0.11"),
        ("r2", "10.9.0.12"),
        ("r3", "10.9.0.13"),
    ]
    .iter()
    .map(|(n, ip)| real_server(&lan, n, ip))
    .collect();
    let client = lan.host("client", "10.9.0.50/24");
    // Someone else's service on both directors: never ours to touch.
    for d in [&d1, &d2] {
        d.ns.sh(&format!(
            "ipvsadm {FOREIGN} && ipvsadm -a -t 10.9.0.200:8080 -r 10.9.0.11:8080 -m"
        ))
        .expect("foreign service");
    }
    d1.start(&config(150));
    d2.start(&config(100));
    d1.wait_state("MASTER", Duration::from_secs(10));
    d2.wait_state("BACKUP", Duration::from_secs(5));
    wait_for(Duration::from_secs(5), "d1 programs the service", || {
        has_ours(&d1, 3)
    });
    assert!(
        nothing_of_ours(&d2),
        "the Backup holds nothing of ours:\n{}",
        table(&d2)
    );
    assert!(
        table(&d2).contains("10.9.0.200:8080"),
        "foreign service kept on d2"
    );

    // Requests through the VIP reach every real server.
    let mut seen = std::collections::BTreeSet::new();
    wait_for(Duration::from_secs(15), "every real server answers", || {
        if let Some(b) = get(&client) {
            seen.insert(b);
        }
        seen.len() == 3
    });

    // The status shows the service, its real servers and the reconcile.
    let st = d1.status_json().unwrap();
    let ipvs = &st["instances"][0]["ipvs"];
    assert_eq!(ipvs["programming"], "programmed", "{st}");
    assert_eq!(ipvs["services"][0]["service"], format!("tcp:{VIP}:80"));
    assert_eq!(
        ipvs["services"][0]["real_servers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Drain: weight 0 on the Master, kept in the table; undrain brings it back.
    let (ok, out) = d1.cli(&["drain", &format!("tcp:{VIP}:80"), "10.9.0.11"]);
    assert!(ok, "{out}");
    wait_for(Duration::from_secs(3), "drained to weight 0", || {
        table(&d1).contains(&format!("-a -t {VIP}:80 -r 10.9.0.11:80 -g -w 0"))
    });
    let (ok, out) = d1.cli(&["drain", "tcp:10.9.0.99:80", "10.9.0.11"]);
    assert!(!ok && out.contains("no virtual service"), "{out}");
    let (ok, out) = d1.cli(&["undrain", &format!("tcp:{VIP}:80"), "10.9.0.11"]);
    assert!(ok, "{out}");
    wait_for(Duration::from_secs(3), "undrained", || {
        table(&d1).contains(&format!("-a -t {VIP}:80 -r 10.9.0.11:80 -g -w 1"))
    });

    // Drift: a real server deleted by hand is put back by the periodic verification.
    d1.ns
        .sh(&format!("ipvsadm -d -t {VIP}:80 -r 10.9.0.12:80"))
        .unwrap();
    wait_for(Duration::from_secs(15), "drift repaired", || {
        has_ours(&d1, 3)
    });
    let st = d1.status_json().unwrap();
    assert!(
        st["instances"][0]["ipvs"]["drift_repairs"]
            .as_u64()
            .unwrap()
            >= 1,
        "{st}"
    );

    // kill -9 the Master: the Backup programs, takes the VIP, requests succeed again.
    let conns_before = service_conns(&d1);
    assert!(conns_before > 0, "the service counted the requests");
    d1.crash();
    let t = Instant::now();
    d2.wait_state("MASTER", Duration::from_secs(10));
    wait_for(Duration::from_secs(3), "d2 programs the service", || {
        has_ours(&d2, 3)
    });
    wait_for(Duration::from_secs(10), "a request through d2", || {
        get(&client).is_some()
    });
    eprintln!(
        "kill -9 -> first request through the new Master: {:?}",
        t.elapsed()
    );
    assert!(
        has_ours(&d1, 3),
        "a killed director cannot withdraw (kernel state survives)"
    );

    // The old Master restarts and preempts: it adopts its table (nothing deleted and re-added:
    // the service's counters keep counting) and the other withdraws.
    d1.start(&config(150));
    d1.wait_state("MASTER", Duration::from_secs(10));
    wait_for(Duration::from_secs(5), "d2 withdraws", || {
        nothing_of_ours(&d2)
    });
    assert!(has_ours(&d1, 3));
    assert!(
        service_conns(&d1) >= conns_before,
        "adopted, not re-added: counters kept ({} < {conns_before})",
        service_conns(&d1)
    );
    let st = d1.status_json().unwrap();
    let last = &st["instances"][0]["ipvs"]["last_takeover"];
    assert_eq!(
        last["ops"], 0,
        "adopting an unchanged table sends nothing: {st}"
    );
    wait_for(Duration::from_secs(10), "requests through d1 again", || {
        get(&client).is_some()
    });

    // SIGTERM: d1 hands over; nothing of ours is left on it, the foreign service is.
    d1.signal("TERM");
    d1.wait_exit(Duration::from_secs(10));
    d2.wait_state("MASTER", Duration::from_secs(10));
    wait_for(Duration::from_secs(5), "d2 programs again", || {
        has_ours(&d2, 3)
    });
    assert!(
        nothing_of_ours(&d1),
        "stopped node keeps nothing of ours:\n{}",
        table(&d1)
    );
    for d in [&d1, &d2] {
        assert!(
            table(d).contains("-A -t 10.9.0.200:8080 -s rr"),
            "foreign service survived"
        );
        assert!(table(d).contains("-a -t 10.9.0.200:8080 -r 10.9.0.11:8080 -m -w 1"));
    }
}

/// A pair, its clients' requests, then kill -9 of the Master: the Backup takes over with the
/// service. `ours`: the Master's `ipvsadm -Sn` shows our service; `dirs` in priority order.
fn fail_over(
    dirs: &mut [Host; 2],
    client: &Host,
    vip: &str,
    names: usize,
    ours: impl Fn(&Host) -> bool,
) {
    let [d1, d2] = dirs;
    d1.wait_state("MASTER", Duration::from_secs(10));
    d2.wait_state("BACKUP", Duration::from_secs(5));
    wait_for(Duration::from_secs(5), "d1 programs the service", || {
        ours(d1)
    });
    assert!(
        !table(d2).contains(vip),
        "the Backup holds nothing of ours:\n{}",
        table(d2)
    );
    let get = || {
        client
            .ns
            .sh(&format!("curl -s -m 2 http://{vip}/ || true"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let mut seen = std::collections::BTreeSet::new();
    wait_for(Duration::from_secs(15), "every real server answers", || {
        if let Some(b) = get() {
            seen.insert(b);
        }
        seen.len() == names
    });
    d1.crash();
    d2.wait_state("MASTER", Duration::from_secs(10));
    wait_for(Duration::from_secs(3), "d2 programs the service", || {
        ours(d2)
    });
    wait_for(Duration::from_secs(10), "a request through d2", || {
        get().is_some()
    });
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn nat_pair_the_real_servers_gateway_follows_the_master() {
    // Clients on one LAN, real servers on an inside network behind the directors; the inside
    // VIP (a second instance) is the real servers' default gateway, so replies return through
    // whichever director holds the VIPs.
    let outside = Lan::new();
    let inside = Lan::new();
    let vip = "10.9.1.100";
    let conf = |prio: u8| {
        format!(
            "  - name: outside
    interface: eth0
    virtual_router_id: 71
    priority: {prio}
    advert_interval: 300ms
    virtual_ipaddress: [\"{vip}/24\"]
  - name: inside
    interface: eth1
    virtual_router_id: 72
    priority: {prio}
    advert_interval: 300ms
    virtual_ipaddress: [\"10.11.0.1/24\"]
virtual_servers:
  - instance: outside
    address: {vip}
    port: 80
    forwarding: nat
    scheduler: rr
    real_servers:
      - {{address: 10.11.0.11, port: 8080}}
      - {{address: 10.11.0.12, port: 8080}}
"
        )
    };
    let mut dirs = [
        outside.host("n1", "10.9.1.1/24"),
        outside.host("n2", "10.9.1.2/24"),
    ];
    for (i, d) in dirs.iter().enumerate() {
        d.ns.plug(&inside.bridge, "eth1", &format!("10.11.0.{}/24", i + 2))
            .expect("inside leg");
        d.ns.sh("sysctl -qw net.ipv4.ip_forward=1").unwrap();
    }
    let _reals: Vec<Host> = [("m1", "10.11.0.11"), ("m2", "10.11.0.12")]
        .iter()
        .map(|(name, ip)| {
            let h = inside.host(name, &format!("{ip}/24"));
            h.ns.sh(&format!(
                "ip route add default via 10.11.0.1 && \
                 mkdir -p /tmp/{name}-www && echo {name} > /tmp/{name}-www/index.html && \
                 (cd /tmp/{name}-www && setsid python3 -m http.server 8080 --bind 0.0.0.0 \
                    >/dev/null 2>&1 < /dev/null &)"
            ))
            .expect("real server");
            h
        })
        .collect();
    let client = outside.host("nc", "10.9.1.50/24");
    dirs[0].start(&conf(150));
    dirs[1].start(&conf(100));
    let ours = |h: &Host| {
        let t = table(h);
        t.contains(&format!("-A -t {vip}:80 -s rr"))
            && t.contains(&format!("-a -t {vip}:80 -r 10.11.0.11:8080 -m -w 1"))
            && t.contains(&format!("-a -t {vip}:80 -r 10.11.0.12:8080 -m -w 1"))
    };
    fail_over(&mut dirs, &client, vip, 2, ours);
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn tunnel_pair_reaches_real_servers_over_ipip() {
    // The real servers decapsulate (the VIP on tunl0) and answer the client directly.
    let lan = Lan::new();
    let vip = "10.9.2.100";
    let conf = |prio: u8| {
        format!(
            "  - name: tun
    interface: eth0
    virtual_router_id: 81
    priority: {prio}
    advert_interval: 300ms
    virtual_ipaddress: [\"{vip}/24\"]
virtual_servers:
  - instance: tun
    address: {vip}
    port: 80
    forwarding: tunnel
    scheduler: rr
    real_servers:
      - {{address: 10.9.2.11}}
      - {{address: 10.9.2.12}}
"
        )
    };
    let mut dirs = [lan.host("t1", "10.9.2.1/24"), lan.host("t2", "10.9.2.2/24")];
    let _reals: Vec<Host> = [("u1", "10.9.2.11"), ("u2", "10.9.2.12")]
        .iter()
        .map(|(name, ip)| {
            let h = lan.host(name, &format!("{ip}/24"));
            h.ns.sh(&format!(
                "ip link set tunl0 up 2>/dev/null || (ip tunnel add tunl0 mode ipip && ip link set tunl0 up); \
                 ip addr add {vip}/32 dev tunl0 && \
                 sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                            net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0 \
                            net.ipv4.conf.default.rp_filter=0 && \
                 mkdir -p /tmp/{name}-www && echo {name} > /tmp/{name}-www/index.html && \
                 (cd /tmp/{name}-www && setsid python3 -m http.server 80 --bind 0.0.0.0 \
                    >/dev/null 2>&1 < /dev/null &)"
            ))
            .expect("real server");
            h
        })
        .collect();
    let client = lan.host("tc", "10.9.2.50/24");
    dirs[0].start(&conf(150));
    dirs[1].start(&conf(100));
    let ours = |h: &Host| {
        let t = table(h);
        t.contains(&format!("-a -t {vip}:80 -r 10.9.2.11:80 -i -w 1"))
            && t.contains(&format!("-a -t {vip}:80 -r 10.9.2.12:80 -i -w 1"))
    };
    fail_over(&mut dirs, &client, vip, 2, ours);
}
