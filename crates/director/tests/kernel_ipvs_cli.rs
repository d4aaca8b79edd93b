//! `director ipvs save|restore|list` against the real kernel, with ipvsadm as the oracle.
//!
//! For each restore text: in a fresh namespace A `ipvsadm -R < f; ipvsadm -Sn`; in a fresh
//! namespace B `director ipvs restore < f; director ipvs save` and `ipvsadm -Sn`: all three equal.
//! Run inside the lab: `tests/lab/run '<test binary> --ignored --test-threads=2'`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use testns::Netns;

const DIRECTOR: &str = env!("CARGO_BIN_EXE_director");

/// Runs `prog args` inside `ns` with `input` on stdin.
fn run_in(ns: &Netns, prog: &str, args: &[&str], input: &str) -> Output {
    run_in_bytes(ns, prog, args, input.as_bytes())
}

/// [`run_in`] with any bytes on stdin.
fn run_in_bytes(ns: &Netns, prog: &str, args: &[&str], input: &[u8]) -> Output {
    let mut cmd: Command = ns.command(prog);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {prog}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        // A process that exits early closes its stdin: a failed write is not the test's concern.
        let _ = stdin.write_all(input);
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait {prog}: {e}"))
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    text(&o)
}

fn ipvsadm(ns: &Netns, args: &[&str], input: &str) -> String {
    ok(
        run_in(ns, "ipvsadm", args, input),
        &format!("ipvsadm {args:?}"),
    )
}

fn director(ns: &Netns, args: &[&str], input: &str) -> String {
    ok(
        run_in(ns, DIRECTOR, args, input),
        &format!("director {args:?}"),
    )
}

