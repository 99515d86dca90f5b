//! The vault file on disk: permission-checked reads and crash-safe, 0600 writes.
//!
//! Owns: every filesystem call the vault makes. Must not: write anything but already
//! encrypted bytes, leave a window where the file is readable by others, or replace the vault
//! with a partial file. A write is: create a temp file beside the vault with mode 0600 (before a
//! byte is written), write, fsync, rename over the vault, fsync the folder. A crash at any point
//! leaves either the old vault or the new one, whole.
//!
//! Concurrency: every read-modify-write (`init`, `set-keys`, `rotate`) holds [`VaultLock`], an
//! exclusive `flock` on `<vault>.lock` beside the vault, from before it reads the vault until
//! after the rename, so writers run one after the other and each one re-reads what the previous
//! one wrote. Readers take no lock: the rename is atomic, so they see the old file or the new
//! one. A temp file left by a writer that was killed (`.vault.crbot.tmp-…`) is removed by the
//! next writer once it holds the lock (no other writer can be writing one then). A vault path
//! that is a symbolic link is written through: the new file replaces the link's target and the
//! link stays; a link to nothing is refused.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::VaultError;

/// The steps of an atomic write, for failure injection in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// The 0600 temp file has been created (still empty).
    TempCreated,
    /// The bytes have been written to the temp file (not yet synced).
    TempWritten,
    /// The temp file has been fsynced.
    TempSynced,
    /// The temp file has been renamed over the vault.
    Renamed,
    /// The folder has been fsynced.
    DirSynced,
}

/// Called after each step; an error stops the write there, as a crash would.
pub type StepHook<'a> = &'a dyn Fn(WriteStep) -> std::io::Result<()>;

/// A hook that never fails (production).
pub fn no_faults(_: WriteStep) -> std::io::Result<()> {
    Ok(())
}

/// Group/other permission bits of the vault, if any are set.
fn insecure_bits(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// Reads the whole vault after checking it exists and only its owner can access it.
pub fn read_vault(path: &Path) -> Result<Vec<u8>, VaultError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(VaultError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(VaultError::io("cannot read", path, e)),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if insecure_bits(mode) {
        return Err(VaultError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    fs::read(path).map_err(|e| VaultError::io("cannot read", path, e))
}

/// The vault's permission bits (for `status` and `doctor`), or None when it does not exist.
pub fn file_mode(path: &Path) -> Result<Option<u32>, VaultError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.permissions().mode() & 0o7777)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(VaultError::io("cannot read", path, e)),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn temp_path(path: &Path) -> PathBuf {
    let suffix: u64 = rand::random();
    path.with_file_name(format!("{}{suffix:016x}", temp_prefix(path)))
}

/// `.vault.crbot.tmp-`: what every temp file of this vault's writes starts with.
fn temp_prefix(path: &Path) -> String {
    format!(".{}.tmp-", file_name(path))
}

/// The file a writer locks: `<vault>.lock` beside the vault (after following a symlink, so two
/// links to one vault share one lock). It stays after the write: removing it would let two
/// writers lock two different files.
pub fn lock_path(vault: &Path) -> PathBuf {
    vault.with_file_name(format!("{}.lock", file_name(vault)))
}

/// The file a write replaces: `path` itself, or, when `path` is a symbolic link, its final
/// target (the link stays a link). A link whose target does not exist is refused: crbot will
/// not create a vault somewhere the user did not name, nor replace the link with a file.
pub fn write_target(path: &Path) -> Result<PathBuf, VaultError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(target) => Ok(target),
            Err(e) => Err(VaultError::BrokenLink {
                path: path.to_path_buf(),
                target: fs::read_link(path).unwrap_or_default(),
                reason: e.kind().to_string(),
            }),
        },
        Ok(_) => Ok(path.to_path_buf()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(path.to_path_buf()),
        Err(e) => Err(VaultError::io("cannot read", path, e)),
    }
}

/// An exclusive lock over the vault for one read-modify-write, released on drop (or when the
/// process dies: the kernel drops a `flock` with its last descriptor).
#[derive(Debug)]
pub struct VaultLock {
    file: File,
    /// The file the write replaces (a symlink's target).
    vault: PathBuf,
    /// Stale temp files removed when the lock was taken.
    pub removed_temps: usize,
}

