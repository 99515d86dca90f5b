//! The credential vault: one encrypted file holding the API keys of every mode
//! that trades with keys (demo, testnet, live), unlocked with a passphrase.
//!
//! Owns: the file format (`format`), the atomic, permission-checked file I/O (`store`), the
//! decrypted contents (`contents`), passphrase rules and sources (`passphrase`), where the file
//! lives, the start-up unlock with its growing delay, the live confirmation and the process
//! hardening against core dumps. Must not: hold a secret outside `crate::secret` types, put a
//! secret in an error, a log line or any file other than the encrypted vault, change a byte on
//! disk when a read fails, or know the command line (the `crbot vault …` commands use this
//! module from `crate::cli::vault`).

pub mod contents;
pub mod format;
pub mod passphrase;
pub mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::Mode;
use crate::secret::{SecretBytes, SecretString};

pub use contents::VaultContents;
pub use format::KdfParams;
pub use passphrase::{
    LinesSource, PassphraseSource, ScriptedSource, StdinLines, TerminalPrompt, read_passphrase_file,
};

/// The file name of the vault inside the config folder.
pub const VAULT_FILE_NAME: &str = "vault.crbot";

/// The vault path for `--home`/`CRBOT_HOME`, or the user config folder. Empty when neither
/// exists (reported when a command runs).
pub fn vault_path(home: Option<&Path>) -> PathBuf {
    match home {
        Some(h) => h.join(VAULT_FILE_NAME),
        None => directories::ProjectDirs::from("", "", "crbot")
            .map(|d| d.config_dir().join(VAULT_FILE_NAME))
            .unwrap_or_default(),
    }
}

/// Tries before unlocking gives up.
pub const UNLOCK_ATTEMPTS: u32 = 3;

/// What the user must type, exactly, to start `live`.
pub const LIVE_CONFIRMATION_PHRASE: &str = "I UNDERSTAND THIS IS LIVE";

/// How an API key signs requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Hmac,
    Ed25519,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Hmac => "hmac",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

/// The signing half of an API key.
#[derive(Debug, Clone)]
pub enum KeySecret {
    /// The API secret of an HMAC-SHA256 key.
    Hmac(SecretString),
    /// The 32-byte Ed25519 private key (the RFC 8032 seed).
    Ed25519(SecretBytes),
}

/// The keys of one mode, as the exchange client needs them.
#[derive(Debug, Clone)]
pub struct ModeKeys {
    pub api_key: SecretString,
    pub secret: KeySecret,
}

impl ModeKeys {
    pub fn kind(&self) -> KeyKind {
        match self.secret {
            KeySecret::Hmac(_) => KeyKind::Hmac,
            KeySecret::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}

/// Everything that can go wrong with the vault. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no vault at {}; create one with `crbot vault init`", .path.display())]
    NotFound { path: PathBuf },
    #[error("a vault already exists at {}; `crbot vault rotate` changes its passphrase", .path.display())]
    AlreadyExists { path: PathBuf },
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("wrong passphrase ({attempts} tries); the vault is unchanged")]
    TooManyAttempts { attempts: u32 },
    #[error(
        "the vault file {} is damaged: {reason}; it was not changed (restore it from a backup, or \
         move it away and run `crbot vault init`)",
        .path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "the vault {} can be read or written by other users (mode {mode:04o}); fix it with: chmod 600 {}",
        .path.display(), .path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error(
        "the vault {} is a symbolic link to {}, which cannot be reached ({reason}); crbot writes \
         through a link to its target and never replaces the link: point it at the vault, or remove it",
        .path.display(), .target.display()
    )]
    BrokenLink {
        path: PathBuf,
        target: PathBuf,
        reason: String,
    },
    #[error("CRBOT_PASSPHRASE_FILE={} {problem}", .path.display())]
    PassphraseFile { path: PathBuf, problem: String },
    #[error("passphrase refused: {0}")]
    WeakPassphrase(String),
    #[error("the two passphrases differ")]
    PassphraseMismatch,
    #[error("the vault holds no keys for {mode}; add them with `crbot vault set-keys --mode {mode}`")]
    NoKeys { mode: Mode },
    #[error("{mode} trades without keys; choose demo, testnet or live")]
    ModeNeedsNoKeys { mode: Mode },
    #[error("no mode chosen; pass --mode demo|testnet|live")]
    NoMode,
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("missing input: {0}")]
    NoInput(String),
    #[error("{op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl VaultError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        VaultError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Maps a format-level failure to the vault error for `path`.
    pub(crate) fn from_format(path: &Path, e: format::FormatError) -> Self {
        match e {
            format::FormatError::Damaged(reason) => VaultError::Damaged {
                path: path.to_path_buf(),
                reason,
            },
            format::FormatError::WrongPassphrase => VaultError::WrongPassphrase,
            format::FormatError::Kdf(m) => VaultError::Internal(m),
        }
    }
}

/// Wait after the `failed`-th wrong passphrase before the next try: 1 s, 2 s, 4 s, … (capped at
/// 60 s) so guessing at the prompt gets slower with every miss.
pub fn retry_delay(failed: u32) -> Duration {
    let exp = failed.saturating_sub(1).min(6);
    Duration::from_secs((1u64 << exp).min(60))
}

