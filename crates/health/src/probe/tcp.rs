//! The TCP connect probe, also the first step of HTTP.

use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};

use super::ProbeError;

/// Connects to `addr`. The socket has SO_LINGER 0: closing it resets the connection, so a check
/// every second to thousands of backends leaves no TIME_WAIT sockets on the director (the
/// plain-C floor does the same).
pub async fn connect(addr: SocketAddr) -> Result<TcpStream, ProbeError> {
    let err = |source| ProbeError::Connect { addr, source };
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    sock.set_zero_linger().map_err(err)?;
    sock.connect(addr).await.map_err(err)
}
