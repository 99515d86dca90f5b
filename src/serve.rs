//! `crbot serve`: the account's engine, headless, with the control API on TCP.
//!
//! Owns: the order of start-up and shutdown under `serve`: refuse what cannot be served safely
//! (a non-loopback address outside development without TLS; a missing, unreadable or
//! mismatched certificate or key), resolve the tokens' signing key, take the account's lock
//! (refused, naming the holder's pid, when another engine has it), bind, start the engine the
//! way the console does (with its webhook alerts), serve the API on TCP and on the account's
//! unix socket (`<data>/engine-<mode>.sock`, 0600, no token), print one line
//! `api=http://HOST:PORT` (`https://` with `API_TLS_CERT`/`API_TLS_KEY`), then run until SIGTERM
//! or SIGINT and say how many orders stay open on the exchange. The address other engines are
//! told (`CRBOT_ADVERTISE_URL`, else the bound one, never a wildcard) is written in the lease's
//! leadership row when it leads. On a PostgreSQL journal the
//! account's lease decides who trades (`journal::lease`): while another engine holds it, serve
//! is a standby (`api::standby`'s routes on the same listener and socket), then the leader once
//! it takes it, and a standby again should it lose it. Must not: prompt (the vault
//! passphrase comes from `CRBOT_PASSPHRASE_FILE`; `SECRETS_BACKEND=aws`/`hashicorp` need none),
//! print or log the passphrase, or cancel orders on the way out: open orders stay, as when the
//! console quits.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::standby::StandbyView;
use crate::api::{self, ApiSettings, EngineLink};
use crate::cli::{GlobalOpts, ServeArgs};
use crate::config::{Config, Environment};
use crate::console::{SocketServer, prepare_engine, spawn_engine_with, take_engine_lock};
use crate::domain::{Mode, plural};
use crate::engine::lock::{EngineLock, LockError};
use crate::engine::session::Unlock;
use crate::journal::Location;
use crate::journal::TicketSource;
use crate::journal::lease::{Candidate, Leader, Lease, LeaseState};
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
    let (_, warning) = ApiSettings::from_config(&config)?;
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
    // Sealed at once: serve may start its engine more than once (a standby that leads, loses the
    // lease, leads again), and the passphrase must not lie in clear in memory meanwhile.
    let passphrase = passphrase(&config)?.map(crate::secret::SealedSecret::from_string);
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
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut signals = Signals::new()?;
    // One listener for the whole run: a standby's routes, the leader's once it leads.
    let switch = api::standby::RouterSwitch::new(axum::Router::new());
    let stop = CancellationToken::new();
    let mut server = match tls {
        Some(acceptor) => tokio::spawn(api::serve_tls(listener, acceptor, switch.router(), stop.clone())),
        None => tokio::spawn(api::serve(listener, switch.router(), stop.clone())),
    };
    let mut run = Run {
        config: &config,
        lock: &lock,
        passphrase,
        switch,
        signals: &mut signals,
        server: &mut server,
        api_url: format!("{scheme}://{local}"),
        advertised: advertised(config.api.advertise_url.as_ref(), scheme, local),
        printed: false,
    };
    let ended = match config.journal_location() {
        Location::Postgres(target) => run.with_lease(&target).await,
        Location::Sqlite(_) => run.lead(None).await,
    };
    stop.cancel();
    let (served, failure) = match ended {
        Ok(Ended::Server(r)) => (Some(r), None),
        other => {
            let drained = tokio::time::timeout(DRAIN, &mut server).await.ok();
            match other {
                Err(e) => (drained, Some(e)),
                Ok(Ended::EngineFailed) => (
                    drained,
                    Some(anyhow::anyhow!("the engine stopped unexpectedly; see the log")),
                ),
                Ok(Ended::LeaseLost(why)) => (drained, Some(anyhow::anyhow!("the lease was lost: {why}"))),
                Ok(_) => (drained, None),
            }
        }
    };
    drop(lock);
    if let Some(e) = failure {
        return Err(e);
    }
    match served {
        Some(Ok(Err(e))) => Err(anyhow::anyhow!("the control API stopped: {e}")),
        Some(Err(e)) => Err(anyhow::anyhow!("the control API failed: {e}")),
        _ => Ok(()),
    }
}

/// How one leading phase ended.
enum Ended {
    Signal,
    Server(Result<std::io::Result<()>, tokio::task::JoinError>),
    EngineFailed,
    LeaseLost(String),
}

