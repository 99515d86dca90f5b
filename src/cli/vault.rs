//! `crbot vault init | set-keys | rotate | status`: the commands over the vault in
//! `crate::vault`.
//!
//! Owns: the subcommand grammar and the command flow (which questions, in which order, what is
//! printed). Must not: print or return any secret; `status` shows API keys only masked (first and
//! last 4 characters). Everything the commands touch from outside (stdin, stdout, the prompt, the
//! clock, sleeping, write failures) comes through `VaultCliContext`, so tests drive them without a terminal.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use crate::cli::GlobalOpts;
use crate::domain::Mode;
use crate::secret::{SecretBytes, SecretString};
use crate::vault::format::{self, KdfParams};
use crate::vault::passphrase::{LinesSource, PassphraseSource, StdinLines, TerminalPrompt, check_strength};
use crate::vault::store::{self, VaultLock, WriteStep};
use crate::vault::{
    KeySecret, ModeKeys, UNLOCK_ATTEMPTS, VaultContents, VaultError, unlock_contents, vault_path,
};

/// `crbot vault …` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum VaultCommand {
    /// Create a new, empty vault (asks the passphrase twice).
    Init,
    /// Store API keys for a mode (demo, testnet, live; the global --mode).
    SetKeys {
        /// Private key file for an Ed25519 API key (instead of a secret): PKCS#8 PEM
        /// (`-----BEGIN PRIVATE KEY-----`, as Binance's key generator writes it) or 32 raw bytes.
        #[arg(long)]
        ed25519_key_file: Option<std::path::PathBuf>,
    },
    /// Change the passphrase and re-encrypt (fresh salt and nonce).
    Rotate,
    /// Show what the vault holds, without any secret.
    Status,
}

/// Everything a vault command needs from the outside world.
pub struct VaultCliContext {
    /// The vault file (`<home>/vault.crbot` or the user config folder's).
    pub path: PathBuf,
    /// Answers come from standard input, one per line (no confirmation, one try).
    pub passphrase_stdin: bool,
    /// Print one JSON document on stdout.
    pub json: bool,
    /// The mode `set-keys` stores keys for.
    pub mode: Option<Mode>,
    /// Argon2id parameters for `init` and `rotate` (`set-keys` keeps the file's).
    pub kdf: KdfParams,
    /// Where passphrases, API keys and secrets are read from.
    pub input: RefCell<Box<dyn PassphraseSource>>,
    /// Where results are printed.
    pub stdout: RefCell<Box<dyn Write>>,
    /// Waits between wrong passphrases (real sleep in the binary).
    pub sleeper: Box<dyn Fn(Duration)>,
    /// Unix milliseconds now.
    pub clock: Box<dyn Fn() -> i64>,
    /// Called after each step of an atomic write (failure injection in tests).
    pub write_hook: Box<dyn Fn(WriteStep) -> std::io::Result<()>>,
}

