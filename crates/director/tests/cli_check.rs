//! `director check -c FILE` run as an operator runs it: exit code and the exact
//! `FILE:LINE:COL: message (hint)` lines, for valid files and for every kind of bad file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn check(path: &Path) -> (Option<i32>, String, String, Duration) {
    let start = Instant::now();
    let out: Output = Command::new(env!("CARGO_BIN_EXE_director"))
        .args(["check", "-c"])
        .arg(path)
        .output()
        .expect("run director");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

/// Runs `check` on a fixture and returns its stderr lines with the path replaced by `F`.
fn errors_of(name: &str) -> Vec<String> {
    let path = fixture(name);
    let (code, _, err, _) = check(&path);
    assert_eq!(code, Some(64), "{name}: {err}");
    let p = path.display().to_string();
    err.lines().map(|l| l.replace(&p, "F")).collect()
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("director-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

#[test]
fn valid_file_passes() {
    let (code, out, err, _) = check(&fixture("valid.yaml"));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("valid.yaml: OK (4 instances)\n"), "{out}");
    assert_eq!(err, "");
}

#[test]
fn every_semantic_error_at_once() {
    assert_eq!(
        errors_of("many_errors.yaml"),
        [
            "F:4:24: VRID 300 out of range 1..255 (pick a number shared by both nodes of the pair and unique on the interface)",
            "F:5:15: priority 0 out of range 1..255 (0 is sent only by a master that resigns; 255 means this node owns the addresses)",
            "F:6:22: advert_interval 5ms out of range 10ms..40.95s for VRRPv3 (VRRPv3 counts centiseconds: use 10ms to 40.95s in steps of 10ms)",
            "F:8:9: VIP `192.0.2.300/24` is not an address (write ADDRESS[/PREFIX], e.g. 192.0.2.10/24 or 2001:db8::10/64)",
            "F:16:24: VRID 51 is already used on eth0 by the instance at line 12, column 24 (each instance on one interface needs its own virtual_router_id)",
            "F:18:22: advert_interval 500ms is not whole seconds, which VRRPv2 requires (use 1s..255s, or `version: 3` for sub-second intervals)",
            "F:19:25: VIP `192.0.2.21/33` has a bad prefix length (use /0../32, or leave it out for /32)",
            "F:23:16: auth_pass is VRRPv2 only: VRRPv3 has no authentication (RFC 5798 - Section 9) (remove it, or set `version: 2` to match a keepalived v2 pair)",
            "F:24:38: VIP 192.0.2.30 is IPv4 but the first VIP 2001:db8::1 is IPv6 (one instance carries one family: put these VIPs in a second instance)",
            "F:26:14: tcp `localhost` is not ADDRESS:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)",
            "F:27:9: a check needs exactly one probe, this one has 2 (give one of exec, tcp, http, process, file)",
            "F: 11 errors, configuration not valid",
        ]
    );
}

#[test]
fn unknown_key_names_the_nearest_valid_one() {
    assert_eq!(
        errors_of("unknown_key.yaml"),
        [
            "F:5:5: unknown key `priorty` (did you mean `priority`?)",
            "F: 1 error, configuration not valid"
        ]
    );
    let far = errors_of("unknown_key_far.yaml");
    assert!(
        far[0].starts_with("F:5:5: unknown key `colour` (valid keys here: name, interface,"),
        "{far:?}"
    );
}

#[test]
fn every_unknown_key_at_once() {
    assert_eq!(
        errors_of("unknown_keys_many.yaml"),
        [
            "F:2:3: unknown key `log_levle` (did you mean `log_level`?)",
            "F:7:5: unknown key `advert_int` (keepalived's `advert_int` is `advert_interval` here, with a unit: 1s, 100ms)",
            "F:9:12: unknown key `repeats` (did you mean `repeat`?)",
            "F:16:9: unknown key `fal` (did you mean `fall`?)",
            "F:17:5: unknown key `nopreempt` (keepalived's `nopreempt` is `preempt: false` here)",
            "F: 5 errors, configuration not valid",
        ]
    );
}

#[test]
fn unknown_keys_and_value_errors_in_one_report() {
    assert_eq!(
        errors_of("keys_and_values.yaml"),
        [
            "F:4:24: VRID 300 out of range 1..255 (pick a number shared by both nodes of the pair and unique on the interface)",
            "F:5:5: unknown key `priorty` (did you mean `priority`?)",
            "F:11:5: unknown key `lb_algo` (keepalived's `lb_algo` is `scheduler` here (same names: wlc, rr, sh, ...))",
            "F:13:30: unknown key `wieght` (did you mean `weight`?)",
            "F:14:38: weight -1 out of range 0..65535 (use 0..65535; 0 sends no new connections)",
            "F: 5 errors, configuration not valid",
        ]
    );
}

#[test]
fn every_service_error_at_once() {
    assert_eq!(
        errors_of("services_errors.yaml"),
        [
            "F:8:14: address 192.0.2.11 is not a VIP of instance `web` (its VIPs: 192.0.2.10) (a service is programmed only where its instance holds the VIP: add the address to that instance's virtual_ipaddress, or name the instance that has it)",
            "F:10:16: unknown scheduler `wlcc` (use one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos (keepalived's lb_algo and ipvsadm's -s names))",
            "F:12:36: a DR real server's port must be the service's (80), not 8080: only NAT rewrites the port (remove `port:`, or use `forwarding: nat` to change the port)",
            "F:14:19: real server 10.0.0.12:80 is already in this service at line 13, column 19 (list each real server (address and port) once per service)",
            "F:15:19: real server 2001:db8::1 is IPv6 but the service is IPv4: the kernel mixes families only for tunnel forwarding (use a real server of the service's family, or `forwarding: tunnel`)",
            "F:16:38: weight 70000 out of range 0..65535 (use 0..65535; 0 sends no new connections)",
            "F:16:62: lower_threshold 5 is above upper_threshold 0: the kernel refuses it (ERANGE) (the lower threshold re-enables a server that hit the upper one: set upper_threshold above it)",
            "F:21:23: scheduler flag `sh-port` does not belong to scheduler `wrr` (scheduler `wrr` reads no flag: remove scheduler_flags)",
            "F:22:17: one_packet has no effect on a TCP or SCTP service: the kernel schedules each packet only for UDP (remove it, or use it on a `protocol: udp` service)",
            "F:23:26: persistence_netmask has no effect without persistence_timeout (add `persistence_timeout:` (e.g. 5m), or remove persistence_netmask)",
            "F:24:5: virtual server TCP 192.0.2.10:80 is already defined at line 17, column 5 (each service (protocol, address, port or fwmark) may appear once: merge their real servers)",
            "F:27:15: no instance named `wbe` (did you mean `web`?)",
            "F:29:11: a fwmark service has no port: the mark selects the packets (remove `port:`; match the ports in the rule that sets the mark)",
            "F:31:13: a gue tunnel needs `port:` (the real server's GUE UDP port) (add e.g. `port: 6080`)",
            "F:33:54: tunnel settings need `forwarding: tunnel` (remove `tunnel:`, or set `forwarding: tunnel`)",
            "F:33:76: checksum remcsum has no effect with type gre (ipip takes no checksum option; gre takes none or csum; gue takes all three)",
            "F:34:42: forwarding `DR` is not a forwarding method (write `dr`)",
            "F:38:11: port 0 (every port) is only allowed for a persistent service (add `persistence_timeout:`, or give the service's port)",
            "F:39:25: persistence_engine has no effect without persistence_timeout (add `persistence_timeout:`: the engine keys the persistence templates)",
            "F: 19 errors, configuration not valid",
        ]
    );
}

#[test]
fn every_ipvs_settings_error_at_once() {
    assert_eq!(
        errors_of("ipvs_errors.yaml"),
        [
            "F:16:19: real server 2001:db8::11 is IPv6 but the service is IPv4: the kernel refuses mixed families while the sync daemon runs (use a real server of the service's family, or remove ipvs.sync_daemon)",
            "F:18:19: timeout tcp 1.5s out of range 1s..2147483s in whole seconds (the kernel counts IPVS timeouts in seconds (defaults: tcp 15m, tcp_fin 2m, udp 5m))",
            "F:18:30: timeout udp 0s out of range 1s..2147483s in whole seconds (the kernel counts IPVS timeouts in seconds (defaults: tcp 15m, tcp_fin 2m, udp 5m))",
            "F:19:16: sync_daemon needs `instance:` when the file has several instances (name the instance whose state decides sync master (its Master) or backup)",
            "F:19:41: sync_daemon group `10.0.0.1` is not a multicast address (leave it out for the kernel's 224.0.0.81, or write e.g. 239.0.0.81 or ff02::8:81)",
            "F:19:56: sync_daemon ttl 0 out of range 1..255 (the default is 1)",
            "F:20:20: conn_reuse_mode 7 out of range 0..2 (0: no special handling, 1: the kernel's default, 2: also reschedule after FIN_WAIT (see docs/configuration.md))",
            "F: 7 errors, configuration not valid",
        ]
    );
}

#[test]
fn keys_without_effect_are_refused() {
    assert_eq!(
        errors_of("external_accept.yaml"),
        [
            "F:6:13: `accept` has no effect: a node that holds a VIP always accepts packets addressed to it (the address is on its interface, so the kernel delivers them), and that cannot be switched off here (RFC 9568 Accept_Mode false is not implemented) (remove the key; to keep a VIP unreachable except through IPVS, filter it with nftables)",
            "F:8:23: track_interface has no effect with `role: external`: no VRRP election runs, so nothing lowers the priority or enters FAULT (remove it: an external-role instance is moved by `director claim` / `release` only; use `role: vrrp` for an instance that follows its checks)",
            "F:10:9: track_check has no effect with `role: external`: no VRRP election runs, so nothing lowers the priority or enters FAULT (remove it: an external-role instance is moved by `director claim` / `release` only; use `role: vrrp` for an instance that follows its checks)",
            "F: 3 errors, configuration not valid",
        ]
    );
}

/// The DR, NAT and tunnel director pairs of deploy/examples pass `director check`.
#[test]
fn lvs_pair_examples_are_valid() {
    for name in ["lvs-dr-pair.yaml", "lvs-nat-pair.yaml", "lvs-tun-pair.yaml"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/examples")
            .join(name);
        let (code, out, err, _) = check(&p);
        assert_eq!(code, Some(0), "{name}: {err}");
        assert!(out.contains(": OK ("), "{name}: {out}");
    }
}

#[test]
fn structural_errors_are_located() {
    let cases = [
        ("empty.yaml", "F: the file is empty (a configuration needs an `instances:` list; see docs/configuration.md)"),
        ("comment_only.yaml", "F: the file is empty (a configuration needs an `instances:` list; see docs/configuration.md)"),
        ("empty_list.yaml", "F:1:12: the instance list is empty (add at least one VRRP instance)"),
        ("malformed.yaml", "F:3:16: expected string scalar"),
        ("wrong_type.yaml", "F:4:24: expected a whole number here (write a number in range, e.g. 51)"),
        ("huge_number.yaml", "F:4:24: expected a whole number here (write a number in range, e.g. 51)"),
        ("duplicate_key.yaml", "F:5:5: duplicate key `virtual_router_id`, first at line 4, column 5 (each key may appear once in a mapping: remove one)"),
        ("missing_field.yaml", "F:4:5: missing required key `interface` (add `interface:` to this mapping)"),
        ("bad_role.yaml", "F:5:11: unknown value `leader` (expected one of: vrrp, external)"),
        ("virtual_servers.yaml", "F:7:5: missing required key `instance` (add `instance:` to this mapping)"),
    ];
    for (file, want) in cases {
        let got = errors_of(file);
        assert_eq!(got.first().map(String::as_str), Some(want), "{file}");
        assert_eq!(got.len(), 2, "{file}: {got:?}");
    }
}

#[test]
fn hostile_files_fail_fast_and_name_the_file() {
    let deep = format!("instances: {}{}\n", "[".repeat(500), "]".repeat(500));
    // Under an unknown key (read as "anything") so the parser must expand the aliases.
    let mut bomb = String::from("zz:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let p = if i == 0 {
            "a".to_string()
        } else {
            format!("l{}", i - 1)
        };
        let refs = vec![format!("*{p}"); 10].join(", ");
        bomb.push_str(&format!("  l{i}: &l{i} [{refs}]\n"));
    }
    let mut block_deep = String::from("instances:\n");
    for d in 0..200 {
        block_deep.push_str(&format!("{}- \n", "  ".repeat(d + 1)));
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "utf8.yaml",
            b"instances:\n  - name: w\xffb\n".to_vec(),
            ":2:12: invalid UTF-8 (save the file as UTF-8)",
        ),
        (
            "deep.yaml",
            deep.into_bytes(),
            ":1:36: recursion limit exceeded",
        ),
        ("block_deep.yaml", block_deep.into_bytes(), ":"),
        (
            "bomb.yaml",
            bomb.into_bytes(),
            "too large or too deeply nested",
        ),
        ("binary.yaml", vec![0u8; 4096], ":"),
        ("scalar.yaml", b"just a string\n".to_vec(), ":1:1:"),
        (
            "big.yaml",
            vec![b'#'; 33 * 1024 * 1024],
            ": the file is 34603008 bytes, more than the limit of 33554432",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = temp_file(name, &bytes);
        let (code, out, err, took) = check(&path);
        assert_eq!(code, Some(64), "{name}: {err}");
        assert_eq!(out, "", "{name}");
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&path.display().to_string()),
            "{name}: {err}"
        );
        assert!(err.lines().any(|l| l.contains(want)), "{name}: {err}");
        assert!(took < Duration::from_secs(5), "{name} took {took:?}");
    }
}

