//! Unattended unlock through the built binary: a one-shot command in `testnet` mode (aimed at a
//! local exchange started here, keys only in the vault) with no terminal on standard input
//! unlocks the vault from `CRBOT_PASSPHRASE_FILE` (0600 or 0400, owned by this user) or from
//! `API_KEY_ENCRYPTION_KEY` (refused in production, naming the variable); `REDIS_URL` is
//! mentioned once on stderr and changes nothing.
#![allow(clippy::unwrap_used)]

mod support {
    pub mod cli;
}

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use crbot::exchange::sim::SimConfig;
use support::cli::CliExchange;

const PASS: &str = "unattended passphrase 1";

fn vault_cmd(home: &Path, args: &[&str], answers: &str) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_crbot"))
        .env_remove("CRBOT_HOME")
        .env("CRBOT_VAULT_KDF", "8,1,1")
        .arg("--home")
        .arg(home)
        .arg("--passphrase-stdin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(answers.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A local exchange and a home whose vault holds the exchange's key for testnet.
fn exchange_with_vault() -> CliExchange {
    let ex = CliExchange::start(SimConfig::default());
    vault_cmd(ex.home(), &["vault", "init"], &format!("{PASS}\n"));
    let answers = format!(
        "{PASS}\n{}\n{}\n",
        ex.handle.api_key(),
        ex.handle.api_secret().expose()
    );
    vault_cmd(ex.home(), &["--mode", "testnet", "vault", "set-keys"], &answers);
    ex
}

/// `crbot --mode testnet --json balance` with no terminal and no plain keys, plus `env`.
fn balance(ex: &CliExchange, env: &[(&str, &str)]) -> (i32, String) {
    let mut c = ex.crbot_in("testnet");
    c.env_remove("BINANCE_API_KEY")
        .env_remove("BINANCE_API_SECRET")
        .env_remove("CRBOT_PASSPHRASE_FILE")
        .env_remove("API_KEY_ENCRYPTION_KEY")
        .env_remove("REDIS_URL");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(["--json", "balance"]).write_stdin("").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pass_file(dir: &Path, mode: u32, content: &str) -> String {
    let path = dir.join(format!("pass-{mode:o}"));
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

#[test]
fn a_command_without_a_terminal_unlocks_from_a_0600_or_0400_passphrase_file_only() {
    let ex = exchange_with_vault();
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o600, 0o400] {
        let file = pass_file(dir.path(), mode, &format!("{PASS}\n"));
        let (code, err) = balance(&ex, &[("CRBOT_PASSPHRASE_FILE", &file)]);
        assert_eq!(code, 0, "mode {mode:o}: {err}");
    }
    for mode in [0o644, 0o640, 0o700] {
        let file = pass_file(dir.path(), mode, &format!("{PASS}\n"));
        let (code, err) = balance(&ex, &[("CRBOT_PASSPHRASE_FILE", &file)]);
        assert_ne!(code, 0, "mode {mode:o} accepted");
        assert!(
            err.contains("CRBOT_PASSPHRASE_FILE=") && err.contains("0600 or 0400"),
            "{err}"
        );
        assert!(!err.contains(PASS), "{err}");
    }
    let wrong = pass_file(dir.path(), 0o600, "not the passphrase at all\n");
    let (code, err) = balance(&ex, &[("CRBOT_PASSPHRASE_FILE", &wrong)]);
    assert_ne!(code, 0);
    assert!(err.contains("wrong passphrase"), "{err}");
}

#[test]
fn a_passphrase_file_owned_by_another_user_is_refused() {
    if crbot::vault::effective_uid() != 0 {
        return; // only root can give a file away
    }
    let ex = exchange_with_vault();
    let dir = tempfile::tempdir().unwrap();
    let file = pass_file(dir.path(), 0o600, &format!("{PASS}\n"));
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    let (code, err) = balance(&ex, &[("CRBOT_PASSPHRASE_FILE", &file)]);
    assert_ne!(code, 0);
    assert!(err.contains("owned by user id 65534"), "{err}");
}

#[test]
fn api_key_encryption_key_is_the_passphrase_outside_production_and_refused_in_it() {
    let ex = exchange_with_vault();
    let (code, err) = balance(&ex, &[("API_KEY_ENCRYPTION_KEY", PASS)]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = balance(
        &ex,
        &[
            ("API_KEY_ENCRYPTION_KEY", PASS),
            ("ENV", "production"),
            ("SECRET_KEY", "a production signing key of 32+ characters"),
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("API_KEY_ENCRYPTION_KEY") && err.contains("ENV=production"),
        "{err}"
    );
    assert!(!err.contains(PASS), "{err}");
    // The file wins over the variable when both are set.
    let dir = tempfile::tempdir().unwrap();
    let file = pass_file(dir.path(), 0o600, &format!("{PASS}\n"));
    let (code, err) = balance(
        &ex,
        &[
            ("CRBOT_PASSPHRASE_FILE", &file),
            ("API_KEY_ENCRYPTION_KEY", "something else entirely"),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn redis_url_is_mentioned_once_and_changes_nothing() {
    let ex = exchange_with_vault();
    let (code, err) = balance(
        &ex,
        &[
            ("API_KEY_ENCRYPTION_KEY", PASS),
            ("REDIS_URL", "redis://127.0.0.1:6379/0"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("does not use Redis").count(), 1, "{err}");
}

/// `crbot doctor` with no terminal unlocks from the passphrase file as every other command does,
/// instead of skipping the keys check ("no terminal to ask the passphrase").
#[test]
fn doctor_without_a_terminal_checks_the_keys_with_the_passphrase_file() {
    let ex = exchange_with_vault();
    let dir = tempfile::tempdir().unwrap();
    let file = pass_file(dir.path(), 0o600, &format!("{PASS}\n"));
    let run = |env: &[(&str, &str)]| {
        let mut c = ex.crbot_in("testnet");
        c.env_remove("BINANCE_API_KEY")
            .env_remove("BINANCE_API_SECRET")
            .env_remove("CRBOT_PASSPHRASE_FILE")
            .env_remove("API_KEY_ENCRYPTION_KEY");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.args(["doctor"]).write_stdin("").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let without = run(&[]);
    assert!(without.contains("no terminal to ask the passphrase"), "{without}");
    let with = run(&[("CRBOT_PASSPHRASE_FILE", &file)]);
    assert!(!with.contains("no terminal to ask the passphrase"), "{with}");
    assert!(!with.contains(PASS), "{with}");
}