impl std::fmt::Debug for VaultCliContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultCliContext")
            .field("path", &self.path)
            .field("passphrase_stdin", &self.passphrase_stdin)
            .field("json", &self.json)
            .field("mode", &self.mode)
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl VaultCliContext {
    /// The context of the real binary: standard input or the terminal, stdout, real sleeps,
    /// default Argon2id parameters.
    pub fn from_global(global: &GlobalOpts) -> Self {
        let input: Box<dyn PassphraseSource> = if global.passphrase_stdin {
            match StdinLines::new() {
                Ok(lines) => Box::new(lines),
                Err(_) => Box::new(LinesSource::new(std::io::stdin().lock())),
            }
        } else {
            Box::new(TerminalPrompt)
        };
        Self {
            path: vault_path(global.home.as_deref()),
            passphrase_stdin: global.passphrase_stdin,
            json: global.json,
            mode: global.mode,
            kdf: kdf_from_env(),
            input: RefCell::new(input),
            stdout: RefCell::new(Box::new(std::io::stdout())),
            sleeper: Box::new(std::thread::sleep),
            clock: Box::new(now_ms),
            write_hook: Box::new(store::no_faults),
        }
    }

    /// Takes the vault's write lock (saying so on stderr when another command holds it).
    fn lock(&self) -> Result<VaultLock, VaultError> {
        VaultLock::acquire(&self.path, &|lock| {
            eprintln!(
                "waiting for another `crbot vault` command to finish (it holds {})",
                lock.display()
            );
        })
    }

    /// The vault must exist before a command that changes it takes the lock (so a missing vault
    /// is reported without creating anything).
    fn require_vault(&self) -> Result<(), VaultError> {
        match store::file_mode(&self.path)? {
            Some(_) => Ok(()),
            None => Err(VaultError::NotFound {
                path: self.path.clone(),
            }),
        }
    }

    fn attempts(&self) -> u32 {
        if self.passphrase_stdin { 1 } else { UNLOCK_ATTEMPTS }
    }

    fn ask(&self, prompt: &str, what: &str) -> Result<SecretString, VaultError> {
        self.input
            .borrow_mut()
            .ask(prompt)?
            .ok_or_else(|| VaultError::NoInput(what.to_string()))
    }

    /// A new passphrase: once from stdin, twice (must match) on the terminal; strength-checked.
    fn new_passphrase(&self, prompt: &str) -> Result<SecretString, VaultError> {
        let first = self.ask(prompt, "the new passphrase")?;
        // Checked before the confirmation, so nobody retypes a passphrase that will be refused.
        check_strength(&first)?;
        if !self.passphrase_stdin {
            let again = self.ask("Repeat it: ", "the passphrase confirmation")?;
            if again.expose() != first.expose() {
                return Err(VaultError::PassphraseMismatch);
            }
        }
        Ok(first)
    }

    fn unlock(&self) -> Result<(VaultContents, SecretString, format::Header), VaultError> {
        let mut input = self.input.borrow_mut();
        unlock_contents(&self.path, &mut **input, &*self.sleeper, self.attempts())
    }

    fn write(
        &self,
        lock: &VaultLock,
        pass: &SecretString,
        kdf: KdfParams,
        contents: &VaultContents,
    ) -> Result<(), VaultError> {
        let plain = contents.to_json().map_err(VaultError::Internal)?;
        let mut salt = [0u8; format::SALT_LEN];
        let mut nonce = [0u8; format::NONCE_LEN];
        // Salt and nonce straight from the operating system's generator.
        use rand::TryRng as _;
        let mut os = rand::rngs::SysRng;
        os.try_fill_bytes(&mut salt)
            .and_then(|()| os.try_fill_bytes(&mut nonce))
            .map_err(|e| VaultError::Internal(format!("the system random generator failed: {e}")))?;
        let bytes = format::seal(pass, kdf, salt, nonce, &plain)
            .map_err(|e| VaultError::from_format(&self.path, e))?;
        lock.write(&bytes, &*self.write_hook)
    }

    fn print(&self, text: &str, doc: serde_json::Value) -> anyhow::Result<()> {
        let mut out = self.stdout.borrow_mut();
        if self.json {
            writeln!(out, "{doc}")?;
        } else {
            writeln!(out, "{text}")?;
        }
        out.flush()?;
        Ok(())
    }
}

/// `CRBOT_VAULT_KDF=m_kib,t,p`: the Argon2id cost `init` and `rotate` write (the default,
/// m=65536 t=3 p=1, otherwise). For tests and very small machines; a lower cost makes the
/// passphrase cheaper to guess. A value that does not parse or is out of the format's range is
/// ignored, with a warning, for the default (never a lower cost by mistake).
fn kdf_from_env() -> KdfParams {
    let Ok(text) = std::env::var("CRBOT_VAULT_KDF") else {
        return KdfParams::DEFAULT;
    };
    match parse_kdf(&text) {
        Some(k) => k,
        None => {
            eprintln!(
                "crbot: warning: CRBOT_VAULT_KDF={text} is not m_kib,t,p within the vault format's range; using m=65536,t=3,p=1"
            );
            KdfParams::DEFAULT
        }
    }
}

