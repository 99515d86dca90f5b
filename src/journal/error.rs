//! The journal's error type and how SQLite failures are sorted into it.
//!
//! Disk full, read-only and I/O failures each have their own variant because the console reacts
//! to them differently from a programming error: it stops accepting new tickets (nothing may be
//! sent that cannot be recorded) and says why on screen.

use std::path::PathBuf;

use rusqlite::ErrorCode;

use crate::domain::Mode;

/// Everything that can go wrong in the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path} is not a crbot journal ({why}); it was left untouched")]
    NotAJournal { path: PathBuf, why: String },
    #[error(
        "{path} is the journal of mode `{found}`, not `{wanted}`: each mode keeps its own journal; \
         it was left untouched"
    )]
    WrongMode {
        path: PathBuf,
        found: String,
        wanted: Mode,
    },
    #[error(
        "{path} was written by a newer crbot (schema version {found}; this build knows up to \
         {supported}); it was left untouched: upgrade crbot"
    )]
    NewerSchema {
        path: PathBuf,
        found: i32,
        supported: i32,
    },
    #[error("no {mode} journal at {path} yet (nothing has been recorded in this mode)")]
    Missing { path: PathBuf, mode: Mode },
    /// No room to write: a full disk, a quota, or a file-size limit (or a disk failing on a
    /// write, which SQLite does not tell apart from them). SQLite reports these as
    /// "database or disk is full" or as a failed write ("disk I/O error") depending on where
    /// the write was cut off, so both arrive here and read the same everywhere.
    #[error(
        "the journal's disk is full or refuses writes (quota, file-size limit or a failing \
         disk): nothing new can be recorded until space is freed"
    )]
    DiskFull,
    #[error("the journal cannot be written (read-only file or folder): {0}")]
    ReadOnly(String),
    /// The journal's file, folder or disk does not allow writing (found when opening it).
    #[error(
        "the journal {path} is read-only (check the permissions of the file and its folder, and \
         that its disk is mounted read-write): {consequence}"
    )]
    ReadOnlyFile {
        path: PathBuf,
        consequence: &'static str,
    },
    #[error("journal disk I/O error: {0}")]
    Io(String),
    #[error("the journal is locked by another process and stayed busy: {0}")]
    Busy(String),
    #[error("the journal file is corrupt: {0}")]
    Corrupt(String),
    #[error("order {0} is already in the journal")]
    DuplicateOrder(String),
    #[error("order {0} is not in the journal")]
    UnknownOrder(String),
    #[error("journal data is invalid: {0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal error: {0}")]
    Sqlite(rusqlite::Error),
    /// The PostgreSQL journal's server: gone, refusing the login, requiring TLS, or refusing
    /// a statement. The text never holds `DATABASE_URL`'s password.
    #[error("the journal's PostgreSQL database: {0}")]
    Database(String),
    /// Something the journal does not do on this store yet.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl JournalError {
    /// True when the journal can no longer record anything (disk full, read-only, I/O): the
    /// console must refuse new tickets until this is fixed.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            JournalError::DiskFull
                | JournalError::ReadOnly(_)
                | JournalError::ReadOnlyFile { .. }
                | JournalError::Io(_)
                | JournalError::File { .. }
                | JournalError::Database(_)
        )
    }
}

/// The extended I/O error codes of a write that could not be completed. On Unix SQLite turns
/// `ENOSPC` on a short write into `SQLITE_FULL`, but a write refused outright (`EFBIG` at a
/// file-size limit, `EDQUOT`, `ENOSPC` while growing the shared-memory file or syncing) comes
/// back as one of these. (A read-only file or folder is told apart when the journal is opened:
/// see `Journal::open`.)
const WRITE_FAILURES: &[std::ffi::c_int] = &[
    rusqlite::ffi::SQLITE_IOERR_WRITE,
    rusqlite::ffi::SQLITE_IOERR_FSYNC,
    rusqlite::ffi::SQLITE_IOERR_DIR_FSYNC,
    rusqlite::ffi::SQLITE_IOERR_TRUNCATE,
    rusqlite::ffi::SQLITE_IOERR_SHMSIZE,
    // Sizing a new shared-memory file (a few bytes) is the first write of an open.
    rusqlite::ffi::SQLITE_IOERR_SHMOPEN,
];

/// The one mapping from SQLite's errors to the journal's: the console and every command
/// show a journal failure through it, so one condition reads the same everywhere.
impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> Self {
        let (code, extended) = match &e {
            rusqlite::Error::SqliteFailure(f, _) => (Some(f.code), f.extended_code),
            _ => (None, 0),
        };
        match code {
            Some(ErrorCode::DiskFull) => JournalError::DiskFull,
            Some(ErrorCode::SystemIoFailure) if WRITE_FAILURES.contains(&extended) => JournalError::DiskFull,
            Some(ErrorCode::ReadOnly) => JournalError::ReadOnly(e.to_string()),
            Some(ErrorCode::SystemIoFailure) | Some(ErrorCode::CannotOpen) => JournalError::Io(e.to_string()),
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                JournalError::Busy(e.to_string())
            }
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                JournalError::Corrupt(e.to_string())
            }
            _ => JournalError::Sqlite(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn sqlite_full_becomes_disk_full_and_is_a_storage_failure() {
        let e = JournalError::from(failure(rusqlite::ffi::SQLITE_FULL));
        assert!(matches!(e, JournalError::DiskFull), "{e:?}");
        assert!(e.is_storage_failure());
    }

    #[test]
    fn a_write_refused_for_space_reads_the_same_as_a_full_disk() {
        for code in WRITE_FAILURES {
            let e = JournalError::from(failure(*code));
            assert!(matches!(e, JournalError::DiskFull), "{code}: {e:?}");
        }
        assert_eq!(
            JournalError::from(failure(rusqlite::ffi::SQLITE_IOERR_WRITE)).to_string(),
            JournalError::from(failure(rusqlite::ffi::SQLITE_FULL)).to_string()
        );
    }

    #[test]
    fn read_only_and_io_failures_have_their_own_variants() {
        let ro = JournalError::from(failure(rusqlite::ffi::SQLITE_READONLY));
        assert!(matches!(ro, JournalError::ReadOnly(_)), "{ro:?}");
        let io = JournalError::from(failure(rusqlite::ffi::SQLITE_IOERR_READ));
        assert!(matches!(io, JournalError::Io(_)), "{io:?}");
        assert!(ro.is_storage_failure() && io.is_storage_failure());
        let other = JournalError::from(failure(rusqlite::ffi::SQLITE_CONSTRAINT));
        assert!(!other.is_storage_failure());
    }
}