/// The oracle: ipvsadm and director program the same table from `rules`, and print it alike.
fn oracle(rules: &str) {
    let a = Netns::new("ka").expect("netns A");
    let b = Netns::new("kb").expect("netns B");
    ipvsadm(&a, &["-R"], rules);
    let want = ipvsadm(&a, &["-Sn"], "");
    assert!(
        !want.is_empty(),
        "ipvsadm programmed nothing from:\n{rules}"
    );
    director(&b, &["ipvs", "restore"], rules);
    let by_ipvsadm = ipvsadm(&b, &["-Sn"], "");
    assert_eq!(by_ipvsadm, want, "ipvsadm -Sn after director ipvs restore");
    let by_director = director(&b, &["ipvs", "save"], "");
    assert_eq!(by_director, want, "director ipvs save");
    // The listings of the same table, layout by layout.
    for (ours, theirs) in [
        (vec![], vec!["-Ln"]),
        (vec!["--stats"], vec!["-Ln", "--stats"]),
        (vec!["--rate"], vec!["-Ln", "--rate"]),
        (vec!["--thresholds"], vec!["-Ln", "--thresholds"]),
        (vec!["--persistent-conn"], vec!["-Ln", "--persistent-conn"]),
        (vec!["--tun-info"], vec!["-Ln", "--tun-info"]),
        (
            vec!["--stats", "--exact"],
            vec!["-Ln", "--stats", "--exact"],
        ),
    ] {
        let mut args = vec!["ipvs", "list"];
        args.extend(ours.iter().copied());
        assert_eq!(
            director(&b, &args, ""),
            ipvsadm(&b, &theirs, ""),
            "director {args:?} vs ipvsadm {theirs:?}"
        );
    }
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn ipv4_every_forwarding_method_tunnel_type_and_threshold() {
    oracle(
        "-A -t 10.1.0.1:80 -s wrr
-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 1
-a -t 10.1.0.1:80 -r 10.2.0.2:8080 -m -w 5 -x 100 -y 10
-a -t 10.1.0.1:80 -r 10.2.0.3:80 -i -w 0
-a -t 10.1.0.1:80 -r 10.2.0.4:80 -i --tun-type gue --tun-port 8080 --tun-nocsum
-a -t 10.1.0.1:80 -r 10.2.0.5:80 -i --tun-type gue --tun-port 6080 --tun-csum
-a -t 10.1.0.1:80 -r 10.2.0.6:80 -i --tun-type gue --tun-port 6081 --tun-remcsum
-a -t 10.1.0.1:80 -r 10.2.0.7:80 -i --tun-type gre --tun-csum
-a -t 10.1.0.1:80 -r 10.2.0.8:80 -i --tun-type gre
-a -t 10.1.0.1:80 -r 10.2.0.9:80 -i --tun-type ipip -w 65535 -x 2147483647 -y 1
-a -t 10.1.0.1:80 -r [2001:db8::99]:80 -i --tun-type gue --tun-port 1
-A -u 10.1.0.1:53 -s rr
-a -u 10.1.0.1:53 -r 10.2.0.1:5353 -m -w 2
-A --sctp-service 10.1.0.5:9 -s lblcr
-a --sctp-service 10.1.0.5:9 -r 10.2.0.5:9 -m -w 4
",
    );
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn every_scheduler_and_flag() {
    let mut rules = String::new();
    for (i, s) in [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    ]
    .iter()
    .enumerate()
    {
        rules.push_str(&format!("-A -t 10.1.0.{}:80 -s {s}\n", i + 1));
        rules.push_str(&format!("-a -t 10.1.0.{}:80 -r 10.2.0.1 -m\n", i + 1));
    }
    rules.push_str(
        "-A -u 10.1.1.1:53 -s sh -b sh-fallback,sh-port
-A -u 10.1.1.2:53 -s sh -b sh-port
-A -u 10.1.1.3:53 -s sh -b flag-3
-A -u 10.1.1.4:53 -s mh -b mh-fallback,mh-port
-A -u 10.1.1.5:53 -s mh -b mh-fallback
-A -u 10.1.1.6:53 -s rr -o
-A -u 10.1.1.7:53 -s wlc -b flag-1,flag-2,flag-3
-A -u 10.1.1.8:5060 -s rr -p 60 --pe sip
",
    );
    oracle(&rules);
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn persistence_and_netmasks() {
    oracle(
        "-A -t 10.1.0.2:443 -s rr -p
-A -t 10.1.0.3:0 -s rr -p 30
-A -t 10.1.0.4:80 -s rr -p 2678400 -M 255.0.0.0
-A -t 10.1.0.5:80 -s rr -p 1 -M 0.0.0.0
-A -u 10.1.0.6:53 -s sh -b sh-fallback,sh-port -p 300 -M 255.255.255.0
-A -t [2001:db8::1]:80 -s lblc -p 100 -M 64
-A -t [2001:db8::2]:443 -s rr -p
",
    );
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn ipv6_and_fwmark() {
    oracle(
        "-A -t [2001:db8::1]:80 -s wlc
-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -m -w 3
-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -m -w 3
-a -t [2001:db8::1]:80 -r [2001:db8:0:0:1:0:0:1]:80 -g
-a -t [2001:db8::1]:80 -r 10.9.0.1 -i --tun-type gue --tun-port 5555
-A -u [2001:db8::2]:53 -s sh -b sh-fallback -o
-A -t [::ffff:10.1.2.3]:80 -s rr
-A -t [fe80::1:0:0:0]:8080 -s rr
-A -f 1 -s lc
-a -f 1 -r 10.2.0.1:0 -g
-a -f 1 -r 10.2.0.2:8080 -m
-A -f 2 -s rr -p 100 -M 255.255.0.0
-A -f 4294967295 -s rr
-A -f 3000000000 -s rr
-A -f 4660 -6 -s wlc
-a -f 4660 -6 -r 2001:db8::1 -m
-A -f 4661 -6 -s rr -p 20 -M 48
",
    );
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn edits_and_deletes_and_order() {
    oracle(
        "-A -t 192.168.0.1:80 -s rr
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 192.168.5.5 -m
-a -t 10.0.0.1:80 -r 10.9.9.9 -m
-a -t 10.0.0.1:80 -r 200.1.1.1 -m
-a -t 10.0.0.1:80 -r 1.1.1.1 -m
-a -t 10.0.0.1:80 -r 130.1.1.1 -m -w 3
-A -t 200.0.0.1:80 -s rr
-A -t 1.0.0.1:80 -s rr
-E -t 1.0.0.1:80 -s sh -p 20
-e -t 10.0.0.1:80 -r 130.1.1.1 -g -w 9 -x 5
-d -t 10.0.0.1:80 -r 1.1.1.1
-A -t 5.0.0.1:80 -s rr
-a -t 5.0.0.1:80 -r 5.5.5.5
-D -t 5.0.0.1:80
-A -u 250.0.0.1:80 -s rr
",
    );
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn save_output_restores_itself() {
    // What `ipvsadm -Sn` printed is valid input, including `-f -1` and sh's bare `-b `.
    let a = Netns::new("ka").expect("netns A");
    ipvsadm(
        &a,
        &["-R"],
        "-A -f 4294967295 -s rr\n-A -u 10.1.0.1:55 -s sh -b flag-3\n-A -t 10.1.0.1:80 -s rr\n",
    );
    let saved = ipvsadm(&a, &["-Sn"], "");
    assert!(saved.contains("-A -f -1 -s rr\n"), "{saved}");
    assert!(saved.contains("-b \n"), "{saved}");
    let b = Netns::new("kb").expect("netns B");
    director(&b, &["ipvs", "restore"], &saved);
    assert_eq!(director(&b, &["ipvs", "save"], ""), saved);
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn malformed_file_applies_nothing_and_names_the_lines() {
    let b = Netns::new("kb").expect("netns B");
    let rules = "-A -t 10.1.0.1:80 -s rr\n-a -t 10.1.0.1:80 -r 10.2.0.1 -m\n-a -t 10.1.0.1:80 -r 10.2.0.2 -w 70000\n-A -t 10.1.0.2:80 -s rr\n-A -t 10.1.0.3 -s rr\n";
    let out = run_in(&b, DIRECTOR, &["ipvs", "restore"], rules);
    let err = String::from_utf8_lossy(&out.stderr);
    // Exit 2: the input does not parse (docs/ipvs-cli.md).
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 3:") && err.contains("weight"), "{err}");
    assert!(err.contains("line 5:") && err.contains("port 0"), "{err}");
    assert_eq!(ipvsadm(&b, &["-Sn"], ""), "", "something was applied");
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn a_line_that_is_not_text_applies_nothing_and_names_the_line() {
    let b = Netns::new("kb").expect("netns B");
    let rules = b"-A -t 10.1.0.1:80 -s rr\n\x7fELF\x02\x01\x01\x00\xff\n-A -t 10.1.0.2:80 -s rr\n";
    let out = run_in_bytes(&b, DIRECTOR, &["ipvs", "restore"], rules);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("stdin: line 2: not text: byte 0xff"), "{err}");
    assert_eq!(ipvsadm(&b, &["-Sn"], ""), "", "something was applied");
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn dry_run_prints_the_operations_and_applies_nothing() {
    let b = Netns::new("kb").expect("netns B");
    let rules = "-A -t 10.1.0.1:80 -s rr\n-a -t 10.1.0.1:80 -r 10.2.0.1:80 -m\n";
    let out = run_in(&b, DIRECTOR, &["ipvs", "restore", "--dry-run"], rules);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text(&out),
        "line 1: add service TCP 10.1.0.1:80\nline 2: add real server 10.2.0.1:80 to TCP 10.1.0.1:80\n"
    );
    assert_eq!(ipvsadm(&b, &["-Sn"], ""), "", "--dry-run applied something");
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn kernel_rejections_are_reported_per_line() {
    let b = Netns::new("kb").expect("netns B");
    let rules = "-A -t 10.1.0.1:80 -s rr\n-A -t 10.1.0.1:80 -s rr\n-A -t 10.1.0.2:80 -s nosuchsched\n-a -t 10.1.0.9:80 -r 10.2.0.1\n-A -t 10.1.0.3:80 -s wrr\n";
    let out = run_in(&b, DIRECTOR, &["ipvs", "restore"], rules);
    let err = String::from_utf8_lossy(&out.stderr);
    // Exit 1: the kernel refused part of a batch that parsed (docs/ipvs-cli.md).
    assert_eq!(
        out.status.code(),
        Some(1),
        "kernel errors were not reported: {err}"
    );
    for line in ["line 2:", "line 3:", "line 4:"] {
        assert!(err.contains(line), "missing {line} in {err}");
    }
    assert!(
        !err.contains("line 1:") && !err.contains("line 5:"),
        "{err}"
    );
    // The good operations of the batch were applied.
    assert_eq!(
        ipvsadm(&b, &["-Sn"], ""),
        "-A -t 10.1.0.1:80 -s rr\n-A -t 10.1.0.3:80 -s wrr\n"
    );
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn a_larger_table_and_json() {
    let mut rules = String::new();
    for s in 0..300u32 {
        let v = format!("10.1.{}.{}:80", s / 250, s % 250 + 1);
        rules.push_str(&format!("-A -t {v} -s wrr\n"));
        for r in 1..=10 {
            rules.push_str(&format!("-a -t {v} -r 10.2.{}.{r}:80 -g -w 1\n", s % 200));
        }
    }
    oracle(&rules);
    let b = Netns::new("kb").expect("netns B");
    director(&b, &["ipvs", "restore"], &rules);
    let json = director(&b, &["ipvs", "list", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&json).expect("list --json is JSON");
    let services = v
        .get("services")
        .and_then(|s| s.as_array())
        .expect("services array");
    assert_eq!(services.len(), 300);
    let dests = services
        .first()
        .and_then(|s| s.get("destinations"))
        .and_then(|d| d.as_array())
        .map(Vec::len);
    assert_eq!(dests, Some(10));
}
