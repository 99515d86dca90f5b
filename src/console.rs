//! `crbot` with no subcommand: the console. Unlocks keys (modes that need them) and asks the
//! live confirmation before the screen opens, connects, restores the journal, then runs the
//! engine loop and the screen side by side until the trader quits.
//!
//! Owns: start-up order and shutdown, and wiring the engine, the screen and the command-line
//! options together (or, with `CRBOT_API_URL`, handing the screen to `attach`); the engine's start-up ([`prepare_engine`], [`spawn_engine`]) is shared
//! with `crbot serve`, so that both start an account's engine the same way. Nothing below it
//! imports it. Must not: let anything be sent before the
//! journal is restored and the exchange reconciled (the runtime refuses tickets until then).

use std::io::BufRead;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::api::EngineLink;
use crate::api::socket::SocketFile;
use crate::cli::GlobalOpts;
use crate::cli::remote::{ENGINE_WAIT, Route, route_within};
use crate::config::{AutoHaltAction, Config, Environment};
use crate::domain::Mode;
use crate::engine::core::Core;
use crate::engine::limits_from;
use crate::engine::lock::{self, EngineLock, LockError};
use crate::engine::runtime::{Replies, Runtime, Services};
use crate::engine::session::{Session, Unlock};
use crate::engine::snapshot::{Command, Snapshot};
use crate::journal::retention::{DAY_MS, HOUR_MS};
use crate::journal::{Journal, TicketSource};
use crate::ui::{KeyPress, Keymap, UiConfig};

/// Runs the console until the trader quits. `live` first asks for the typed confirmation.
pub async fn run(config: Config, global: GlobalOpts) -> anyhow::Result<()> {
    // CRBOT_API_URL: the engine runs elsewhere; this console is one more screen of it (the
    // live confirmation follows that engine's mode, asked once its first snapshot is in).
    if let Some(remote) = config.api.remote.clone() {
        let ui_config = ui_config(&config, &global)?;
        return crate::attach::run(crate::attach::Target::Remote(remote), ui_config).await;
    }
    // This account's engine runs in another process (it holds the lock and answers on its
    // socket): attach to it rather than start a second one. A short-lived command holding the
    // lock is waited for, bounded, as the commands wait for each other.
    let data = config.paths.data_dir.clone();
    loop {
        match route_within(&data, config.mode, ENGINE_WAIT)
            .await
            .map_err(anyhow::Error::msg)?
        {
            Route::Engine(_) => {
                if let Some(local) = crate::attach::local_engine(&data, config.mode)? {
                    let ui_config = ui_config(&config, &global)?;
                    return crate::attach::run(local, ui_config).await;
                }
                // The engine stopped in between: look again.
            }
            Route::Alone(Some(lock)) => {
                if config.mode == Mode::Live {
                    confirm_live(&global)?;
                }
                return run_async(config, &global, lock).await;
            }
            Route::Alone(None) => anyhow::bail!(
                "cannot take the {} account's engine lock in {}: the console needs a data folder it can write",
                config.mode,
                data.display()
            ),
        }
    }
}

/// The screen's settings: theme, keymap with the configured kill key, bell.
pub fn ui_config(config: &Config, global: &GlobalOpts) -> anyhow::Result<UiConfig> {
    let mut ui_config = UiConfig::from_env(global.ascii)?;
    if let Ok(kill) = KeyPress::parse_kill_key(&config.kill_key.to_string()) {
        ui_config.keymap = Keymap::with_kill_key(kill);
    }
    ui_config.bell = config.bell;
    ui_config.detail_interval = std::time::Duration::from_millis(config.detail_ms);
    let (theme, custom, note) =
        crate::ui::theme::configured(ui_config.theme, config.theme.as_deref(), &config.paths.config_dir);
    ui_config.theme = theme;
    ui_config.custom_palette = custom;
    if let Some(n) = &note {
        tracing::warn!("{n}");
    }
    ui_config.theme_note = note;
    Ok(ui_config)
}

/// How often the console backs the journal up by itself; `None` means on command only
/// (development on command only; staging daily; production hourly).
fn schedule_ms(env: Environment) -> Option<i64> {
    match env {
        Environment::Development => None,
        Environment::Staging => Some(DAY_MS),
        Environment::Production => Some(HOUR_MS),
    }
}