fn parse_kdf(text: &str) -> Option<KdfParams> {
    let mut parts = text.split(',').map(|p| p.trim().parse::<u32>().ok());
    let k = KdfParams {
        m_kib: parts.next()??,
        t: parts.next()??,
        p: parts.next()??,
    };
    (parts.next().is_none() && k.in_range()).then_some(k)
}

/// Runs one `crbot vault …` command.
pub fn run_cli(cmd: &VaultCommand, ctx: &VaultCliContext) -> anyhow::Result<()> {
    if ctx.path.as_os_str().is_empty() {
        anyhow::bail!("no config folder found for the vault; pass --home DIR");
    }
    match cmd {
        VaultCommand::Init => init(ctx),
        VaultCommand::SetKeys { ed25519_key_file } => set_keys(ctx, ed25519_key_file.as_deref()),
        VaultCommand::Rotate => rotate(ctx),
        VaultCommand::Status => status(ctx),
    }
}

fn init(ctx: &VaultCliContext) -> anyhow::Result<()> {
    let exists = || -> Result<(), VaultError> {
        match store::file_mode(&ctx.path)? {
            Some(_) => Err(VaultError::AlreadyExists {
                path: ctx.path.clone(),
            }),
            None => Ok(()),
        }
    };
    exists()?;
    let pass = ctx.new_passphrase("New vault passphrase: ")?;
    store::ensure_parent(&ctx.path)?;
    let lock = ctx.lock()?;
    // Again under the lock: two `init`s at once must not both write.
    exists()?;
    let now = (ctx.clock)();
    ctx.write(&lock, &pass, ctx.kdf, &VaultContents::new(now))?;
    ctx.print(
        &format!(
            "Created an empty vault at {} (mode 0600). Add keys with `crbot vault set-keys --mode testnet`.",
            ctx.path.display()
        ),
        json!({ "created": ctx.path.display().to_string() }),
    )
}

fn keyed_mode(ctx: &VaultCliContext) -> Result<Mode, VaultError> {
    let mode = ctx.mode.ok_or(VaultError::NoMode)?;
    if !mode.needs_keys() {
        return Err(VaultError::ModeNeedsNoKeys { mode });
    }
    Ok(mode)
}

fn check_api_key(key: &SecretString) -> Result<(), VaultError> {
    if key.is_empty() {
        return Err(VaultError::InvalidKey("the API key is empty".into()));
    }
    if key.expose().chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(VaultError::InvalidKey(
            "the API key contains spaces or control characters".into(),
        ));
    }
    Ok(())
}

/// Reads an Ed25519 private key: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what Binance's key
/// generator and `openssl genpkey -algorithm ed25519` write) or the 32 raw seed bytes.
pub fn read_ed25519_key_file(path: &Path) -> Result<SecretBytes, VaultError> {
    use base64::Engine as _;
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let invalid = |why: &str| VaultError::InvalidKey(why.to_string());
    let raw = SecretBytes::new(std::fs::read(path).map_err(|e| VaultError::io("cannot read", path, e))?);
    if raw.expose().len() == 32 {
        return Ok(raw);
    }
    let text = std::str::from_utf8(raw.expose())
        .map_err(|_| invalid("the key file is neither PEM text nor 32 raw bytes"))?;
    if text.contains("ENCRYPTED") {
        return Err(invalid(
            "the key file is an encrypted PEM; export it unencrypted (the vault encrypts it)",
        ));
    }
    // The PEM body (RFC 7468): the base64 lines between the BEGIN and END lines.
    let mut inside = false;
    let mut body = zeroize::Zeroizing::new(String::with_capacity(text.len()));
    for line in text.lines().map(str::trim) {
        match line {
            "-----BEGIN PRIVATE KEY-----" => inside = true,
            "-----END PRIVATE KEY-----" => break,
            l if inside => body.push_str(l),
            _ => {}
        }
    }
    let der = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| invalid("the key file has no PKCS#8 PEM block (`BEGIN PRIVATE KEY`)"))?,
    );
    let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der)
        .map_err(|_| invalid("the key file is not an Ed25519 private key in PKCS#8 form"))?;
    Ok(SecretBytes::new(key.to_bytes().to_vec()))
}

