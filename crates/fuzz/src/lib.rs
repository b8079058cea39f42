//! Support for Tocsin's fuzz targets, which are proptest property tests (a
//! stable toolchain has no cargo-fuzz; see `docs/ARCHITECTURE.md`).
//!
//! - [`config`]: the run settings every target uses: a short, fixed-seed
//!   pass under `cargo test`, a long random one when `PROPTEST_CASES` is
//!   set, failures kept in the crate's `proptest-regressions/`.
//! - [`seed`] and [`workspace_file`]: the seed corpus, valid inputs the
//!   targets mutate: the files in this crate's `seeds/` and the shipped
//!   files under `deploy/`.
//! - [`mutated_bytes`], [`mutated_text`] and [`mutated_values`]:
//!   strategies that take a seed and edit it, the way a coverage-guided
//!   fuzzer's mutator does, bytes for wire formats and lines and values for
//!   TOML; [`NASTY_VALUES`] is their dictionary of values that tend to break
//!   parsers and arithmetic.
//! - [`wire`]: alerts and acknowledgements as peers send them, valid in
//!   every respect or with fields put out of line.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

pub mod wire;

/// The seed of the short pass, so that `cargo test` is deterministic.
const SHORT_PASS_SEED: u64 = 0x70c5_1a2f_0000_0006;

/// Run settings for a target whose short pass runs `short_cases` cases.
///
/// Under plain `cargo test` the pass is short and its seed fixed, so the
/// suite stays fast and deterministic. Setting `PROPTEST_CASES` makes a
/// long pass with a random seed (or `PROPTEST_RNG_SEED`'s); the other
/// `PROPTEST_*` variables apply as proptest documents. A failure's seed is
/// appended to `regressions`, which is committed and replayed first on every
/// later run.
pub fn config(short_cases: u32, regressions: &'static str) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = short_cases;
        if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
            config.rng_seed = RngSeed::Fixed(SHORT_PASS_SEED);
        }
    }
    if std::env::var_os("PROPTEST_MAX_SHRINK_TIME").is_none() {
        // Shrinking a failure through a real node can take long; a minute
        // of it gives a small enough case.
        config.max_shrink_time = 60_000;
    }
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(regressions)));
    config
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the workspace, by its path from the root, such as
/// `deploy/demo/federation.toml`.
///
/// # Panics
///
/// If the file cannot be read: a missing seed is a broken test set-up.
pub fn workspace_file(path: &str) -> String {
    let full = workspace_root().join(path);
    std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("cannot read seed {}: {e}", full.display()))
}

/// A seed of this crate's `seeds/` directory, by file name.
///
/// # Panics
///
/// If the file cannot be read.
pub fn seed(name: &str) -> String {
    workspace_file(&format!("crates/fuzz/seeds/{name}"))
}

/// Values that tend to break parsers, bounds and date or duration
/// arithmetic, as TOML right-hand sides.
pub const NASTY_VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "255",
    "65536",
    "4294967296",
    "2305843009213693952",
    "9223372036854775807",
    "-9223372036854775808",
    "0.0",
    "-0.0",
    "0.5",
    "1e300",
    "-1e300",
    "1e-300",
    "nan",
    "inf",
    "-inf",
    "true",
    "false",
    "\"\"",
    "\" \"",
    "\"\\u0000\"",
    "\"\\u001b[2J\"",
    "\"x\"",
    "\"TR-MIT\"",
    "\"tr-mit\"",
    "\"0s\"",
    "\"1ns\"",
    "\"18446744073709551615s\"",
    "\"584942417355years\"",
    "\"300000000000years\"",
    "\"1000000years\"",
    "\"1970-01-01T00:00:00Z\"",
    "\"0000-01-01T00:00:00Z\"",
    "\"-0001-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59.999999999Z\"",
    "\"2016-12-31T23:59:60Z\"",
    "\"2015-01-01T00:00:00+23:59\"",
    "\"1985-02-30\"",
    "\"127.0.0.1:0\"",
    "\"[::1]:65535\"",
    "\":\"",
    "\"host:99999\"",
    "\"/\"",
    "\"../../..\"",
    "\"01ARZ3NDEKTSV4RRFFQ69G5FAV\"",
    "\"7ZZZZZZZZZZZZZZZZZZZZZZZZZ\"",
    "\"ZZZZZZZZZZZZZZZZZZZZZZZZZZ\"",
    "[]",
    "[\"\"]",
    "{}",
];

