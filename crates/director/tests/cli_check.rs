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
        ("virtual_servers.yaml", "F:7:3: `virtual_servers` is not supported yet: this release runs VIP instances only (remove the section; virtual services come in a later release)"),
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
    // Inside `virtual_servers:` (read as "anything") so the parser must expand the aliases.
    let mut bomb = String::from("virtual_servers:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n");
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
            vec![b'#'; 2 * 1024 * 1024],
            ": the file is 2097152 bytes, more than the limit of 1048576",
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
        assert!(first.contains(want), "{name}: {first}");
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
