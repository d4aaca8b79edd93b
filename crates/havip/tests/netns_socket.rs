//! The receive path on a real raw socket: datagrams crafted byte by byte (IP header included,
//! `IPPROTO_RAW`) from a third namespace reach a running instance, which accepts a valid advert
//! carrying IP options (IHL 6) and counts every bad one under its drop reason.

mod runner_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use havip::fsm::State;
use havip::packet::{encode, Advert, Auth, Version};
use havip::time::Centisecs;
use runner_common::{cfg, Lan, Node};
use socket2::{Domain, Protocol, Socket, Type};

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// An IPv4 datagram: header with `ttl` and `options`, then `payload`. The kernel fills in the
/// total length and header checksum of an `IPPROTO_RAW` send.
fn datagram(ttl: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let total = 4 * ihl + payload.len();
    let mut d = vec![0x40 | ihl as u8, 0xc0];
    d.extend_from_slice(&(total as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0]);
    d.extend_from_slice(&SRC.octets());
    d.extend_from_slice(&GROUP.octets());
    d.extend_from_slice(options);
    d.extend_from_slice(payload);
    d
}

fn advert(vrid: u8, priority: u8) -> Vec<u8> {
    let a = Advert {
        version: Version::V3,
        vrid,
        priority,
        max_advert_int: Centisecs(10),
        addresses: vec!["192.0.2.100".parse().expect("vip")],
        auth: Auth::None,
    };
    encode(&a, IpAddr::V4(SRC), IpAddr::V4(GROUP)).expect("encodes")
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn crafted_datagrams_are_accepted_or_counted_by_reason() {
    let lan = Lan::new();
    let b = lan.host("192.0.2.2/24");
    let s = lan.host("192.0.2.9/24");
    let nb = Node::start(b.clone(), cfg("vi", 81, 100, "192.0.2.100/24"));
    nb.wait_state(State::Master, Duration::from_secs(3));
    let sock = s
        .run(|| {
            let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))?;
            sock.bind_device(Some(b"eth0"))?;
            Ok::<_, std::io::Error>(sock)
        })
        .expect("enter netns")
        .expect("raw socket");
    let to = SocketAddr::new(IpAddr::V4(GROUP), 0).into();
    let send = |d: &[u8]| {
        sock.send_to(d, &to).expect("sent");
    };
    let drops = |label: &str| {
        nb.status
            .borrow()
            .counters
            .drops
            .get(label)
            .copied()
            .unwrap_or(0)
    };
    let rx0 = nb.status.borrow().counters.adverts_rx;

    // Valid advert (priority 50 < 100) behind a 4-byte IP option (router alert): IHL 6.
    send(&datagram(255, &[0x94, 0x04, 0, 0], &advert(81, 50)));
    nb.wait(
        Duration::from_secs(2),
        "advert with IP options accepted",
        |st| st.counters.adverts_rx == rx0 + 1,
    );
    // TTL 64: RFC 9568 - Section 5.1.1.3 "MUST discard".
    send(&datagram(64, &[], &advert(81, 50)));
    nb.wait(Duration::from_secs(2), "bad_ttl", |_| drops("bad_ttl") == 1);
    // A flipped checksum byte.
    let mut bad = advert(81, 50);
    bad[6] ^= 0xff;
    send(&datagram(255, &[], &bad));
    nb.wait(Duration::from_secs(2), "bad_checksum", |_| {
        drops("bad_checksum") == 1
    });
    // Another VRID.
    send(&datagram(255, &[], &advert(99, 50)));
    nb.wait(Duration::from_secs(2), "vrid_not_configured", |_| {
        drops("vrid_not_configured") == 1
    });
    // Three bytes of VRRP.
    send(&datagram(255, &[], &[0x31, 81, 50]));
    nb.wait(Duration::from_secs(2), "truncated", |_| {
        drops("truncated") == 1
    });
    assert_eq!(nb.status.borrow().counters.adverts_rx, rx0 + 1);
    assert_eq!(nb.state(), State::Master, "nothing above moved the master");
}