#[test]
fn missing_file_and_directory_are_named() {
    let (code, _, err, _) = check(Path::new("/nonexistent/director.yaml"));
    assert_eq!(code, Some(64));
    assert!(
        err.starts_with(
            "/nonexistent/director.yaml: cannot read the file: No such file or directory"
        ),
        "{err}"
    );
    let dir = std::env::temp_dir();
    let (code, _, err, _) = check(&dir);
    assert_eq!(code, Some(64));
    assert!(
        err.contains("is a directory, not a configuration file"),
        "{err}"
    );
}

#[test]
fn deploy_examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("deploy/examples") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let (code, _, err, _) = check(&p);
            assert_eq!(code, Some(0), "{}: {err}", p.display());
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} examples");
}

#[test]
fn run_refuses_an_invalid_file_before_touching_anything() {
    let out = Command::new(env!("CARGO_BIN_EXE_director"))
        .args(["run", "-c"])
        .arg(fixture("many_errors.yaml"))
        .output()
        .expect("run director");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("many_errors.yaml:4:24: VRID 300 out of range 1..255"),
        "{err}"
    );
    assert!(
        err.contains("configuration not valid, not starting"),
        "{err}"
    );
}

#[test]
fn status_without_a_daemon_exits_69_and_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_director"))
        .args(["status", "--socket", "/nonexistent/director.sock"])
        .output()
        .expect("run director");
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the daemon at /nonexistent/director.sock"),
        "{err}"
    );
}

