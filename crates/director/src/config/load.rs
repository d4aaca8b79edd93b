//! Reading the file and parsing YAML, turning every failure into a located [`Diagnostic`].
//!
//! Hostile input is bounded before it can cost anything: the file size is capped, UTF-8 is
//! checked here (serde-saphyr would say only "IO error"), and the parser runs with an explicit
//! budget (nodes, depth, aliases, documents), so an alias bomb or deep nesting fails fast.
//!
//! The limits are sized for real IPVS tables: a 10,000-service x 10-real-server file (about
//! 5 MB, 600,000 YAML nodes with one flow mapping per real server) loads with room to spare;
//! docs/configuration.md ("Limits") gives the measured times and memory.

use std::path::Path;

use serde_saphyr::{Budget, Error as YamlError, Options};

use super::keys::check_keys;
use super::schema::RawConfig;
use super::validate::validate;
use super::{Config, ConfigError, Diagnostic};

/// Largest accepted file: 32 MiB, over 5x a 10,000 x 10 table written one real server a line.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Largest number of YAML nodes (scalars and collections, aliases replayed): 5x the ~800,000
/// of a 10,000 x 10 table with address, port and weight on every real server. It also bounds
/// what an alias bomb can expand to.
pub const MAX_NODES: usize = 4_000_000;

/// Deepest nesting: the schema needs 6 (top, list, service, list, real server, tunnel).
pub const MAX_DEPTH: usize = 24;

/// Reads, parses and validates `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let fail = |message: String, hint: &str| {
        ConfigError::new(
            path,
            vec![Diagnostic::file(message, Some(hint.to_string()))],
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        fail(
            format!("cannot read the file: {e}"),
            "check the path given with -c",
        )
    })?;
    if meta.is_dir() {
        return Err(fail(
            "is a directory, not a configuration file".into(),
            "give the path of the YAML file with -c",
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(fail(
            format!(
                "the file is {} bytes, more than the limit of {MAX_FILE_BYTES}",
                meta.len()
            ),
            "a configuration file is a few KiB; is this the right file?",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        fail(
            format!("cannot read the file: {e}"),
            "check the path and its permissions",
        )
    })?;
    parse(path, &bytes)
}

/// Parses and validates file content; `path` only names the file in diagnostics.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Config, ConfigError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::new(
            path,
            vec![Diagnostic::file(
                format!("the file is more than {MAX_FILE_BYTES} bytes"),
                None,
            )],
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, col) = position_of(bytes, e.valid_up_to());
            return Err(ConfigError::new(
                path,
                vec![Diagnostic::at(
                    line,
                    col,
                    "invalid UTF-8",
                    Some("save the file as UTF-8".into()),
                )],
            ));
        }
    };
    if text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    }) {
        return Err(ConfigError::new(
            path,
            vec![Diagnostic::file(
                "the file is empty",
                Some(
                    "a configuration needs an `instances:` list; see docs/configuration.md".into(),
                ),
            )],
        ));
    }
    // Every unknown or duplicate key at once (serde would stop at the first), reported together
    // with the value errors: deserializing ignores unknown keys and keeps the first of
    // duplicates, so validation still sees the rest of the file.
    let mut diags = check_keys(text);
    match serde_saphyr::from_str_with_options::<RawConfig>(text, options()) {
        Err(e) => {
            let d = yaml_diagnostic(&e);
            diags.push(tab_indentation(text, &d).unwrap_or(d));
        }
        Ok(raw) => match validate(raw) {
            Ok(config) if diags.is_empty() => return Ok(config),
            Ok(_) => {}
            Err(d) => diags.extend(d),
        },
    }
    Err(ConfigError::new(path, diags))
}

/// The parser reports a tab used as indentation one line early: point at the tab itself.
fn tab_indentation(text: &str, d: &Diagnostic) -> Option<Diagnostic> {
    if !d.message.contains("tab") {
        return None;
    }
    text.lines().enumerate().find_map(|(i, line)| {
        let indent: &str = &line[..line.len() - line.trim_start().len()];
        let col = indent.find('\t')?;
        Some(Diagnostic::at(
            u64::try_from(i + 1).unwrap_or(u64::MAX),
            u64::try_from(col + 1).unwrap_or(u64::MAX),
            "a tab is used for indentation",
            Some("YAML indents with spaces only: replace the tab".into()),
        ))
    })
}

/// Parser options: a budget sized for large IPVS tables and no more.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_reader_input_bytes = Some(MAX_FILE_BYTES as usize);
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_events = 2 * MAX_NODES;
    budget.max_aliases = 1_000;
    // What one anchor may hold: a shared pool of real servers is a few hundred events; an
    // alias bomb's nested anchors pass this at once instead of expanding to MAX_NODES.
    budget.max_recorded_anchor_events = 250_000;
    budget.max_anchors = 1_000;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES as usize;
    budget.max_merge_keys = 100;
    let mut o = Options::default();
    o.budget = Some(budget);
    // `keys` reports every duplicate; deserializing keeps the first and goes on.
    o.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::FirstWins;
    o.with_snippet = false;
    o
}

