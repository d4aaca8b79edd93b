//! Byte-level tests against messages captured from the real kernel and ipvsadm
//! (`tests/fixtures/mod.rs`): our requests equal ipvsadm's bytes, the kernel's replies decode to
//! the expected model and re-encode to the kernel's bytes, and every truncation is an error.
#![allow(clippy::unwrap_used)]

mod fixtures;

use std::net::{IpAddr, Ipv4Addr};

use ipvs::codec::attr::AttrIter;
use ipvs::codec::daemon::{decode_daemon_msg, encode_daemon_reply};
use ipvs::codec::dest::{decode_dest_msg, encode_dest_reply};
use ipvs::codec::info::{decode_info, decode_timeouts};
use ipvs::codec::msg::{Message, MessageIter, NLMSG_DONE, NLMSG_ERROR};
use ipvs::codec::request::encode_op;
use ipvs::codec::service::{decode_service_msg, encode_service_reply};
use ipvs::codec::{cmd, cmd_attr};
use ipvs::*;

use fixtures::*;

const FAMILY: u16 = 0x20;

fn one(bytes: &[u8]) -> Message<'_> {
    let msgs: Vec<_> = MessageIter::new(bytes).collect::<Result<_, _>>().unwrap();
    assert_eq!(msgs.len(), 1);
    msgs[0]
}

fn ours(op: &Op, theirs: &[u8]) -> Vec<u8> {
    let seq = one(theirs).seq;
    let mut b = Vec::new();
    encode_op(&mut b, FAMILY, seq, op);
    b
}

/// ipvsadm fills `nlmsg_pid` with its port id; we leave it 0 for the kernel to fill.
fn without_pid(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v[12..16].fill(0);
    v
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: addr.parse().unwrap(),
        port,
    }
}

fn fwmark() -> ServiceKey {
    ServiceKey::Fwmark {
        af: AddressFamily::Inet,
        mark: 4660,
    }
}

fn v6_service() -> Service {
    let mut s = Service::new(tcp("2001:db8::1", 443), Scheduler::Sh);
    s.flags = ServiceFlags::PERSISTENT | ServiceFlags::SCHED1 | ServiceFlags::SCHED2;
    s.timeout = 300;
    s.netmask = Netmask::Inet6(64);
    s
}

fn pe_service() -> Service {
    let key = ServiceKey::Inet {
        protocol: Protocol::Udp,
        addr: "10.1.0.9".parse().unwrap(),
        port: 5060,
    };
    let mut s = Service::new(key, Scheduler::Rr);
    s.flags = ServiceFlags::PERSISTENT;
    s.timeout = 60;
    s.pe_name = Some("sip".into());
    s
}

fn masq_dest() -> Destination {
    let mut d = Destination::new("10.2.0.1".parse().unwrap(), 8080, Forwarding::Masq);
    d.weight = 3;
    d.upper_threshold = 100;
    d.lower_threshold = 10;
    d
}

fn gue_dest() -> Destination {
    let mut d = Destination::new("10.3.0.1".parse().unwrap(), 0, Forwarding::Tunnel);
    d.tunnel = Tunnel {
        kind: TunnelType::Gue,
        port: 8080,
        flags: TunnelFlags::CSUM,
    };
    d
}

#[test]
fn service_requests_equal_ipvsadm_bytes() {
    let v4 = Service::new(tcp("10.1.0.1", 80), Scheduler::Wlc);
    for (op, theirs) in [
        (Op::AddService(v4), REQ_ADD_SERVICE_V4),
        (Op::AddService(v6_service()), REQ_ADD_SERVICE_V6),
        (Op::AddService(pe_service()), REQ_ADD_SERVICE_PE),
        (
            Op::SetTimeouts(Timeouts {
                tcp: 100,
                tcp_fin: 20,
                udp: 30,
            }),
            REQ_SET_CONFIG,
        ),
        (
            Op::StartDaemon(SyncDaemon::new(DaemonState::Master, "lo", 5)),
            REQ_NEW_DAEMON,
        ),
    ] {
        assert_eq!(ours(&op, theirs), without_pid(theirs), "{op}");
    }
}

