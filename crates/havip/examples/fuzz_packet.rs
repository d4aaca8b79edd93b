//! A seeded mutation fuzzer for `havip::packet::decode` on the stable toolchain (no nightly, no
//! cargo-fuzz). It mutates the keepalived fixtures of `tests/fixtures/`, and checks on every
//! input that `decode` never panics and that whatever it accepts re-encodes to an equivalent
//! packet (byte-identical when the input had no ignored bits set).
//!
//! ```sh
//! cargo run -p havip --example fuzz_packet -- --iterations 10000000 --seed 1
//! ```
//! Prints the outcome count per drop reason and the time taken; exits non-zero on a violated
//! property (a panic shows the seed, the iteration and the input in hex).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use havip::packet::{checksum, decode, encode, Advert, RxMeta, Version};

const FIXTURES: [&str; 8] = [
    include_str!("../tests/fixtures/v3-ipv4.hex"),
    include_str!("../tests/fixtures/v3-ipv4-prio0.hex"),
    include_str!("../tests/fixtures/v3-ipv6.hex"),
    include_str!("../tests/fixtures/v3-ipv6-prio0.hex"),
    include_str!("../tests/fixtures/v2-noauth.hex"),
    include_str!("../tests/fixtures/v2-noauth-prio0.hex"),
    include_str!("../tests/fixtures/v2-pass.hex"),
    include_str!("../tests/fixtures/v2-pass-prio0.hex"),
];

/// xorshift64*: small, fast and reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 32) as u8
    }
}

fn parse(text: &str) -> (RxMeta, Vec<u8>) {
    let mut src: Option<IpAddr> = None;
    let mut dst: Option<IpAddr> = None;
    let mut ttl = 255;
    let mut bytes = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((k, v)) = line.split_once(' ') else {
            continue;
        };
        match k {
            "src" => src = v.parse().ok(),
            "dst" => dst = v.parse().ok(),
            "ttl" => ttl = v.parse().unwrap_or(255),
            "vrrp" => {
                bytes = (0..v.len() / 2)
                    .filter_map(|i| v.get(2 * i..2 * i + 2))
                    .filter_map(|h| u8::from_str_radix(h, 16).ok())
                    .collect()
            }
            _ => {}
        }
    }
    let (Some(src), Some(dst)) = (src, dst) else {
        panic!("fixture without src/dst");
    };
    (
        RxMeta {
            src,
            dst,
            ttl_or_hop_limit: ttl,
        },
        bytes,
    )
}

const INTERESTING: [u8; 9] = [0x00, 0x01, 0x02, 0x03, 0x0f, 0x10, 0x7f, 0x80, 0xff];

fn mutate(rng: &mut Rng, meta: &mut RxMeta, b: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        match rng.below(10) {
            0 | 1 => {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            2 | 3 => {
                if !b.is_empty() {
                    // Bias towards the 8-byte header, where the fields are.
                    let i = if rng.below(2) == 0 {
                        rng.below(b.len().min(8))
                    } else {
                        rng.below(b.len())
                    };
                    b[i] = if rng.below(2) == 0 {
                        INTERESTING[rng.below(INTERESTING.len())]
                    } else {
                        rng.byte()
                    };
                }
            }
            4 => {
                let n = rng.below(b.len() + 1);
                b.truncate(n);
            }
            5 => {
                let i = rng.below(b.len() + 1);
                b.insert(i, rng.byte());
            }
            6 => {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b.remove(i);
                }
            }
            7 => {
                for _ in 0..rng.below(40) {
                    b.push(rng.byte());
                }
            }
            8 => match rng.below(4) {
                0 => meta.ttl_or_hop_limit = rng.byte(),
                1 => std::mem::swap(&mut meta.src, &mut meta.dst),
                2 => meta.src = other_family(meta.src),
                _ => meta.dst = other_family(meta.dst),
            },
            _ => {
                // Address count consistent with some length (reaches the deeper checks).
                if b.len() > 3 {
                    b[3] = rng.byte() % 8;
                }
            }
        }
    }
    // Half the inputs get a valid checksum, so the checks after it are exercised too.
    if rng.below(2) == 0 && b.len() >= 8 {
        b[6] = 0;
        b[7] = 0;
        let c = if b[0] >> 4 == 3 {
            checksum::v3(meta.src, meta.dst, b)
        } else {
            checksum::v2(b)
        };
        b[6..8].copy_from_slice(&c.to_be_bytes());
    }
}

