//! `director check`'s loader on arbitrary input: never a panic, never a hang, and an error always
//! names the file. Random bytes, and mutations (byte flips, truncations, splices) of two valid
//! files: one of VRRP instances, and the DR pair example (virtual services, real servers,
//! `ipvs:` settings).

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

const VALID: &str = include_str!("fixtures/config/valid.yaml");
const SERVICES: &str = include_str!("../../../deploy/examples/lvs-dr-pair.yaml");

/// `base` with bytes flipped, cut after `cut` bytes (at least 1), and `splice` inserted.
fn mutate(
    base: &str,
    flips: Vec<(usize, u8)>,
    cut: usize,
    splice_at: usize,
    splice: &str,
) -> Vec<u8> {
    let mut b = base.as_bytes().to_vec();
    for (i, v) in flips {
        if let Some(x) = b.get_mut(i % base.len()) {
            *x = v;
        }
    }
    b.truncate((cut % base.len()).max(1));
    let at = (splice_at % base.len()).min(b.len());
    b.splice(at..at, splice.bytes());
    b
}

/// Writes `bytes` to a temp file and runs `director check -c` on it: Ok when it exits 0, or 64
/// with stderr starting with the file name, within 5 s; Err otherwise (a panic exits 101).
fn parse(bytes: &[u8]) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("director-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = dir.join(format!("f{n}.yaml"));
    std::fs::write(&p, bytes).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_director"))
        .args(["check", "-c"])
        .arg(&p)
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&p);
    if start.elapsed() > Duration::from_secs(5) {
        return Err(format!("took {:?}", start.elapsed()));
    }
    match out.status.code() {
        Some(0) => Ok(()),
        Some(64) => {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.starts_with(&p.display().to_string()) {
                Ok(())
            } else {
                Err(format!("error does not name the file: {err}"))
            }
        }
        other => Err(format!(
            "exit {other:?} (a panic is 101): {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert_eq!(parse(&bytes), Ok(()));
    }

    #[test]
    fn mutated_valid_file(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
        splice_at in any::<usize>(),
        splice in "[ -~\t\n\\[\\]{}:&*!|>-]{0,40}",
    ) {
        prop_assert_eq!(parse(&mutate(VALID, flips, cut, splice_at, &splice)), Ok(()));
    }

    #[test]
    fn mutated_services_file(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
        splice_at in any::<usize>(),
        splice in "[ -~\t\n\\[\\]{}:&*!|>-]{0,40}",
    ) {
        prop_assert_eq!(parse(&mutate(SERVICES, flips, cut, splice_at, &splice)), Ok(()));
    }
}

#[test]
fn the_valid_file_itself_passes() {
    assert_eq!(parse(VALID.as_bytes()), Ok(()));
    assert_eq!(parse(SERVICES.as_bytes()), Ok(()));
    assert!(Path::new(env!("CARGO_BIN_EXE_director")).exists());
}
