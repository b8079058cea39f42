//! [`Store`], the handle a node holds on its store, whichever backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::Error;
use crate::sqlite::Sqlite;
use crate::sqlite::db::StoreOptions;

/// A handle on a node's store; clones share it. It derefs to
/// [`Backend`], so every typed read and write is called on it directly
/// (`store.insert_inbound(..)`) without the caller knowing the backend.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    /// The SQLite database file inside a data directory.
    pub fn database_path(data_dir: &Path) -> PathBuf {
        Sqlite::database_path(data_dir)
    }

    /// Opens (creating and migrating as needed) the embedded SQLite store
    /// in `data_dir`.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Self, Error> {
        Ok(Self::from_backend(Arc::new(Sqlite::open(
            data_dir, options,
        )?)))
    }

    /// Connects to the PostgreSQL store at `url` (a tokio-postgres
    /// connection string), migrating it as needed. Several front nodes of
    /// one agency may share it.
    pub async fn connect(url: &str, options: crate::postgres::PoolOptions) -> Result<Self, Error> {
        Ok(Self::from_backend(Arc::new(
            crate::postgres::Postgres::connect(url, options).await?,
        )))
    }

    /// A handle on a backend already opened.
    pub fn from_backend(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &(dyn Backend + 'static) {
        &*self.backend
    }
}
