//! The account's engine lock and the path of its control socket.
//!
//! Exactly one engine runs per account (mode): the console's embedded engine, `crbot serve`, or
//! a command-line command acting as a short-lived engine. It holds an exclusive advisory lock
//! (`flock`) on `<data>/engine-<mode>.lock` for as long as it runs; the lock goes with the
//! process, so a crash never leaves it held. The file carries the holder's pid, for messages.
//!
//! On a PostgreSQL journal the lock is also the account's lease there ([`take_lease`], for the
//! engines that do not wait as a standby; `crbot serve` campaigns for it itself).
//!
//! Owns: the two paths and taking the lock (at once, or within a bounded wait). Must not: decide
//! what a process does when the lock is held (attach, go through the socket, wait or refuse: its
//! caller decides).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::domain::Mode;
use crate::journal::Location;
use crate::journal::lease::{Candidate, Lease, LeaseState};

/// `<data>/engine-<mode>.lock`.
pub fn lock_path(data_dir: &Path, mode: Mode) -> PathBuf {
    data_dir.join(format!("engine-{mode}.lock"))
}

/// `<data>/engine-<mode>.sock`: the running engine's control API (mode 0600).
pub fn socket_path(data_dir: &Path, mode: Mode) -> PathBuf {
    data_dir.join(format!("engine-{mode}.sock"))
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another crbot engine holds {path} (pid {pid})", path = .path.display(), pid = .holder.as_deref().unwrap_or("unknown"))]
    Held { path: PathBuf, holder: Option<String> },
    #[error("cannot open the engine lock {path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The account's lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct EngineLock {
    file: File,
    path: PathBuf,
}

impl EngineLock {
    /// Takes the lock at once, or says who holds it.
    pub fn try_acquire(data_dir: &Path, mode: Mode) -> Result<EngineLock, LockError> {
        let path = lock_path(data_dir, mode);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = Some(text.trim().to_string()).filter(|t| !t.is_empty());
                return Err(LockError::Held { path, holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Best effort: the pid is for messages only; the lock itself is the flock.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(EngineLock { file, path })
    }

    /// Takes the lock, waiting at most `wait` for the process that holds it. `notice` is called
    /// once, with one line, when the lock is not free at once.
    pub async fn acquire_within(
        data_dir: &Path,
        mode: Mode,
        wait: Duration,
        notice: impl Fn(&str),
    ) -> Result<EngineLock, LockError> {
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            match EngineLock::try_acquire(data_dir, mode) {
                Err(LockError::Held { path, holder }) => {
                    if Instant::now() >= deadline {
                        return Err(LockError::Held { path, holder });
                    }
                    if !told {
                        notice(&format!(
                            "waiting for another crbot command (pid {}) to finish with the {mode} account \
                             (at most {} s)",
                            holder.as_deref().unwrap_or("unknown"),
                            wait.as_secs()
                        ));
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The account's lease when its journal is on PostgreSQL (`None` on SQLite: the `flock` is the
/// whole lock there), taken at once for an engine that does not wait as a standby (the console,
/// a command): refused, naming the leader, when another engine leads the account. Held until
/// dropped. `crbot serve` waits for it instead (a standby).
pub async fn take_lease(location: &Location, mode: Mode) -> Result<Option<Lease>, String> {
    let Location::Postgres(target) = location else {
        return Ok(None);
    };
    let mut lease = Lease::campaign(target, mode, Candidate::this_process(None));
    match lease.first_answer(Duration::from_secs(15)).await {
        LeaseState::Leader { .. } => Ok(Some(lease)),
        LeaseState::Standby { leader: Some(l), .. } => Err(format!(
            "another engine leads the {mode} account on its PostgreSQL journal: {}; nothing is \
             traded beside it",
            l.describe()
        )),
        LeaseState::Standby { note, .. } => Err(format!(
            "the {mode} account's lease on PostgreSQL could not be taken ({}); nothing was started",
            note.unwrap_or_else(|| "another engine holds it".into())
        )),
        LeaseState::Lost { why } => Err(format!("the {mode} account's lease was lost at once: {why}")),
    }
}

impl Drop for EngineLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = EngineLock::try_acquire(dir.path(), Mode::Sim).expect("first");
        match EngineLock::try_acquire(dir.path(), Mode::Sim) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder.as_deref(), Some(std::process::id().to_string().as_str()))
            }
            other => panic!("expected Held, got {other:?}"),
        }
        // Another mode is another account.
        let _paper = EngineLock::try_acquire(dir.path(), Mode::Paper).expect("paper");
        drop(first);
        EngineLock::try_acquire(dir.path(), Mode::Sim).expect("free again");
    }

    #[tokio::test]
    async fn a_bounded_wait_says_so_once_then_gives_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _held = EngineLock::try_acquire(dir.path(), Mode::Sim).expect("first");
        let said = std::sync::Mutex::new(Vec::new());
        let r = EngineLock::acquire_within(dir.path(), Mode::Sim, Duration::from_millis(200), |l| {
            said.lock().expect("said").push(l.to_string())
        })
        .await;
        assert!(matches!(r, Err(LockError::Held { .. })), "{r:?}");
        let said = said.into_inner().expect("said");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("waiting for another crbot command"), "{said:?}");
    }

    #[test]
    fn the_paths_name_the_mode() {
        let d = Path::new("/d");
        assert_eq!(lock_path(d, Mode::Testnet), Path::new("/d/engine-testnet.lock"));
        assert_eq!(socket_path(d, Mode::Sim), Path::new("/d/engine-sim.sock"));
    }
}
