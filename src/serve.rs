//! `crbot serve`: the account's engine, headless, with the control API on TCP.
//!
//! Owns: the order of start-up and shutdown under `serve`: refuse what cannot be served safely
//! (a non-loopback address outside development without TLS; a missing, unreadable or
//! mismatched certificate or key), resolve the tokens' signing key, take the account's lock
//! (refused, naming the holder's pid, when another engine has it), bind, start the engine the
//! way the console does (with its webhook alerts), serve the API on TCP and on the account's
//! unix socket (`<data>/engine-<mode>.sock`, 0600, no token), print one line
//! `api=http://HOST:PORT` (`https://` with `API_TLS_CERT`/`API_TLS_KEY`), then run until SIGTERM
//! or SIGINT and say how many orders stay open on the exchange. Must not: prompt (the vault
//! passphrase comes from `CRBOT_PASSPHRASE_FILE`; `SECRETS_BACKEND=aws`/`hashicorp` need none),
//! print or log the passphrase, or cancel orders on the way out: open orders stay, as when the
//! console quits.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiSettings, EngineLink};
use crate::cli::{GlobalOpts, ServeArgs};
use crate::config::{Config, Environment};
use crate::console::{SocketServer, prepare_engine, spawn_engine, take_engine_lock};
use crate::domain::Mode;
use crate::engine::lock::LockError;
use crate::engine::session::Unlock;
use crate::journal::TicketSource;
use crate::secret::SecretString;

