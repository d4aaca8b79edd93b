//! `director plan -c FILE` with the real IPVS kernel (issue 16): the exact operations applying
//! FILE would make on this node now, in `ipvsadm -R` notation, without making them. The plan of
//! an empty table, fed to `ipvsadm -R`, gives the table `director run` would program; then the
//! plan is empty; one weight changed by hand is one edit; an operator drain in `--state-dir`
//! shows as weight 0; a foreign service is never named; the kernel is never changed by `plan`.
//!
//! Runs inside the lab VM (`tests/lab/run`; tests/check runs every `kernel_*` binary there).
#![allow(clippy::unwrap_used)]

mod netns_common;

use netns_common::{Lan, BIN};

const CONFIG: &str = "global:
  status_socket: /nonexistent/director.sock
instances:
  - {name: web, interface: eth0, virtual_router_id: 9, virtual_ipaddress: [10.9.6.100/24]}
virtual_servers:
  - instance: web
    address: 10.9.6.100
    port: 80
    scheduler: wlc
    real_servers:
      - {address: 10.9.6.11, weight: 3}
      - {address: 10.9.6.12}
  - instance: web
    fwmark: 7
    scheduler: rr
    persistence_timeout: 300s
    real_servers:
      - {address: 10.9.6.13}
";

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn plan_prints_exactly_what_run_would_apply_and_changes_nothing() {
    let lan = Lan::new();
    let h = lan.host("pl", "10.9.6.1/24");
    let file = lan.dir.join("plan.yaml");
    std::fs::write(&file, CONFIG).unwrap();
    let state = lan.dir.join("plan-state");
    let plan = || {
        let out =
            h.ns.command(BIN)
                .args(["plan", "-c"])
                .arg(&file)
                .arg("--state-dir")
                .arg(&state)
                .output()
                .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let table = || h.ns.sh("ipvsadm -Sn").unwrap();
    h.ns.sh(
        "ipvsadm -A -t 10.9.6.200:8080 -s rr && ipvsadm -a -t 10.9.6.200:8080 -r 10.9.6.11:8080 -m",
    )
    .unwrap();
    let before = table();

    // From nothing of ours: every add, nothing foreign, the kernel untouched.
    let (ops, summary) = plan();
    assert_eq!(
        ops,
        "-A -t 10.9.6.100:80 -s wlc\n\
         -a -t 10.9.6.100:80 -r 10.9.6.11:80 -g -w 3\n\
         -a -t 10.9.6.100:80 -r 10.9.6.12:80 -g -w 1\n\
         -A -f 7 -s rr -p 300\n\
         -a -f 7 -r 10.9.6.13:0 -g -w 1\n",
        "{summary}"
    );
    assert!(!ops.contains("10.9.6.200"), "foreign service never named");
    assert_eq!(table(), before, "plan changes nothing");

    // Applied by ipvsadm, the plan is empty: it is what `director run` would have programmed.
    let rules = lan.dir.join("plan.rules");
    std::fs::write(&rules, &ops).unwrap();
    h.ns.sh(&format!("ipvsadm -R < {}", rules.display()))
        .unwrap();
    let (ops, summary) = plan();
    assert_eq!(ops, "", "{summary}");
    assert!(summary.contains("no change"), "{summary}");

    // One weight changed by hand: one edit in place.
    h.ns.sh("ipvsadm -e -t 10.9.6.100:80 -r 10.9.6.12:80 -g -w 9")
        .unwrap();
    let (ops, _) = plan();
    assert_eq!(ops, "-e -t 10.9.6.100:80 -r 10.9.6.12:80 -g -w 1\n");

    // An operator drain recorded in the state directory: weight 0 in the plan.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("drains.json"),
        r#"{"version":1,"drains":[{"service":"tcp:10.9.6.100:80","real_server":"10.9.6.11:80"}]}"#,
    )
    .unwrap();
    let (ops, summary) = plan();
    assert!(
        ops.contains("-e -t 10.9.6.100:80 -r 10.9.6.11:80 -g -w 0\n"),
        "{ops}{summary}"
    );
    assert!(
        h.ns.sh("ipvsadm -Sn")
            .unwrap()
            .contains("-r 10.9.6.11:80 -g -w 3"),
        "still unchanged"
    );

    // An invalid file: exit 64, FILE:LINE in the message, nothing read or changed.
    std::fs::write(&file, CONFIG.replace("scheduler: wlc", "scheduler: nope")).unwrap();
    let out =
        h.ns.command(BIN)
            .args(["plan", "-c"])
            .arg(&file)
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plan.yaml:"), "{err}");
}