/// ipvsadm sends a whole (empty) service as the key of a destination request; we send the key
/// only. The destination attribute must be byte-identical, and both keys must decode alike.
#[test]
fn destination_requests_equal_ipvsadm_bytes() {
    for (key, dest, theirs) in [
        (tcp("10.1.0.1", 80), masq_dest(), REQ_ADD_DEST_MASQ),
        (fwmark(), gue_dest(), REQ_ADD_DEST_GUE),
    ] {
        let op = Op::AddDest(key, dest.clone());
        let mine = ours(&op, theirs);
        let (m, t) = (one(&mine), one(theirs));
        assert_eq!((m.ty, m.flags, m.seq), (t.ty, t.flags, t.seq));
        let (mg, tg) = (m.genl().unwrap(), t.genl().unwrap());
        assert_eq!((mg.cmd, mg.version), (tg.cmd, tg.version));
        let attr = |attrs: &[u8], ty: u16| -> Vec<u8> {
            AttrIter::new(attrs)
                .map(Result::unwrap)
                .find(|a| a.ty == ty)
                .unwrap()
                .value
                .to_vec()
        };
        assert_eq!(
            attr(mg.attrs, cmd_attr::DEST),
            attr(tg.attrs, cmd_attr::DEST),
            "{op}"
        );
        assert_eq!(
            decode_service_msg(mg.attrs).unwrap().service.key,
            decode_service_msg(tg.attrs).unwrap().service.key
        );
        assert_eq!(
            decode_dest_msg(tg.attrs, key.af()).unwrap().dest,
            dest,
            "ipvsadm's request decodes to our model"
        );
    }
}

fn with_zero_stats(mut s: Service) -> Service {
    s.flags = s.flags.with(ServiceFlags::HASHED, true);
    s.stats = Some(Stats::default());
    s
}

fn service_replies() -> Vec<(&'static [u8], Service)> {
    let mut fw = Service::new(fwmark(), Scheduler::Mh);
    fw.flags = ServiceFlags::SCHED2;
    vec![
        (RPL_SERVICE_V6, with_zero_stats(v6_service())),
        (
            RPL_SERVICE_V4,
            with_zero_stats(Service::new(tcp("10.1.0.1", 80), Scheduler::Wlc)),
        ),
        (RPL_SERVICE_PE, with_zero_stats(pe_service())),
        (RPL_SERVICE_FWMARK, with_zero_stats(fw)),
    ]
}

fn dest_replies() -> Vec<(&'static [u8], AddressFamily, Destination)> {
    let z = |mut d: Destination| {
        d.stats = Some(Stats::default());
        d
    };
    let mut v6 = Destination::new("2001:db8::2".parse().unwrap(), 443, Forwarding::DirectRoute);
    v6.weight = 2;
    let mut remcsum = Destination::new("10.3.0.3".parse().unwrap(), 0, Forwarding::Tunnel);
    remcsum.weight = 0;
    remcsum.tunnel = Tunnel {
        kind: TunnelType::Gue,
        port: 6080,
        flags: TunnelFlags::REMCSUM,
    };
    let mut gre = Destination::new("10.3.0.2".parse().unwrap(), 0, Forwarding::Tunnel);
    gre.tunnel = Tunnel {
        kind: TunnelType::Gre,
        port: 0,
        flags: TunnelFlags::CSUM,
    };
    vec![
        (RPL_DEST_MASQ, AddressFamily::Inet, z(masq_dest())),
        (RPL_DEST_V6_ROUTE, AddressFamily::Inet6, z(v6)),
        (RPL_DEST_GUE_REMCSUM, AddressFamily::Inet, z(remcsum)),
        (RPL_DEST_GRE, AddressFamily::Inet, z(gre)),
        (RPL_DEST_GUE, AddressFamily::Inet, z(gue_dest())),
    ]
}

fn genl_payload(cmd: u8, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = vec![cmd, 1, 0, 0];
    body(&mut b);
    b
}

#[test]
fn service_replies_decode_and_reencode_to_kernel_bytes() {
    for (bytes, want) in service_replies() {
        let m = one(bytes);
        let g = m.genl().unwrap();
        assert_eq!(g.cmd, cmd::NEW_SERVICE);
        let got = decode_service_msg(g.attrs).unwrap();
        assert_eq!(got.service, want);
        assert!(got.unknown.is_empty());
        let again = genl_payload(cmd::NEW_SERVICE, |b| encode_service_reply(b, &want));
        assert_eq!(again, m.payload, "{}", want.key);
    }
}

#[test]
fn destination_replies_decode_and_reencode_to_kernel_bytes() {
    for (bytes, af, want) in dest_replies() {
        let m = one(bytes);
        let g = m.genl().unwrap();
        assert_eq!(g.cmd, cmd::NEW_DEST);
        let got = decode_dest_msg(g.attrs, af).unwrap();
        assert_eq!(got.dest, want);
        let again = genl_payload(cmd::NEW_DEST, |b| encode_dest_reply(b, &want));
        assert_eq!(again, m.payload, "{}", want.key());
    }
}

