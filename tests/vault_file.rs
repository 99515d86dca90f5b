//! The vault through its public API and on disk: round trip, wrong passphrase vs damage (every
//! region of the file), rotate interrupted at each write step, file-mode refusal, the start-up
//! unlock with its growing delay. Small Argon2 parameters except one test of the defaults.

use std::cell::RefCell;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crbot::cli::vault::{VaultCliContext, VaultCommand, run_cli};
use crbot::domain::Mode;
use crbot::vault::format::{self, KdfParams};
use crbot::vault::store::WriteStep;
use crbot::vault::{KeyKind, KeySecret, ScriptedSource, VaultError, unlock_interactive};
use sha2::{Digest, Sha256};

const SMALL: KdfParams = KdfParams { m_kib: 8, t: 1, p: 1 };
const PASS: &str = "correct horse battery staple";
const NEW_PASS: &str = "a different long passphrase";
const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const API_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).unwrap()
    }
}

/// A context answering from `answers` (stdin style unless `interactive`), printing into `out`.
fn ctx(
    path: &Path,
    answers: &[&str],
    mode: Option<Mode>,
    interactive: bool,
    out: &SharedBuf,
) -> VaultCliContext {
    let input = ScriptedSource::new(answers.iter().copied());
    VaultCliContext {
        path: path.to_path_buf(),
        passphrase_stdin: !interactive,
        json: false,
        mode,
        kdf: SMALL,
        input: RefCell::new(Box::new(input)),
        stdout: RefCell::new(Box::new(out.clone())),
        sleeper: Box::new(|_| panic!("no sleep expected")),
        clock: Box::new(|| 1_764_000_000_000),
        write_hook: Box::new(|_| Ok(())),
    }
}

fn run(path: &Path, cmd: VaultCommand, answers: &[&str], mode: Option<Mode>) -> anyhow::Result<String> {
    let out = SharedBuf::default();
    run_cli(&cmd, &ctx(path, answers, mode, false, &out))?;
    Ok(out.text())
}

fn set_keys() -> VaultCommand {
    VaultCommand::SetKeys {
        ed25519_key_file: None,
    }
}

/// A vault with testnet HMAC keys, protected by PASS.
fn vault_with_keys() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.crbot");
    run(&path, VaultCommand::Init, &[PASS], None).unwrap();
    run(
        &path,
        set_keys(),
        &[PASS, API_KEY, API_SECRET],
        Some(Mode::Testnet),
    )
    .unwrap();
    (dir, path)
}

fn unlock(path: &Path, mode: Mode, answers: &[&str]) -> Result<crbot::vault::ModeKeys, VaultError> {
    let mut src = ScriptedSource::new(answers.iter().copied());
    unlock_interactive(path, mode, &mut src, &|_| {})
}

