//! The DNS probe: one query over UDP (RFC 1035 section 4.2.1), the answer's RCODE compared with
//! the expected one. hickory-proto writes and reads the wire format.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;

use super::{udp, ProbeError};
use crate::spec::DnsCheck;

/// Largest answer read: the classic UDP limit without EDNS (RFC 1035 section 2.3.4) is 512
/// bytes; servers may send more, so read up to 4 KiB.
const ANSWER_MAX: usize = 4096;

/// Sends one query for `check` to `addr` and waits for the answer with the same ID.
pub async fn query(addr: SocketAddr, check: &DnsCheck) -> Result<String, ProbeError> {
    let id = random_id();
    let wire = encode(check, id)?;
    let sock = udp::connected(addr).await?;
    send_and_wait(&sock, &wire, id, check.rcode).await
}

async fn send_and_wait(
    sock: &UdpSocket,
    wire: &[u8],
    id: u16,
    want: u16,
) -> Result<String, ProbeError> {
    sock.send(wire).await.map_err(|source| ProbeError::Io {
        what: "send query",
        source,
    })?;
    let mut buf = vec![0u8; ANSWER_MAX];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|source| ProbeError::Io {
            what: "receive answer",
            source,
        })?;
        // An answer to someone else (a late answer to an earlier query) is skipped.
        if let Some(result) = judge(buf.get(..n).unwrap_or_default(), id, want) {
            return result;
        }
    }
}

/// The query message for `check` with `id`, recursion desired.
pub fn encode(check: &DnsCheck, id: u16) -> Result<Vec<u8>, ProbeError> {
    let name = Name::from_str(&check.name)
        .map_err(|e| ProbeError::Dns(format!("name {:?}: {e}", check.name)))?;
    let mut msg = Message::new();
    msg.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name, RecordType::from(check.qtype)));
    msg.to_vec().map_err(|e| ProbeError::Dns(e.to_string()))
}

/// The verdict on one received datagram: `None` when it is not the answer to query `id`.
pub fn judge(bytes: &[u8], id: u16, want: u16) -> Option<Result<String, ProbeError>> {
    let msg = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(e) => return Some(Err(ProbeError::Dns(format!("bad answer: {e}")))),
    };
    if msg.id() != id || msg.message_type() != MessageType::Response {
        return None;
    }
    let got = msg.response_code();
    if u16::from(got) == want {
        Some(Ok(format!("rcode {got}, {} answers", msg.answers().len())))
    } else {
        Some(Err(ProbeError::Rcode {
            got: got.to_string(),
            want: ResponseCode::from_low(u8::try_from(want).unwrap_or(u8::MAX)).to_string(),
        }))
    }
}

/// A query ID nobody can predict (RFC 5452 section 9.2): from the process's random hash keys.
fn random_id() -> u16 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: u16, rcode: ResponseCode) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(id)
            .set_message_type(MessageType::Response)
            .set_response_code(rcode);
        m.to_vec().unwrap()
    }

    #[test]
    fn encode_a_query() {
        let c = DnsCheck::new("example.com.", "AAAA").unwrap();
        let wire = encode(&c, 0x1234).unwrap();
        // ID, then flags: RD set (0x0100), QDCOUNT 1.
        assert_eq!(&wire[..6], &[0x12, 0x34, 0x01, 0x00, 0x00, 0x01]);
        let back = Message::from_vec(&wire).unwrap();
        assert_eq!(back.queries()[0].query_type(), RecordType::AAAA);
        assert_eq!(back.queries()[0].name().to_ascii(), "example.com.");
    }

    #[test]
    fn judge_answers() {
        assert!(matches!(
            judge(&answer(7, ResponseCode::NoError), 7, 0),
            Some(Ok(_))
        ));
        assert!(
            judge(&answer(8, ResponseCode::NoError), 7, 0).is_none(),
            "other id"
        );
        let e = judge(&answer(7, ResponseCode::NXDomain), 7, 0);
        let reason = e.and_then(|r| r.err()).map(|e| e.to_string());
        assert_eq!(
            reason.as_deref(),
            Some("rcode Non-Existent Domain, expected No Error")
        );
        assert!(matches!(
            judge(&answer(7, ResponseCode::NXDomain), 7, 3),
            Some(Ok(_))
        ));
        assert!(matches!(
            judge(b"\x00\x07", 7, 0),
            Some(Err(ProbeError::Dns(_)))
        ));
    }

    #[test]
    fn spec_validation() {
        assert!(DnsCheck::new("example.com", "TXT").is_ok());
        assert!(DnsCheck::new("example.com", "NOPE").is_err());
    }
}
