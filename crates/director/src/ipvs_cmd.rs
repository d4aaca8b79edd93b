//! `director ipvs save|restore|list`: the kernel's IPVS table in ipvsadm's formats.
//!
//! Data flow (`/work/shared/design.md`): `restore` reads stdin, parses every line with
//! `ipvs::ipvsadm::parse` (nothing is sent if any line is bad), then sends all operations as one
//! pipelined batch on one netlink connection and reports each refused operation with its line.
//! `save` and `list` take one snapshot of the table and print it as `ipvsadm -Sn` / `-Ln` would.
//! Start-up stays lean: no runtime or socket exists before the input is parsed, and the runtime is
//! a current-thread one.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use ipvs::ipvsadm::{self, Layout, ListOptions, Parsed};

/// `director ipvs ...`
#[derive(Debug, Subcommand)]
pub enum IpvsCmd {
    /// Print the table as `ipvsadm -Sn` does (byte-identical).
    Save,
    /// Apply `ipvsadm -R` input from stdin as one pipelined batch; nothing is applied from input
    /// that does not parse. Exits non-zero if any operation fails, naming its line.
    Restore {
        /// Parse and print the operations, one per line with its line number; apply nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the table as `ipvsadm -Ln` does (numeric), or as JSON.
    List(ListArgs),
}

/// Options of `director ipvs list`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("layout").args(["stats", "rate", "thresholds", "persistent_conn", "tun_info", "json"])))]
pub struct ListArgs {
    /// Counters: connections, packets and bytes (`ipvsadm -Ln --stats`).
    #[arg(long)]
    stats: bool,
    /// Rates: connections, packets and bytes per second (`ipvsadm -Ln --rate`).
    #[arg(long)]
    rate: bool,
    /// Upper and lower connection thresholds (`ipvsadm -Ln --thresholds`).
    #[arg(long)]
    thresholds: bool,
    /// Persistent connections (`ipvsadm -Ln --persistent-conn`).
    #[arg(long)]
    persistent_conn: bool,
    /// Tunnel type, port and checksum flags (`ipvsadm -Ln --tun-info`).
    #[arg(long)]
    tun_info: bool,
    /// Counters printed whole instead of scaled to K/M/G/T (`ipvsadm -Ln --exact`).
    #[arg(long, short = 'X')]
    exact: bool,
    /// The table as JSON: `{"version", "conn_tab_size", "services": [...]}`, services and real
    /// servers in ipvsadm's order.
    #[arg(long)]
    json: bool,
}

impl ListArgs {
    fn layout(&self) -> Layout {
        if self.stats {
            Layout::Stats
        } else if self.rate {
            Layout::Rate
        } else if self.thresholds {
            Layout::Thresholds
        } else if self.persistent_conn {
            Layout::PersistentConn
        } else if self.tun_info {
            Layout::TunInfo
        } else {
            Layout::Default
        }
    }
}

/// Runs one `director ipvs` subcommand.
pub fn run(cmd: IpvsCmd) -> ExitCode {
    let result = match cmd {
        IpvsCmd::Save => save(),
        IpvsCmd::Restore { dry_run } => restore(dry_run),
        IpvsCmd::List(args) => list(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("director ipvs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to stdout in one go; a closed pipe (`| head`) is not an error.
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Phase timings printed to stderr when `DIRECTOR_TIMINGS` is set (for the benchmark's "where
/// does the time go"); otherwise a no-op that reads no clock.
pub(crate) struct Phases {
    last: Option<std::time::Instant>,
    parts: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn new() -> Self {
        let on = std::env::var_os("DIRECTOR_TIMINGS").is_some();
        Phases {
            last: on.then(std::time::Instant::now),
            parts: Vec::new(),
        }
    }

    /// Ends the phase called `name`.
    pub(crate) fn mark(&mut self, name: &'static str) {
        if let Some(last) = self.last {
            let now = std::time::Instant::now();
            self.parts.push((name, now - last));
            self.last = Some(now);
        }
    }

    fn report(&self, cmd: &str) {
        if self.last.is_some() {
            let parts: Vec<String> = self
                .parts
                .iter()
                .map(|(n, d)| format!("{n} {:.1} ms", d.as_secs_f64() * 1e3))
                .collect();
            eprintln!("director ipvs {cmd}: timings: {}", parts.join(", "));
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?)
}

fn save() -> anyhow::Result<ExitCode> {
    let mut ph = Phases::new();
    let rt = runtime()?;
    ph.mark("runtime");
    let table = rt.block_on(kernel::snapshot(&mut ph))?;
    // Formatted and written in chunks (`write_save`), never the whole text at once.
    let mut out = io::stdout().lock();
    match ipvsadm::write_save(&table, &mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    ph.mark("format+print");
    ph.report("save");
    Ok(ExitCode::SUCCESS)
}

fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let (info, table) = runtime()?.block_on(kernel::info_and_snapshot())?;
    if args.json {
        let sorted = ipvsadm::sort_table(&table);
        let v = serde_json::json!({
            "version": info.version_string(),
            "conn_tab_size": info.conn_tab_size,
            "services": sorted.services,
        });
        let mut text = serde_json::to_string_pretty(&v)?;
        text.push('\n');
        print(&text)?;
    } else {
        let opts = ListOptions {
            layout: args.layout(),
            exact: args.exact,
        };
        print(&ipvsadm::list(&info, &table, opts))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn restore(dry_run: bool) -> anyhow::Result<ExitCode> {
    let mut ph = Phases::new();
    let mut bytes = Vec::new();
    if let Err(e) = io::stdin().lock().read_to_end(&mut bytes) {
        eprintln!("director ipvs restore: reading stdin: {e}");
        return Ok(ExitCode::from(2));
    }
    // Bytes, not a String: a line that is not text is a bad line with its number, like any other.
    let (input, not_text) = text_of(bytes);
    ph.mark("read");
    // A large input is parsed in two halves, the second on another thread; meanwhile this thread
    // also sets up the runtime and the connection (family resolution). The second half is
    // numbered from 1 and shifted once the first half's line count is known (counted here while
    // the other thread already parses). Nothing is sent before every line has parsed.
    let (first, second) = split_half(&input);
    let (parsed, setup) = std::thread::scope(|s| {
        let other = (!second.is_empty()).then(|| s.spawn(|| ipvsadm::parse_at(second, 1)));
        let setup = (!dry_run && not_text.is_empty()).then(|| -> anyhow::Result<_> {
            let rt = runtime()?;
            let conn = rt.block_on(ipvs::Conn::connect())?;
            Ok((rt, conn))
        });
        let mine = ipvsadm::parse_at(first, 1);
        let first_lines = ipvsadm::count_byte(first.as_bytes(), b'\n');
        let theirs = other.map(|h| h.join());
        (join_parsed(mine, theirs, first_lines), setup)
    });
    let parsed: Parsed = match with_not_text(parsed, not_text) {
        Ok(ops) => ops,
        Err(errors) => {
            let n = errors.len();
            for err in &errors {
                eprintln!("director ipvs restore: stdin: {err}");
            }
            eprintln!(
                "director ipvs restore: {n} bad line{}: nothing applied",
                if n == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(2));
        }
    };
    ph.mark("parse+connect");
    if dry_run {
        let mut text = String::with_capacity(parsed.ops.len() * 48);
        for (line, op) in parsed.lines.iter().zip(&parsed.ops) {
            text.push_str(&format!("line {line}: {op}\n"));
        }
        print(&text)?;
        ph.mark("print");
        ph.report("restore --dry-run");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(setup) = setup else {
        anyhow::bail!("no connection was set up");
    };
    let (rt, conn) = setup?;
    let Parsed { ops, lines } = parsed;
    let failures = rt.block_on(kernel::apply(conn, &lines, &ops, &mut ph))?;
    ph.report("restore");
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for f in &failures {
        eprintln!("director ipvs restore: {f}");
    }
    eprintln!(
        "director ipvs restore: {} of {} operations failed; the others were applied",
        failures.len(),
        ops.len()
    );
    Ok(ExitCode::FAILURE)
}

/// The input as text, and one error per line that is not UTF-8 (ipvsadm's format is ASCII): such
/// a line is blanked in the text, so that every other line keeps its number and is still checked.
/// Valid input (the usual case) is validated once and moved, never copied.
fn text_of(bytes: Vec<u8>) -> (String, Vec<ipvsadm::LineError>) {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => return (text, Vec::new()),
        Err(e) => e.into_bytes(),
    };
    let mut text = String::with_capacity(bytes.len());
    let mut errors = Vec::new();
    for (idx, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if idx > 0 {
            text.push('\n');
        }
        match std::str::from_utf8(line) {
            Ok(l) => text.push_str(l),
            Err(e) => {
                let at = e.valid_up_to();
                let byte = line.get(at).copied().unwrap_or_default();
                errors.push(ipvsadm::LineError {
                    line: idx + 1,
                    message: format!(
                        "not text: byte 0x{byte:02x} at column {} is not UTF-8 (the format is ASCII)",
                        at + 1
                    ),
                });
            }
        }
    }
    (text, errors)
}

/// The parse result with the lines that were not text added in line order: any of them makes the
/// whole input bad.
fn with_not_text(
    parsed: Result<Parsed, Vec<ipvsadm::LineError>>,
    not_text: Vec<ipvsadm::LineError>,
) -> Result<Parsed, Vec<ipvsadm::LineError>> {
    if not_text.is_empty() {
        return parsed;
    }
    let mut errors = parsed.err().unwrap_or_default();
    errors.extend(not_text);
    errors.sort_by_key(|e| e.line);
    Err(errors)
}

/// Below this size the input is parsed on one thread.
const SPLIT_AT_BYTES: usize = 64 << 10;

/// Splits `text` at the line boundary nearest its middle: (first part, second part); the first
/// part ends with a newline. Small texts are not split.
fn split_half(text: &str) -> (&str, &str) {
    if text.len() < SPLIT_AT_BYTES {
        return (text, "");
    }
    let mid = text.len() / 2;
    let cut = text
        .as_bytes()
        .get(mid..)
        .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
        .map_or(text.len(), |p| mid + p + 1);
    text.split_at(cut)
}

/// Joins the results of the two halves: every op in order, or every bad line of both. The second
/// half was numbered from line 1: its lines move down by `shift`, the first half's line count.
fn join_parsed(
    mine: Result<Parsed, ipvsadm::RestoreError>,
    theirs: Option<std::thread::Result<Result<Parsed, ipvsadm::RestoreError>>>,
    shift: usize,
) -> Result<Parsed, Vec<ipvsadm::LineError>> {
    let theirs = match theirs {
        None => Ok(Parsed::default()),
        Some(Ok(Ok(mut p))) => {
            p.lines.iter_mut().for_each(|l| *l += shift);
            Ok(p)
        }
        Some(Ok(Err(mut e))) => {
            e.errors.iter_mut().for_each(|l| l.line += shift);
            Err(e)
        }
        Some(Err(_)) => Err(ipvsadm::RestoreError {
            errors: vec![ipvsadm::LineError {
                line: 0,
                message: "the parser thread panicked".into(),
            }],
        }),
    };
    match (mine, theirs) {
        (Ok(mut a), Ok(b)) => {
            a.append(b);
            Ok(a)
        }
        (a, b) => {
            let mut errors = Vec::new();
            for r in [a, b] {
                if let Err(e) = r {
                    errors.extend(e.errors);
                }
            }
            Err(errors)
        }
    }
}

/// The only place that talks to the kernel (through `ipvs::Conn`).
mod kernel {
    use ipvs::{Conn, Info, Op, Outcome, Table};

    use super::Phases;

    /// One consistent snapshot of the whole table.
    pub(super) async fn snapshot(ph: &mut Phases) -> anyhow::Result<Table> {
        let mut conn = Conn::connect().await?;
        ph.mark("connect");
        let t = conn.snapshot().await?;
        ph.mark("snapshot");
        Ok(t)
    }

    /// The IPVS info (version, connection table size) and one snapshot.
    pub(super) async fn info_and_snapshot() -> anyhow::Result<(Info, Table)> {
        let mut conn = Conn::connect().await?;
        let info = conn.info().await?;
        Ok((info, conn.snapshot().await?))
    }

    /// Applies the operations as one batch; returns one message per refused, unknown or unsent
    /// operation, each starting with `line N:` (`lines[i]` is the line of `ops[i]`).
    pub(super) async fn apply(
        mut conn: Conn,
        lines: &[usize],
        ops: &[Op],
        ph: &mut Phases,
    ) -> anyhow::Result<Vec<String>> {
        let report = conn.apply(ops).await?;
        ph.mark("apply");
        let mut out = Vec::new();
        for (i, outcome) in report.outcomes.iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(0);
            let what = || ops.get(i).map(ToString::to_string).unwrap_or_default();
            match outcome {
                Outcome::Ok => {}
                Outcome::Failed(e) => out.push(format!("line {line}: {e}")),
                Outcome::Unknown => out.push(format!(
                    "line {line}: {}: result unknown (its acknowledgement was lost): check the table with `director ipvs save`",
                    what()
                )),
                Outcome::NotSent => out.push(format!("line {line}: {}: not sent", what())),
                // A later kind of outcome: anything but Ok is reported.
                other => out.push(format!("line {line}: {}: {other:?}", what())),
            }
        }
        if let Some(why) = &report.interrupted {
            out.push(format!("the batch stopped early: {why}"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(n: usize) -> String {
        (0..n)
            .map(|i| format!("-A -t 10.1.{}.{}:80 -s rr\n", i / 250, i % 250 + 1))
            .collect()
    }

    #[test]
    fn halves_parse_to_the_same_ops_with_the_same_line_numbers() {
        let text = rules(5000);
        let (a, b) = split_half(&text);
        assert!(!b.is_empty() && a.ends_with('\n'));
        let joined = join_parsed(
            ipvsadm::parse_at(a, 1),
            Some(Ok(ipvsadm::parse_at(b, 1))),
            a.lines().count(),
        );
        let whole = ipvsadm::parse(&text).ok();
        assert!(whole
            .as_ref()
            .is_some_and(|w| w.lines.last() == Some(&5000)));
        assert_eq!(joined.ok(), whole);
    }

    #[test]
    fn errors_of_both_halves_are_reported_with_their_lines() {
        let mut text = rules(5000);
        text.insert_str(0, "-A -t bad\n");
        text.push_str("-a -t 10.1.0.1:80 -r 10.2.0.1 -w 70000\n");
        let (a, b) = split_half(&text);
        let Err(errors) = join_parsed(
            ipvsadm::parse_at(a, 1),
            Some(Ok(ipvsadm::parse_at(b, 1))),
            ipvsadm::count_byte(a.as_bytes(), b'\n'),
        ) else {
            panic!("bad lines parsed");
        };
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 5002]);
    }

    #[test]
    fn text_is_moved_unchanged() {
        let text = rules(3);
        assert_eq!(text_of(text.clone().into_bytes()), (text, Vec::new()));
    }

    #[test]
    fn lines_that_are_not_utf8_are_bad_lines_with_their_numbers_and_columns() {
        let input =
            b"-A -t 10.1.0.1:80 -s rr\n-A -t 10.1.0.2:80 \xff\xfe\n\n\x80\n-A -t 10.1.0.3:80\n";
        let (text, errors) = text_of(input.to_vec());
        // The bad lines are blank; every other line keeps its place.
        assert_eq!(text, "-A -t 10.1.0.1:80 -s rr\n\n\n\n-A -t 10.1.0.3:80\n");
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "line 2: not text: byte 0xff at column 19 is not UTF-8 (the format is ASCII)",
                "line 4: not text: byte 0x80 at column 1 is not UTF-8 (the format is ASCII)",
            ]
        );
    }

    #[test]
    fn not_text_joins_the_parse_errors_in_line_order() {
        let (text, not_text) = text_of(b"-A -t bad\n\xc3\n-A -t 10.1.0.1:0\n".to_vec());
        let Err(errors) = with_not_text(ipvsadm::parse(&text).map_err(|e| e.errors), not_text)
        else {
            panic!("bad input parsed");
        };
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3]);
        // Text alone parses as before.
        let (text, none) = text_of(rules(2).into_bytes());
        assert!(with_not_text(ipvsadm::parse(&text).map_err(|e| e.errors), none).is_ok());
    }

    #[test]
    fn small_inputs_are_not_split() {
        let text = rules(10);
        assert_eq!(split_half(&text), (text.as_str(), ""));
    }
}