fn file_hash(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[test]
fn keys_stored_with_set_keys_come_back_from_unlock() {
    let (_dir, path) = vault_with_keys();
    let keys = unlock(&path, Mode::Testnet, &[PASS]).unwrap();
    assert_eq!(keys.kind(), KeyKind::Hmac);
    assert_eq!(keys.api_key.expose(), API_KEY);
    assert!(matches!(&keys.secret, KeySecret::Hmac(s) if s.expose() == API_SECRET));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn unlock_for_a_mode_without_keys_names_the_set_keys_command() {
    let (_dir, path) = vault_with_keys();
    let err = unlock(&path, Mode::Live, &[PASS]).unwrap_err();
    assert!(
        err.to_string().contains("crbot vault set-keys --mode live"),
        "{err}"
    );
}

#[test]
fn wrong_passphrase_says_so_and_leaves_the_file_byte_for_byte() {
    let (_dir, path) = vault_with_keys();
    let before = file_hash(&path);
    let err = run(&path, VaultCommand::Status, &["not the passphrase"], None).unwrap_err();
    assert_eq!(err.to_string(), "wrong passphrase");
    assert_eq!(file_hash(&path), before);
}

#[test]
fn unlock_gives_three_tries_with_a_growing_delay_then_a_clear_error() {
    let (_dir, path) = vault_with_keys();
    let before = file_hash(&path);
    let slept = RefCell::new(Vec::new());
    let mut src = ScriptedSource::new(["wrong one", "wrong two", "wrong three", PASS]);
    let err =
        unlock_interactive(&path, Mode::Testnet, &mut src, &|d| slept.borrow_mut().push(d)).unwrap_err();
    assert!(
        matches!(err, VaultError::TooManyAttempts { attempts: 3 }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "wrong passphrase (3 tries); the vault is unchanged"
    );
    assert_eq!(
        *slept.borrow(),
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert_eq!(src.notices, vec!["Wrong passphrase."; 3]);
    assert_eq!(file_hash(&path), before);
}

#[test]
fn unlock_succeeds_on_the_second_try_after_one_delay() {
    let (_dir, path) = vault_with_keys();
    let slept = RefCell::new(Vec::new());
    let mut src = ScriptedSource::new(["wrong one", PASS]);
    let keys = unlock_interactive(&path, Mode::Testnet, &mut src, &|d| slept.borrow_mut().push(d)).unwrap();
    assert_eq!(keys.api_key.expose(), API_KEY);
    assert_eq!(*slept.borrow(), vec![Duration::from_secs(1)]);
}

/// Byte ranges of the documented layout, named, for a file whose payload is `ct_len` bytes.
fn regions(len: usize) -> Vec<(&'static str, std::ops::Range<usize>)> {
    vec![
        ("magic", 0..8),
        ("version", 8..10),
        ("kdf id", 10..11),
        ("cipher id", 11..12),
        ("kdf params", 12..24),
        ("salt", 24..40),
        ("nonce", 40..52),
        ("key check", 52..84),
        ("payload length", 84..88),
        ("ciphertext", 88..len - 48),
        ("tag", len - 48..len - 32),
        ("checksum", len - 32..len),
    ]
}

fn assert_damaged(path: &Path, what: &str) {
    let before = file_hash(path);
    for pass in [PASS, "not the passphrase"] {
        match unlock(path, Mode::Testnet, &[pass, pass, pass]) {
            Err(VaultError::Damaged { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{what} with {pass:?}: expected damaged, got {other:?}"),
        }
    }
    let err = run(path, VaultCommand::Status, &[PASS], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is damaged") && !err.contains("wrong passphrase"),
        "{what}: {err}"
    );
    assert_eq!(file_hash(path), before, "{what}: reading changed the file");
}

#[test]
fn a_bit_flip_in_every_region_is_reported_as_damage_never_wrong_passphrase() {
    let (_dir, path) = vault_with_keys();
    let good = std::fs::read(&path).unwrap();
    for (name, range) in regions(good.len()) {
        for at in [range.start, range.end - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            assert_damaged(&path, &format!("{name} byte {at}"));
        }
    }
}

#[test]
fn truncated_extended_and_emptied_files_are_reported_as_damage() {
    let (_dir, path) = vault_with_keys();
    let good = std::fs::read(&path).unwrap();
    for n in [0, 7, 8, 60, 88, good.len() - 33, good.len() - 1] {
        std::fs::write(&path, &good[..n]).unwrap();
        assert_damaged(&path, &format!("truncated to {n}"));
    }
    let mut longer = good.clone();
    longer.extend_from_slice(b"\n");
    std::fs::write(&path, &longer).unwrap();
    assert_damaged(&path, "one byte appended");
    std::fs::write(&path, b"{\"api_key\": \"plain json\"}").unwrap();
    assert_damaged(&path, "replaced by another file");
}

#[test]
fn a_deliberate_edit_with_a_recomputed_checksum_is_caught_by_the_tag_as_damage() {
    let (_dir, path) = vault_with_keys();
    let good = std::fs::read(&path).unwrap();
    for at in [40, 88, good.len() - 40] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let n = bad.len() - 32;
        let sum = Sha256::digest(&bad[..n]);
        bad[n..].copy_from_slice(&sum);
        std::fs::write(&path, &bad).unwrap();
        let err = unlock(&path, Mode::Testnet, &[PASS]).unwrap_err();
        assert!(
            matches!(&err, VaultError::Damaged { reason, .. } if reason.contains("authentication tag")),
            "{err:?}"
        );
    }
}

#[test]
fn a_vault_others_can_read_is_refused_with_the_chmod_fix() {
    let (_dir, path) = vault_with_keys();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = run(&path, VaultCommand::Status, &[PASS], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("chmod 600 {}", path.display())),
            "{mode:o}: {err}"
        );
        assert!(unlock(&path, Mode::Testnet, &[PASS]).is_err());
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(unlock(&path, Mode::Testnet, &[PASS]).is_ok());
}

#[test]
fn rotate_changes_the_passphrase_salt_and_nonce_and_keeps_the_keys() {
    let (_dir, path) = vault_with_keys();
    let old = std::fs::read(&path).unwrap();
    run(&path, VaultCommand::Rotate, &[PASS, NEW_PASS], None).unwrap();
    let new = std::fs::read(&path).unwrap();
    assert_ne!(old[24..40], new[24..40], "salt");
    assert_ne!(old[40..52], new[40..52], "nonce");
    assert!(matches!(
        unlock(&path, Mode::Testnet, &[PASS]),
        Err(VaultError::WrongPassphrase)
    ));
    assert_eq!(
        unlock(&path, Mode::Testnet, &[NEW_PASS])
            .unwrap()
            .api_key
            .expose(),
        API_KEY
    );
}

#[test]
fn rotate_interrupted_at_any_step_leaves_the_old_or_the_new_vault_whole() {
    let steps = [
        WriteStep::TempCreated,
        WriteStep::TempWritten,
        WriteStep::TempSynced,
        WriteStep::Renamed,
        WriteStep::DirSynced,
    ];
    for fail_at in steps {
        let (dir, path) = vault_with_keys();
        let old = std::fs::read(&path).unwrap();
        let out = SharedBuf::default();
        let mut c = ctx(&path, &[PASS, NEW_PASS], None, false, &out);
        c.write_hook = Box::new(move |s| {
            if s == fail_at {
                Err(std::io::Error::other("simulated crash"))
            } else {
                Ok(())
            }
        });
        let err = run_cli(&VaultCommand::Rotate, &c).unwrap_err();
        assert!(err.to_string().contains("simulated crash"), "{err}");
        let renamed = matches!(fail_at, WriteStep::Renamed | WriteStep::DirSynced);
        let (works, fails) = if renamed {
            (NEW_PASS, PASS)
        } else {
            (PASS, NEW_PASS)
        };
        if !renamed {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                old,
                "{fail_at:?}: old vault changed"
            );
        }
        let keys = unlock(&path, Mode::Testnet, &[works]).unwrap();
        assert_eq!(keys.api_key.expose(), API_KEY, "{fail_at:?}");
        assert!(matches!(
            unlock(&path, Mode::Testnet, &[fails]),
            Err(VaultError::WrongPassphrase)
        ));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            // The writers' lock file stays beside the vault (it holds nothing).
            .filter(|n| n != "vault.crbot.lock")
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("vault.crbot")],
            "{fail_at:?}: temp file left"
        );
    }
}

#[test]
fn a_stray_temp_file_from_a_crash_does_not_disturb_the_vault() {
    let (dir, path) = vault_with_keys();
    std::fs::write(dir.path().join(".vault.crbot.tmp-0000000000000001"), b"partial").unwrap();
    assert_eq!(
        unlock(&path, Mode::Testnet, &[PASS]).unwrap().api_key.expose(),
        API_KEY
    );
}

#[test]
fn init_asks_twice_on_the_terminal_and_refuses_a_mismatch_or_a_weak_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.crbot");
    let out = SharedBuf::default();
    let err = run_cli(
        &VaultCommand::Init,
        &ctx(&path, &[PASS, "something else entirely"], None, true, &out),
    );
    assert_eq!(err.unwrap_err().to_string(), "the two passphrases differ");
    let err = run_cli(
        &VaultCommand::Init,
        &ctx(&path, &["short", "short"], None, true, &out),
    );
    assert!(err.unwrap_err().to_string().contains("at least 12"));
    let err = run_cli(
        &VaultCommand::Init,
        &ctx(&path, &["aaaaaaaaaaaaaaaa"], None, false, &out),
    );
    assert!(err.unwrap_err().to_string().contains("different characters"));
    assert!(!path.exists());
    run_cli(&VaultCommand::Init, &ctx(&path, &[PASS, PASS], None, true, &out)).unwrap();
    assert!(path.exists());
}

