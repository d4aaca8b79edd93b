//! Real local servers for the probe tests, on loopback in the test process: each counts what it
//! served so tests can assert on the server side.

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What a server saw.
#[derive(Default)]
pub struct Seen {
    /// Connections accepted, or datagrams received.
    pub hits: AtomicUsize,
    /// Request heads (HTTP) or SNI names (HTTPS), in order.
    pub log: Mutex<Vec<String>>,
}

impl Seen {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// A TCP listener that accepts and closes, counting connections. Its accept queue holds 1,024
/// connections (std's and tokio's 128 would drop the SYNs of a test's burst of connects).
pub async fn tcp_acceptor() -> (SocketAddr, Arc<Seen>) {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(1024).unwrap();
    sock.set_nonblocking(true).unwrap();
    let l = TcpListener::from_std(sock.into()).unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            s.hits.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    (addr, seen)
}

/// A TCP listener that never accepts: connects complete in the kernel's backlog and then nothing
/// is ever answered (the "hung" server). Keep the listener alive for the test.
pub async fn hung_tcp() -> (SocketAddr, TcpListener) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (l.local_addr().unwrap(), l)
}

/// The HTTP response the test server sends for a request line's path.
fn response_for(path: &str) -> Vec<u8> {
    match path {
        "/ok" => b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nstatus: good".to_vec(),
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        7\r\nstatus:\r\n5\r\n good\r\n0\r\n\r\n"
            .to_vec(),
        "/close" => b"HTTP/1.0 200 OK\r\n\r\nall good until close".to_vec(),
        "/busy" => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/garbage" => b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec(),
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    }
}

async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, seen: &Seen) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    seen.log.lock().unwrap().push(head);
    if path == "/hang" {
        std::future::pending::<()>().await;
    }
    let _ = s.write_all(&response_for(&path)).await;
    let _ = s.shutdown().await;
}

/// An HTTP/1.1 server: `/ok` (200, Content-Length, body "status: good"), `/chunked` (same body,
/// chunked), `/close` (HTTP/1.0, body until close), `/busy` (503), `/garbage` (not HTTP),
/// `/hang` (reads the request, never answers), anything else 404. Logs each request head.
pub async fn http_server() -> (SocketAddr, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            s.hits.fetch_add(1, Ordering::SeqCst);
            let s = Arc::clone(&s);
            tokio::spawn(async move { serve_http(c, &s).await });
        }
    });
    (addr, seen)
}

/// An HTTPS server with a self-signed certificate for `health.test` and 127.0.0.1, made here by
/// rcgen; the same paths as [`http_server`]. Logs the SNI of each handshake (`-` when none). Also
/// returns the certificate's PEM file, for verification against it.
pub async fn https_server(dir: &std::path::Path) -> (SocketAddr, Arc<Seen>, PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["health.test".into(), "127.0.0.1".into()]).unwrap();
    let pem = dir.join("cert.pem");
    std::fs::write(&pem, ck.cert.pem()).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(health::probe::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            s.hits.fetch_add(1, Ordering::SeqCst);
            let (s, acceptor) = (Arc::clone(&s), acceptor.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(c).await else {
                    s.log.lock().unwrap().push("handshake failed".into());
                    return;
                };
                let sni = tls.get_ref().1.server_name().unwrap_or("-").to_owned();
                s.log.lock().unwrap().push(format!("sni {sni}"));
                serve_http(tls, &s).await;
            });
        }
    });
    (addr, seen, pem)
}

/// A DNS responder: NOERROR with no answers for `ok.test.`, NXDOMAIN for any other name; a
/// query for `late.test.` first gets an answer with the wrong ID, then the right one.
pub async fn dns_server() -> (SocketAddr, Arc<Seen>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            s.hits.fetch_add(1, Ordering::SeqCst);
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let name = q
                .queries()
                .first()
                .map(|q| q.name().to_ascii())
                .unwrap_or_default();
            s.log.lock().unwrap().push(name.clone());
            let mut a = Message::new();
            a.set_id(q.id())
                .set_message_type(MessageType::Response)
                .add_queries(q.queries().to_vec());
            a.set_response_code(match name.as_str() {
                "ok.test." | "late.test." => ResponseCode::NoError,
                _ => ResponseCode::NXDomain,
            });
            if name == "late.test." {
                let mut other = a.clone();
                other.set_id(q.id().wrapping_add(1));
                let _ = sock.send_to(&other.to_vec().unwrap(), from).await;
            }
            let _ = sock.send_to(&a.to_vec().unwrap(), from).await;
        }
    });
    (addr, seen)
}

/// A UDP echo server, counting datagrams.
pub async fn udp_echo() -> (SocketAddr, Arc<Seen>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            s.hits.fetch_add(1, Ordering::SeqCst);
            let _ = sock.send_to(&buf[..n], from).await;
        }
    });
    (addr, seen)
}

/// A UDP socket that receives and never answers (hung DNS or UDP service). Keep it alive.
pub async fn udp_silent() -> (SocketAddr, UdpSocket) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    (sock.local_addr().unwrap(), sock)
}

/// A loopback port with nothing listening (TCP and UDP), found by binding and closing.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A fresh temporary directory for this test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("health-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A TCP listener whose accept queue is full (backlog 0, one connection queued and never
/// accepted): the kernel drops every further SYN, so a connect to it never completes. Keep both
/// values alive for the test.
pub fn syn_drop_tcp() -> (SocketAddr, socket2::Socket, std::net::TcpStream) {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let queued = std::net::TcpStream::connect(addr).unwrap();
    (addr, l, queued)
}