/// What the phases of one `crbot serve` share.
struct Run<'a> {
    config: &'a Config,
    lock: &'a EngineLock,
    passphrase: Option<crate::secret::SealedSecret>,
    switch: api::standby::RouterSwitch,
    signals: &'a mut Signals,
    server: &'a mut tokio::task::JoinHandle<std::io::Result<()>>,
    api_url: String,
    /// The address written in the leadership row for the others (`CRBOT_ADVERTISE_URL`, else
    /// `api_url` unless it is a wildcard address); `None`: advertised as unknown.
    advertised: Option<String>,
    /// The `api=` line is printed once, by the first phase that serves.
    printed: bool,
}

impl Run<'_> {
    fn announce(&mut self) {
        if !self.printed {
            println!("api={}", self.api_url);
            let _ = std::io::stdout().flush();
            tracing::info!(api = %self.api_url, mode = %self.config.mode, "crbot serve: the control API is listening");
            self.printed = true;
        }
    }

    /// On PostgreSQL: a standby until this process holds the account's lease, then the leader
    /// until a stop signal; a leader that loses its lease stops its engine (open orders stay)
    /// and is a standby again.
    async fn with_lease(&mut self, target: &crate::journal::PgTarget) -> anyhow::Result<Ended> {
        let mut lost = None;
        loop {
            let me = Candidate::this_process(self.advertised.clone());
            let mut lease = Lease::campaign(target, self.config.mode, me);
            if let Some(ended) = self.stand_by(&mut lease, lost.take()).await? {
                return Ok(ended);
            }
            match self.lead(Some(&mut lease)).await? {
                Ended::LeaseLost(why) => {
                    let line = format!(
                        "crbot serve lost the lease on the {} account ({why}): the engine stopped; \
                         waiting as a standby",
                        self.config.mode
                    );
                    eprintln!("crbot: {line}");
                    tracing::error!("{line}");
                    lost = Some(why);
                }
                other => return Ok(other),
            }
        }
    }

    /// Serves the standby's API (and socket) until the lease is this process's (`None`) or the
    /// run ends (`Some`).
    async fn stand_by(&mut self, lease: &mut Lease, lost: Option<String>) -> anyhow::Result<Option<Ended>> {
        let mode = self.config.mode;
        let (view_tx, view) = watch::channel(StandbyView { leader: None, lost });
        // What a screen attached to this standby draws (one feed for the TCP API and the socket).
        let feed = api::standby::StandbyFeed::start(
            view,
            self.config.journal_location(),
            mode,
            crate::engine::limits_from(self.config),
        );
        let router = || {
            let (settings, _) = ApiSettings::from_config(self.config)?;
            anyhow::Ok(api::standby_router(
                settings,
                &feed,
                mode,
                self.config.journal_location(),
            ))
        };
        self.switch.set(router()?);
        let socket = SocketServer::start_router(self.config, self.lock, router()?)?;
        let mut told: Option<Option<Leader>> = None;
        // The campaign's first state is its own placeholder; its answers come after.
        let mut answered = false;
        let ended = loop {
            let state = lease.state();
            match state {
                LeaseState::Leader { .. } => break None,
                LeaseState::Lost { why } => break Some(Ended::LeaseLost(why)),
                LeaseState::Standby { leader, note } => {
                    if let Some(note) = note.as_ref().filter(|_| answered) {
                        // The server cannot be asked (yet): serve the standby's API meanwhile.
                        self.announce();
                        tracing::warn!("standby: {note}");
                    }
                    if told.as_ref() != Some(&leader) && note.is_none() {
                        self.announce();
                        let who = leader.as_ref().map_or("another engine".into(), Leader::describe);
                        let line = format!("standby: {who} leads the {mode} account; waiting for its lease");
                        println!("{line}");
                        let _ = std::io::stdout().flush();
                        tracing::info!("{line}");
                        told = Some(leader.clone());
                    }
                    view_tx.send_modify(|v| {
                        if leader.is_some() {
                            v.leader = leader;
                        }
                    });
                }
            }
            tokio::select! {
                name = self.signals.next() => {
                    tracing::info!(signal = name, "crbot serve (standby): stopping");
                    break Some(Ended::Signal);
                }
                result = &mut *self.server => break Some(Ended::Server(result)),
                _ = lease.changed() => answered = true,
            }
        };
        // The attached screens' streams end here; they reconnect to what this process serves
        // next (the leader's stream once its engine runs).
        feed.stop().await;
        socket.stop().await;
        if ended.is_none() && told.is_some() {
            println!("leader: this engine took the {mode} account's lease; reconciling, then trading");
            let _ = std::io::stdout().flush();
        }
        Ok(ended)
    }

    /// The engine, as the account's leader (under `lease` on PostgreSQL), until a stop signal,
    /// the API's end, the engine's end or the lease's loss.
    async fn lead(&mut self, mut lease: Option<&mut Lease>) -> anyhow::Result<Ended> {
        let config = self.config;
        let (session, mut core) = prepare_engine(
            config,
            self.lock,
            Unlock::Given(
                self.passphrase
                    .as_ref()
                    .map(crate::secret::SealedSecret::open_string),
            ),
            TicketSource::Engine,
        )
        .await?;
        let guard = lease.as_ref().map(|l| l.guard());
        if let Some(g) = &guard {
            core.journal.set_fence(g.clone());
        }
        let engine = spawn_engine_with(config, core, &session, guard.clone());
        let link = EngineLink {
            commands: engine.commands.clone(),
            snapshots: engine.snapshots.clone(),
            // Kept sealed for the life of the engine (opened only for a re-arm's check).
            rearm_passphrase: self.passphrase.clone(),
            replies: engine.replies.clone(),
        };
        let socket = SocketServer::start(config, self.lock, link.clone())?;
        let (settings, _) = ApiSettings::from_config(config)?;
        let mut app = api::router(link, settings);
        if let Some(queue) = engine.alerts.clone() {
            app = api::auth_alerts::layer(app, queue);
        }
        if let Some(g) = guard {
            app = api::lease_gate(app, g);
        }
        self.switch.set(app);
        self.announce();

        // The engine loop ends only when asked; if it ends by itself (a panic), the API must not
        // go on serving its last snapshot as if it were live.
        let mut published = engine.snapshots.clone();
        let engine_ended = async move { while published.changed().await.is_ok() {} };
        let lost = async {
            match lease.as_mut() {
                Some(l) => l.until_lost().await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            name = self.signals.next() => {
                tracing::info!(signal = name, "crbot serve: stopping");
                Ended::Signal
            }
            result = &mut *self.server => Ended::Server(result),
            () = engine_ended => {
                tracing::error!("crbot serve: the engine loop ended by itself; stopping");
                Ended::EngineFailed
            }
            why = lost => Ended::LeaseLost(why),
        };
        let open = engine.snapshots.borrow().orders.len();
        socket.stop().await;
        engine.stop().await;
        session.close(config).await;
        println!(
            "stopped: {} {} on the exchange",
            plural::count(open, "open order", "open orders"),
            plural::verb(open, "stays", "stay")
        );
        Ok(ended)
    }
}

