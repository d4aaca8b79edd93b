//! Operator drains (`director drain SERVICE REALSERVER` / `undrain`): the real servers that keep
//! weight 0 until undrained, across reloads and restarts. Kept in one small JSON file, written
//! whole to a temporary file and renamed over the old one, so a crash mid-write leaves either
//! the old set or the new one, never half of either:
//!
//! ```json
//! {"version":1,"drains":[{"service":"tcp:10.0.0.1:80","real_server":"10.0.0.11:80"}]}
//! ```
//!
//! Names are spelled as `crate::target` prints them. An unreadable or malformed file is an error
//! at start (the daemon refuses to guess which real servers an operator took out); a missing
//! file is an empty set.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use ipvs::{DestKey, ServiceKey};
use serde::{Deserialize, Serialize};

use crate::target::{parse_dest, parse_service, DestName, ServiceName};

/// Default directory of the daemon's persistent state.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/director";
/// The drains file's name inside the state directory.
pub const FILE_NAME: &str = "drains.json";

/// The file's format version.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct FileDoc {
    version: u32,
    drains: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    service: String,
    real_server: String,
}

/// The drained real servers and the file that keeps them.
#[derive(Debug)]
pub struct Drains {
    path: PathBuf,
    set: BTreeSet<(ServiceKey, DestKey)>,
}

impl Drains {
    /// Reads `dir/drains.json` (a missing file is an empty set).
    pub fn load(dir: &Path) -> Result<Drains, String> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Drains {
                    path,
                    set: BTreeSet::new(),
                })
            }
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        let doc: FileDoc = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a drains file: {e}", path.display()))?;
        if doc.version != VERSION {
            return Err(format!(
                "{}: version {} (this director reads version {VERSION})",
                path.display(),
                doc.version
            ));
        }
        let mut set = BTreeSet::new();
        for (i, e) in doc.drains.iter().enumerate() {
            let svc = parse_service(&e.service)
                .map_err(|m| format!("{}: entry {}: {m}", path.display(), i + 1))?;
            let dest = parse_dest(&e.real_server, &svc)
                .map_err(|m| format!("{}: entry {}: {m}", path.display(), i + 1))?;
            set.insert((svc, dest));
        }
        Ok(Drains { path, set })
    }

    /// Every drain, ordered.
    pub fn iter(&self) -> impl Iterator<Item = &(ServiceKey, DestKey)> {
        self.set.iter()
    }

    /// Adds (`on`) or removes a drain and writes the file; returns whether the set changed. On
    /// a write error the set is left as it was.
    pub fn set(&mut self, service: ServiceKey, dest: DestKey, on: bool) -> io::Result<bool> {
        let mut next = self.set.clone();
        let changed = if on {
            next.insert((service, dest))
        } else {
            next.remove(&(service, dest))
        };
        if changed {
            write(&self.path, &next)?;
            self.set = next;
        }
        Ok(changed)
    }
}

fn write(path: &Path, set: &BTreeSet<(ServiceKey, DestKey)>) -> io::Result<()> {
    let doc = FileDoc {
        version: VERSION,
        drains: set
            .iter()
            .map(|(s, d)| FileEntry {
                service: ServiceName(*s).to_string(),
                real_server: DestName(*d).to_string(),
            })
            .collect(),
    };
    let text = serde_json::to_string(&doc).map_err(io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n")?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "director-drains-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn survives_a_restart_and_undrains() {
        let d = dir();
        let svc = parse_service("tcp:10.0.0.1:80").unwrap();
        let rs = parse_dest("10.0.0.11", &svc).unwrap();
        let mut a = Drains::load(&d).unwrap();
        assert_eq!(a.iter().count(), 0);
        assert!(a.set(svc, rs, true).unwrap());
        assert!(
            !a.set(svc, rs, true).unwrap(),
            "draining twice changes nothing"
        );
        let b = Drains::load(&d).unwrap();
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            [&(svc, rs)],
            "the drain is read back after a restart"
        );
        let mut b = b;
        assert!(b.set(svc, rs, false).unwrap());
        assert_eq!(Drains::load(&d).unwrap().iter().count(), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_malformed_file_is_refused_with_its_name() {
        let d = dir();
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(FILE_NAME),
            r#"{"version":1,"drains":[{"service":"tcp:nowhere","real_server":"1.2.3.4"}]}"#,
        )
        .unwrap();
        let e = Drains::load(&d).unwrap_err();
        assert!(e.contains("drains.json: entry 1"), "{e}");
        std::fs::write(d.join(FILE_NAME), "{").unwrap();
        assert!(Drains::load(&d).unwrap_err().contains("not a drains file"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
