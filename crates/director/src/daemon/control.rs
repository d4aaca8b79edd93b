//! The status socket's server side (the protocol is documented in `crate::status`).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

use super::Running;
use crate::status::{Reply, Request};

/// Binds the socket: creates the parent directory, replaces a stale socket file (one nobody
/// answers on), refuses to steal a live daemon's socket, and sets mode 0600.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another daemon answers on {} (stop it, or pick another status_socket)",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Accepts connections until the task is aborted; each is served on its own task.
pub async fn serve(listener: UnixListener, running: Arc<Mutex<Running>>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let running = running.clone();
                tokio::spawn(async move {
                    if let Err(e) = one(stream, running).await {
                        tracing::debug!(error = %e, "status socket client");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "status socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection: one request line (at most 1 KiB, within 2 s), one reply line.
async fn one(stream: UnixStream, running: Arc<Mutex<Running>>) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(rd.take(1024));
    tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request within 2 s"))??;
    let reply = match Request::parse(line.trim()) {
        Ok(Request::Status) => {
            let doc = running.lock().await.status_doc();
            serde_json::to_string(&doc).map_err(io::Error::other)?
        }
        Ok(Request::Claim(name)) => {
            let h = running.lock().await.handle(&name);
            reply(match h {
                Ok(h) => super::claim(&h).await,
                Err(e) => Err(e),
            })
        }
        Ok(Request::Release(name)) => {
            let h = running.lock().await.handle(&name);
            reply(match h {
                Ok(h) => super::release(&h).await,
                Err(e) => Err(e),
            })
        }
        Ok(Request::Drain(service, rs)) | Ok(Request::Undrain(service, rs)) => {
            let on = line.trim_start().starts_with("drain");
            let engine = running.lock().await.engine().clone();
            reply(engine.drain(&service, &rs, on).await)
        }
        Err(e) => reply(Err(e)),
    };
    wr.write_all(reply.as_bytes()).await?;
    wr.write_all(b"\n").await?;
    wr.shutdown().await
}

fn reply(r: Result<(), String>) -> String {
    let r = match r {
        Ok(()) => Reply {
            ok: true,
            error: None,
        },
        Err(e) => Reply {
            ok: false,
            error: Some(e),
        },
    };
    serde_json::to_string(&r).unwrap_or_else(|_| r#"{"ok":false}"#.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn bind_replaces_a_stale_socket_and_refuses_a_live_one() {
        let dir = std::env::temp_dir().join(format!("director-bind-{}", std::process::id()));
        let path = dir.join("sub/d.sock");
        rt().block_on(async {
            // Parent directory created, mode 0600.
            let first = bind(&path).expect("first bind");
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("socket")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            // A live daemon answers: refused, its socket file untouched.
            let err = bind(&path).expect_err("live socket must not be stolen");
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
            assert!(err.to_string().contains("another daemon answers"), "{err}");
            // The daemon died (listener dropped, file left behind): replaced.
            drop(first);
            assert!(path.exists());
            let _second = bind(&path).expect("stale socket replaced");
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