fn confirm_live(global: &GlobalOpts) -> anyhow::Result<()> {
    eprintln!("You are starting crbot in LIVE mode: orders move real money on Binance.");
    eprintln!("Type `{}` to continue:", crate::vault::LIVE_CONFIRMATION_PHRASE);
    let mut line = String::new();
    if global.passphrase_stdin {
        // With --passphrase-stdin the passphrase is the first line; the confirmation comes
        // after the unlock, read by the same reader in `Session::connect`'s order. Scripts
        // that start live must still type the phrase: read it from the terminal.
        let tty = std::fs::File::open("/dev/tty")?;
        std::io::BufReader::new(tty).read_line(&mut line)?;
    } else {
        std::io::stdin().lock().read_line(&mut line)?;
    }
    if !crate::vault::confirm_live(&line) {
        anyhow::bail!("live mode not confirmed; nothing was started");
    }
    Ok(())
}

/// Live and demo keys must not be able to withdraw: crbot refuses to
/// start with one that can. The testnet has no `/sapi`, so nothing is checked there; a check
/// that cannot be made is a warning on screen, not a silent pass.
async fn key_permission_check(config: &Config, session: &Session) -> anyhow::Result<Option<String>> {
    if !matches!(config.mode, Mode::Live | Mode::Demo) {
        return Ok(None);
    }
    match session.rest.api_restrictions().await {
        Ok(r) => {
            crate::exchange::binance::reconcile::check_key_permissions(&r).map_err(|e| anyhow::anyhow!(e))?;
            Ok(None)
        }
        Err(e) => Ok(Some(format!(
            "API key permissions not checked ({e}); run `crbot doctor`"
        ))),
    }
}

