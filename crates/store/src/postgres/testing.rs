//! For the backend's tests: a private PostgreSQL server, and the same
//! store on both backends, so that a test can make the same calls on each
//! and compare (`for store in [&both.sqlite as &dyn BlockStore,
//! &both.postgres]`).

use tocsin_pgtest::TestPostgres;

use super::db::Postgres;
use super::pool::PoolOptions;
use crate::StoreOptions;
use crate::sqlite::Sqlite;

/// A fresh SQLite store and a fresh PostgreSQL store, on a server of their
/// own; both go when this is dropped.
pub(crate) struct Both {
    pub(crate) sqlite: Sqlite,
    pub(crate) postgres: Postgres,
    _dir: tempfile::TempDir,
    server: TestPostgres,
}

impl Both {
    /// Both stores, or `None` (the test passes, saying SKIPPED) when there
    /// is no PostgreSQL here and TOCSIN_REQUIRE_POSTGRES is not 1.
    pub(crate) async fn start() -> Option<Self> {
        let server = match TestPostgres::start() {
            Ok(Some(server)) => server,
            Ok(None) => {
                eprintln!("SKIPPED: no PostgreSQL binaries here");
                return None;
            }
            Err(e) => panic!("cannot start PostgreSQL: {e}"),
        };
        let postgres = Postgres::connect(&server.url(), PoolOptions::default())
            .await
            .expect("connect to the test server");
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = Sqlite::open(dir.path(), StoreOptions::default()).expect("SQLite store");
        Some(Self {
            sqlite,
            postgres,
            _dir: dir,
            server,
        })
    }

    /// The PostgreSQL database's connection string.
    pub(crate) fn server_url(&self) -> String {
        self.server.url()
    }

    /// Another handle on the same PostgreSQL database, with a pool and a
    /// holder id of its own: a second front node of the agency.
    pub(crate) async fn another_front_node(&self) -> Postgres {
        Postgres::connect(&self.server_url(), PoolOptions::default())
            .await
            .expect("connect to the test server")
    }
}