#[test]
fn init_refuses_to_overwrite_an_existing_vault() {
    let (_dir, path) = vault_with_keys();
    let before = file_hash(&path);
    let err = run(&path, VaultCommand::Init, &[NEW_PASS], None).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(file_hash(&path), before);
}

#[test]
fn set_keys_refuses_modes_that_need_no_keys_and_a_missing_mode() {
    let (_dir, path) = vault_with_keys();
    for mode in [Mode::Sim, Mode::Paper] {
        let err = run(&path, set_keys(), &[PASS, API_KEY, API_SECRET], Some(mode)).unwrap_err();
        assert!(err.to_string().contains("trades without keys"), "{err}");
    }
    let err = run(&path, set_keys(), &[PASS, API_KEY, API_SECRET], None).unwrap_err();
    assert!(err.to_string().contains("--mode"), "{err}");
}

/// RFC 8410 §10.3's example Ed25519 private key.
const RFC8410_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
const RFC8410_SEED: &str = "d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842";

#[test]
fn set_keys_stores_an_ed25519_key_from_a_pkcs8_pem_file() {
    let (dir, path) = vault_with_keys();
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, RFC8410_PEM).unwrap();
    let cmd = VaultCommand::SetKeys {
        ed25519_key_file: Some(pem),
    };
    let out = run(&path, cmd, &[PASS, API_KEY], Some(Mode::Live)).unwrap();
    assert_eq!(out.trim(), "Stored ed25519 keys for live (API key vmPU…Eh8A).");
    let keys = unlock(&path, Mode::Live, &[PASS]).unwrap();
    assert_eq!(keys.kind(), KeyKind::Ed25519);
    assert!(matches!(&keys.secret, KeySecret::Ed25519(b) if hex::encode(b.expose()) == RFC8410_SEED));
    // The testnet entry is still there.
    assert_eq!(
        unlock(&path, Mode::Testnet, &[PASS]).unwrap().kind(),
        KeyKind::Hmac
    );
}

