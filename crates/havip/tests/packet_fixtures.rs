//! Packets captured from keepalived 2.2.7 (see `tests/fixtures/README.md`): decoded exactly,
//! re-encoded byte-identical (checksum included), and one-byte corruptions dropped with the
//! exact [`DropReason`].

use std::net::IpAddr;

use havip::packet::{
    check_local, checksum, decode, encode, Advert, Auth, DropReason, LocalCheck, RxMeta, Version,
};
use havip::time::Centisecs;

/// One fixture file: IP source, destination, TTL and the VRRP message.
struct Fixture {
    meta: RxMeta,
    bytes: Vec<u8>,
}

fn parse(text: &str) -> Fixture {
    let mut src = None;
    let mut dst = None;
    let mut ttl = None;
    let mut bytes = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (k, v) = line.split_once(' ').expect("key value");
        match k {
            "src" => src = Some(v.parse::<IpAddr>().expect("src")),
            "dst" => dst = Some(v.parse::<IpAddr>().expect("dst")),
            "ttl" => ttl = Some(v.parse::<u8>().expect("ttl")),
            "vrrp" => {
                bytes = Some(
                    (0..v.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&v[i..i + 2], 16).expect("hex"))
                        .collect::<Vec<u8>>(),
                )
            }
            other => panic!("unknown key {other}"),
        }
    }
    Fixture {
        meta: RxMeta {
            src: src.expect("src"),
            dst: dst.expect("dst"),
            ttl_or_hop_limit: ttl.expect("ttl"),
        },
        bytes: bytes.expect("vrrp"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn v3_ipv4() -> Fixture {
    parse(include_str!("fixtures/v3-ipv4.hex"))
}

fn v2_pass() -> Fixture {
    parse(include_str!("fixtures/v2-pass.hex"))
}

fn expected_v3_ipv4(priority: u8) -> Advert {
    Advert {
        version: Version::V3,
        vrid: 51,
        priority,
        max_advert_int: Centisecs(50),
        addresses: vec![ip("192.168.77.100"), ip("192.168.77.101")],
        auth: Auth::None,
    }
}

fn expected_v3_ipv6(priority: u8) -> Advert {
    Advert {
        version: Version::V3,
        vrid: 52,
        priority,
        max_advert_int: Centisecs(30),
        addresses: vec![ip("fd00:77::100"), ip("fd00:77::101")],
        auth: Auth::None,
    }
}

fn expected_v2_noauth(priority: u8) -> Advert {
    Advert {
        version: Version::V2,
        vrid: 53,
        priority,
        max_advert_int: Centisecs(100),
        addresses: vec![ip("192.168.77.100")],
        auth: Auth::None,
    }
}

fn expected_v2_pass(priority: u8) -> Advert {
    Advert {
        version: Version::V2,
        vrid: 54,
        priority,
        max_advert_int: Centisecs(200),
        addresses: vec![
            ip("192.168.77.100"),
            ip("192.168.77.101"),
            ip("192.168.77.102"),
        ],
        auth: Auth::simple("s3cret"),
    }
}

fn all() -> Vec<(&'static str, Fixture, Advert)> {
    vec![
        ("v3-ipv4", v3_ipv4(), expected_v3_ipv4(150)),
        (
            "v3-ipv4-prio0",
            parse(include_str!("fixtures/v3-ipv4-prio0.hex")),
            expected_v3_ipv4(0),
        ),
        (
            "v3-ipv6",
            parse(include_str!("fixtures/v3-ipv6.hex")),
            expected_v3_ipv6(140),
        ),
        (
            "v3-ipv6-prio0",
            parse(include_str!("fixtures/v3-ipv6-prio0.hex")),
            expected_v3_ipv6(0),
        ),
        (
            "v2-noauth",
            parse(include_str!("fixtures/v2-noauth.hex")),
            expected_v2_noauth(130),
        ),
        (
            "v2-noauth-prio0",
            parse(include_str!("fixtures/v2-noauth-prio0.hex")),
            expected_v2_noauth(0),
        ),
        ("v2-pass", v2_pass(), expected_v2_pass(120)),
        (
            "v2-pass-prio0",
            parse(include_str!("fixtures/v2-pass-prio0.hex")),
            expected_v2_pass(0),
        ),
    ]
}

#[test]
fn keepalived_packets_decode_exactly() {
    for (name, f, want) in all() {
        assert_eq!(decode(&f.meta, &f.bytes), Ok(want), "{name}");
    }
}

#[test]
fn keepalived_packets_re_encode_byte_identical() {
    for (name, f, advert) in all() {
        let ours = encode(&advert, f.meta.src, f.meta.dst).expect("encode");
        assert_eq!(hex(&ours), hex(&f.bytes), "{name}");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Rewrites the checksum of a (modified) message so that only the intended field is wrong.
fn fix_checksum(f: &Fixture, b: &mut [u8]) {
    b[6] = 0;
    b[7] = 0;
    let c = if b[0] >> 4 == 3 {
        checksum::v3(f.meta.src, f.meta.dst, b)
    } else {
        checksum::v2(b)
    };
    b[6..8].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn ttl_other_than_255_is_dropped() {
    let f = v3_ipv4();
    for ttl in [0, 1, 64, 254] {
        let meta = RxMeta {
            ttl_or_hop_limit: ttl,
            ..f.meta
        };
        assert_eq!(
            decode(&meta, &f.bytes),
            Err(DropReason::BadTtl { got: ttl })
        );
    }
}

#[test]
fn version_nibble_flip_is_bad_version() {
    let f = v3_ipv4();
    for v in [0u8, 1, 4, 15] {
        let mut b = f.bytes.clone();
        b[0] = (v << 4) | (b[0] & 0x0f);
        assert_eq!(decode(&f.meta, &b), Err(DropReason::BadVersion { got: v }));
    }
}

#[test]
fn type_nibble_flip_is_bad_type() {
    let f = v3_ipv4();
    let mut b = f.bytes.clone();
    b[0] = 0x32;
    assert_eq!(decode(&f.meta, &b), Err(DropReason::BadType { got: 2 }));
}

#[test]
fn checksum_flip_is_bad_checksum_with_both_values() {
    let f = v3_ipv4();
    let mut b = f.bytes.clone();
    b[7] ^= 0x01;
    assert_eq!(
        decode(&f.meta, &b),
        Err(DropReason::BadChecksum {
            got: 0x2e41,
            want: 0x2e40
        })
    );
    // Any other field too: the checksum covers the whole message (here the VRID).
    let mut b = f.bytes.clone();
    b[1] = 52;
    assert!(matches!(
        decode(&f.meta, &b),
        Err(DropReason::BadChecksum { .. })
    ));
}

#[test]
fn v3_checksum_covers_the_pseudo_header_v2_does_not() {
    let f = v3_ipv4();
    let meta = RxMeta {
        src: ip("192.168.77.2"),
        ..f.meta
    };
    assert!(matches!(
        decode(&meta, &f.bytes),
        Err(DropReason::BadChecksum { .. })
    ));
    let f = v2_pass();
    let meta = RxMeta {
        src: ip("192.168.77.2"),
        ..f.meta
    };
    assert_eq!(decode(&meta, &f.bytes), Ok(expected_v2_pass(120)));
}

#[test]
fn count_flip_is_length_mismatch() {
    let f = v3_ipv4();
    for count in [0u8, 1, 3, 255] {
        let mut b = f.bytes.clone();
        b[3] = count;
        assert_eq!(
            decode(&f.meta, &b),
            Err(DropReason::LengthMismatch { count, len: 16 })
        );
    }
    // Trailing bytes are a mismatch too.
    let mut b = f.bytes.clone();
    b.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        decode(&f.meta, &b),
        Err(DropReason::LengthMismatch { count: 2, len: 20 })
    );
}

#[test]
fn every_truncation_is_dropped() {
    for (name, f, _) in all() {
        for n in 0..f.bytes.len() {
            let r = decode(&f.meta, &f.bytes[..n]);
            let want = if n < 8 {
                Err(DropReason::Truncated { len: n })
            } else {
                Err(DropReason::LengthMismatch {
                    count: f.bytes[3],
                    len: n,
                })
            };
            assert_eq!(r, want, "{name} cut to {n}");
        }
    }
}

#[test]
fn zero_interval_and_zero_count_with_valid_checksum() {
    let f = v3_ipv4();
    let mut b = f.bytes.clone();
    b[4] = 0;
    b[5] = 0;
    fix_checksum(&f, &mut b);
    assert_eq!(decode(&f.meta, &b), Err(DropReason::ZeroInterval));

    let mut b = f.bytes[..8].to_vec();
    b[3] = 0;
    fix_checksum(&f, &mut b);
    assert_eq!(decode(&f.meta, &b), Err(DropReason::NoAddresses));
}

#[test]
fn v3_reserved_bits_are_ignored() {
    let f = v3_ipv4();
    let mut b = f.bytes.clone();
    b[4] |= 0xf0;
    fix_checksum(&f, &mut b);
    assert_eq!(decode(&f.meta, &b), Ok(expected_v3_ipv4(150)));
}

#[test]
fn v2_unsupported_auth_type() {
    let f = v2_pass();
    let mut b = f.bytes.clone();
    b[4] = 2;
    fix_checksum(&f, &mut b);
    assert_eq!(
        decode(&f.meta, &b),
        Err(DropReason::UnsupportedAuthType { got: 2 })
    );
}

#[test]
fn family_mismatches() {
    let f = v2_pass();
    let meta = RxMeta {
        src: ip("fe80::1"),
        dst: ip("ff02::12"),
        ttl_or_hop_limit: 255,
    };
    assert_eq!(decode(&meta, &f.bytes), Err(DropReason::FamilyMismatch));
    let meta = RxMeta {
        dst: ip("ff02::12"),
        ..f.meta
    };
    assert_eq!(decode(&meta, &f.bytes), Err(DropReason::FamilyMismatch));
}

#[test]
fn local_checks() {
    let f = v2_pass();
    let advert = decode(&f.meta, &f.bytes).expect("decodes");
    let good_auth = Auth::simple("s3cret");
    let vips = [
        ip("192.168.77.102"),
        ip("192.168.77.100"),
        ip("192.168.77.101"),
    ];
    let ok = LocalCheck {
        version: Version::V2,
        priority: 100,
        advert_interval: Centisecs(200),
        auth: &good_auth,
        addresses: Some(&vips),
    };
    assert_eq!(check_local(&advert, &ok), Ok(()));

    let wrong_pw = Auth::simple("s3creT");
    let c = LocalCheck {
        auth: &wrong_pw,
        ..ok
    };
    assert_eq!(check_local(&advert, &c), Err(DropReason::AuthMismatch));
    let none = Auth::None;
    let c = LocalCheck { auth: &none, ..ok };
    assert_eq!(check_local(&advert, &c), Err(DropReason::AuthMismatch));

    let c = LocalCheck {
        advert_interval: Centisecs(100),
        ..ok
    };
    assert_eq!(
        check_local(&advert, &c),
        Err(DropReason::IntervalMismatch {
            got: Centisecs(200)
        })
    );
    let c = LocalCheck {
        version: Version::V3,
        ..ok
    };
    assert_eq!(
        check_local(&advert, &c),
        Err(DropReason::VersionMismatch { got: Version::V2 })
    );
    let c = LocalCheck {
        priority: 255,
        ..ok
    };
    assert_eq!(check_local(&advert, &c), Err(DropReason::LocalIsOwner));
    let fewer = [ip("192.168.77.100")];
    let c = LocalCheck {
        addresses: Some(&fewer),
        ..ok
    };
    assert_eq!(
        check_local(&advert, &c),
        Err(DropReason::AddressListMismatch)
    );
    // ... unless the sender is the owner (priority 255).
    let owner = Advert {
        priority: 255,
        ..advert.clone()
    };
    assert_eq!(check_local(&owner, &c), Ok(()));
    let c = LocalCheck {
        addresses: None,
        ..c
    };
    assert_eq!(check_local(&advert, &c), Ok(()));

    // v3 learns the interval: a different one is not a drop.
    let f = v3_ipv4();
    let advert = decode(&f.meta, &f.bytes).expect("decodes");
    let c = LocalCheck {
        version: Version::V3,
        priority: 100,
        advert_interval: Centisecs(100),
        auth: &none,
        addresses: None,
    };
    assert_eq!(check_local(&advert, &c), Ok(()));
    // RFC 9568 erratum 8298: a v3 owner is not a drop (it answers a priority 0 at once).
    let c = LocalCheck { priority: 255, ..c };
    assert_eq!(check_local(&advert, &c), Ok(()));
}

#[test]
fn labels_are_distinct_and_listed() {
    let reasons = [
        DropReason::BadTtl { got: 1 },
        DropReason::BadVersion { got: 1 },
        DropReason::BadType { got: 1 },
        DropReason::Truncated { len: 1 },
        DropReason::LengthMismatch { count: 1, len: 1 },
        DropReason::NoAddresses,
        DropReason::BadChecksum { got: 1, want: 2 },
        DropReason::ZeroInterval,
        DropReason::FamilyMismatch,
        DropReason::UnsupportedAuthType { got: 2 },
        DropReason::VridNotConfigured { vrid: 1 },
        DropReason::LocalIsOwner,
        DropReason::VersionMismatch { got: Version::V2 },
        DropReason::AuthMismatch,
        DropReason::IntervalMismatch { got: Centisecs(1) },
        DropReason::AddressListMismatch,
        DropReason::NotFromPeer,
        DropReason::FromSelf,
    ];
    let labels: Vec<&str> = reasons.iter().map(|r| r.label()).collect();
    assert_eq!(labels, DropReason::ALL_LABELS.to_vec());
    let mut dedup = labels.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), labels.len());
    for r in reasons {
        assert!(!r.to_string().is_empty());
    }
}

#[test]
fn both_ones_complement_zeros_verify() {
    // Find the address whose message sums to 0xffff, so that its checksum is 0x0000; the
    // other representation of zero, 0xffff, must verify too (the fuzzer found this one).
    let f = v3_ipv4();
    let found = (0..=u16::MAX).find_map(|w| {
        let [x, y] = w.to_be_bytes();
        let a = Advert {
            addresses: vec![IpAddr::from([192, 168, x, y])],
            ..expected_v3_ipv4(150)
        };
        let b = encode(&a, f.meta.src, f.meta.dst).expect("encode");
        (b[6..8] == [0, 0]).then_some((a, b))
    });
    let (advert, mut b) = found.expect("some address sums to 0xffff");
    assert_eq!(decode(&f.meta, &b), Ok(advert.clone()));
    b[6] = 0xff;
    b[7] = 0xff;
    assert_eq!(decode(&f.meta, &b), Ok(advert));
}