/// One edit of a byte string; positions are picked in proportion to its
/// length when applied.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    /// Flip one bit.
    Flip(Index, u8),
    /// Overwrite one byte.
    Set(Index, u8),
    /// Overwrite a run with a value that sits at an encoding boundary
    /// (varint and length prefixes, signed and unsigned limits).
    Boundary(Index, &'static [u8]),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Remove up to this many bytes.
    Remove(Index, usize),
    /// Repeat a run of up to this many bytes just after itself.
    Duplicate(Index, usize),
    /// Cut the tail off.
    Truncate(Index),
}

const BOUNDARIES: &[&[u8]] = &[
    &[0x00],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0x80, 0x01],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    ],
];

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        2 => (any::<Index>(), select(BOUNDARIES)).prop_map(|(i, b)| ByteEdit::Boundary(i, b)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Remove(i, n)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Duplicate(i, n)),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
    ]
}

impl ByteEdit {
    /// Applies the edit to `data`.
    pub fn apply(&self, data: &mut Vec<u8>) {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match self {
            ByteEdit::Flip(i, bit) => {
                if !data.is_empty() {
                    let k = at(i, data.len());
                    data[k] ^= 1 << bit;
                }
            }
            ByteEdit::Set(i, b) => {
                if !data.is_empty() {
                    let k = at(i, data.len());
                    data[k] = *b;
                }
            }
            ByteEdit::Boundary(i, bytes) => {
                let k = at(i, data.len());
                let end = (k + bytes.len()).min(data.len());
                data.splice(k..end, bytes.iter().copied());
            }
            ByteEdit::Insert(i, bytes) => {
                let k = at(i, data.len() + 1);
                data.splice(k..k, bytes.iter().copied());
            }
            ByteEdit::Remove(i, n) => {
                if !data.is_empty() {
                    let k = at(i, data.len());
                    let end = (k + n).min(data.len());
                    data.drain(k..end);
                }
            }
            ByteEdit::Duplicate(i, n) => {
                if !data.is_empty() {
                    let k = at(i, data.len());
                    let end = (k + n).min(data.len());
                    let run = data[k..end].to_vec();
                    data.splice(end..end, run);
                }
            }
            ByteEdit::Truncate(i) => {
                let k = at(i, data.len() + 1);
                data.truncate(k);
            }
        }
    }
}

/// One to eight byte edits, to apply to bytes made in the test.
pub fn byte_edits() -> impl Strategy<Value = Vec<ByteEdit>> {
    proptest::collection::vec(byte_edit(), 1..8)
}

/// One of `seeds`, changed by one to eight byte edits.
pub fn mutated_bytes(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (select(seeds), proptest::collection::vec(byte_edit(), 1..8)).prop_map(|(mut data, edits)| {
        for e in &edits {
            e.apply(&mut data);
        }
        data
    })
}

/// One edit of a text file, line by line: what a person editing a
/// configuration by hand, or a broken generator, might do to it.
#[derive(Debug, Clone)]
pub enum TextEdit {
    /// Replace the value of a `key = value` line (or a whole line if there
    /// is none) with a value of [`NASTY_VALUES`] or a short random one.
    Value(Index, Replacement),
    /// Remove a line.
    DeleteLine(Index),
    /// Repeat a line just after itself.
    DuplicateLine(Index),
    /// Swap two lines.
    SwapLines(Index, Index),
    /// Insert a line.
    InsertLine(Index, String),
    /// A byte edit anywhere (the result is read as UTF-8, lossily).
    Bytes(ByteEdit),
}

/// Candidate values for a [`TextEdit::Value`]: most of the time one of
/// the kind already there (a date for a date, a duration for a duration),
/// so that the file still parses and the value reaches the code using it.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// Any value.
    pub any: String,
    /// A quoted string.
    pub string: String,
    /// A quoted RFC 3339 date and time, or something close.
    pub date: String,
    /// A quoted duration, or something close.
    pub duration: String,
    /// An integer.
    pub integer: String,
    /// A float.
    pub float: String,
    /// Whether to keep to the kind of the value replaced.
    pub typed: bool,
}

