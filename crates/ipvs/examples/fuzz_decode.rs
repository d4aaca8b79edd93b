//! A fuzzer for the reply decoders that runs on the stable toolchain (no nightly, no
//! cargo-fuzz): it mutates the real kernel replies in `tests/fixtures/mod.rs` with a seeded PRNG
//! (bit flips, interesting bytes, corrupted length fields, truncation, extension, splices of two
//! fixtures, duplicated slices) and feeds each input to every decoder.
//!
//! Run it in a debug build so that arithmetic overflow panics:
//! `cargo run -p ipvs --example fuzz_decode -- 10000000 1` (inputs, seed). A panic aborts the
//! run with a non-zero exit: that is a failure, and the printed seed and input index reproduce
//! it.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use std::time::Instant;

use ipvs::codec::daemon::decode_daemon_msg;
use ipvs::codec::dest::decode_dest_msg;
use ipvs::codec::info::{decode_family_id, decode_info, decode_timeouts};
use ipvs::codec::msg::MessageIter;
use ipvs::codec::service::decode_service_msg;
use ipvs::AddressFamily;

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u8; 8] = [0x00, 0x01, 0x03, 0x04, 0x7f, 0x80, 0xfe, 0xff];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    let all = fixtures::ALL;
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(8) {
            0 => {
                if len > 0 {
                    let i = rng.below(len);
                    input[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                if len > 0 {
                    let i = rng.below(len);
                    input[i] = INTERESTING[rng.below(INTERESTING.len())];
                }
            }
            2 => {
                // Corrupt a length field (attribute or message headers sit on 4-byte boundaries).
                if len >= 2 {
                    let i = rng.below(len / 4) * 4;
                    let v = match rng.below(4) {
                        0 => 0u16,
                        1 => rng.below(8) as u16,
                        2 => u16::MAX,
                        _ => rng.next() as u16,
                    };
                    if let Some(slot) = input.get_mut(i..i + 2) {
                        slot.copy_from_slice(&v.to_ne_bytes());
                    }
                }
            }
            3 => input.truncate(rng.below(len + 1)),
            4 => {
                for _ in 0..rng.below(64) {
                    input.push(rng.next() as u8);
                }
            }
            5 => {
                // Splice: our prefix + another fixture's suffix.
                let (_, other) = all[rng.below(all.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            6 => {
                // Duplicate a slice in place.
                if len > 0 {
                    let a = rng.below(len);
                    let b = (a + rng.below(64)).min(len);
                    let piece = input[a..b].to_vec();
                    let at = rng.below(input.len() + 1);
                    input.splice(at..at, piece);
                }
            }
            _ => {
                // Set the nested flag bits on a random 4-byte boundary's type field.
                if len >= 4 {
                    let i = rng.below(len / 4) * 4 + 3;
                    input[i] ^= 0xc0;
                }
            }
        }
    }
}

/// Feeds one input to every decoder; returns how many decodes succeeded.
fn feed(input: &[u8]) -> u64 {
    let mut ok = 0u64;
    let mut count = |r: bool| ok += u64::from(r);
    for m in MessageIter::new(input).flatten() {
        count(m.ack().is_ok());
        if let Ok(g) = m.genl() {
            count(decode_service_msg(g.attrs).is_ok());
            count(decode_dest_msg(g.attrs, AddressFamily::Inet).is_ok());
            count(decode_dest_msg(g.attrs, AddressFamily::Inet6).is_ok());
            count(decode_daemon_msg(g.attrs).is_ok());
            count(decode_info(g.attrs).is_ok());
            count(decode_timeouts(g.attrs).is_ok());
            count(decode_family_id(g.attrs).is_ok());
        }
    }
    // The decoders also see the raw bytes as an attribute area.
    count(decode_service_msg(input).is_ok());
    count(decode_dest_msg(input, AddressFamily::Inet).is_ok());
    count(decode_daemon_msg(input).is_ok());
    ok
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    // Printed first, so that a run that dies still says how to reproduce it.
    eprintln!(
        "fuzz_decode: seed {seed}, {n} inputs (reproduce: cargo run -p ipvs --example fuzz_decode -- {n} {seed})"
    );
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let all = fixtures::ALL;
    let start = Instant::now();
    let mut ok = 0u64;
    let mut input = Vec::with_capacity(4096);
    for i in 0..n {
        let (_, base) = all[rng.below(all.len())];
        input.clear();
        input.extend_from_slice(base);
        mutate(&mut rng, &mut input);
        // A panic (the default hook has printed its message) is reported with what reproduces it.
        match std::panic::catch_unwind(|| feed(&input)) {
            Ok(n) => ok += n,
            Err(_) => {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                eprintln!("fuzz_decode: PANIC (seed {seed}, input {i}): input {hex}");
                std::process::exit(1);
            }
        }
        if i > 0 && i % 1_000_000 == 0 {
            eprintln!("{i} inputs, {:.1} s", start.elapsed().as_secs_f64());
        }
    }
    println!(
        "fuzz_decode: {n} inputs (seed {seed}, overflow checks {}), {ok} successful decodes, no panic, {:.1} s",
        if cfg!(debug_assertions) { "on" } else { "off" },
        start.elapsed().as_secs_f64()
    );
}
