//! The control API on the engine's unix socket, `<data>/engine-<mode>.sock`.
//!
//! Owns: binding the socket owner-only (0600) with no window in which another user could
//! connect, serving the router over it, and removing the file on a clean stop. Over the socket
//! no token is needed and there is no rate limit: the file's permissions are its
//! authentication (as with Docker's socket). Must not: be called without the account's engine
//! lock: holding the lock is what proves a socket file already there is stale.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::Router;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::engine::lock::EngineLock;

/// The mark a request that came over the socket carries (a request extension: nothing a TCP
/// client sends can set it). The token guards let such a request through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trusted;

/// The socket file, removed when dropped.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` owner-only. A file already there is removed first (the caller holds the lock,
/// so no engine answers on it). The socket is bound in a fresh private folder (0700) next to
/// it, set to 0600 there, and only then renamed into place: no other user can connect to it
/// at any moment, whatever the process's umask.
pub fn bind(path: &Path, _lock: &EngineLock) -> std::io::Result<(UnixListener, SocketFile)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(path = %path.display(), "removed a stale control socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let private = dir.join(format!(
        ".engine-sock-{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 6]>())
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("s");
    let bound = stage(&staged).and_then(|l| std::fs::rename(&staged, path).map(|()| l));
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    let listener = bound?;
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
        },
    ))
}

/// Binds `staged` (inside the private folder) and makes it 0600, checked.
fn stage(staged: &Path) -> std::io::Result<UnixListener> {
    let listener = UnixListener::bind(staged)?;
    std::fs::set_permissions(staged, std::fs::Permissions::from_mode(0o600))?;
    let mode = std::fs::metadata(staged)?.permissions().mode() & 0o777;
    if mode != 0o600 {
        return Err(std::io::Error::other(format!(
            "the control socket's mode is {mode:o}, not 600"
        )));
    }
    Ok(listener)
}

/// Serves `app` on the socket until `stop` is cancelled. Every request is marked [`Trusted`].
pub async fn serve(listener: UnixListener, app: Router, stop: CancellationToken) -> std::io::Result<()> {
    let app = app.layer(axum::Extension(Trusted));
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Mode;

    #[tokio::test]
    async fn a_stale_socket_file_is_replaced_by_an_owner_only_one_removed_when_dropped() {
        let dir = tempfile::tempdir().expect("dir");
        let lock = EngineLock::try_acquire(dir.path(), Mode::Sim).expect("lock");
        let path = crate::engine::lock::socket_path(dir.path(), Mode::Sim);
        // What a crashed engine leaves behind: a file nobody answers on.
        std::fs::write(&path, b"stale").expect("stale file");
        let (listener, file) = bind(&path, &lock).expect("bound");
        let meta = std::fs::symlink_metadata(&path).expect("socket");
        use std::os::unix::fs::FileTypeExt;
        assert!(meta.file_type().is_socket(), "a socket, not the stale file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing of the private staging folder is left next to it.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.starts_with(".engine-sock-")), "{names:?}");
        let _client = tokio::net::UnixStream::connect(&path).await.expect("connects");
        drop(listener);
        drop(file);
        assert!(!path.exists(), "removed on a clean stop");
    }
}