#[test]
fn conntrackd_notify_script_switches_conntrackd() {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/conntrackd-notify.sh");
    let log = temp_file("conntrackd.log", b"");
    let fake = temp_file(
        "fake-conntrackd",
        format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()).as_bytes(),
    );
    Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .expect("chmod");
    let run = |state: &str| {
        let _ = std::fs::write(&log, "");
        let st = Command::new("sh")
            .arg(&script)
            .args(["INSTANCE", "gw-inside", state])
            .env("CONNTRACKD", &fake)
            .env("CONNTRACKD_CONFIG", "/etc/ct.conf")
            .status()
            .expect("run script");
        (st.code(), std::fs::read_to_string(&log).unwrap_or_default())
    };
    assert_eq!(
        run("MASTER"),
        (
            Some(0),
            "-C /etc/ct.conf -c\n-C /etc/ct.conf -f\n-C /etc/ct.conf -R\n-C /etc/ct.conf -B\n"
                .into()
        )
    );
    assert_eq!(
        run("BACKUP"),
        (Some(0), "-C /etc/ct.conf -t\n-C /etc/ct.conf -n\n".into())
    );
    assert_eq!(run("FAULT"), (Some(0), "-C /etc/ct.conf -t\n".into()));
    assert_eq!(run("bogus").0, Some(2));
}