/// The address the leader writes for the others: `CRBOT_ADVERTISE_URL` when set, else the
/// address it listens on; `None` (and a warning, once: serve computes it once) when that is
/// `0.0.0.0` or `::`, which would send every standby, screen and command to itself.
fn advertised(configured: Option<&url::Url>, scheme: &str, local: SocketAddr) -> Option<String> {
    if let Some(url) = configured {
        let text = url.as_str();
        return Some(if url.path() == "/" {
            text.trim_end_matches('/').to_string()
        } else {
            text.to_string()
        });
    }
    if local.ip().is_unspecified() {
        let line = format!(
            "crbot serve listens on {local}, an address no other machine can use: it advertises no \
             address to standbys, screens and commands (they say the leader's address is unknown); \
             set CRBOT_ADVERTISE_URL to the URL they reach this API at"
        );
        eprintln!("crbot: warning: {line}");
        tracing::warn!("{line}");
        return None;
    }
    Some(format!("{scheme}://{local}"))
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

    #[test]
    fn the_advertised_address_is_the_configured_one_else_the_bound_one_never_a_wildcard() {
        let lo: SocketAddr = "127.0.0.1:8002".parse().expect("addr");
        let url = url::Url::parse("https://crbot-a.example.com:8443/").expect("url");
        assert_eq!(
            advertised(Some(&url), "http", lo).as_deref(),
            Some("https://crbot-a.example.com:8443")
        );
        let proxied = url::Url::parse("https://ops.example.com/crbot/").expect("url");
        assert_eq!(
            advertised(Some(&proxied), "http", lo).as_deref(),
            Some("https://ops.example.com/crbot/")
        );
        assert_eq!(
            advertised(None, "https", lo).as_deref(),
            Some("https://127.0.0.1:8002")
        );
        for wild in ["0.0.0.0:8002", "[::]:8002"] {
            let wild: SocketAddr = wild.parse().expect("addr");
            assert_eq!(advertised(None, "http", wild), None, "{wild}");
            assert!(advertised(Some(&url), "http", wild).is_some());
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
