//! The leak grep: run the real binary through `vault init`, `set-keys`, `status`, `rotate`
//! (and a wrong passphrase) with `--home <tempdir> --passphrase-stdin`, then search every file
//! under the home folder and everything printed for the API key, the secret and both
//! passphrases. Only the masked key (first and last 4 characters) may appear.

use std::path::Path;

use assert_cmd::Command;

const PASS: &str = "leaktest passphrase number one";
const NEW_PASS: &str = "leaktest passphrase number two";
const WRONG_PASS: &str = "leaktest wrong guess of the passphrase";
const API_KEY: &str = "LkAPIKEYvmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duQz9X";
const API_SECRET: &str = "LkSECRETNhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn crbot(home: &Path, args: &[&str], stdin: &str) -> Run {
    let out = Command::cargo_bin("crbot")
        .unwrap()
        .env_remove("CRBOT_HOME")
        .arg("--home")
        .arg(home)
        .arg("--passphrase-stdin")
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn every_file(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            every_file(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The full value and its first and last 12 characters, as byte needles.
fn needles() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = Vec::new();
    for (name, s) in [
        ("api key", API_KEY),
        ("secret", API_SECRET),
        ("passphrase", PASS),
        ("new passphrase", NEW_PASS),
        ("wrong passphrase", WRONG_PASS),
    ] {
        v.push((name, s.as_bytes().to_vec()));
        v.push((name, s.as_bytes()[..12].to_vec()));
        v.push((name, s.as_bytes()[s.len() - 12..].to_vec()));
    }
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_key_secret_or_passphrase_appears_in_any_file_or_output_after_a_vault_session() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut runs = Vec::new();

    let r = crbot(h, &["vault", "init"], &format!("{PASS}\n"));
    assert_eq!(r.code, 0, "init: {}", r.stderr);
    runs.push(r);
    let r = crbot(
        h,
        &["--mode", "testnet", "vault", "set-keys"],
        &format!("{PASS}\n{API_KEY}\n{API_SECRET}\n"),
    );
    assert_eq!(r.code, 0, "set-keys: {}", r.stderr);
    assert!(r.stdout.contains("LkAP…Qz9X"), "{}", r.stdout);
    runs.push(r);
    let r = crbot(h, &["vault", "status"], &format!("{PASS}\n"));
    assert_eq!(r.code, 0, "status: {}", r.stderr);
    assert!(r.stdout.contains("testnet  hmac     LkAP…Qz9X"), "{}", r.stdout);
    runs.push(r);
    let r = crbot(h, &["vault", "rotate"], &format!("{PASS}\n{NEW_PASS}\n"));
    assert_eq!(r.code, 0, "rotate: {}", r.stderr);
    runs.push(r);
    let r = crbot(h, &["vault", "status", "--json"], &format!("{NEW_PASS}\n"));
    assert_eq!(r.code, 0, "status --json: {}", r.stderr);
    assert!(r.stdout.contains("LkAP…Qz9X"), "{}", r.stdout);
    runs.push(r);
    let r = crbot(h, &["vault", "status"], &format!("{WRONG_PASS}\n"));
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.trim(), "crbot: wrong passphrase");
    runs.push(r);

    let vault = h.join("vault.crbot");
    assert!(vault.exists());
    let mut files = Vec::new();
    every_file(h, &mut files);
    assert!(!files.is_empty());
    for (name, needle) in needles() {
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            assert!(
                !contains(&bytes, &needle),
                "the {name} appears in {}",
                file.display()
            );
        }
        for (i, r) in runs.iter().enumerate() {
            assert!(
                !contains(r.stdout.as_bytes(), &needle),
                "the {name} appears in stdout of run {i}"
            );
            assert!(
                !contains(r.stderr.as_bytes(), &needle),
                "the {name} appears in stderr of run {i}"
            );
        }
    }
}

#[test]
fn the_binary_refuses_a_group_readable_vault_with_the_chmod_fix() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    assert_eq!(
        crbot(home.path(), &["vault", "init"], &format!("{PASS}\n")).code,
        0
    );
    let vault = home.path().join("vault.crbot");
    std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = crbot(home.path(), &["vault", "status"], &format!("{PASS}\n"));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!("chmod 600 {}", vault.display())),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}