/// How long requests in flight may take to finish once a stop is asked.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs `crbot serve` until a stop signal.
pub async fn run(config: Config, _global: GlobalOpts, args: ServeArgs) -> anyhow::Result<()> {
    let addr = args.addr.unwrap_or(config.api.addr);
    check_address(addr, config.env, config.api.tls.is_some())?;
    // Read and checked before anything else starts: a bad certificate is a one-line refusal.
    let tls = match &config.api.tls {
        Some(files) => {
            let acceptor = api::tls::acceptor(&files.cert, &files.key).map_err(anyhow::Error::msg)?;
            if let Some(w) = api::tls::key_warning(&files.key) {
                eprintln!("crbot: warning: {w}");
                tracing::warn!("{w}");
            }
            Some(acceptor)
        }
        None => None,
    };
    let (settings, warning) = ApiSettings::from_config(&config)?;
    if let Some(w) = warning {
        eprintln!("crbot: warning: {w}");
    }
    // One engine per account: the lock first, before the journal is opened or anything bound.
    let lock = match take_engine_lock(&config) {
        Ok(lock) => lock,
        Err(LockError::Held { holder, .. }) => anyhow::bail!(
            "an engine already runs for the {} account (pid {}); crbot serve does not start a second one",
            config.mode,
            holder.as_deref().unwrap_or("unknown")
        ),
        Err(e) => return Err(e.into()),
    };
    let passphrase = passphrase(&config)?;
    if config.mode == Mode::Live {
        // The console asks a typed confirmation for live; serve cannot ask, so it says it
        // loudly instead (stderr and the log): choosing live and providing the passphrase file
        // is the operator's confirmation.
        eprintln!("crbot: warning: LIVE mode: orders this engine sends move real money on Binance");
        tracing::warn!("crbot serve in LIVE mode");
    }
    // Bound before the engine starts, so a port in use fails at once, before any connection.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let mut signals = Signals::new()?;

    let (session, core) = prepare_engine(
        &config,
        &lock,
        Unlock::Given(passphrase.clone()),
        TicketSource::Engine,
    )
    .await?;
    let engine = spawn_engine(&config, core, &session);
    let link = EngineLink {
        commands: engine.commands.clone(),
        snapshots: engine.snapshots.clone(),
        // Kept sealed for the life of the engine (opened only for a re-arm's check).
        rearm_passphrase: passphrase.map(crate::secret::SealedSecret::from_string),
        replies: engine.replies.clone(),
    };
    let socket = SocketServer::start(&config, &lock, link.clone())?;
    let stop = CancellationToken::new();
    let mut app = api::router(link, settings);
    if let Some(queue) = engine.alerts.clone() {
        app = api::auth_alerts::layer(app, queue);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut server = match tls {
        Some(acceptor) => tokio::spawn(api::serve_tls(listener, acceptor, app, stop.clone())),
        None => tokio::spawn(api::serve(listener, app, stop.clone())),
    };
    println!("api={scheme}://{local}");
    let _ = std::io::stdout().flush();
    tracing::info!(%local, mode = %config.mode, "crbot serve: the control API is listening");

    // The engine loop ends only when asked; if it ends by itself (a panic), the API must not
    // go on serving its last snapshot as if it were live.
    let mut published = engine.snapshots.clone();
    let engine_ended = async move { while published.changed().await.is_ok() {} };
    let mut engine_failed = false;
    let served = tokio::select! {
        name = signals.next() => {
            tracing::info!(signal = name, "crbot serve: stopping");
            None
        }
        result = &mut server => Some(result),
        () = engine_ended => {
            tracing::error!("crbot serve: the engine loop ended by itself; stopping");
            engine_failed = true;
            None
        }
    };
    stop.cancel();
    let served = match served {
        Some(r) => Some(r),
        None => tokio::time::timeout(DRAIN, &mut server).await.ok(),
    };
    let open = engine.snapshots.borrow().orders.len();
    socket.stop().await;
    engine.stop().await;
    session.close(&config).await;
    drop(lock);
    println!(
        "stopped: {open} open order{} stay{} on the exchange",
        if open == 1 { "" } else { "s" },
        if open == 1 { "s" } else { "" }
    );
    if engine_failed {
        anyhow::bail!("the engine stopped unexpectedly; see the log");
    }
    match served {
        Some(Ok(Err(e))) => Err(anyhow::anyhow!("the control API stopped: {e}")),
        Some(Err(e)) => Err(anyhow::anyhow!("the control API failed: {e}")),
        _ => Ok(()),
    }
}

/// Outside development the API may listen on a non-loopback address only with TLS: tokens and
/// account data must not cross a network in clear text.
fn check_address(addr: SocketAddr, env: Environment, tls: bool) -> anyhow::Result<()> {
    if env != Environment::Development && !addr.ip().is_loopback() && !tls {
        anyhow::bail!(
            "crbot serve refuses to listen on {addr} with ENV={env} with no TLS: set API_TLS_CERT \
             and API_TLS_KEY, or use a loopback address (e.g. behind a TLS proxy)"
        );
    }
    Ok(())
}

/// The vault passphrase, when the mode needs one: from `CRBOT_PASSPHRASE_FILE` (or, outside
/// production, `API_KEY_ENCRYPTION_KEY`), never a prompt.
fn passphrase(config: &Config) -> anyhow::Result<Option<SecretString>> {
    if !config.keys_from_vault() {
        // No mode keys, or keys from another SECRETS_BACKEND (fetched at start, no passphrase).
        return Ok(None);
    }
    match crate::engine::session::unattended_passphrase(config)? {
        Some(p) => Ok(Some(p)),
        None => anyhow::bail!(
            "{} mode needs the vault passphrase and crbot serve never prompts: set CRBOT_PASSPHRASE_FILE to a 0600 file holding it",
            config.mode
        ),
    }
}

/// Reads a passphrase file (see [`crate::vault::read_passphrase_file`]): 0600 or 0400, owned by
/// this user, one line. Errors name the file, never its content.
pub fn read_passphrase_file(path: &Path) -> anyhow::Result<SecretString> {
    Ok(crate::vault::read_passphrase_file(path)?)
}

/// SIGTERM and SIGINT, whichever comes first.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn staging_and_production_refuse_a_non_loopback_address_development_allows_it() {
        let lan: SocketAddr = "0.0.0.0:8002".parse().expect("addr");
        let lo: SocketAddr = "127.0.0.1:8002".parse().expect("addr");
        assert!(check_address(lan, Environment::Development, false).is_ok());
        for env in [Environment::Staging, Environment::Production] {
            let err = check_address(lan, env, false).expect_err("refused").to_string();
            assert!(err.contains("no TLS") && err.contains("API_TLS_CERT"), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
            assert!(check_address(lo, env, false).is_ok());
            assert!(
                check_address(lan, env, true).is_ok(),
                "TLS makes a LAN address acceptable"
            );
        }
    }

    fn file(mode: u32, content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pass");
        std::fs::write(&path, content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        (dir, path)
    }

    #[test]
    fn a_passphrase_file_is_one_line_without_its_newline() {
        let (_d, path) = file(0o600, "correct horse\n");
        assert_eq!(
            read_passphrase_file(&path).expect("read").expose(),
            "correct horse"
        );
    }

    #[test]
    fn a_passphrase_file_others_can_read_is_refused_without_showing_it() {
        let (_d, path) = file(0o644, "correct horse\n");
        let err = read_passphrase_file(&path).expect_err("refused").to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("horse"), "{err}");
    }

    #[test]
    fn an_empty_passphrase_file_is_refused() {
        let (_d, path) = file(0o600, "\n");
        assert!(read_passphrase_file(&path).is_err());
    }

    #[test]
    fn a_passphrase_file_is_accepted_at_0600_and_0400_only() {
        for mode in [0o600, 0o400] {
            let (_d, path) = file(mode, "correct horse\r\n");
            assert_eq!(
                read_passphrase_file(&path).expect("read").expose(),
                "correct horse"
            );
        }
        for mode in [0o700, 0o640, 0o200, 0o644, 0o4600] {
            let (_d, path) = file(mode, "correct horse\n");
            let err = read_passphrase_file(&path).expect_err("refused").to_string();
            assert!(
                err.contains("CRBOT_PASSPHRASE_FILE=") && err.contains("0600 or 0400"),
                "{mode:o}: {err}"
            );
            assert!(!err.contains("horse"), "{err}");
        }
    }

    #[test]
    fn a_passphrase_file_owned_by_another_user_is_refused() {
        let (_d, path) = file(0o600, "correct horse\n");
        // Root can give the file away; other users cannot chown, and then the check is moot.
        if crate::vault::effective_uid() != 0 {
            return;
        }
        std::os::unix::fs::chown(&path, Some(65534), None).expect("chown");
        let err = read_passphrase_file(&path).expect_err("refused").to_string();
        assert!(err.contains("owned by user id 65534"), "{err}");
        assert!(!err.contains("horse"), "{err}");
    }
}