/// 1-based line and column (in characters) of byte `offset`, whose prefix is valid UTF-8.
fn position_of(bytes: &[u8], offset: usize) -> (u64, u64) {
    let prefix = bytes.get(..offset).unwrap_or(bytes);
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = String::from_utf8_lossy(prefix.get(line_start..).unwrap_or(&[]))
        .chars()
        .count()
        + 1;
    (
        u64::try_from(line).unwrap_or(u64::MAX),
        u64::try_from(col).unwrap_or(u64::MAX),
    )
}

/// Turns a serde-saphyr error into a diagnostic with our wording and a hint.
fn yaml_diagnostic(e: &YamlError) -> Diagnostic {
    let (message, hint) = match e {
        YamlError::WithSnippet { error, .. } => return yaml_diagnostic(error),
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            let hint = match nearest(field, expected) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("valid keys here: {}", expected.join(", ")),
            };
            (format!("unknown key `{field}`"), Some(hint))
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!("unknown value `{variant}`"),
            Some(format!("expected one of: {}", expected.join(", "))),
        ),
        YamlError::SerdeMissingField { field, .. } => (
            format!("missing required key `{field}`"),
            Some(format!("add `{field}:` to this mapping")),
        ),
        YamlError::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_string(),
            },
            Some("each key may appear once in a mapping: remove one".into()),
        ),
        YamlError::Budget { breach, .. } => (
            format!("the document is too large or too deeply nested ({breach:?})"),
            Some("a configuration needs no deep nesting and no alias expansion".into()),
        ),
        YamlError::InvalidScalar { ty, .. } => invalid_scalar(ty),
        YamlError::Eof { .. } => (
            "unexpected end of the document".to_string(),
            Some("a configuration needs an `instances:` list".into()),
        ),
        // Alias replay wraps the budget error in context: detect it by its text.
        other if other.to_string().contains("budget breached") => (
            "the document is too large or too deeply nested (alias expansion)".to_string(),
            Some("a configuration needs no deep nesting and no alias expansion".into()),
        ),
        other => (strip_location(&other.to_string(), other), None),
    };
    match e.location() {
        Some(loc) if loc.line() > 0 => Diagnostic::at(loc.line(), loc.column(), message, hint),
        _ => Diagnostic::file(message, hint),
    }
}

/// "expected a whole number here (write ...)" for a scalar of the wrong type.
fn invalid_scalar(ty: &str) -> (String, Option<String>) {
    let (what, hint) = match ty {
        "bool" | "boolean" => ("true or false", "write true or false"),
        t if t.starts_with('i') || t.starts_with('u') => {
            ("a whole number", "write a number in range, e.g. 51")
        }
        _ => (
            "a value of another type",
            "see docs/configuration.md for this key",
        ),
    };
    (format!("expected {what} here"), Some(hint.to_string()))
}

/// serde-saphyr appends " at line L, column C": we print the location in front instead.
fn strip_location(text: &str, e: &YamlError) -> String {
    if let Some(loc) = e.location() {
        let suffix = format!(" at line {}, column {}", loc.line(), loc.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            return stripped.to_string();
        }
    }
    text.to_string()
}

/// The valid key closest to `word` by edit distance, if it is close enough to be a typo.
pub(super) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_and_nearest() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("priorty", "priority"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let keys = ["priority", "preempt", "preempt_delay", "version"];
        assert_eq!(nearest("priorty", &keys), Some("priority"));
        assert_eq!(nearest("premept", &keys), Some("preempt"));
        assert_eq!(nearest("zzzzzz", &keys), None);
    }

    #[test]
    fn position_counts_lines_and_characters() {
        let bytes = b"ab\nc\xc3\xa9\xff";
        assert_eq!(position_of(bytes, 0), (1, 1));
        assert_eq!(position_of(bytes, 3), (2, 1));
        assert_eq!(position_of(bytes, 6), (2, 3));
    }

    #[test]
    fn invalid_utf8_is_located() {
        let bytes = b"instances:\n  - name: a\xff\n";
        let err = parse(Path::new("f.yaml"), bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml:2:12: invalid UTF-8 (save the file as UTF-8)"
        );
    }

    #[test]
    fn tab_indentation_is_located_at_the_tab() {
        let err = parse(
            Path::new("t.yaml"),
            b"instances:\n  - name: a\n\tinterface: e\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml:3:1: a tab is used for indentation (YAML indents with spaces only: replace the tab)"
        );
    }

    #[test]
    fn alias_bomb_is_stopped_quickly() {
        let mut y = String::from("zz:\n a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            y.push_str(&format!(
                 " l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let start = std::time::Instant::now();
        let err = parse(Path::new("bomb.yaml"), y.as_bytes()).unwrap_err();
        // The expansion is 10^10 nodes (hours); the node limit stops it after 4 M. The bound
        // only tells the two apart: a loaded 2-core CI host once took over 2 s for the 4 M.
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
        assert!(
            err.to_string().contains("too large or too deeply nested"),
            "{err}"
        );
    }
}
