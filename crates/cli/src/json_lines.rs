//! Files of one JSON object per line (`watchlist import`, `screen --file`):
//! read one line at a time, blank lines skipped, every problem named by
//! the file and the line's number; and the index a node's refusal of a
//! batch names, to turn it back into a line number.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;

/// The longest line read, newline excluded: a node takes no request over
/// its `max_message_bytes` (1 MiB unless configured), so a longer line
/// could never be sent, and reading it whole could exhaust memory.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// The objects of `file`, each with its line number (from 1), read one
/// line at a time. A line that cannot be read or parsed, or is longer than
/// [`MAX_LINE_BYTES`], is an error naming the file and the line:
/// `"bad.jsonl line 4: ..."`. Nothing is read after the first line that
/// cannot be read.
pub(crate) fn read<T: DeserializeOwned>(
    file: &Path,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<(usize, T)>>> {
    let name = file.display().to_string();
    let reader =
        BufReader::new(std::fs::File::open(file).with_context(|| format!("cannot read {name}"))?);
    let lines = Lines {
        reader,
        number: 0,
        done: false,
    };
    Ok(lines.filter_map(move |line| {
        let (n, line) = match line {
            Ok(l) => l,
            Err((n, e)) => return Some(Err(anyhow::anyhow!("{name} line {n}: {e}"))),
        };
        if line.trim().is_empty() {
            return None;
        }
        Some(
            serde_json::from_str::<T>(&line)
                .map(|v| (n, v))
                .map_err(|e| anyhow::anyhow!("{name} line {n}: {e}")),
        )
    }))
}

/// The lines of a reader with their numbers, none longer than
/// [`MAX_LINE_BYTES`]; `BufRead::lines` would read a line of any length.
struct Lines<R> {
    reader: R,
    number: usize,
    done: bool,
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<(usize, String), (usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.number += 1;
        let n = self.number;
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut line);
        let problem = match read {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                if line.len() > MAX_LINE_BYTES {
                    format!("longer than {MAX_LINE_BYTES} bytes")
                } else {
                    match String::from_utf8(line) {
                        Ok(text) => return Some(Ok((n, text))),
                        Err(_) => "not UTF-8".to_owned(),
                    }
                }
            }
            Err(e) => e.to_string(),
        };
        self.done = true;
        Some(Err((n, problem)))
    }
}

/// The index a node's refusal of a batch names in `field`
/// (`"invalid field `entries[3].ref`"` gives 3 for `entries`), if any.
pub(crate) fn index_in(message: &str, field: &str) -> Option<usize> {
    let opening = format!("{field}[");
    let rest = &message[message.find(&opening)? + opening.len()..];
    rest[..rest.find(']')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_numbers_and_blank_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "{\"a\": 1}\n\n{\"a\": 2}\n{oops\n").unwrap();
        let got: Vec<_> = read::<serde_json::Value>(&path).unwrap().collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap().0, 1);
        assert_eq!(got[1].as_ref().unwrap().0, 3);
        let err = got[2].as_ref().unwrap_err().to_string();
        assert!(err.contains("in.jsonl line 4: "), "{err}");
    }

    #[test]
    fn a_line_too_long_is_refused_by_its_number_and_ends_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let longest = format!("\"{}\"", "x".repeat(MAX_LINE_BYTES - 2));
        let too_long = format!("\"{}\"", "x".repeat(MAX_LINE_BYTES - 1));
        let text = format!("{longest}\r\n{too_long}\n\"after\"\n");
        std::fs::write(&path, text).unwrap();
        let got: Vec<_> = read::<String>(&path).unwrap().collect();
        assert_eq!(got.len(), 2, "nothing is read after the long line");
        assert_eq!(got[0].as_ref().unwrap().0, 1);
        assert_eq!(got[0].as_ref().unwrap().1.len(), MAX_LINE_BYTES - 2);
        let err = got[1].as_ref().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} line 2: longer than {MAX_LINE_BYTES} bytes",
                path.display()
            )
        );
    }

    #[test]
    fn a_line_not_utf8_is_refused_by_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        std::fs::write(&path, b"\"a\"\n\"\xff\"\n").unwrap();
        let got: Vec<_> = read::<String>(&path).unwrap().collect();
        let err = got[1].as_ref().unwrap_err().to_string();
        assert!(err.ends_with("bad.jsonl line 2: not UTF-8"), "{err}");
    }

    #[test]
    fn the_index_a_refusal_names() {
        assert_eq!(
            index_in(
                "invalid field `entries[12].subject.person.names`: ...",
                "entries"
            ),
            Some(12)
        );
        assert_eq!(
            index_in("entries[1]: this agency already has", "entries"),
            Some(1)
        );
        assert_eq!(
            index_in("invalid field `requests[7].person.names`", "requests"),
            Some(7)
        );
        assert_eq!(index_in("invalid field `requests[7]`", "entries"), None);
        assert_eq!(index_in("nothing", "entries"), None);
    }
}