impl Replacement {
    fn for_value(&self, old: &str) -> &str {
        let old = old.trim();
        let digit = |s: &str| s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
        if !self.typed {
            &self.any
        } else if let Some(inner) = old.strip_prefix('"') {
            if digit(inner) && inner.contains('T') && inner.contains(':') {
                &self.date
            } else if digit(inner) && inner.trim_end_matches('"').ends_with(char::is_alphabetic) {
                &self.duration
            } else {
                &self.string
            }
        } else if digit(old) && old.contains(['.', 'e', 'E']) {
            &self.float
        } else if digit(old) {
            &self.integer
        } else {
            &self.any
        }
    }
}

fn nasty(starting: impl Fn(&str) -> bool + 'static) -> impl Strategy<Value = String> {
    select(
        NASTY_VALUES
            .iter()
            .copied()
            .filter(|v| starting(v))
            .collect::<Vec<_>>(),
    )
    .prop_map(str::to_owned)
}

fn integer() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => nasty(|v| v.parse::<i64>().is_ok()),
        1 => "-?[0-9]{1,19}",
    ]
}

fn float() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => nasty(|v| v.parse::<f64>().is_ok() && v.parse::<i64>().is_err()),
        1 => "-?[0-9]{1,20}\\.[0-9]{1,4}(e-?[0-9]{1,3})?",
    ]
}

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => nasty(|v| v.contains('T') && v.contains(':')),
        1 => "\"[+-]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})\"",
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => nasty(|v| v.starts_with("\"") && v[1..].starts_with(|c: char| c.is_ascii_digit()) && v.ends_with(|c: char| c.is_alphabetic() || c == '"') && !v.contains([':', '-', '.'])),
        2 => "\"[0-9]{1,21}(ns|ms|s|m|h|d|days|w|y|years)\"",
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => nasty(|v| v.starts_with('"')),
        1 => "\"[ -~]{0,24}\"",
        1 => "\"\\PC{0,12}\"",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(NASTY_VALUES).prop_map(str::to_owned),
        1 => integer(),
        1 => float(),
        1 => date(),
        1 => duration(),
        1 => string(),
    ]
}

fn replacement() -> impl Strategy<Value = Replacement> {
    (
        (value(), string(), date()),
        (duration(), integer(), float()),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |((any, string, date), (duration, integer, float), typed)| Replacement {
                any,
                string,
                date,
                duration,
                integer,
                float,
                typed,
            },
        )
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,20} = ".prop_flat_map(|k| value().prop_map(move |v| format!("{k}{v}"))),
        select(vec![
            "[[agencies]]",
            "[[steps]]",
            "[[pace]]",
            "[federation]",
            "[deadlines]",
            "[escalation]",
            "[clock]",
            "[limits]",
            "[outbox]",
            "[tls]",
            "[signing]",
            "[steps.alert]",
            "[[steps.alert.subjects]]",
            "[[steps.alert.references]]",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,40}",
    ]
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        8 => (any::<Index>(), replacement()).prop_map(|(i, v)| TextEdit::Value(i, v)),
        1 => any::<Index>().prop_map(TextEdit::DeleteLine),
        1 => any::<Index>().prop_map(TextEdit::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TextEdit::SwapLines(a, b)),
        1 => (any::<Index>(), line()).prop_map(|(i, l)| TextEdit::InsertLine(i, l)),
        1 => byte_edit().prop_map(TextEdit::Bytes),
    ]
}

impl TextEdit {
    /// Applies the edit to `text`.
    pub fn apply(&self, text: &mut String) {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        match self {
            TextEdit::Bytes(edit) => {
                let mut bytes = std::mem::take(text).into_bytes();
                edit.apply(&mut bytes);
                *text = String::from_utf8_lossy(&bytes).into_owned();
                return;
            }
            _ if lines.is_empty() => lines.push(String::new()),
            _ => {}
        }
        let n = lines.len();
        match self {
            TextEdit::Value(i, v) => {
                // A line that sets a key, if there is one; comments and
                // table headers otherwise get the value as a whole line.
                let settings: Vec<usize> = (0..n)
                    .filter(|k| {
                        let l = lines[*k].trim_start();
                        l.contains('=') && !l.starts_with('#')
                    })
                    .collect();
                let k = if settings.is_empty() {
                    i.index(n)
                } else {
                    settings[i.index(settings.len())]
                };
                let l = &mut lines[k];
                *l = match l.split_once('=') {
                    Some((key, old)) => format!("{key}= {}", v.for_value(old)),
                    None => v.any.clone(),
                };
            }
            TextEdit::DeleteLine(i) => {
                lines.remove(i.index(n));
            }
            TextEdit::DuplicateLine(i) => {
                let k = i.index(n);
                let l = lines[k].clone();
                lines.insert(k + 1, l);
            }
            TextEdit::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
            TextEdit::InsertLine(i, l) => lines.insert(i.index(n + 1), l.clone()),
            TextEdit::Bytes(_) => unreachable!("handled above"),
        }
        *text = lines.join("\n");
        text.push('\n');
    }
}

