//! The HTTP(S) GET probe: an HTTP/1.1 request written here (RFC 9112 section 3), the response
//! head parsed by httparse, the body (Content-Length, chunked, or up to the close) searched for
//! the expected text. The pure parts ([`request`], [`parse_head`], [`decoded_body`]) are tested
//! on bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{tcp, tls, ProbeError};
use crate::spec::{HttpCheck, BODY_MAX};

/// The longest response head read: 16 KiB.
pub const HEAD_MAX: usize = 16 * 1024;
/// Headers parsed at most; a response with more is rejected.
const MAX_HEADERS: usize = 64;

/// Runs one GET against `addr`, over TLS when `tls` is given.
pub async fn get(
    addr: SocketAddr,
    check: &HttpCheck,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<String, ProbeError> {
    let host = check.host.clone().unwrap_or_else(|| addr.to_string());
    let stream = tcp::connect(addr).await?;
    match (tls, &check.tls) {
        (Some(config), Some(spec)) => {
            let name = tls::server_name(spec.sni.as_deref(), check.host.as_deref(), addr)?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(ProbeError::Tls)?;
            exchange(stream, check, &host).await
        }
        _ => exchange(stream, check, &host).await,
    }
}

async fn exchange<S>(mut s: S, check: &HttpCheck, host: &str) -> Result<String, ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |what| move |source| ProbeError::Io { what, source };
    s.write_all(&request(&check.path, host))
        .await
        .map_err(io("write request"))?;
    s.flush().await.map_err(io("write request"))?;
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        if let Some(head) = parse_head(&buf)? {
            break head;
        }
        if buf.len() >= HEAD_MAX {
            return Err(ProbeError::Http(format!(
                "no end of the response head in {HEAD_MAX} bytes"
            )));
        }
        if read_some(&mut s, &mut buf).await? == 0 {
            return Err(ProbeError::Http(format!(
                "connection closed after {} bytes, before the end of the response head",
                buf.len()
            )));
        }
    };
    if !check.status.contains(head.status) {
        return Err(ProbeError::Status {
            got: head.status,
            want: check.status,
        });
    }
    let Some(needle) = &check.body_contains else {
        return Ok(format!("status {}", head.status));
    };
    buf.drain(..head.len);
    loop {
        let (body, complete) = decoded_body(head.framing, &buf)?;
        if contains(&body, needle.as_bytes()) {
            return Ok(format!("status {}, body matches", head.status));
        }
        let full = body.len() >= BODY_MAX || buf.len() >= 2 * BODY_MAX;
        if complete || full || read_some(&mut s, &mut buf).await? == 0 {
            return Err(ProbeError::BodyMissing {
                needle: needle.clone(),
                read: body.len(),
            });
        }
    }
}

async fn read_some<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Result<usize, ProbeError> {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await.map_err(|source| ProbeError::Io {
        what: "read response",
        source,
    })?;
    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(n)
}

/// The request bytes: `GET path HTTP/1.1`, Host, a User-Agent, `Connection: close`.
pub fn request(path: &str, host: &str) -> Vec<u8> {
    let path = if path.is_empty() { "/" } else { path };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: director-health\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// How the body of a response ends (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes.
    UntilClose,
    /// No body (1xx, 204, 304).
    Empty,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// Bytes of the head, the blank line included.
    pub len: usize,
    /// How the body ends.
    pub framing: Framing,
}

/// Parses the response head at the start of `buf`: `None` while incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, ProbeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ProbeError::Http(e.to_string())),
    };
    let status = resp
        .code
        .ok_or_else(|| ProbeError::Http("no status code".into()))?;
    let mut framing = Framing::UntilClose;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default();
            if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| ProbeError::Http("bad Content-Length".into()))?;
            framing = Framing::Length(n);
        }
    }
    if matches!(status, 100..=199 | 204 | 304) {
        framing = Framing::Empty;
    }
    Ok(Some(Head {
        status,
        len,
        framing,
    }))
}

