//! Files of one JSON object per line (`watchlist import`, `screen --file`):
//! read one line at a time, blank lines skipped, every problem named by
//! the file and the line's number; and the index a node's refusal of a
//! batch names, to turn it back into a line number.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;

/// The objects of `file`, each with its line number (from 1), read one
/// line at a time. A line that cannot be read or parsed is an error
/// naming the file and the line: `"bad.jsonl line 4: ..."`.
pub(crate) fn read<T: DeserializeOwned>(
    file: &Path,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<(usize, T)>>> {
    let name = file.display().to_string();
    let reader =
        BufReader::new(std::fs::File::open(file).with_context(|| format!("cannot read {name}"))?);
    Ok(reader.lines().enumerate().filter_map(move |(i, line)| {
        let n = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => return Some(Err(anyhow::anyhow!("{name} line {n}: {e}"))),
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
