//! The vault file on disk: permission-checked reads and crash-safe, 0600 writes.
//!
//! Owns: every filesystem call the vault makes. Must not: write anything but already
//! encrypted bytes, leave a window where the file is readable by others, or replace the vault
//! with a partial file. A write is: create a temp file beside the vault with mode 0600 (before a
//! byte is written), write, fsync, rename over the vault, fsync the folder. A crash at any point
//! leaves either the old vault or the new one, whole.

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

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix: u64 = rand::random();
    path.with_file_name(format!(".{name}.tmp-{suffix:016x}"))
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
pub fn write_atomic(path: &Path, bytes: &[u8], hook: StepHook<'_>) -> Result<(), VaultError> {
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