/// The body received so far in `raw` (the bytes after the head), decoded, at most [`BODY_MAX`]
/// bytes, and whether it is complete.
pub fn decoded_body(framing: Framing, raw: &[u8]) -> Result<(Vec<u8>, bool), ProbeError> {
    let cap = |b: &[u8]| b.get(..BODY_MAX).unwrap_or(b).to_vec();
    match framing {
        Framing::Empty => Ok((Vec::new(), true)),
        Framing::UntilClose => Ok((cap(raw), false)),
        Framing::Length(n) => {
            let have = raw.get(..n).unwrap_or(raw);
            Ok((cap(have), raw.len() >= n))
        }
        Framing::Chunked => dechunk(raw),
    }
}

/// RFC 9112 section 7.1: `size[;ext] CRLF data CRLF ... 0 CRLF`. Trailers are not read.
fn dechunk(mut raw: &[u8]) -> Result<(Vec<u8>, bool), ProbeError> {
    let mut out = Vec::new();
    loop {
        let (used, size) = match httparse::parse_chunk_size(raw) {
            Ok(httparse::Status::Complete(c)) => c,
            Ok(httparse::Status::Partial) => return Ok((out, false)),
            Err(_) => return Err(ProbeError::Http("bad chunk size".into())),
        };
        if size == 0 {
            return Ok((out, true));
        }
        raw = raw.get(used..).unwrap_or_default();
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let data = raw.get(..size).unwrap_or(raw);
        out.extend_from_slice(data);
        if out.len() >= BODY_MAX {
            out.truncate(BODY_MAX);
            return Ok((out, false));
        }
        match raw.get(size..size.saturating_add(2)) {
            Some(b"\r\n") => raw = raw.get(size + 2..).unwrap_or_default(),
            Some(_) => return Err(ProbeError::Http("chunk not followed by CRLF".into())),
            None => return Ok((out, false)),
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        assert_eq!(
            request("/healthz", "a.example:8080"),
            b"GET /healthz HTTP/1.1\r\nHost: a.example:8080\r\nUser-Agent: director-health\r\n\
              Accept: */*\r\nConnection: close\r\n\r\n"
                .to_vec()
        );
        assert!(request("", "h").starts_with(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(
            h,
            Some(Head {
                status: 200,
                len: 38,
                framing: Framing::Length(5)
            })
        );
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
        );
        assert_eq!(h.unwrap().map(|h| h.framing), Some(Framing::Chunked));
        let h = parse_head(b"HTTP/1.0 503 Busy\r\n\r\n").unwrap();
        assert_eq!(
            h.map(|h| (h.status, h.framing)),
            Some((503, Framing::UntilClose))
        );
        let h = parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert_eq!(h.map(|h| h.framing), Some(Framing::Empty));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nX: y\r\n").unwrap(), None);
        assert!(parse_head(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[test]
    fn bodies() {
        assert_eq!(
            decoded_body(Framing::Length(5), b"hel").unwrap(),
            (b"hel".to_vec(), false)
        );
        assert_eq!(
            decoded_body(Framing::Length(5), b"hello, extra").unwrap(),
            (b"hello".to_vec(), true)
        );
        let chunked = b"4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n";
        assert_eq!(
            decoded_body(Framing::Chunked, chunked).unwrap(),
            (b"Wikipedia ".to_vec(), true)
        );
        for cut in 0..chunked.len() {
            let (body, complete) = decoded_body(Framing::Chunked, &chunked[..cut]).unwrap();
            assert!(b"Wikipedia ".starts_with(&body), "cut {cut}: {body:?}");
            assert!(!complete || cut >= chunked.len() - 2, "cut {cut}");
        }
        assert!(decoded_body(Framing::Chunked, b"zz\r\n").is_err());
        assert!(decoded_body(Framing::Chunked, b"2\r\nabXX").is_err());
        let big = vec![b'a'; BODY_MAX + 10];
        assert_eq!(
            decoded_body(Framing::UntilClose, &big).unwrap().0.len(),
            BODY_MAX
        );
    }

    #[test]
    fn needle() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(!contains(b"o k", b"ok"));
        assert!(contains(b"", b""));
    }
}
