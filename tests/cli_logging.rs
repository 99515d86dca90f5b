//! The log files the built binary writes: private like the journal (file 0600, folder 0700),
//! also when the file or the folder already existed with wider permissions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("crbot.") && n.ends_with(".log"))
        })
        .collect()
}

fn resume(home: &Path) {
    let cwd = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("crbot").unwrap();
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd.path())
        .current_dir(cwd.path())
        .arg("--home")
        .arg(home)
        .arg("resume")
        .assert()
        .success();
}

#[test]
fn the_log_file_and_its_folder_are_private() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    resume(&home);
    let files = logs(&home);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600, "{}", files[0].display());
    assert_eq!(mode(&home), 0o700);
}

#[test]
fn a_log_file_and_folder_that_existed_with_wider_permissions_are_narrowed() {
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    resume(home.path());
    let file = logs(home.path()).pop().expect("a log file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    resume(home.path());
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(home.path()), 0o700);
}
