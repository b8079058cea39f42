//! Where the database file lives and the schema versions other modules
//! need to know (the migrations themselves are the writer's, in `db`).
//! A leaf, so that `db` (which runs the audit log's migration) and `audit`
//! (which opens the file read-only) need not import each other.

use std::path::{Path, PathBuf};

/// The database file inside a data directory.
pub(crate) fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tocsin.sqlite3")
}

/// The schema version that brought the audit log (migration 008).
pub(crate) const AUDIT_LOG_VERSION: i64 = 8;
