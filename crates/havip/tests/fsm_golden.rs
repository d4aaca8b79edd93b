//! Golden transcripts of the state machine, in the shape of holo-vrrp's conformance tests: each
//! `tests/fsm_golden/NN-name.in` is a script of events at given times (its first lines say what
//! it shows), and `NN-name.out` is the reviewed transcript: every action, transition, state,
//! deadline and known Master after each event. Run with `HAVIP_UPDATE_GOLDEN=1` to rewrite the
//! `.out` files after an intended change, then review the diff.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use havip::fsm::{Action, Config, Event, Instance};
use havip::packet::{Advert, Auth, Version};
use havip::time::{Centisecs, Timestamp};

fn kv<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// "1234.5678" milliseconds -> a timestamp (exact to the nanosecond).
fn parse_ms(s: &str) -> Timestamp {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut frac = frac.to_string();
    assert!(frac.len() <= 6, "at most ns precision: {s}");
    while frac.len() < 6 {
        frac.push('0');
    }
    let ms: u64 = int.parse().expect("ms");
    let ns: u64 = frac.parse().expect("fraction");
    Timestamp::from_duration(Duration::from_nanos(ms * 1_000_000 + ns))
}

fn fmt_ms(t: Timestamp) -> String {
    let ns = t.since_origin().as_nanos();
    let (ms, frac) = (ns / 1_000_000, ns % 1_000_000);
    if frac == 0 {
        format!("{ms}ms")
    } else {
        let f = format!("{frac:06}");
        format!("{ms}.{}ms", f.trim_end_matches('0'))
    }
}

fn parse_config(words: &[&str]) -> Config {
    let version = match kv(words, "version") {
        Some("2") => Version::V2,
        _ => Version::V3,
    };
    Config {
        vrid: 7,
        priority: kv(words, "priority").map_or(100, |p| p.parse().expect("priority")),
        advert_interval: Centisecs(
            kv(words, "interval_cs").map_or(100, |p| p.parse().expect("interval")),
        ),
        preempt: kv(words, "preempt") != Some("false"),
        preempt_delay: Duration::from_millis(
            kv(words, "preempt_delay_ms").map_or(0, |p| p.parse().expect("delay")),
        ),
        accept_mode: false,
        version,
        primary_address: kv(words, "addr")
            .unwrap_or("10.0.0.5")
            .parse()
            .expect("addr"),
    }
}

fn parse_event(words: &[&str], version: Version) -> Event {
    match words.first().copied() {
        Some("startup") => Event::Startup,
        Some("shutdown") => Event::Shutdown,
        Some("timer") => Event::TimerFired,
        Some("link-down") => Event::InterfaceDown,
        Some("link-up") => Event::InterfaceUp,
        Some("track-fault") => Event::TrackFault,
        Some("track-ok") => Event::TrackOk,
        Some("priority") => Event::PriorityChanged(words[1].parse().expect("priority")),
        Some("advert") => Event::AdvertReceived {
            from: kv(words, "from")
                .expect("from")
                .parse::<IpAddr>()
                .expect("from"),
            advert: Advert {
                version,
                vrid: 7,
                priority: kv(words, "priority")
                    .expect("priority")
                    .parse()
                    .expect("priority"),
                max_advert_int: Centisecs(
                    kv(words, "interval_cs").map_or(100, |p| p.parse().expect("interval")),
                ),
                addresses: vec!["10.0.0.100".parse().expect("vip")],
                auth: Auth::None,
            },
        },
        other => panic!("unknown event {other:?}"),
    }
}

fn render_actions(out: &mut String, actions: Vec<Action>) {
    for a in actions {
        let line = match a {
            Action::SendAdvert { priority } => format!("send advert priority {priority}"),
            Action::AddVips => "add vips".into(),
            Action::RemoveVips => "remove vips".into(),
            Action::SendGratuitous => "send gratuitous arp/na".into(),
            Action::Notify(t) => format!("notify {} -> {}: {}", t.from, t.to, t.reason),
        };
        let _ = writeln!(out, "  > {line}");
    }
}

fn render_state(out: &mut String, i: &Instance) {
    let deadline = i.next_deadline().map_or("none".into(), fmt_ms);
    let master = i
        .master_address()
        .map_or("unknown".into(), |a| a.to_string());
    let _ = writeln!(
        out,
        "  = {} priority {} deadline {deadline} master {master}",
        i.state(),
        i.priority()
    );
}

/// Runs one script and returns its transcript.
fn transcript(script: &str) -> String {
    let mut out = String::new();
    let mut inst: Option<Instance> = None;
    for line in script.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            None => {}
            Some(w) if w.starts_with('#') => {
                let _ = writeln!(out, "{line}");
            }
            Some("config") => {
                let _ = writeln!(out, "{line}");
                inst = Some(Instance::new(parse_config(&words[1..])));
            }
            Some("at") => {
                let i = inst.as_mut().expect("config first");
                let now = parse_ms(words[1]);
                let e = parse_event(&words[2..], i.config().version);
                let _ = writeln!(out, "@{} {}", fmt_ms(now), words[2..].join(" "));
                let actions = i.handle(e, now);
                render_actions(&mut out, actions);
                render_state(&mut out, i);
            }
            Some("run-until") => {
                // Fire every deadline up to the given time, one transcript entry each.
                let i = inst.as_mut().expect("config first");
                let end = parse_ms(words[1]);
                while let Some(d) = i.next_deadline().filter(|d| *d <= end) {
                    let _ = writeln!(out, "@{} timer", fmt_ms(d));
                    let actions = i.poll_timers(d);
                    render_actions(&mut out, actions);
                    render_state(&mut out, i);
                }
            }
            Some(other) => panic!("unknown script line {other}"),
        }
    }
    out
}

#[test]
fn golden_transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fsm_golden");
    let update = std::env::var_os("HAVIP_UPDATE_GOLDEN").is_some();
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "in"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 8, "golden scripts missing");
    let mut failures = Vec::new();
    for script in scripts {
        let got = transcript(&std::fs::read_to_string(&script).expect("read script"));
        let golden = script.with_extension("out");
        if update {
            std::fs::write(&golden, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{}:\n--- want\n{want}--- got\n{got}",
                golden.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