#[test]
fn gue_tunnel_port_is_big_endian_on_the_wire() {
    // 8080 = 0x1f90: the kernel's reply carries 0x1f, 0x90 (network order).
    let needle = [0x06, 0x00, 0x0e, 0x00, 0x1f, 0x90];
    assert!(RPL_DEST_GUE.windows(6).any(|w| w == needle));
    assert!(REQ_ADD_DEST_GUE.windows(6).any(|w| w == needle));
}

#[test]
fn daemon_info_timeouts_replies() {
    let m = one(RPL_DAEMON);
    let d = decode_daemon_msg(m.genl().unwrap().attrs).unwrap().daemon;
    let want = SyncDaemon {
        state: DaemonState::Master,
        mcast_ifn: "lo".into(),
        syncid: 5,
        sync_maxlen: Some(1472),
        mcast_group: Some(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81))),
        mcast_port: Some(8848),
        mcast_ttl: Some(1),
    };
    assert_eq!(d, want);
    let again = genl_payload(cmd::NEW_DAEMON, |b| encode_daemon_reply(b, &want));
    assert_eq!(again, m.payload);

    let info = decode_info(one(RPL_INFO).genl().unwrap().attrs).unwrap();
    assert_eq!(info.version_string(), "1.2.1");
    assert_eq!(info.conn_tab_size, 4096);

    let t = decode_timeouts(one(RPL_CONFIG).genl().unwrap().attrs).unwrap();
    assert_eq!(
        t,
        Timeouts {
            tcp: 100,
            tcp_fin: 20,
            udp: 30
        }
    );
}

#[test]
fn acks_errors_and_done() {
    let ack = one(RPL_ACK);
    assert_eq!(ack.ty, NLMSG_ERROR);
    let body = ack.ack().unwrap();
    assert_eq!(body.error, 0);
    assert_eq!(body.req_seq, Some(one(REQ_ADD_SERVICE_V4).seq));
    for (bytes, errno) in [(RPL_ERR_EEXIST, -17), (RPL_ERR_ENOENT, -2)] {
        let m = one(bytes);
        let b = m.ack().unwrap();
        assert_eq!(b.error, errno);
        assert_eq!(b.req_seq, Some(m.seq));
    }
    assert_eq!(one(RPL_DONE).ty, NLMSG_DONE);
}

#[test]
fn every_truncated_reply_is_an_error() {
    // Whole messages: a cut anywhere makes the framing invalid.
    for (name, bytes) in ALL {
        for cut in 1..bytes.len() {
            let r: Result<Vec<_>, _> = MessageIter::new(&bytes[..cut]).collect();
            assert!(r.is_err(), "{name} cut at {cut}");
        }
    }
    // Attribute areas: every object sits in one nest, so every cut is an error.
    for (bytes, _) in service_replies() {
        let attrs = one(bytes).genl().unwrap().attrs;
        for cut in 0..attrs.len() {
            assert!(decode_service_msg(&attrs[..cut]).is_err(), "cut {cut}");
        }
    }
    for (bytes, af, _) in dest_replies() {
        let attrs = one(bytes).genl().unwrap().attrs;
        for cut in 0..attrs.len() {
            assert!(decode_dest_msg(&attrs[..cut], af).is_err(), "cut {cut}");
        }
    }
    let attrs = one(RPL_DAEMON).genl().unwrap().attrs;
    for cut in 0..attrs.len() {
        assert!(decode_daemon_msg(&attrs[..cut]).is_err(), "cut {cut}");
    }
    let attrs = one(RPL_INFO).genl().unwrap().attrs;
    for cut in 0..attrs.len() {
        assert!(decode_info(&attrs[..cut]).is_err(), "cut {cut}");
    }
    // Timeouts are three top-level attributes: a cut on a boundary is a shorter valid list.
    let attrs = one(RPL_CONFIG).genl().unwrap().attrs;
    for cut in 0..attrs.len() {
        assert_eq!(
            decode_timeouts(&attrs[..cut]).is_err(),
            cut % 8 != 0,
            "{cut}"
        );
    }
}

#[test]
fn unknown_attributes_are_kept_raw() {
    let m = one(RPL_SERVICE_V4);
    let g = m.genl().unwrap();
    // Append an unknown attribute (type 99) inside the service nest.
    let mut attrs = g.attrs.to_vec();
    attrs.extend_from_slice(&[8, 0, 99, 0, 1, 2, 3, 4]);
    let nest_len = u16::from_ne_bytes([attrs[0], attrs[1]]) + 8;
    attrs[..2].copy_from_slice(&nest_len.to_ne_bytes());
    let got = decode_service_msg(&attrs).unwrap();
    assert_eq!(got.unknown.len(), 1);
    assert_eq!(got.unknown[0].ty, 99);
    assert_eq!(got.unknown[0].value, vec![1, 2, 3, 4]);
}
