//! `director ipvs restore` as an operator runs it, on any host (no IPVS, no root): the documented
//! exit codes of input that does not parse (2, nothing applied, every bad line named) and
//! `--dry-run` (the operations with their lines, exit 0, no connection to the kernel: on a host
//! without IPVS a connection attempt would fail). What the kernel refuses (exit 1) is pinned in
//! `kernel_ipvs_cli.rs`, inside the lab.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn restore(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_director"))
        .args(["ipvs", "restore"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run director");
    if let Some(mut stdin) = child.stdin.take() {
        // A process that exits early closes its stdin: a failed write is not the test's concern.
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().expect("wait for director")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const GOOD: &[u8] = b"-A -t 10.1.0.1:80 -s rr\n# a comment\n\n-a -t 10.1.0.1:80 -r 10.2.0.1:80 -m -w 2\n-D -t 10.1.0.9:80\n";

#[test]
fn dry_run_prints_each_operation_with_its_line_and_exits_0() {
    let out = restore(&["--dry-run"], GOOD);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "line 1: add service TCP 10.1.0.1:80\n\
         line 4: add real server 10.2.0.1:80 to TCP 10.1.0.1:80\n\
         line 5: delete service TCP 10.1.0.9:80\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn input_that_does_not_parse_exits_2_naming_every_bad_line() {
    let input =
        b"-A -t 10.1.0.1:80 -s rr\n-a -t 10.1.0.1:80 -r 10.2.0.2 -w 70000\n-A -t 10.1.0.3 -s rr\n";
    for args in [&[][..], &["--dry-run"][..]] {
        let out = restore(args, input);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "", "{args:?}");
        let err = text(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{args:?}: {err}");
        assert!(
            lines[0].starts_with("director ipvs restore: stdin: line 2: "),
            "{err}"
        );
        assert!(
            lines[1].starts_with("director ipvs restore: stdin: line 3: "),
            "{err}"
        );
        assert_eq!(
            lines[2],
            "director ipvs restore: 2 bad lines: nothing applied"
        );
    }
}

#[test]
fn a_line_that_is_not_text_exits_2_with_its_number() {
    // The second line is binary; the first would apply, and must not.
    let input =
        b"-A -t 10.1.0.1:80 -s rr\n\x7fELF\x02\x01\x01\x00\xff\xfe\n-A -t 10.1.0.2:80 -s rr\n";
    for args in [&[][..], &["--dry-run"][..]] {
        let out = restore(args, input);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "", "{args:?}");
        assert_eq!(
            text(&out.stderr),
            "director ipvs restore: stdin: line 2: not text: byte 0xff at column 9 is not UTF-8 (the format is ASCII)\n\
             director ipvs restore: 1 bad line: nothing applied\n",
            "{args:?}"
        );
    }
}

#[test]
fn bad_lines_and_lines_that_are_not_text_are_reported_together_in_order() {
    let out = restore(&["--dry-run"], b"\xc3\n-A -t 10.1.0.1:0 -s rr\n\x80\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let numbers: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("director ipvs restore: stdin: "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(numbers, ["line 1", "line 2", "line 3"], "{err}");
    assert!(err.ends_with("3 bad lines: nothing applied\n"), "{err}");
}
