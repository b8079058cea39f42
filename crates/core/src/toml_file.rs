//! Reading a TOML file (the federation file, a node's configuration) into
//! a typed value, with errors a person can act on.
//!
//! The TOML parser reports a missing field at the position of the table
//! that lacks it, and for the top-level table that is line 1, column 1:
//! a position that points at whatever happens to be written there. A
//! missing field is told instead by its name and its table:
//! ``missing field `data_dir` (top level)``, ``missing field `cert` in
//! [tls]``, ``missing field `endpoint` in [[agencies]] #2``. Every other
//! error keeps the parser's message and position, which point at the
//! offending text, after the key it concerns.

use std::fmt;

use serde::de::DeserializeOwned;

/// The table a field belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Table {
    /// The file's top level, before any `[table]` header.
    TopLevel,
    /// A table such as `[tls]` (or `tls = { ... }`), by its dotted name.
    Named(String),
    /// One entry of an array of tables such as `[[agencies]]`.
    Entry {
        /// The array's dotted name.
        name: String,
        /// Which entry, counting from 1 in the order of the file.
        number: usize,
    },
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Table::TopLevel => f.write_str("(top level)"),
            Table::Named(name) => write!(f, "in [{name}]"),
            Table::Entry { name, number } => write!(f, "in [[{name}]] #{number}"),
        }
    }
}

/// Why a TOML text could not be read as the value asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TomlError {
    /// A required field is absent.
    #[error("missing field `{field}` {table}")]
    MissingField {
        /// The field.
        field: String,
        /// Its table.
        table: Table,
    },
    /// Any other error: the TOML parser's message, with the position of
    /// the offending text.
    #[error("{}{message}", key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
    Invalid {
        /// The dotted key of the value concerned, when there is one.
        key: Option<String>,
        /// What the parser said.
        message: String,
    },
}

/// Reads `text` as a `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| TomlError::Invalid {
        key: None,
        message: e.to_string(),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().clone();
        let inner = e.into_inner();
        let field = inner
            .message()
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'));
        match field {
            Some(field) => TomlError::MissingField {
                field: field.to_owned(),
                table: table_of(&path),
            },
            None => TomlError::Invalid {
                key: (path.iter().next().is_some()).then(|| path.to_string()),
                message: inner.to_string(),
            },
        }
    })
}

/// The table at `path`: the dotted keys down to it, and the entry number if
/// it is an entry of an array of tables.
fn table_of(path: &serde_path_to_error::Path) -> Table {
    use serde_path_to_error::Segment;
    let mut name = String::new();
    let mut index = None;
    for segment in path.iter() {
        let key = match segment {
            Segment::Seq { index: i } => {
                index = Some(*i);
                continue;
            }
            Segment::Map { key } => key.as_str(),
            Segment::Enum { variant } => variant.as_str(),
            Segment::Unknown => continue,
        };
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(key);
        index = None;
    }
    match index {
        _ if name.is_empty() => Table::TopLevel,
        Some(i) => Table::Entry {
            name,
            number: i + 1,
        },
        None => Table::Named(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tls {
        ca: String,
        cert: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Agency {
        id: String,
        endpoint: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        agency: String,
        data_dir: String,
        tls: Tls,
        #[serde(default)]
        agencies: Vec<Agency>,
    }

    fn error(text: &str) -> String {
        from_str::<Config>(text).unwrap_err().to_string()
    }

    const GOOD: &str = "agency = \"TR-MIT\"\ndata_dir = \"d\"\n[tls]\nca = \"a\"\ncert = \"c\"\n";

    #[test]
    fn a_missing_field_is_named_with_its_table_and_no_position() {
        assert!(from_str::<Config>(GOOD).is_ok());
        let cases = [
            (
                GOOD.replace("data_dir = \"d\"\n", ""),
                "missing field `data_dir` (top level)",
            ),
            (
                GOOD.replace("cert = \"c\"\n", ""),
                "missing field `cert` in [tls]",
            ),
            (
                GOOD.replace(
                    "[tls]\nca = \"a\"\ncert = \"c\"\n",
                    "tls = { ca = \"a\" }\n",
                ),
                "missing field `cert` in [tls]",
            ),
            (
                format!(
                    "{GOOD}[[agencies]]\nid = \"A\"\nendpoint = \"e\"\n[[agencies]]\nid = \"B\"\n"
                ),
                "missing field `endpoint` in [[agencies]] #2",
            ),
        ];
        for (text, expected) in &cases {
            assert_eq!(&error(text), expected, "{text}");
        }
        // A file that begins with a table lacks its top-level field all the
        // same, and so does an empty one.
        let starts_with_a_table = "[tls]\nca = \"a\"\ncert = \"c\"\n";
        assert_eq!(
            error(starts_with_a_table),
            "missing field `agency` (top level)"
        );
        assert_eq!(error(""), "missing field `agency` (top level)");
    }

    #[test]
    fn other_errors_keep_their_position_and_name_the_key() {
        let err = error(&GOOD.replace("cert = \"c\"", "cert = 3"));
        assert!(err.starts_with("`tls.cert`: "), "{err}");
        assert!(err.contains("line 5"), "{err}");
        let err = error(&GOOD.replace("cert = \"c\"", "crt = \"c\""));
        assert!(err.contains("unknown field `crt`"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        let err = error("agency = \"x\n");
        assert!(err.contains("line 1"), "{err}");
    }
}
