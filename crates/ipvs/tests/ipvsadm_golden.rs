//! Golden tests of the ipvsadm text formats against files captured from the real ipvsadm 1.31
//! (Debian 12, kernel 6.1) in the lab: see `fixtures/ipvsadm/capture.sh` for the exact commands.
//!
//! The kernel is simulated by [`apply`] (a pure table that takes the parsed operations), so these
//! tests run anywhere; the kernel tests in `crates/director/tests/kernel_ipvs_cli.rs` check the
//! same against the real kernel.

use std::path::PathBuf;

use ipvs::ipvsadm::{self, Layout, ListOptions};
use ipvs::{Info, Op, ServiceEntry, Table};

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ipvsadm")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Applies operations the way the kernel would for a valid sequence (adds append, edits replace).
fn apply(table: &mut Table, ops: &[Op]) {
    for op in ops {
        match op {
            Op::AddService(s) => table.services.push(ServiceEntry {
                service: s.clone(),
                destinations: Vec::new(),
            }),
            Op::EditService(s) => {
                if let Some(e) = table.services.iter_mut().find(|e| e.service.key == s.key) {
                    e.service = s.clone();
                }
            }
            Op::DelService(k) => table.services.retain(|e| e.service.key != *k),
            Op::AddDest(k, d) => {
                if let Some(e) = table.services.iter_mut().find(|e| e.service.key == *k) {
                    e.destinations.push(d.clone());
                }
            }
            Op::EditDest(k, d) => {
                if let Some(e) = table.services.iter_mut().find(|e| e.service.key == *k) {
                    if let Some(x) = e.destinations.iter_mut().find(|x| x.key() == d.key()) {
                        *x = d.clone();
                    }
                }
            }
            Op::DelDest(k, dk) => {
                if let Some(e) = table.services.iter_mut().find(|e| e.service.key == *k) {
                    e.destinations.retain(|x| x.key() != *dk);
                }
            }
            Op::Flush => table.services.clear(),
            _ => {}
        }
    }
}

fn table_from(rules: &str) -> Table {
    let ops: Vec<Op> = ipvsadm::parse(rules).unwrap_or_else(|e| panic!("{e}")).ops;
    let mut t = Table::default();
    apply(&mut t, &ops);
    t
}

const INFO: Info = Info {
    version: 0x0001_0201,
    conn_tab_size: 4096,
};

#[test]
fn save_matches_ipvsadm_sn() {
    let t = table_from(&fixture("all.rules"));
    assert_eq!(ipvsadm::save(&t), fixture("all.Sn"));
}

#[test]
fn write_save_writes_the_same_bytes_in_chunks() {
    let mut rules = fixture("all.rules");
    for s in 0..2000 {
        let v = format!("10.9.{}.{}:80", s / 250, s % 250 + 1);
        rules.push_str(&format!("-A -t {v} -s wrr\n"));
        for r in 1..=5 {
            rules.push_str(&format!("-a -t {v} -r 10.8.{}.{r}:80 -g -w 1\n", s % 200));
        }
    }
    for t in [
        Table::default(),
        table_from(&fixture("all.rules")),
        table_from(&rules),
    ] {
        let mut written = Vec::new();
        ipvsadm::write_save(&t, &mut written).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), ipvsadm::save(&t));
    }
    // The big table really spans several chunks.
    assert!(ipvsadm::save(&table_from(&rules)).len() > 4 * 65536);
}

#[test]
fn save_of_parsed_save_round_trips() {
    // (order.Sn is left out on purpose: with libipvs' wrapping comparators the printed order
    // depends on the kernel's order, which `order_follows_glibc_qsort...` reproduces.)
    let sn = fixture("all.Sn");
    assert_eq!(ipvsadm::save(&table_from(&sn)), sn);
}

#[test]
fn empty_table() {
    assert_eq!(ipvsadm::save(&Table::default()), fixture("empty.Sn"));
    assert_eq!(
        ipvsadm::list(&INFO, &Table::default(), ListOptions::default()),
        fixture("empty.Ln")
    );
}

#[test]
fn list_layouts_match_ipvsadm() {
    let t = table_from(&fixture("all.rules"));
    for (file, layout, exact) in [
        ("all.Ln", Layout::Default, false),
        ("all.Ln-stats", Layout::Stats, false),
        ("all.Ln-rate", Layout::Rate, false),
        ("all.Ln-thresholds", Layout::Thresholds, false),
        ("all.Ln-persistent-conn", Layout::PersistentConn, false),
        ("all.Ln-tun-info", Layout::TunInfo, false),
        ("all.Ln-stats-exact", Layout::Stats, true),
    ] {
        let got = ipvsadm::list(&INFO, &t, ListOptions { layout, exact });
        let want = fixture(file);
        assert_eq!(got, want, "layout of {file}");
    }
}

/// Turns one line of `ipvsadm -Ln --nosort` back into a restore line (test-side only).
fn nosort_line_to_rule(line: &str, svc: &mut String) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["TCP", a, s, ..] => {
            *svc = format!("-t {a}");
            Some(format!("-A {svc} -s {s}"))
        }
        ["UDP", a, s, ..] => {
            *svc = format!("-u {a}");
            Some(format!("-A {svc} -s {s}"))
        }
        ["FWM", m, s, ..] => {
            let mark = m.parse::<i64>().ok()? as i32 as u32;
            *svc = format!("-f {mark}");
            Some(format!("-A {svc} -s {s}"))
        }
        ["->", a, "Masq", w, ..] => Some(format!("-a {svc} -r {a} -m -w {w}")),
        _ => None,
    }
}

#[test]
fn order_follows_glibc_qsort_with_wrapping_comparators() {
    // Services and real servers in the kernel's order, as `ipvsadm -Ln --nosort` showed them.
    let mut svc = String::new();
    let rules: Vec<String> = fixture("order.Ln-nosort")
        .lines()
        .filter_map(|l| nosort_line_to_rule(l, &mut svc))
        .collect();
    assert_eq!(
        rules.len(),
        21,
        "every service and real server of order.rules"
    );
    let t = table_from(&rules.join("\n"));
    assert_eq!(ipvsadm::save(&t), fixture("order.Sn"));
}
