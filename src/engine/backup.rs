//! The journal's backups, one service for all three: `crbot backup PATH`, the backup after a
//! kill switch, and the console's scheduled backups.
//!
//! Owns: where crbot's own backups go ([`folder`]: `<data dir>/backups`, for the console and
//! the CLI alike), the copy (SQLite's online backup, checked, renamed into place), the pruning
//! of old copies in that folder, and the event every attempt leaves in the journal (`BACKUP`,
//! which `crbot doctor` reads, or `BACKUP_FAILED`). Must not: run on the engine loop — a copy
//! of a large journal takes seconds, and a kill switch must never wait behind one. [`spawn`]
//! copies on a blocking thread through a read-only connection of its own; the loop journals
//! the [`BackupOutcome`] that comes back. Must not either: delete anything but crbot's own
//! backup files, and only in [`folder`] (never next to a PATH the user chose).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::Mode;
use crate::journal::{EventKind, EventRecord, Journal, JournalError};

/// The folder crbot's own backups go to, under the data folder.
const FOLDER: &str = "backups";
/// How long the `backup_slow` failpoint stalls a copy (longer than a kill sweep on the local
/// exchange takes, so a kill that waited behind the copy shows).
const SLOW_FAILPOINT: Duration = Duration::from_secs(4);

/// `<data dir>/backups`: the folder of crbot's own backups (after a kill switch, scheduled).
///
/// The data folder and not the journal's: `DATABASE_URL` may put the journal anywhere, and
/// the console and `crbot kill` must agree on one place, the one `crbot doctor` looks in.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join(FOLDER)
}

/// A new backup file in `folder`: `journal-<mode>-<UTC time>.db`.
pub fn file_in(folder: &Path, mode: Mode, now_ms: i64) -> PathBuf {
    folder.join(crate::journal::backup_file_name(mode, now_ms))
}

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `crbot backup PATH`.
    Command,
    /// Stage one of a kill switch is over.
    AfterKill,
    /// The posture's schedule (staging daily, production hourly).
    Scheduled,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::Command => "on command",
            Reason::AfterKill => "after the kill switch",
            Reason::Scheduled => "scheduled",
        }
    }

    /// Backups crbot names and places itself are pruned; a PATH the user chose is theirs.
    fn prunes(self) -> bool {
        matches!(self, Reason::AfterKill | Reason::Scheduled)
    }
}

/// What one backup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupOutcome {
    pub reason: Reason,
    pub path: PathBuf,
    /// The copy's size in bytes, or why there is no copy.
    pub result: Result<u64, String>,
    /// Old copies removed from the folder.
    pub pruned: Vec<PathBuf>,
    /// Old copies that could not be removed, each with why.
    pub prune_failures: Vec<String>,
}

impl BackupOutcome {
    fn failed(reason: Reason, path: &Path, why: String) -> Self {
        BackupOutcome {
            reason,
            path: path.to_path_buf(),
            result: Err(why),
            pruned: Vec::new(),
            prune_failures: Vec::new(),
        }
    }

    /// `BACKUP` for a copy written, `BACKUP_FAILED` otherwise.
    pub fn kind(&self) -> EventKind {
        match self.result {
            Ok(_) => EventKind::Backup,
            Err(_) => EventKind::BackupFailed,
        }
    }

    /// The event's detail: the copy's path, or where and why it failed.
    pub fn detail(&self) -> String {
        match &self.result {
            Ok(_) => self.path.display().to_string(),
            Err(e) => format!("backup ({}) to {}: {e}", self.reason.label(), self.path.display()),
        }
    }

    /// The journal event for this outcome, for a caller without an engine core.
    pub fn event(&self, now_ms: i64) -> EventRecord {
        EventRecord::new(self.kind(), None, &self.detail(), now_ms)
    }
}

/// Writes a backup of `journal` to `dest` (its folder created), then prunes `dest`'s folder
/// when crbot chose it. Blocking for as long as the copy takes: call it from a command, or
/// through [`spawn`] from the engine. The caller journals the outcome ([`BackupOutcome::event`]).
pub fn write(journal: &Journal, dest: &Path, reason: Reason, now_ms: i64) -> BackupOutcome {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        return BackupOutcome::failed(reason, dest, format!("{}: {e}", parent.display()));
    }
    crate::failpoint::stall("backup_slow", SLOW_FAILPOINT);
    if let Err(e) = journal.backup_to(dest) {
        return BackupOutcome::failed(reason, dest, e.to_string());
    }
    let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    let (pruned, prune_failures) = match dest.parent() {
        Some(dir) if reason.prunes() => prune(dir, journal.mode(), now_ms),
        _ => (Vec::new(), Vec::new()),
    };
    BackupOutcome {
        reason,
        path: dest.to_path_buf(),
        result: Ok(size),
        pruned,
        prune_failures,
    }
}

