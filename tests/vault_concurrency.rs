//! The vault file under concurrency, through the real binary: `crbot vault …` processes run at
//! the same time on one vault (`--home <tempdir> --passphrase-stdin`, Argon2id lowered with
//! `CRBOT_VAULT_KDF` so that a round takes milliseconds), then the file is opened in process.
//!
//! - two `set-keys` for different modes at once keep both, 100 rounds in a row, while a reader
//!   that takes no lock opens the vault again and again and never sees a partial file;
//! - `rotate` racing `set-keys` ends with only the new passphrase opening the file, and the
//!   keys of every `set-keys` that said "Stored" in it, 100 rounds in a row;
//! - a temp file left by a killed writer is removed by the next write;
//! - a symlinked vault is written through (the link stays), a link to nothing is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crbot::domain::Mode;
use crbot::vault::{KeySecret, ScriptedSource, VaultContents, VaultError, unlock_contents};

const ROUNDS: usize = 100;

fn crbot(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crbot"));
    for v in [
        "CRBOT_HOME",
        "CRBOT_MODE",
        "CRBOT_PASSPHRASE_FILE",
        "API_KEY_ENCRYPTION_KEY",
    ] {
        c.env_remove(v);
    }
    c.env("CRBOT_VAULT_KDF", "8,1,1")
        .arg("--home")
        .arg(home)
        .arg("--passphrase-stdin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Starts a command and writes its answers (one per line); `finish` waits for it.
fn spawn(home: &Path, args: &[&str], answers: &[&str]) -> Child {
    let mut child = crbot(home, args).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for a in answers {
        writeln!(stdin, "{a}").unwrap();
    }
    drop(stdin);
    child
}

struct Done {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn finish(child: Child) -> Done {
    let out = child.wait_with_output().unwrap();
    Done {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(home: &Path, args: &[&str], answers: &[&str]) -> Done {
    finish(spawn(home, args, answers))
}

fn open(path: &Path, pass: &str) -> Result<VaultContents, VaultError> {
    let mut src = ScriptedSource::new([pass]);
    unlock_contents(path, &mut src, &|_| {}, 1).map(|(c, _, _)| c)
}

fn hmac_of(c: &VaultContents, mode: Mode) -> Option<(String, String)> {
    let k = c.get(mode)?;
    match &k.secret {
        KeySecret::Hmac(s) => Some((k.api_key.expose().to_string(), s.expose().to_string())),
        KeySecret::Ed25519(_) => None,
    }
}

fn init(home: &Path, pass: &str) -> PathBuf {
    let r = run(home, &["vault", "init"], &[pass]);
    assert!(r.ok, "init: {}", r.stderr);
    home.join("vault.crbot")
}

fn set_keys(home: &Path, mode: &str, pass: &str, key: &str, secret: &str) -> Child {
    spawn(home, &["--mode", mode, "vault", "set-keys"], &[pass, key, secret])
}

#[test]
fn concurrent_set_keys_for_different_modes_keep_both_every_round() {
    let home = tempfile::tempdir().unwrap();
    let pass = "concurrency passphrase one";
    let path = init(home.path(), pass);
    // A reader takes no lock and must never see a partial file while the writers run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = open(&path, pass) {
                    return Err(format!("read {reads}: {e}"));
                }
                reads += 1;
            }
            Ok(reads)
        })
    };
    for round in 0..ROUNDS {
        let (dk, ds) = (format!("DEMOKEY{round:04}"), format!("demosecret{round:04}"));
        let (tk, ts) = (format!("TESTKEY{round:04}"), format!("testsecret{round:04}"));
        let a = set_keys(home.path(), "demo", pass, &dk, &ds);
        let b = set_keys(home.path(), "testnet", pass, &tk, &ts);
        let (a, b) = (finish(a), finish(b));
        assert!(
            a.ok && a.stdout.contains("Stored"),
            "round {round}, demo: {}",
            a.stderr
        );
        assert!(
            b.ok && b.stdout.contains("Stored"),
            "round {round}, testnet: {}",
            b.stderr
        );
        let c = open(&path, pass).unwrap();
        assert_eq!(
            hmac_of(&c, Mode::Demo),
            Some((dk, ds)),
            "round {round}: demo lost"
        );
        assert_eq!(
            hmac_of(&c, Mode::Testnet),
            Some((tk, ts)),
            "round {round}: testnet lost"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().unwrap().unwrap();
    assert!(reads > 0);
    let leftovers: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn rotate_racing_set_keys_leaves_one_passphrase_and_every_stored_key() {
    let home = tempfile::tempdir().unwrap();
    let mut old = "rotation passphrase r000".to_string();
    let path = init(home.path(), &old);
    let (mut stored, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let new = format!("rotation passphrase r{:03}", round + 1);
        let (key, secret) = (format!("RACEKEY{round:04}"), format!("racesecret{round:04}"));
        let before = open(&path, &old).unwrap();
        // Alternate which one starts first, so both orders happen.
        let (rot, set) = if round % 2 == 0 {
            let r = spawn(home.path(), &["vault", "rotate"], &[&old, &new]);
            (r, set_keys(home.path(), "live", &old, &key, &secret))
        } else {
            let s = set_keys(home.path(), "live", &old, &key, &secret);
            (spawn(home.path(), &["vault", "rotate"], &[&old, &new]), s)
        };
        let (rot, set) = (finish(rot), finish(set));
        assert!(
            rot.ok && rot.stdout.contains("Re-encrypted"),
            "round {round}, rotate: {}",
            rot.stderr
        );
        assert!(
            matches!(open(&path, &old), Err(VaultError::WrongPassphrase)),
            "round {round}: the old passphrase still opens the vault"
        );
        let after = open(&path, &new).unwrap();
        if set.ok {
            assert!(set.stdout.contains("Stored"), "round {round}: {}", set.stdout);
            assert_eq!(
                hmac_of(&after, Mode::Live),
                Some((key, secret)),
                "round {round}: set-keys lost"
            );
            stored += 1;
        } else {
            // It ran after the rotation, with the passphrase that no longer opens the file.
            assert!(!set.stdout.contains("Stored"), "round {round}: {}", set.stdout);
            assert!(
                set.stderr.contains("wrong passphrase"),
                "round {round}: {}",
                set.stderr
            );
            assert_eq!(
                hmac_of(&after, Mode::Live),
                hmac_of(&before, Mode::Live),
                "round {round}"
            );
            refused += 1;
        }
        old = new;
    }
    assert_eq!(stored + refused, ROUNDS);
}

#[test]
fn concurrent_inits_create_one_vault_and_refuse_the_other() {
    for round in 0..20 {
        let home = tempfile::tempdir().unwrap();
        let a = spawn(home.path(), &["vault", "init"], &["first init passphrase"]);
        let b = spawn(home.path(), &["vault", "init"], &["second init passphrase"]);
        let (a, b) = (finish(a), finish(b));
        assert!(
            a.ok != b.ok,
            "round {round}: exactly one init succeeds: {} / {}",
            a.stderr,
            b.stderr
        );
        let loser = if a.ok { &b } else { &a };
        assert!(loser.stderr.contains("already exists"), "{}", loser.stderr);
        let winner = if a.ok {
            "first init passphrase"
        } else {
            "second init passphrase"
        };
        assert!(
            open(&home.path().join("vault.crbot"), winner).is_ok(),
            "round {round}"
        );
    }
}

#[test]
fn a_temp_file_left_by_a_killed_writer_is_removed_by_the_next_write() {
    let home = tempfile::tempdir().unwrap();
    let pass = "stale temp passphrase";
    init(home.path(), pass);
    let stale = home.path().join(".vault.crbot.tmp-00c0ffee00c0ffee");
    std::fs::write(&stale, b"ciphertext of a write that was killed").unwrap();
    let unrelated = home.path().join(".vault.crbot.tmp-notours");
    std::fs::write(&unrelated, b"x").unwrap();
    let r = finish(set_keys(
        home.path(),
        "testnet",
        pass,
        "KEYAFTERCRASH",
        "secretaftercrash",
    ));
    assert!(r.ok, "{}", r.stderr);
    assert!(!stale.exists(), "the stale temp file is still there");
    assert!(
        unrelated.exists(),
        "a file that is not one of our temp names is left alone"
    );
    // A read-only command does not take the lock and removes nothing.
    std::fs::write(&stale, b"again").unwrap();
    let r = run(home.path(), &["vault", "status"], &[pass]);
    assert!(r.ok, "{}", r.stderr);
    assert!(stale.exists());
}

#[test]
fn a_symlinked_vault_is_written_through_and_the_link_stays() {
    let real_home = tempfile::tempdir().unwrap();
    let link_home = tempfile::tempdir().unwrap();
    let pass = "symlink passphrase one";
    let target = init(real_home.path(), pass);
    let link = link_home.path().join("vault.crbot");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let r = finish(set_keys(
        link_home.path(),
        "testnet",
        pass,
        "LINKKEY0001",
        "linksecret0001",
    ));
    assert!(r.ok, "{}", r.stderr);
    assert!(
        std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
        "the link was replaced"
    );
    let c = open(&target, pass).unwrap();
    assert_eq!(
        hmac_of(&c, Mode::Testnet),
        Some(("LINKKEY0001".into(), "linksecret0001".into()))
    );

    let new = "symlink passphrase two";
    let r = run(link_home.path(), &["vault", "rotate"], &[pass, new]);
    assert!(r.ok, "{}", r.stderr);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(open(&target, new).is_ok());
    // The lock is beside the target, shared by every link to it.
    assert!(real_home.path().join("vault.crbot.lock").exists());
}

#[test]
fn a_symlink_to_nothing_is_refused_and_left_as_it_is() {
    let home = tempfile::tempdir().unwrap();
    let link = home.path().join("vault.crbot");
    let nowhere = home.path().join("missing").join("vault.crbot");
    std::os::unix::fs::symlink(&nowhere, &link).unwrap();
    let r = run(home.path(), &["vault", "init"], &["dangling link passphrase"]);
    assert!(!r.ok);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(std::fs::read_link(&link).unwrap(), nowhere);
    assert!(!nowhere.exists());
}