/// Reads and decrypts the vault, asking `prompt` for the passphrase up to three times with a
/// growing delay (through `sleeper`, so tests do not sleep). A damaged file is reported at
/// once, before any passphrase is asked. `attempts` is 1 when answers come from a script
/// (standard input), where the next line is not a passphrase. Returns the contents and the passphrase that opened
/// them (needed to write the vault back).
pub fn unlock_contents(
    path: &Path,
    prompt: &mut dyn PassphraseSource,
    sleeper: &dyn Fn(Duration),
    attempts: u32,
) -> Result<(VaultContents, SecretString, format::Header), VaultError> {
    let bytes = store::read_vault(path)?;
    let header = format::parse_header(&bytes).map_err(|e| VaultError::from_format(path, e))?;
    for attempt in 1..=attempts {
        let Some(pass) = prompt.passphrase("Vault passphrase: ")? else {
            return Err(if attempt == 1 {
                VaultError::NoInput("the vault passphrase".into())
            } else {
                VaultError::WrongPassphrase
            });
        };
        match format::open(&pass, &bytes) {
            Ok(plain) => {
                let parsed = VaultContents::from_json(&plain);
                drop(plain);
                crate::secret::wipe_stack();
                let contents = parsed.map_err(|reason| VaultError::Damaged {
                    path: path.to_path_buf(),
                    reason,
                })?;
                return Ok((contents, pass, header));
            }
            Err(format::FormatError::WrongPassphrase) => {
                prompt.notice("Wrong passphrase.");
                if attempt < attempts {
                    sleeper(retry_delay(attempt));
                }
            }
            Err(e) => return Err(VaultError::from_format(path, e)),
        }
    }
    Err(if attempts <= 1 {
        VaultError::WrongPassphrase
    } else {
        VaultError::TooManyAttempts { attempts }
    })
}

/// Start-up unlock for a mode that trades with keys: three tries with a growing delay, then a
/// clear error. Returns that mode's keys.
pub fn unlock_interactive(
    path: &Path,
    mode: Mode,
    prompt: &mut dyn PassphraseSource,
    sleeper: &dyn Fn(Duration),
) -> Result<ModeKeys, VaultError> {
    if !mode.needs_keys() {
        return Err(VaultError::ModeNeedsNoKeys { mode });
    }
    let (contents, _pass, _header) = unlock_contents(path, prompt, sleeper, UNLOCK_ATTEMPTS)?;
    contents.get(mode).cloned().ok_or(VaultError::NoKeys { mode })
}

/// True only when the user typed the live confirmation phrase exactly (surrounding whitespace
/// and the line ending aside).
pub fn confirm_live(input: &str) -> bool {
    input.trim() == LIVE_CONFIRMATION_PHRASE
}

/// Whether API keys from plain environment variables may be used under the given `ENV` value
///: only in `development` (with a loud warning, [`ENV_KEYS_WARNING`]); refused
/// in `production`, `staging` and anything unrecognised, where the vault is mandatory.
pub fn env_keys_allowed(env: &str) -> bool {
    env.trim().eq_ignore_ascii_case("development")
}

/// The warning to show on screen when keys come from the environment in development.
pub const ENV_KEYS_WARNING: &str =
    "API keys are read from plain environment variables (development only); use `crbot vault` instead";

/// The effective user id of this process (the owner a passphrase file must have).
#[allow(unsafe_code)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no argument, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// Disables core dumps for this process, so a crash never writes decrypted keys to disk:
/// `RLIMIT_CORE` = 0 and, on Linux, `PR_SET_DUMPABLE` = 0 (which also stops other processes of
/// the same user from attaching a debugger or reading our memory through /proc).
///
/// With [`effective_uid`], the crate's one place with `unsafe`: libc calls with no pointers we
/// do not own.
#[allow(unsafe_code)]
pub fn harden_process() -> std::io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `setrlimit` reads one `rlimit` through the pointer, which points at a live,
    // initialised local for the whole call; it has no other memory effects.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_DUMPABLE takes integer arguments only; no memory is read or written.
        let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_from_one_second() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(3), Duration::from_secs(4));
        assert_eq!(retry_delay(100), Duration::from_secs(60));
    }

    #[test]
    fn confirm_live_accepts_only_the_exact_phrase() {
        assert!(confirm_live("I UNDERSTAND THIS IS LIVE\n"));
        assert!(!confirm_live("i understand this is live"));
        assert!(!confirm_live("yes"));
        assert!(!confirm_live(""));
        assert!(!confirm_live("I UNDERSTAND THIS IS LIVE!"));
    }

    #[test]
    fn env_keys_are_allowed_only_in_development() {
        assert!(env_keys_allowed("development"));
        assert!(env_keys_allowed("Development "));
        assert!(!env_keys_allowed("production"));
        assert!(!env_keys_allowed("staging"));
        assert!(!env_keys_allowed(""));
    }

    #[test]
    fn harden_process_sets_the_core_limit_to_zero() {
        harden_process().unwrap();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&fields[4..6], &["0", "0"], "{line}");
    }

    #[test]
    fn errors_name_the_fix_for_permissions() {
        let e = VaultError::InsecurePermissions {
            path: PathBuf::from("/h/vault.crbot"),
            mode: 0o644,
        };
        assert_eq!(
            e.to_string(),
            "the vault /h/vault.crbot can be read or written by other users (mode 0644); \
             fix it with: chmod 600 /h/vault.crbot"
        );
    }
}