/// [`write`] on a blocking thread, from a read-only connection of its own to the journal at
/// `journal` (an SQLite file, or PostgreSQL: a snapshot copied into an SQLite file): the
/// engine's connection and its loop are never held by the copy.
pub async fn spawn(
    journal: crate::journal::Location,
    mode: Mode,
    dest: PathBuf,
    reason: Reason,
    now_ms: i64,
) -> BackupOutcome {
    let task_dest = dest.clone();
    let task = tokio::task::spawn_blocking(move || match Journal::open_read_only_at(&journal, mode) {
        Ok(journal) => write(&journal, &task_dest, reason, now_ms),
        Err(e) => BackupOutcome::failed(reason, &task_dest, read_failure(&e)),
    });
    match task.await {
        Ok(outcome) => outcome,
        Err(e) => BackupOutcome::failed(reason, &dest, format!("the backup task stopped: {e}")),
    }
}

fn read_failure(e: &JournalError) -> String {
    format!("the journal could not be opened for the copy: {e}")
}

/// Removes the copies the retention rule no longer keeps (the last week whole, then one a
/// week). Only this mode's backup files are considered: the folder is shared by every mode,
/// and anything else in it is not crbot's to delete.
fn prune(dir: &Path, mode: Mode, now_ms: i64) -> (Vec<PathBuf>, Vec<String>) {
    let prefix = format!("journal-{mode}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let backups: Vec<(PathBuf, i64)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".db")
        })
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            let ms = modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
            Some((e.path(), i64::try_from(ms).ok()?))
        })
        .collect();
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    for old in crate::journal::retention::to_prune(&backups, now_ms) {
        match std::fs::remove_file(&old) {
            Ok(()) => removed.push(old),
            Err(e) => failures.push(format!("old backup {} not removed: {e}", old.display())),
        }
    }
    (removed, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK_MS: i64 = 7 * 24 * 3_600_000;

    fn set_mtime(path: &Path, ms: i64) {
        let t = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).expect("positive"));
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(t))
            .expect("mtime set");
    }

    #[test]
    fn crbots_backups_go_to_the_data_folder_whatever_the_journal_path() {
        let data = Path::new("/data/crbot");
        assert_eq!(folder(data), PathBuf::from("/data/crbot/backups"));
        let f = file_in(&folder(data), Mode::Live, 1_764_331_200_000);
        assert_eq!(f.parent(), Some(Path::new("/data/crbot/backups")));
        assert!(f.to_string_lossy().contains("journal-live-"), "{f:?}");
    }

    #[test]
    fn a_backup_is_a_checked_copy_and_its_event_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(&dir.path().join("journal-sim.db"), Mode::Sim).expect("journal");
        let dest = file_in(&folder(dir.path()), Mode::Sim, 1_000);
        let out = write(&journal, &dest, Reason::AfterKill, 1_000);
        assert!(matches!(out.result, Ok(n) if n > 0), "{out:?}");
        Journal::open_existing(&dest, Mode::Sim).expect("the copy is a journal of the mode");
        let ev = out.event(2_000);
        assert_eq!(ev.event_kind(), Some(EventKind::Backup));
        assert_eq!(ev.detail, dest.display().to_string());
        // A second backup to the same file is refused, and recorded as a failure.
        let again = write(&journal, &dest, Reason::AfterKill, 1_000);
        assert!(again.result.is_err(), "{again:?}");
        assert_eq!(again.event(2_000).event_kind(), Some(EventKind::BackupFailed));
    }

    #[test]
    fn pruning_keeps_the_last_week_and_touches_only_this_modes_backups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = 100 * WEEK_MS;
        let make = |name: &str, at: i64| {
            let p = dir.path().join(name);
            std::fs::write(&p, b"x").expect("write");
            set_mtime(&p, at);
            p
        };
        let recent = make("journal-sim-recent.db", now - 3_600_000);
        let old_new = make("journal-sim-old-new.db", now - 8 * 24 * 3_600_000);
        let old_old = make("journal-sim-old-old.db", now - 9 * 24 * 3_600_000);
        let other_mode = make("journal-live-old.db", now - 9 * 24 * 3_600_000);
        let not_ours = make("notes.txt", now - 30 * 24 * 3_600_000);
        let (removed, failures) = prune(dir.path(), Mode::Sim, now);
        assert_eq!(removed, vec![old_old.clone()]);
        assert!(failures.is_empty(), "{failures:?}");
        for kept in [recent, old_new, other_mode, not_ours] {
            assert!(kept.exists(), "{kept:?} kept");
        }
        assert!(!old_old.exists());
    }

    #[test]
    fn a_backup_the_user_placed_never_prunes_its_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal =
            Journal::open(&dir.path().join("db").join("journal-sim.db"), Mode::Sim).expect("journal");
        let old = dir.path().join("journal-sim-ancient.db");
        std::fs::write(&old, b"x").expect("write");
        set_mtime(&old, 1);
        let out = write(
            &journal,
            &dir.path().join("copy.db"),
            Reason::Command,
            100 * WEEK_MS,
        );
        assert!(out.result.is_ok(), "{out:?}");
        assert!(out.pruned.is_empty() && old.exists());
    }
}
