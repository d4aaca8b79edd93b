//! The UDP probe: send a datagram, expect one back that contains given bytes. On a connected
//! socket a closed port answers with ICMP port unreachable, which fails the probe at once
//! ("Connection refused") instead of waiting for the timeout.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

use super::ProbeError;
use crate::spec::UdpCheck;

/// Largest answer read.
const ANSWER_MAX: usize = 64 * 1024;

/// A UDP socket on an ephemeral port, connected to `addr`.
pub async fn connected(addr: SocketAddr) -> Result<UdpSocket, ProbeError> {
    let err = |source| ProbeError::Connect { addr, source };
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await.map_err(err)?;
    sock.connect(addr).await.map_err(err)?;
    Ok(sock)
}

/// Sends `check.send` to `addr` and judges the first answer.
pub async fn exchange(addr: SocketAddr, check: &UdpCheck) -> Result<String, ProbeError> {
    let sock = connected(addr).await?;
    sock.send(&check.send)
        .await
        .map_err(|source| ProbeError::Io {
            what: "send",
            source,
        })?;
    let mut buf = vec![0u8; ANSWER_MAX];
    let n = sock.recv(&mut buf).await.map_err(|source| ProbeError::Io {
        what: "receive",
        source,
    })?;
    let answer = buf.get(..n).unwrap_or_default();
    let want = &check.expect;
    if want.is_empty() || answer.windows(want.len()).any(|w| w == want.as_slice()) {
        Ok(format!("answer of {n} bytes"))
    } else {
        Err(ProbeError::UdpMismatch {
            len: n,
            want: want.len(),
        })
    }
}