impl VaultLock {
    /// Takes the lock on the vault at `path` (its folder must exist), waiting for the writer
    /// that holds it; `waiting` is called once, before waiting, when it is held. Then removes
    /// the temp files a killed writer left.
    pub fn acquire(path: &Path, waiting: &dyn Fn(&Path)) -> Result<VaultLock, VaultError> {
        let vault = write_target(path)?;
        let lock = lock_path(&vault);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock)
            .map_err(|e| VaultError::io("cannot open the vault lock", &lock, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                waiting(&lock);
                file.lock().map_err(|e| VaultError::io("cannot lock", &lock, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(VaultError::io("cannot lock", &lock, e)),
        }
        let removed_temps = remove_stale_temps(&vault);
        Ok(VaultLock {
            file,
            vault,
            removed_temps,
        })
    }

    /// The file the write replaces.
    pub fn vault(&self) -> &Path {
        &self.vault
    }

    /// [`write_atomic`] to the locked vault.
    pub fn write(&self, bytes: &[u8], hook: StepHook<'_>) -> Result<(), VaultError> {
        write_atomic(&self.vault, bytes, hook)
    }
}

impl Drop for VaultLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Removes `.vault.crbot.tmp-…` files beside the vault. Only under the lock: every writer holds
/// it while its temp file exists, so any such file belongs to a writer that died. Best effort
/// (a leftover holds only ciphertext, 0600); returns how many went.
fn remove_stale_temps(vault: &Path) -> usize {
    let prefix = temp_prefix(vault);
    let dir = match vault.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let Ok(entries) = fs::read_dir(&dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_temp = name
            .strip_prefix(&prefix)
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Makes sure the folder exists; a folder we create is 0700.
pub fn ensure_parent(path: &Path) -> Result<(), VaultError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| VaultError::io("cannot create the folder", dir, e))
}

/// Writes `bytes` over the vault atomically (see the module doc), calling `hook` after each
/// step. On failure before the rename the temp file is removed and the old vault is untouched.
/// A symbolic link is written through (its target is replaced, the link stays). Writers that
/// read the vault first hold [`VaultLock`] around both.
pub fn write_atomic(path: &Path, bytes: &[u8], hook: StepHook<'_>) -> Result<(), VaultError> {
    let path = &write_target(path)?;
    let tmp = temp_path(path);
    let result = write_steps(path, &tmp, bytes, hook);
    if result.is_err() && tmp.exists() {
        // Best effort: the temp file holds only ciphertext and is 0600, so a leftover is
        // harmless, but it is clutter.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_steps(path: &Path, tmp: &Path, bytes: &[u8], hook: StepHook<'_>) -> Result<(), VaultError> {
    let step = |s: WriteStep| hook(s).map_err(|e| VaultError::io("interrupted writing", path, e));
    // mode(0o600) applies at creation, so no byte is ever readable by others; create_new
    // refuses to follow a planted symlink or reuse someone else's file.
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| VaultError::io("cannot create", tmp, e))?;
    // The umask can only remove bits, but make the intent explicit.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| VaultError::io("cannot set permissions on", tmp, e))?;
    step(WriteStep::TempCreated)?;
    file.write_all(bytes)
        .map_err(|e| VaultError::io("cannot write", tmp, e))?;
    step(WriteStep::TempWritten)?;
    file.sync_all()
        .map_err(|e| VaultError::io("cannot sync", tmp, e))?;
    drop(file);
    step(WriteStep::TempSynced)?;
    fs::rename(tmp, path).map_err(|e| VaultError::io("cannot replace", path, e))?;
    step(WriteStep::Renamed)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| VaultError::io("cannot sync the folder of", path, e))?;
    }
    step(WriteStep::DirSynced)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn written_file_is_0600_and_holds_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vault.crbot");
        write_atomic(&p, b"abc", &no_faults).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"abc");
        assert_eq!(file_mode(&p).unwrap(), Some(0o600));
    }

    #[test]
    fn temp_file_is_already_0600_when_created() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vault.crbot");
        let seen = std::cell::Cell::new(None);
        let hook = |s: WriteStep| {
            if s == WriteStep::TempCreated {
                let tmp = fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
                seen.set(Some(fs::metadata(tmp).unwrap().permissions().mode() & 0o777));
            }
            Ok(())
        };
        write_atomic(&p, b"abc", &hook).unwrap();
        assert_eq!(seen.get(), Some(0o600));
    }

    #[test]
    fn failure_before_rename_keeps_the_old_file_and_removes_the_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vault.crbot");
        write_atomic(&p, b"old", &no_faults).unwrap();
        let fail = |s: WriteStep| {
            if s == WriteStep::TempSynced {
                Err(std::io::Error::other("crash"))
            } else {
                Ok(())
            }
        };
        assert!(write_atomic(&p, b"new", &fail).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_a_vault_others_can_read_and_names_the_chmod_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vault.crbot");
        write_atomic(&p, b"abc", &no_faults).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_vault(&p).unwrap_err();
        assert!(matches!(err, VaultError::InsecurePermissions { mode: 0o640, .. }));
        assert!(
            err.to_string().contains(&format!("chmod 600 {}", p.display())),
            "{err}"
        );
    }

    #[test]
    fn missing_vault_says_how_to_create_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_vault(&dir.path().join("vault.crbot")).unwrap_err();
        assert!(err.to_string().contains("crbot vault init"), "{err}");
    }
}