/// An engine that runs for the account, and the two channels that reach it (the screen's, the
/// control API's).
#[derive(Debug)]
pub struct RunningEngine {
    pub commands: mpsc::Sender<Command>,
    pub snapshots: watch::Receiver<Snapshot>,
    /// Where alerts wait for the webhook (`ALERT_WEBHOOK_URL`); the control API raises its own.
    pub alerts: Option<crate::alerts::AlertQueue>,
    /// Where the engine's answers to client orders arrive.
    pub replies: Replies,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEngine {
    /// Stops the engine loop and waits for it (open orders stay on the exchange).
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The account's engine lock (`<data>/engine-<mode>.lock`), taken at once: the console's
/// engine and `crbot serve` take it before anything else, and hold it while they run.
pub fn take_engine_lock(config: &Config) -> Result<EngineLock, LockError> {
    EngineLock::try_acquire(&config.paths.data_dir, config.mode)
}

/// The control API on the account's unix socket, for as long as the engine runs.
#[derive(Debug)]
pub struct SocketServer {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    file: SocketFile,
}

impl SocketServer {
    /// Binds `<data>/engine-<mode>.sock` (0600; a stale file is replaced: the lock proves it
    /// stale) and serves the API on it.
    pub fn start(config: &Config, lock: &EngineLock, link: EngineLink) -> anyhow::Result<SocketServer> {
        use anyhow::Context as _;
        let path = lock::socket_path(&config.paths.data_dir, config.mode);
        let (listener, file) = crate::api::socket::bind(&path, lock)
            .with_context(|| format!("cannot serve the control socket {}", path.display()))?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(crate::api::socket::serve(
            listener,
            crate::api::socket_router(link),
            stop.clone(),
        ));
        Ok(SocketServer { stop, task, file })
    }

    /// Serves `router` instead of the engine's socket routes (a `crbot serve` standby's).
    pub fn start_router(
        config: &Config,
        lock: &EngineLock,
        router: axum::Router,
    ) -> anyhow::Result<SocketServer> {
        use anyhow::Context as _;
        let path = lock::socket_path(&config.paths.data_dir, config.mode);
        let (listener, file) = crate::api::socket::bind(&path, lock)
            .with_context(|| format!("cannot serve the control socket {}", path.display()))?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(crate::api::socket::serve(listener, router, stop.clone()));
        Ok(SocketServer { stop, task, file })
    }

    /// Stops serving, lets requests in flight finish (bounded), removes the socket file.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
        drop(self.file);
    }
}

/// The start-up the console and `crbot serve` share, in this order (the account's lock is
/// held already): connect (unlocking keys in
/// the modes that need them), check the key cannot withdraw, open the journal and restore the
/// engine's state from it. Nothing is sent before the runtime has reconciled.
pub async fn prepare_engine(
    config: &Config,
    _lock: &EngineLock,
    unlock: Unlock,
    source: TicketSource,
) -> anyhow::Result<(Session, Core)> {
    let session = Session::connect(config, unlock, true).await?;
    let mut warnings = config.warnings.clone();
    if let Some(w) = key_permission_check(config, &session).await? {
        warnings.push(w);
    }
    let journal = Journal::open_at(&config.journal_location(), config.mode)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut core = Core::restore(journal, config.mode, limits_from(config), source, now)?;
    core.state.warnings = warnings;
    core.backup_every_ms = schedule_ms(config.env);
    // The same folder `crbot backup`, `crbot kill` and `crbot doctor` use, wherever
    // DATABASE_URL puts the journal.
    core.backup_dir = Some(crate::engine::backup::folder(&config.paths.data_dir));
    Ok((session, core))
}

/// Runs the engine loop for `core` on its own task.
pub fn spawn_engine(config: &Config, core: Core, session: &Session) -> RunningEngine {
    spawn_engine_with(config, core, session, None)
}

/// [`spawn_engine`] under a lease on a PostgreSQL journal (leadership): no order leaves once
/// it is not valid.
pub fn spawn_engine_with(
    config: &Config,
    core: Core,
    session: &Session,
    lease: Option<crate::journal::lease::LeaseGuard>,
) -> RunningEngine {
    let now = chrono::Utc::now().timestamp_millis();
    let (snap_tx, snap_rx) = watch::channel(core.state.snapshot(now));
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let replies = Replies::default();
    let auto_flatten = config.auto_halt_action == AutoHaltAction::HaltFlatten;
    // A re-arm asks the same passphrase the start-up unlock did.
    let vault = config
        .keys_from_vault()
        .then(|| crate::vault::vault_path(Some(&config.paths.config_dir)));
    let alerts = config
        .api
        .alert_webhook
        .clone()
        .map(|webhook| crate::engine::runtime::AlertService {
            webhook,
            queue: crate::alerts::AlertQueue::new(crate::alerts::QUEUE_CAPACITY),
            retry: crate::alerts::Retry::default(),
        });
    let queue = alerts.as_ref().map(|a| a.queue.clone());
    let task = tokio::spawn(Runtime::run_with(
        core,
        session.rest.clone(),
        (cmd_rx, snap_tx, cancel.clone()),
        auto_flatten,
        vault,
        Services {
            alerts,
            replies: replies.clone(),
            secrets: (config.mode.needs_keys() && config.secrets.backend.is_service())
                .then(|| config.secrets.clone()),
            keys_from: session.keys_from.clone(),
            lease,
        },
    ));
    RunningEngine {
        commands: cmd_tx,
        snapshots: snap_rx,
        alerts: queue,
        replies,
        cancel,
        task,
    }
}

async fn run_async(config: Config, global: &GlobalOpts, lock: EngineLock) -> anyhow::Result<()> {
    let unlock = if global.passphrase_stdin {
        Unlock::Stdin
    } else {
        Unlock::Terminal
    };
    // On PostgreSQL the console leads the account or does not start as an engine.
    let lease = lock::take_lease(&config.journal_location(), config.mode)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}. Its screen is reachable from here: CRBOT_API_URL=<the leader's API> \
                 CRBOT_API_TOKEN=<crbot token issue on it> crbot"
            )
        })?;
    let (session, mut core) = prepare_engine(&config, &lock, unlock, TicketSource::Tui).await?;
    if let Some(l) = &lease {
        core.journal.set_fence(l.guard());
    }
    let ui_config = ui_config(&config, global)?;
    let RunningEngine {
        commands,
        snapshots,
        replies,
        cancel,
        task,
        ..
    } = spawn_engine_with(&config, core, &session, lease.as_ref().map(|l| l.guard()));
    let link = EngineLink {
        commands: commands.clone(),
        snapshots: snapshots.clone(),
        // A re-arm through the socket in a mode with keys is checked against the vault by
        // the engine; the console holds no passphrase to give it.
        rearm_passphrase: None,
        replies,
    };
    let socket = match SocketServer::start(&config, &lock, link) {
        Ok(s) => Some(s),
        Err(e) => {
            // The screen still works; commands from other shells then wait for the lock.
            tracing::error!("{e:#}");
            None
        }
    };
    let result = crate::ui::run_terminal(snapshots, commands, ui_config).await;
    if let Some(s) = socket {
        s.stop().await;
    }
    cancel.cancel();
    let _ = task.await;
    session.close(&config).await;
    drop(lease);
    drop(lock);
    result.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_backs_up_on_command_only_staging_daily_production_hourly() {
        assert_eq!(schedule_ms(Environment::Development), None);
        assert_eq!(schedule_ms(Environment::Staging), Some(DAY_MS));
        assert_eq!(schedule_ms(Environment::Production), Some(HOUR_MS));
    }
}