fn set_keys(ctx: &VaultCliContext, ed25519_key_file: Option<&Path>) -> anyhow::Result<()> {
    let mode = keyed_mode(ctx)?;
    ctx.require_vault()?;
    // Held from the read to the rename: a concurrent set-keys or rotate waits, then re-reads.
    let lock = ctx.lock()?;
    let (mut contents, pass, header) = ctx.unlock()?;
    let api_key = ctx.ask("API key: ", "the API key")?;
    check_api_key(&api_key)?;
    let secret = match ed25519_key_file {
        Some(file) => KeySecret::Ed25519(read_ed25519_key_file(file)?),
        None => {
            let s = ctx.ask("API secret: ", "the API secret")?;
            if s.is_empty() {
                return Err(VaultError::InvalidKey("the API secret is empty".into()).into());
            }
            KeySecret::Hmac(s)
        }
    };
    let keys = ModeKeys { api_key, secret };
    let (kind, masked) = (keys.kind(), keys.api_key.masked());
    contents.set(mode, keys, (ctx.clock)());
    ctx.write(&lock, &pass, header.params, &contents)?;
    ctx.print(
        &format!("Stored {} keys for {mode} (API key {masked}).", kind.as_str()),
        json!({ "mode": mode.as_str(), "kind": kind.as_str(), "api_key": masked }),
    )
}

fn rotate(ctx: &VaultCliContext) -> anyhow::Result<()> {
    ctx.require_vault()?;
    let lock = ctx.lock()?;
    let (mut contents, old, _header) = ctx.unlock()?;
    let new = ctx.new_passphrase("New vault passphrase: ")?;
    if new.expose() == old.expose() {
        return Err(VaultError::WeakPassphrase("it is the same as the current one".into()).into());
    }
    contents.updated_ms = (ctx.clock)();
    ctx.write(&lock, &new, ctx.kdf, &contents)?;
    let k = ctx.kdf;
    ctx.print(
        &format!(
            "Re-encrypted {} with the new passphrase (fresh salt and nonce; Argon2id m={} KiB t={} p={}).",
            ctx.path.display(),
            k.m_kib,
            k.t,
            k.p
        ),
        json!({ "rotated": ctx.path.display().to_string(), "kdf": { "m_kib": k.m_kib, "t": k.t, "p": k.p } }),
    )
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn status(ctx: &VaultCliContext) -> anyhow::Result<()> {
    let (contents, _pass, header) = ctx.unlock()?;
    let file_mode = store::file_mode(&ctx.path)?.context("the vault disappeared while reading it")?;
    let k = header.params;
    let mut text = format!(
        "vault      {}\nfile mode  {file_mode:04o}\nformat     version {}, Argon2id m={} KiB t={} p={}, AES-256-GCM\n\
         created    {}\nupdated    {}\nkeys",
        ctx.path.display(),
        header.version,
        k.m_kib,
        k.t,
        k.p,
        date(contents.created_ms),
        date(contents.updated_ms),
    );
    let mut modes = Vec::new();
    for mode in crate::vault::contents::KEYED_MODES {
        match contents.get(mode) {
            Some(keys) => {
                let masked = keys.api_key.masked();
                text.push_str(&format!(
                    "\n  {:<8} {:<8} {masked}",
                    mode.as_str(),
                    keys.kind().as_str()
                ));
                modes.push(json!({ "mode": mode.as_str(), "kind": keys.kind().as_str(), "api_key": masked }));
            }
            None => text.push_str(&format!("\n  {:<8} (none)", mode.as_str())),
        }
    }
    let doc = json!({
        "path": ctx.path.display().to_string(),
        "file_mode": format!("{file_mode:04o}"),
        "format_version": header.version,
        "kdf": { "algorithm": "argon2id", "m_kib": k.m_kib, "t": k.t, "p": k.p },
        "cipher": "aes-256-gcm",
        "created": date(contents.created_ms),
        "updated": date(contents.updated_ms),
        "modes": modes,
    });
    ctx.print(&text, doc)
}
