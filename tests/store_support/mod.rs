//! A test's journal on either store: a [`Home`] is a temporary folder (the SQLite file, the
//! backups) and, on PostgreSQL, a fresh database of the test binary's one throw-away cluster
//! (`tests/pg_support`). [`both_stores!`] runs a test function once per store.
//!
//! Owns: choosing and keeping the journal's place while a test runs. Must not: assert
//! anything; each test says what it proves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../pg_support/mod.rs"]
pub mod pg_support;

use crbot::domain::Mode;
use crbot::journal::{Journal, Location, PgTarget};

/// Which store a test's journal is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Where one test's journal lives, kept while the test runs.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub db: Option<pg_support::PgDatabase>,
}

impl Home {
    /// A fresh home on `store` (on PostgreSQL, a new database of the shared cluster).
    pub fn new(store: Store) -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
            db: (store == Store::Postgres).then(pg_support::PgDatabase::new),
        }
    }

    /// The journal's SQLite file in the folder (the one the console uses in sim mode).
    pub fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("journal-sim.db")
    }

    pub fn location(&self) -> Location {
        match &self.db {
            Some(db) => Location::Postgres(PgTarget::parse(&db.url()).unwrap()),
            None => Location::Sqlite(self.file()),
        }
    }

    /// The journal of `mode` here (created when new).
    pub fn open(&self, mode: Mode) -> Journal {
        Journal::open_at(&self.location(), mode).unwrap()
    }
}

impl From<tempfile::TempDir> for Home {
    fn from(dir: tempfile::TempDir) -> Home {
        Home { dir, db: None }
    }
}

/// `both_stores!(name, …)`: for each async function `name(store: Store)` of the test file, the
/// tests `name::sqlite` and `name::postgres` (`both_stores!(sync: name, …)` for plain
/// functions; `multi_thread:` for async ones that need tokio's multi-threaded runtime). `Store`
/// must be in scope where it is used.
#[macro_export]
macro_rules! both_stores {
    (multi_thread: $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::Store::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(super::Store::Postgres).await;
                }
            }
        )+
    };
    (sync: $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(super::Store::Sqlite);
                }
                #[test]
                fn postgres() {
                    super::$name(super::Store::Postgres);
                }
            }
        )+
    };
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Store::Sqlite).await;
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Store::Postgres).await;
                }
            }
        )+
    };
}