fn other_family(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        IpAddr::V6(_) => IpAddr::V4([192, 168, 77, 9].into()),
    }
}

/// The properties of an accepted packet.
fn check_accepted(meta: &RxMeta, input: &[u8], advert: &Advert) -> Result<(), String> {
    let out = encode(advert, meta.src, meta.dst).map_err(|e| format!("re-encode failed: {e}"))?;
    let again = decode(meta, &out).map_err(|e| format!("re-decode dropped: {e}"))?;
    if &again != advert {
        return Err(format!("re-decode differs: {again:?} vs {advert:?}"));
    }
    let ignored_bits_clear = match advert.version {
        Version::V3 => input.get(4).is_some_and(|b| b & 0xf0 == 0),
        Version::V2 => input.get(4) == Some(&1) || input.iter().rev().take(8).all(|b| *b == 0),
    };
    // One's complement has two zeros: a received checksum of 0xffff verifies exactly where we
    // compute 0x0000 (as keepalived does). Everything else must be byte-identical.
    let same = out == input
        || (out.get(6..8) == Some(&[0, 0]) && input.get(6..8) == Some(&[0xff, 0xff]) && {
            let mut o = out.clone();
            o[6] = 0xff;
            o[7] = 0xff;
            o == input
        });
    if ignored_bits_clear && !same {
        return Err("accepted packet does not re-encode byte-identical".into());
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let mut iterations: u64 = 1_000_000;
    let mut seed: u64 = 1;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.replace('_', "").parse().ok());
        match (a.as_str(), v) {
            ("--iterations", Some(v)) => iterations = v,
            ("--seed", Some(v)) => seed = v,
            _ => {
                eprintln!("usage: fuzz_packet [--iterations N] [--seed S]");
                std::process::exit(2);
            }
        }
    }
    // Printed first, so that a run that dies still says how to reproduce it.
    eprintln!(
        "fuzz_packet: seed {seed}, {iterations} inputs (reproduce: cargo run -p havip --example fuzz_packet -- --iterations {iterations} --seed {seed})"
    );
    let corpus: Vec<(RxMeta, Vec<u8>)> = FIXTURES.iter().map(|t| parse(t)).collect();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let start = Instant::now();
    for i in 0..iterations {
        let (meta0, bytes0) = &corpus[rng.below(corpus.len())];
        let mut meta = *meta0;
        let mut b = bytes0.clone();
        mutate(&mut rng, &mut meta, &mut b);
        // A panic (the default hook has printed its message) is reported with what reproduces it.
        let Ok(decoded) = std::panic::catch_unwind(|| decode(&meta, &b)) else {
            eprintln!(
                "PANIC (seed {seed}, iteration {i})\nmeta {meta:?}\ninput {}",
                hex(&b)
            );
            std::process::exit(1);
        };
        let label = match decoded {
            Ok(advert) => {
                if let Err(e) = check_accepted(&meta, &b, &advert) {
                    eprintln!(
                        "PROPERTY VIOLATED (seed {seed}, iteration {i}): {e}\nmeta {meta:?}\ninput {}",
                        hex(&b)
                    );
                    std::process::exit(1);
                }
                "accepted"
            }
            Err(reason) => reason.label(),
        };
        *counts.entry(label).or_default() += 1;
    }
    let elapsed = start.elapsed();
    println!("fuzz_packet: seed {seed}, {iterations} inputs in {elapsed:.2?}");
    for (label, n) in &counts {
        println!("  {label:<22} {n}");
    }
}