#[test]
fn set_keys_refuses_a_key_file_that_is_not_an_ed25519_key() {
    let (dir, path) = vault_with_keys();
    let bad = dir.path().join("key.pem");
    std::fs::write(
        &bad,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let cmd = VaultCommand::SetKeys {
        ed25519_key_file: Some(bad),
    };
    let err = run(&path, cmd, &[PASS, API_KEY], Some(Mode::Live)).unwrap_err();
    assert!(err.to_string().starts_with("invalid key:"), "{err}");
}

#[test]
fn status_shows_modes_kind_masked_key_parameters_and_mode_but_no_secret() {
    let (_dir, path) = vault_with_keys();
    let out = run(&path, VaultCommand::Status, &[PASS], None).unwrap();
    assert!(out.contains("file mode  0600"), "{out}");
    assert!(out.contains("Argon2id m=8 KiB t=1 p=1"), "{out}");
    assert!(out.contains("testnet  hmac     vmPU…Eh8A"), "{out}");
    assert!(out.contains("live     (none)"), "{out}");
    assert!(out.contains("created    2025-11-24"), "{out}");
    assert!(!out.contains(API_KEY) && !out.contains(API_SECRET) && !out.contains(PASS));

    let json_out = SharedBuf::default();
    let mut c = ctx(&path, &[PASS], None, false, &json_out);
    c.json = true;
    run_cli(&VaultCommand::Status, &c).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json_out.text()).unwrap();
    assert_eq!(doc["modes"][0]["api_key"], "vmPU…Eh8A");
    assert_eq!(doc["kdf"]["m_kib"], 8);
    assert_eq!(doc["file_mode"], "0600");
}

#[test]
fn a_vault_written_with_the_default_parameters_records_and_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.crbot");
    let out = SharedBuf::default();
    let mut c = ctx(&path, &[PASS], None, false, &out);
    c.kdf = KdfParams::DEFAULT;
    run_cli(&VaultCommand::Init, &c).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header = format::parse_header(&bytes).unwrap();
    assert_eq!(
        header.params,
        KdfParams {
            m_kib: 65536,
            t: 3,
            p: 1
        }
    );
    assert!(format::open(&PASS.into(), &bytes).is_ok());
}

#[test]
fn commands_on_the_terminal_retry_a_wrong_passphrase_after_a_delay() {
    let (_dir, path) = vault_with_keys();
    let out = SharedBuf::default();
    let slept = Rc::new(RefCell::new(Vec::new()));
    let mut c = ctx(&path, &["wrong one", PASS], None, true, &out);
    let s = slept.clone();
    c.sleeper = Box::new(move |d| s.borrow_mut().push(d));
    run_cli(&VaultCommand::Status, &c).unwrap();
    assert!(out.text().contains("testnet  hmac"), "{}", out.text());
    assert_eq!(*slept.borrow(), vec![Duration::from_secs(1)]);
}

#[test]
fn rotate_refuses_a_weak_or_unchanged_new_passphrase_and_keeps_the_file() {
    let (_dir, path) = vault_with_keys();
    let before = file_hash(&path);
    let err = run(&path, VaultCommand::Rotate, &[PASS, "tooshort"], None).unwrap_err();
    assert!(err.to_string().contains("at least 12"), "{err}");
    let err = run(&path, VaultCommand::Rotate, &[PASS, PASS], None).unwrap_err();
    assert!(err.to_string().contains("same as the current one"), "{err}");
    assert_eq!(file_hash(&path), before);
}