/// One of `seeds` with one to four values changed: the file keeps its
/// shape, so most mutants parse and their values reach the code.
pub fn mutated_values(seeds: Vec<String>) -> impl Strategy<Value = String> {
    (
        select(seeds),
        proptest::collection::vec(
            (any::<Index>(), replacement()).prop_map(|(i, v)| TextEdit::Value(i, v)),
            1..4,
        ),
    )
        .prop_map(|(mut text, edits)| {
            for e in &edits {
                e.apply(&mut text);
            }
            text
        })
}

/// One of `seeds`, changed by one to four text edits of any kind.
pub fn mutated_text(seeds: Vec<String>) -> impl Strategy<Value = String> {
    (select(seeds), proptest::collection::vec(text_edit(), 1..5)).prop_map(|(mut text, edits)| {
        for e in &edits {
            e.apply(&mut text);
        }
        text
    })
}

/// Any text: printable or not, short or long.
pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,200}",
        proptest::collection::vec(any::<u8>(), 0..400)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        proptest::collection::vec(line(), 0..20).prop_map(|l| l.join("\n")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn edits_change_the_seed_and_keep_within_bounds() {
        let mut runner = TestRunner::deterministic();
        let seed = "a = 1\nb = \"two\"\n[c]\nd = 3\n".to_owned();
        let strategy = mutated_text(vec![seed.clone()]);
        let changed = (0..200)
            .filter(|_| strategy.new_tree(&mut runner).unwrap().current() != seed)
            .count();
        assert!(changed > 150, "only {changed} of 200 mutants differ");

        let bytes = mutated_bytes(vec![vec![1, 2, 3]]);
        for _ in 0..200 {
            bytes.new_tree(&mut runner).unwrap().current();
        }
        let i = any::<Index>().new_tree(&mut runner).unwrap().current();
        let mut empty = Vec::new();
        for e in [
            ByteEdit::Flip(i, 3),
            ByteEdit::Set(i, 3),
            ByteEdit::Remove(i, 4),
            ByteEdit::Duplicate(i, 4),
        ] {
            e.apply(&mut empty);
        }
        assert!(empty.is_empty());
    }

    #[test]
    fn a_value_edit_keeps_the_key() {
        let mut runner = TestRunner::deterministic();
        let i = any::<Index>().new_tree(&mut runner).unwrap().current();
        let mut text = "speed = 20000\n".to_owned();
        let nan = |typed| Replacement {
            any: "nan".into(),
            string: "\"s\"".into(),
            date: "\"0000-01-01T00:00:00Z\"".into(),
            duration: "\"1000000years\"".into(),
            integer: "1e300".into(),
            float: "1.5".into(),
            typed,
        };
        TextEdit::Value(i, nan(false)).apply(&mut text);
        assert_eq!(text, "speed = nan\n");
        TextEdit::Value(i, nan(true)).apply(&mut text);
        assert_eq!(text, "speed = nan\n", "nan is not a number's start: any");
        let mut text = "# speed\nspeed = 20000\n".to_owned();
        TextEdit::Value(i, nan(true)).apply(&mut text);
        assert_eq!(text, "# speed\nspeed = 1e300\n");
        let mut text = "at = \"2015-01-01T00:00:00Z\"\n".to_owned();
        TextEdit::Value(i, nan(true)).apply(&mut text);
        assert_eq!(text, "at = \"0000-01-01T00:00:00Z\"\n");
        let mut text = "timeout = \"10s\"\n".to_owned();
        TextEdit::Value(i, nan(true)).apply(&mut text);
        assert_eq!(text, "timeout = \"1000000years\"\n");
    }

    #[test]
    fn the_short_pass_is_deterministic_unless_told_otherwise() {
        if std::env::var_os("PROPTEST_CASES").is_none()
            && std::env::var_os("PROPTEST_RNG_SEED").is_none()
        {
            let c = config(7, "/dev/null");
            assert_eq!(c.cases, 7);
            assert_eq!(c.rng_seed, RngSeed::Fixed(SHORT_PASS_SEED));
        }
    }
}
